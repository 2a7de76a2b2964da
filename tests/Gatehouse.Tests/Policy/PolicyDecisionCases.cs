using Gatehouse.Policy.Rules;
using A = Gatehouse.Policy.Rules.PolicyAction;
using C = Gatehouse.Policy.Sql.StatementClass;

namespace Gatehouse.Tests.Policy;

/// <summary>
/// The decision table against <see cref="SamplePolicy"/>: role, statement text, standard_conforming_strings, the
/// expected class (union over the text's statements), the expected action and the rule that decides it
/// ("allowed" for rule 0).
/// </summary>
internal static class PolicyDecisionCases
{
    private const string Allowed = "allowed";

    public static TheoryData<string, string, bool, C, A, string> All()
    {
        var d = new TheoryData<string, string, bool, C, A, string>();

        // ---- reader: read, transaction, session --------------------------------------------------------------
        d.Add("reader", "SELECT 1", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "select * from t where id = $1", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SeLeCt a FrOm b", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "  \n\t SELECT\n*\nFROM\tt  ", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "", true, C.None, A.Allow, Allowed);
        d.Add("reader", "-- only a comment\n", true, C.None, A.Allow, Allowed);
        d.Add("reader", "/* only */ ; ;", true, C.None, A.Allow, Allowed);
        d.Add("reader", "TABLE orders", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "VALUES (1), (2)", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SHOW search_path", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT * FROM t FOR UPDATE", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "EXPLAIN SELECT * FROM t", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "EXPLAIN DELETE FROM t", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "BEGIN; SELECT 1; COMMIT", true, C.Transaction | C.Read, A.Allow, Allowed);
        d.Add("reader", "SET search_path TO public", true, C.Session, A.Allow, Allowed);
        d.Add("reader", "SELECT set_config('search_path', 'public', false)", true, C.Read | C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "SET search_path TO public, pg_catalog", true, C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "SET search_path TO public", true, C.Session, A.Allow, Allowed);
        d.Add("reader", "LISTEN chan", true, C.Session, A.Allow, Allowed);
        d.Add("reader", "INSERT INTO t (a) VALUES (1)", true, C.Write, A.Deny, "role:reader");
        d.Add("reader", "DELETE FROM t WHERE id = 1", true, C.Write, A.Deny, "role:reader");
        d.Add("reader", "DROP TABLE t", true, C.Ddl, A.Deny, "role:reader");
        d.Add("reader", "dRoP TaBlE t", true, C.Ddl, A.Deny, "role:reader");
        d.Add("reader", "TRUNCATE t", true, C.Ddl | C.Write, A.Deny, "role:reader");
        d.Add("reader", "GRANT SELECT ON t TO bob", true, C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "VACUUM t", true, C.Admin, A.Deny, "role:reader");
        d.Add("reader", "COPY t TO STDOUT", true, C.Copy | C.Read, A.Deny, "role:reader");
        d.Add("reader", "DISCARD ALL", true, C.Session | C.Privilege, A.Deny, "role:reader");

        // Multi-statements: the strictest statement decides.
        d.Add("reader", "SELECT 1; DROP TABLE t", true, C.Read | C.Ddl, A.Deny, "role:reader");
        d.Add("reader", "SELECT 1;DELETE FROM t", true, C.Read | C.Write, A.Deny, "role:reader");
        d.Add("reader", "SELECT 1\t;\n\tDROP\n\tTABLE t", true, C.Read | C.Ddl, A.Deny, "role:reader");
        d.Add("reader", "SELECT ';'; SELECT \";\" FROM t", true, C.Read, A.Allow, Allowed);

        // Privilege changes, however spelled.
        d.Add("reader", "SET ROLE admin", true, C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "set role admin", true, C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "SET SESSION AUTHORIZATION admin", true, C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "SET \"role\" TO admin", true, C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "RESET ROLE", true, C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "SELECT set_config('role', 'admin', false)", true, C.Read | C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "SELECT pg_catalog.set_config('role', 'admin', false)", true, C.Read | C.Privilege, A.Deny, "role:reader");
        d.Add("reader", "SELECT set_config('ro' || 'le', 'admin', false)", true, C.Read | C.Privilege, A.Deny, "role:reader");

        // File access, opaque code.
        d.Add("reader", "SELECT pg_read_file('/etc/passwd')", true, C.Read | C.FileAccess, A.Deny, "role:reader");
        d.Add("reader", "SELECT pg_catalog.pg_read_file('/etc/passwd')", true, C.Read | C.FileAccess, A.Deny, "role:reader");
        d.Add("reader", "SELECT lo_import('/etc/passwd')", true, C.Read | C.FileAccess, A.Deny, "role:reader");
        d.Add("reader", "EXPLAIN ANALYZE DELETE FROM t", true, C.Write | C.OpaqueCode, A.Deny, "role:reader");
        d.Add("reader", "PREPARE p AS SELECT 1", true, C.OpaqueCode, A.Deny, "role:reader");
        d.Add("reader", "EXECUTE p(1)", true, C.OpaqueCode, A.Deny, "role:reader");
        d.Add("reader", "DO $$ BEGIN DELETE FROM t; END $$", true, C.OpaqueCode, A.Deny, "role:reader");
        d.Add("reader", "CALL proc(1)", true, C.OpaqueCode, A.Deny, "role:reader");
        d.Add("reader", "SELECT * FROM dblink('dbname=x', 'DROP TABLE t') AS r(a text)", true, C.Read | C.OpaqueCode, A.Deny, "role:reader");
        d.Add("reader", "WITH d AS (DELETE FROM payments RETURNING *) SELECT * FROM d", true, C.Read | C.Write, A.Deny, "role:reader");

        // Evasions: comments, quoting, dollar quotes, escapes.
        d.Add("reader", "DE/**/LETE FROM t", true, C.Unknown, A.Deny, "unknown_statements");
        d.Add("reader", "SEL/**/ECT 1", true, C.Unknown, A.Deny, "unknown_statements");
        d.Add("reader", "\"DELETE\" FROM t", true, C.Unknown, A.Deny, "unknown_statements");
        d.Add("reader", "SELECT 1; DE--x\nLETE FROM t", true, C.Read | C.Unknown, A.Deny, "unknown_statements");
        d.Add("reader", "FROBNICATE t", true, C.Unknown, A.Deny, "unknown_statements");
        d.Add("reader", "SELECT $x$; DROP TABLE t; $x$", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT $$a$$; DROP TABLE t", true, C.Read | C.Ddl, A.Deny, "role:reader");
        d.Add("reader", "SELECT $_$ ; DROP TABLE t; $_$", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT $1; DROP TABLE t; $1", true, C.Read | C.Ddl | C.Unknown, A.Deny, "role:reader");
        d.Add("reader", "SELECT 1 -- ; DROP TABLE t", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT 1 /* /* nested */ ; DROP TABLE t */", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT 1 /* /* */ */ ; DROP TABLE t", true, C.Read | C.Ddl, A.Deny, "role:reader");
        d.Add("reader", "SELECT E'\\'; DROP TABLE t; --'", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT E'\\'; DROP TABLE t; --'", false, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT 'a\\'; DROP TABLE t; --'", true, C.Read | C.Ddl, A.Deny, "role:reader");
        d.Add("reader", "SELECT 'a\\'; DROP TABLE t; --'", false, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT 'a\\\\'; DROP TABLE t", false, C.Read | C.Ddl, A.Deny, "role:reader");
        d.Add("reader", "SELECT 'it''s'; SELECT 2", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT U&'d\\0061t\\+000061'", true, C.Read, A.Allow, Allowed);
        d.Add("reader", "SELECT U&'\\0041'", false, C.Read | C.Unknown, A.Deny, "unknown_statements");
        d.Add("reader", "SELECT U&\"d\\0061t\" FROM t", true, C.Read | C.Unknown, A.Deny, "unknown_statements");
        d.Add("reader", "SELECT 'unterminated", true, C.Read | C.Unknown, A.Deny, "unknown_statements");

        // ---- writer: read, write, copy, transaction, session; object rules ------------------------------------
        d.Add("writer", "SELECT 1", true, C.Read, A.Allow, Allowed);
        d.Add("writer", "INSERT INTO orders (id) VALUES (1)", true, C.Write, A.Allow, Allowed);
        d.Add("writer", "UPDATE orders SET status = 'x' WHERE id = 1", true, C.Write, A.Allow, Allowed);
        d.Add("writer", "DELETE FROM orders WHERE id = 1", true, C.Write, A.Allow, Allowed);
        d.Add("writer", "SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $1", true, C.Read, A.Allow, Allowed);
        d.Add("writer", "BEGIN; INSERT INTO orders VALUES (1); COMMIT", true, C.Transaction | C.Write, A.Allow, Allowed);
        d.Add("writer", "COPY orders FROM STDIN", true, C.Copy | C.Write, A.Allow, Allowed);
        d.Add("writer", "COPY orders TO STDOUT", true, C.Copy | C.Read, A.Allow, Allowed);

        // Shapes.
        d.Add("writer", "UPDATE orders SET status = 'x'", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "DELETE FROM orders", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "delete from orders", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "DELETE\nFROM\norders\n", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "/**/DELETE/**/FROM/**/orders", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "DELETE FROM orders RETURNING *", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", true, C.Read | C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "UPDATE orders SET a = (SELECT 1 WHERE true)", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "SELECT 'a\\'; DELETE FROM orders; --'", true, C.Read | C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "SELECT 'a\\'; DELETE FROM orders; --'", false, C.Read, A.Allow, Allowed);

        // Tables: PostgreSQL's name rules; an unqualified name matches whatever schema the pattern names.
        d.Add("writer", "DELETE FROM payments WHERE id = 1", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "DELETE FROM public.payments WHERE id = 1", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "DELETE FROM \"public\".\"payments\" WHERE id = 1", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "DELETE FROM PUBLIC.PAYMENTS WHERE id = 1", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "DELETE FROM public . payments WHERE id = 1", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "DELETE FROM public/**/./* x */payments WHERE id = 1", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "DELETE FROM app.public.payments WHERE id = 1", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "DELETE FROM ONLY payments WHERE id = 1", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "DELETE FROM \"PAYMENTS\" WHERE id = 1", true, C.Write, A.Allow, Allowed);
        d.Add("writer", "DELETE FROM \"Payments\" WHERE id = 1", true, C.Write, A.Allow, Allowed);
        d.Add("writer", "DELETE FROM archive.payments WHERE id = 1", true, C.Write, A.Allow, Allowed);
        d.Add("writer", "DELETE FROM \"public.payments\" WHERE id = 1", true, C.Write, A.Allow, Allowed);
        d.Add("writer", "INSERT INTO billing.invoices VALUES (1)", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "INSERT INTO invoices VALUES (1)", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "INSERT INTO public.invoices VALUES (1)", true, C.Write, A.Allow, Allowed);
        d.Add("writer", "SELECT * FROM payments", true, C.Read, A.Allow, Allowed);
        d.Add("writer", "EXPLAIN DELETE FROM payments", true, C.Read, A.Allow, Allowed);
        d.Add("writer", "INSERT INTO orders SELECT * FROM payments", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "INSERT INTO orders SELECT * FROM vault.keys", true, C.Write, A.Deny, "no-secrets");
        d.Add("writer", "UPDATE orders SET note = k.v FROM vault.keys k WHERE orders.id = k.id", true, C.Write, A.Deny, "no-secrets");
        d.Add("writer", "SELECT 1 UNION SELECT v FROM keys", true, C.Read, A.Deny, "no-secrets");
        d.Add("writer", "DELETE FROM orders WHERE id IN (SELECT id FROM payments)", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "WITH d AS (DELETE FROM payments WHERE id = 1 RETURNING *) SELECT * FROM d", true, C.Read | C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "MERGE INTO payments p USING staging s ON p.id = s.id WHEN MATCHED THEN UPDATE SET amount = s.amount", true, C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "COPY payments FROM STDIN", true, C.Copy | C.Write, A.RequireApproval, "payments-need-approval");

        // search_path does not matter: an unqualified name is matched as if it could be in any schema.
        d.Add("writer", "SET search_path TO archive; DELETE FROM payments WHERE id = 1", true, C.Session | C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "SET search_path TO billing; INSERT INTO invoices VALUES (1)", true, C.Session | C.Write, A.RequireApproval, "payments-need-approval");
        d.Add("writer", "SELECT set_config('search_path', 'archive', false); DELETE FROM payments WHERE id = 2", true, C.Read | C.Privilege | C.Write, A.Deny, "role:writer");
        d.Add("writer", "SET search_path TO archive; DELETE FROM payments WHERE id = 2", true, C.Session | C.Write, A.RequireApproval, "payments-need-approval");

        // The strictest wins; on a tie, the first rule (and the first statement).
        d.Add("writer", "UPDATE payments SET amount = 0", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "DELETE FROM vault.keys", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "DELETE FROM payments WHERE id = 1 RETURNING (SELECT pg_sleep(1))", true, C.Write, A.Deny, "no-sleep");
        d.Add("writer", "UPDATE payments SET a = 1 WHERE id = 1; DELETE FROM orders", true, C.Write, A.Deny, "no-unbounded-writes");
        d.Add("writer", "SELECT * FROM vault.keys; DELETE FROM orders", true, C.Read | C.Write, A.Deny, "no-secrets");
        d.Add("writer", "DELETE FROM orders; SELECT * FROM vault.keys", true, C.Write | C.Read, A.Deny, "no-unbounded-writes");
        d.Add("writer", "DELETE FROM payments WHERE id = 1; INSERT INTO invoices VALUES (1)", true, C.Write, A.RequireApproval, "payments-need-approval");

        // COPY criteria with tables.
        d.Add("writer", "COPY payments TO STDOUT", true, C.Copy | C.Read, A.Deny, "no-payment-export");
        d.Add("writer", "COPY public.payments (id, amount) TO STDOUT WITH (FORMAT csv)", true, C.Copy | C.Read, A.Deny, "no-payment-export");
        d.Add("writer", "COPY (SELECT * FROM payments) TO STDOUT", true, C.Copy | C.Read, A.Deny, "no-payment-export");
        d.Add("writer", "COPY orders FROM PROGRAM 'id'", true, C.Copy | C.Write | C.FileAccess | C.OpaqueCode, A.Deny, "role:writer");
        d.Add("writer", "COPY orders TO '/tmp/x'", true, C.Copy | C.Read | C.FileAccess, A.Deny, "role:writer");
        d.Add("writer", "COPY orders FROM '/etc/passwd'", true, C.Copy | C.Write | C.FileAccess, A.Deny, "role:writer");

        // Quoted names keep their case; unquoted ones fold.
        d.Add("writer", "SELECT * FROM vault.keys", true, C.Read, A.Deny, "no-secrets");
        d.Add("writer", "SELECT * FROM VAULT.KEYS", true, C.Read, A.Deny, "no-secrets");
        d.Add("writer", "SELECT * FROM keys", true, C.Read, A.Deny, "no-secrets");
        d.Add("writer", "SELECT * FROM public.keys", true, C.Read, A.Allow, Allowed);
        d.Add("writer", "SELECT * FROM \"Secrets\"", true, C.Read, A.Deny, "no-secrets");
        d.Add("writer", "SELECT * FROM app.\"Secrets\" s", true, C.Read, A.Deny, "no-secrets");
        d.Add("writer", "SELECT * FROM Secrets", true, C.Read, A.Allow, Allowed);
        d.Add("writer", "SELECT * FROM secrets", true, C.Read, A.Allow, Allowed);
        d.Add("writer", "SELECT * FROM orders o, vault.keys k WHERE o.id = k.id", true, C.Read, A.Deny, "no-secrets");
        d.Add("writer", "SELECT * FROM orders o LEFT JOIN keys k ON o.id = k.id", true, C.Read, A.Deny, "no-secrets");

        // Functions: schema-qualified or not, folded or quoted.
        d.Add("writer", "SELECT pg_sleep(1)", true, C.Read, A.Deny, "no-sleep");
        d.Add("writer", "SELECT pg_catalog.pg_sleep(1)", true, C.Read, A.Deny, "no-sleep");
        d.Add("writer", "SELECT PG_SLEEP(1)", true, C.Read, A.Deny, "no-sleep");
        d.Add("writer", "SELECT \"pg_sleep\"(1)", true, C.Read, A.Deny, "no-sleep");
        d.Add("writer", "SELECT \"PG_SLEEP\"(1)", true, C.Read, A.Allow, Allowed);
        d.Add("writer", "SELECT * FROM orders WHERE id = 1 AND pg_sleep(10) IS NULL", true, C.Read, A.Deny, "no-sleep");
        d.Add("writer", "SELECT 'pg_sleep(1)'", true, C.Read, A.Allow, Allowed);

        // Classes outside the role.
        d.Add("writer", "DROP TABLE orders", true, C.Ddl, A.Deny, "role:writer");
        d.Add("writer", "TRUNCATE orders", true, C.Ddl | C.Write, A.Deny, "role:writer");
        d.Add("writer", "CREATE TABLE x (id int)", true, C.Ddl, A.Deny, "role:writer");
        d.Add("writer", "SELECT * INTO newtable FROM orders", true, C.Read | C.Ddl | C.Write, A.Deny, "role:writer");
        d.Add("writer", "SET ROLE postgres", true, C.Privilege, A.Deny, "role:writer");
        d.Add("writer", "SELECT set_config('role', 'postgres', false)", true, C.Read | C.Privilege, A.Deny, "role:writer");
        d.Add("writer", "SELECT pg_read_file('/etc/passwd')", true, C.Read | C.FileAccess, A.Deny, "role:writer");
        d.Add("writer", "INSERT INTO orders SELECT lo_import('/etc/shadow')", true, C.Write | C.FileAccess, A.Deny, "role:writer");
        d.Add("writer", "SELECT * FROM dblink('dbname=x', 'DELETE FROM t') AS r(a text)", true, C.Read | C.OpaqueCode, A.Deny, "role:writer");
        d.Add("writer", "PREPARE p AS DELETE FROM orders WHERE id = $1", true, C.OpaqueCode | C.Write, A.Deny, "role:writer");
        d.Add("writer", "EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1", true, C.Write | C.OpaqueCode, A.Deny, "role:writer");
        d.Add("writer", "CREATE FUNCTION f() RETURNS int AS $$ DELETE FROM payments $$ LANGUAGE sql", true, C.Ddl | C.OpaqueCode, A.Deny, "role:writer");
        d.Add("writer", "SELECT pg_terminate_backend(123)", true, C.Read | C.Admin, A.Deny, "role:writer");
        d.Add("writer", "DE/**/LETE FROM orders", true, C.Unknown, A.Deny, "unknown_statements");

        // ---- clerk: billing.* with unqualified names ------------------------------------------------------------
        d.Add("clerk", "INSERT INTO billing.invoices VALUES (1)", true, C.Write, A.RequireApproval, "billing-approval");
        d.Add("clerk", "INSERT INTO invoices VALUES (1)", true, C.Write, A.RequireApproval, "billing-approval");
        d.Add("clerk", "INSERT INTO orders VALUES (1)", true, C.Write, A.RequireApproval, "billing-approval");
        d.Add("clerk", "INSERT INTO public.orders VALUES (1)", true, C.Write, A.Allow, Allowed);
        d.Add("clerk", "SELECT * FROM orders", true, C.Read, A.Allow, Allowed);
        d.Add("clerk", "UPDATE \"billing\".\"Invoices\" SET paid = true WHERE id = 1", true, C.Write, A.RequireApproval, "billing-approval");
        d.Add("clerk", "UPDATE \"Billing\".invoices SET paid = true WHERE id = 1", true, C.Write, A.Allow, Allowed);
        d.Add("clerk", "DELETE FROM billing.invoices", true, C.Write, A.RequireApproval, "billing-approval");
        d.Add("clerk", "COPY billing.invoices FROM STDIN", true, C.Copy | C.Write, A.Deny, "role:clerk");

        // ---- dba: every known class; global rules still apply ---------------------------------------------------
        d.Add("dba", "DROP TABLE orders", true, C.Ddl, A.Allow, Allowed);
        d.Add("dba", "DROP TABLE \"Payments\"", true, C.Ddl, A.Allow, Allowed);
        d.Add("dba", "DROP TABLE payments", true, C.Ddl, A.RequireApproval, "protect-payments");
        d.Add("dba", "DROP TABLE IF EXISTS public.payments CASCADE", true, C.Ddl, A.RequireApproval, "protect-payments");
        d.Add("dba", "TRUNCATE payments", true, C.Ddl | C.Write, A.RequireApproval, "protect-payments");
        d.Add("dba", "TRUNCATE public.orders, payments", true, C.Ddl | C.Write, A.RequireApproval, "protect-payments");
        d.Add("dba", "TRUNCATE archive.payments", true, C.Ddl | C.Write, A.Allow, Allowed);

        // DROP VIEW lists no relation: a DDL statement whose relations are unknown matches every tables criterion.
        d.Add("dba", "DROP VIEW payments", true, C.Ddl, A.RequireApproval, "protect-payments");
        d.Add("dba", "DROP VIEW orders_summary", true, C.Ddl, A.RequireApproval, "protect-payments");
        d.Add("dba", "DELETE FROM payments", true, C.Write, A.Allow, Allowed);
        d.Add("dba", "CREATE ROLE x", true, C.Privilege, A.Allow, Allowed);
        d.Add("dba", "SET SESSION AUTHORIZATION postgres", true, C.Privilege, A.Allow, Allowed);
        d.Add("dba", "VACUUM FULL orders", true, C.Admin, A.Allow, Allowed);
        d.Add("dba", "ALTER SYSTEM SET work_mem = '1GB'", true, C.Admin, A.Allow, Allowed);
        d.Add("dba", "DO $$ BEGIN PERFORM 1; END $$", true, C.OpaqueCode, A.Allow, Allowed);
        d.Add("dba", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", true, C.Ddl | C.OpaqueCode, A.Allow, Allowed);
        d.Add("dba", "PREPARE p AS SELECT 1", true, C.OpaqueCode, A.Allow, Allowed);
        d.Add("dba", "SELECT pg_read_file('/etc/passwd')", true, C.Read | C.FileAccess, A.Deny, "no-file-access");
        d.Add("dba", "SELECT lo_import('/etc/passwd')", true, C.Read | C.FileAccess, A.Deny, "no-file-access");
        d.Add("dba", "COPY orders FROM PROGRAM 'id'", true, C.Copy | C.Write | C.FileAccess | C.OpaqueCode, A.Deny, "no-file-access");
        d.Add("dba", "COPY orders TO '/tmp/o'", true, C.Copy | C.Read | C.FileAccess, A.Deny, "no-file-access");
        d.Add("dba", "SELECT * FROM dblink('dbname=x', 'SELECT 1') AS r(a int)", true, C.Read | C.OpaqueCode, A.Deny, "no-remote-sql");
        d.Add("dba", "SELECT public.dblink_exec('c', 'DROP TABLE t')", true, C.Read | C.OpaqueCode, A.Deny, "no-remote-sql");
        d.Add("dba", "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')", true, C.Read | C.OpaqueCode, A.Deny, "no-remote-sql");
        d.Add("dba", "SELECT \"DBLINK\"('x', 'y')", true, C.Read, A.Allow, Allowed);

        // Opaque code's names are not trusted: a rule about functions matches it whenever its classes match.
        d.Add("dba", "EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1", true, C.Write | C.OpaqueCode, A.Deny, "no-remote-sql");
        d.Add("dba", "PREPARE p AS DELETE FROM payments", true, C.OpaqueCode | C.Write, A.Deny, "no-remote-sql");
        d.Add("dba", "DE/**/LETE FROM t", true, C.Unknown, A.Deny, "unknown_statements");
        d.Add("dba", "SELECT 1; FOO", true, C.Read | C.Unknown, A.Deny, "unknown_statements");

        // ---- auditor: read and unknown; object rules fail closed on what was not understood --------------------
        d.Add("auditor", "SELECT 1", true, C.Read, A.Allow, Allowed);
        d.Add("auditor", "DE/**/LETE FROM t", true, C.Unknown, A.Allow, Allowed);
        d.Add("auditor", "SELECT 1; FOO", true, C.Read | C.Unknown, A.Allow, Allowed);
        d.Add("auditor", "SELECT U&\"dblink\"('dbname=x', 'DROP TABLE t')", true, C.Read | C.Unknown, A.Deny, "no-remote-sql");
        d.Add("auditor", "SELECT 'unterminated", true, C.Read | C.Unknown, A.Deny, "no-remote-sql");
        d.Add("auditor", "SELECT dblink('x', 'y')", true, C.Read | C.OpaqueCode, A.Deny, "role:auditor");
        d.Add("auditor", "INSERT INTO t VALUES (1)", true, C.Write, A.Deny, "role:auditor");
        return d;
    }
}
