using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Gatehouse.Engine.Secrets;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Protocols.Postgres;
using Gatehouse.Protocols.Postgres.Masking;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Xunit.Abstractions;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// The catalog cache against the real server: relations and columns by OID (quoted mixed-case names, dropped
/// columns, temporary tables of another session), view columns followed to their base columns through nested
/// views, subqueries and CTEs, expressions told apart, view dependencies, text and json types; invalidation,
/// shared loads, an unreachable upstream, a role that cannot parse a view, and the column limit.
/// Each test works in a database of its own.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CatalogTests(PostgresFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _database = "catalog_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    private PostgresServer Server => fixture.Server;

    private const string Schema = """
        CREATE SCHEMA "Sales";
        CREATE SCHEMA hr;
        CREATE EXTENSION IF NOT EXISTS citext;
        CREATE TABLE "Sales"."Customer" (id int PRIMARY KEY, "Full Name" text, ssn varchar(11), junk int, note citext);
        ALTER TABLE "Sales"."Customer" DROP COLUMN junk;
        CREATE TABLE hr.t (id int, ssn text, name text, salary numeric);
        CREATE VIEW hr.v_basic AS SELECT ssn AS x, upper(name) AS u, id FROM hr.t;
        CREATE VIEW hr.v_nested AS SELECT u, x AS "X2", id FROM hr.v_basic WHERE id > 0;
        CREATE VIEW hr.v_deeper AS SELECT "X2" FROM hr.v_nested;
        CREATE VIEW hr.v_sub AS
            WITH c AS (SELECT id, ssn FROM hr.t)
            SELECT s.ssn, (SELECT count(*) FROM hr.t) AS n FROM (SELECT c.ssn FROM c) s;
        CREATE VIEW hr.v_union AS SELECT ssn FROM hr.t UNION SELECT "Full Name" FROM "Sales"."Customer";
        CREATE MATERIALIZED VIEW hr.m_pay AS SELECT id, salary * 2 AS doubled FROM hr.t;
        CREATE VIEW hr.v_over_mat AS SELECT doubled, id FROM hr.m_pay;
        CREATE VIEW hr.v_star AS SELECT t.* FROM hr.t;
        CREATE VIEW hr.v_count AS SELECT count(*) AS n FROM hr.t;
        CREATE VIEW hr.v_row AS SELECT t FROM hr.t;
        CREATE VIEW "Sales"."Mixed View" AS
            SELECT c."Full Name", c.ssn, t.salary FROM "Sales"."Customer" c JOIN hr.t ON t.id = c.id;
        CREATE DOMAIN hr.ssn_text AS varchar(11);
        CREATE DOMAIN hr.ssn_text2 AS hr.ssn_text;
        CREATE DOMAIN hr.doc AS jsonb;
        CREATE DOMAIN hr.doc2 AS hr.doc;
        """;

    public async Task InitializeAsync()
    {
        await Server.PsqlAsync($"CREATE DATABASE {_database} OWNER {Server.AdminUser}", "postgres");
        await Server.PsqlAsync($"SET ROLE {Server.AdminUser};\n{Schema}", _database);
    }

    public async Task DisposeAsync() =>
        await Server.PsqlAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", "postgres");

    [Fact]
    public async Task A_load_maps_every_relation_column_and_follows_views_to_their_base_columns()
    {
        // Another session's temporary table and view, alive during the load.
        await using var temp = await OpenAsync();
        await ExecuteAsync(temp, "CREATE TEMP TABLE scratch (a int, secret text); CREATE TEMP VIEW scratch_v AS SELECT secret, a + 1 AS b FROM scratch");

        await using var cache = NewCache(Target());
        var watch = Stopwatch.StartNew();
        var snapshot = await cache.GetAsync(CancellationToken.None);
        output.WriteLine($"First load (connect included): {watch.ElapsedMilliseconds} ms, {snapshot.RelationCount} relations, {snapshot.ViewCount} views");
        watch.Restart();
        cache.Invalidate();
        var second = await cache.GetAsync(CancellationToken.None);
        output.WriteLine($"Second load (connection kept): {watch.ElapsedMilliseconds} ms");
        Assert.Equal(1, snapshot.Version);
        Assert.Equal(2, second.Version);
        Assert.Same(second, cache.Current);

        var oids = await OidsAsync(temp);
        uint customer = oids["Sales.Customer"], t = oids["hr.t"], mat = oids["hr.m_pay"], scratch = oids["scratch"];

        // Relations: names as stored (quoted mixed case), kinds, columns by attribute number, dropped ones null.
        var c = Relation(snapshot, customer);
        Assert.Equal(("Sales", "Customer", 'r'), (c.Schema, c.Name, c.Kind));
        Assert.Equal(new string?[] { "id", "Full Name", "ssn", null, "note" }, Names(c));
        Assert.Null(c.ColumnName(0));
        Assert.Null(c.ColumnName(6));
        Assert.Equal(PgColumnOrigin.Column(customer, 2), c.Origin(2));
        Assert.Equal(PgColumnOrigin.Unknown, c.Origin(4));
        Assert.Empty(c.DependsOn);
        Assert.Equal('m', Relation(snapshot, mat).Kind);
        Assert.Equal('v', Relation(snapshot, oids["Sales.Mixed View"]).Kind);
        Assert.Equal("Mixed View", Relation(snapshot, oids["Sales.Mixed View"]).Name);

        var s = Relation(snapshot, scratch);
        Assert.StartsWith("pg_temp_", s.Schema);
        Assert.Equal(new string?[] { "a", "secret" }, Names(s));

        // System catalogs are not user relations.
        Assert.False(snapshot.TryGetRelation(1259, out _)); // pg_class

        // View columns: name -> expected origin; dependencies exactly.
        AssertView(snapshot, oids["hr.v_basic"],
            [("x", Col(t, 2)), ("u", Expr), ("id", Col(t, 1))],
            [Col(t, 1), Col(t, 2), Col(t, 3)]);
        // Through a view: a bare column follows to the base; a computed one stays computed. Referencing the
        // computed u stands for everything v_basic depends on.
        AssertView(snapshot, oids["hr.v_nested"],
            [("u", Expr), ("X2", Col(t, 2)), ("id", Col(t, 1))],
            [Col(t, 1), Col(t, 2), Col(t, 3)]);
        AssertView(snapshot, oids["hr.v_deeper"], [("X2", Col(t, 2))], [Col(t, 2)]);
        // A subquery over a CTE returns a bare column; the scalar count(*) is an expression.
        AssertView(snapshot, oids["hr.v_sub"], [("ssn", Col(t, 2)), ("n", Expr)], [Col(t, 1), Col(t, 2)]);
        // UNION columns are computed, whatever their branches are.
        AssertView(snapshot, oids["hr.v_union"], [("ssn", Expr)], [Col(customer, 2), Col(t, 2)]);
        AssertView(snapshot, mat, [("id", Col(t, 1)), ("doubled", Expr)], [Col(t, 1), Col(t, 4)]);
        // A view over a materialized view reaches the base table too.
        AssertView(snapshot, oids["hr.v_over_mat"], [("doubled", Expr), ("id", Col(t, 1))], [Col(t, 1), Col(t, 4)]);
        AssertView(snapshot, oids["hr.v_star"],
            [("id", Col(t, 1)), ("ssn", Col(t, 2)), ("name", Col(t, 3)), ("salary", Col(t, 4))],
            [Col(t, 1), Col(t, 2), Col(t, 3), Col(t, 4)]);
        // count(*) and a whole-row value depend on the whole table (attnum 0); the whole row is computed.
        AssertView(snapshot, oids["hr.v_count"], [("n", Expr)], [Col(t, 0)]);
        AssertView(snapshot, oids["hr.v_row"], [("t", Expr)], [Col(t, 0)]);
        AssertView(snapshot, oids["Sales.Mixed View"],
            [("Full Name", Col(customer, 2)), ("ssn", Col(customer, 3)), ("salary", Col(t, 4))],
            [Col(customer, 1), Col(customer, 2), Col(customer, 3), Col(t, 1), Col(t, 4)]);
        // Another session's temporary view over its temporary table.
        AssertView(snapshot, oids["scratch_v"], [("secret", Col(scratch, 2)), ("b", Expr)], [Col(scratch, 1), Col(scratch, 2)]);
        Assert.Equal(0, snapshot.ViewsNotDescribed);

        // Text types: the string category, domains over it (also nested), unknown; json, jsonb and their domains.
        foreach (var name in new[] { "text", "varchar", "bpchar", "name", "citext", "hr.ssn_text", "hr.ssn_text2" })
        {
            Assert.True(snapshot.TextTypes.Contains(oids["type:" + name]), name);
        }

        Assert.Contains(705u, snapshot.TextTypes);
        Assert.DoesNotContain(oids["type:int4"], snapshot.TextTypes);
        Assert.DoesNotContain(oids["type:bytea"], snapshot.TextTypes);
        Assert.DoesNotContain(oids["type:jsonb"], snapshot.TextTypes);
        Assert.Equal(
            new[] { oids["type:json"], oids["type:jsonb"], oids["type:hr.doc"], oids["type:hr.doc2"] }.Order(),
            snapshot.JsonTypes.Order());
    }

    [Fact]
    public async Task Invalidate_after_CREATE_VIEW_makes_the_new_view_visible()
    {
        await using var cache = NewCache(Target());
        var first = await cache.GetAsync(CancellationToken.None);
        await using var connection = await OpenAsync();
        await ExecuteAsync(connection, "CREATE VIEW hr.v_new AS SELECT name AS who FROM hr.t");
        uint view = (await OidsAsync(connection))["hr.v_new"];
        Assert.False(first.TryGetRelation(view, out _));

        // Without an invalidation the cache keeps serving what it has.
        Assert.Same(first, await cache.GetAsync(CancellationToken.None));

        var refreshed = new TaskCompletionSource<PgCatalogSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        cache.Refreshed += snapshot => refreshed.TrySetResult(snapshot);
        cache.Invalidate();
        // Until the new load lands, the old snapshot is still there to read.
        Assert.NotNull(cache.Current);
        var next = await cache.GetAsync(CancellationToken.None);
        Assert.Equal(first.Version + 1, next.Version);
        Assert.Same(next, await refreshed.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        uint t = (await OidsAsync(connection))["hr.t"];
        AssertView(next, view, [("who", Col(t, 3))], [Col(t, 3)]);
    }

    [Fact]
    public async Task Concurrent_callers_share_one_load()
    {
        var source = new CountingSource(new PgCatalogLoader(Target(), new PgCatalogOptions(), TimeProvider.System));
        await using var cache = new PgCatalogCache(Target(), new PgCatalogOptions(), NullLogger.Instance, TimeProvider.System, source);
        var callers = Enumerable.Range(0, 16).Select(_ => Task.Run(() => cache.GetAsync(CancellationToken.None))).ToArray();
        var snapshots = await Task.WhenAll(callers);
        Assert.Equal(1, source.Loads);
        Assert.All(snapshots, s => Assert.Same(snapshots[0], s));

        // Invalidations that arrive together are one more load.
        for (int i = 0; i < 5; i++)
        {
            cache.Invalidate();
        }

        var after = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => cache.GetAsync(CancellationToken.None)));
        Assert.All(after, s => Assert.Same(after[0], s));
        Assert.InRange(source.Loads, 2, 3);
        Assert.Equal(source.Loads, after[0].Version);
    }

    [Fact]
    public async Task An_unreachable_upstream_fails_every_waiter_with_a_clear_message_and_a_later_call_loads()
    {
        await using var forwarder = new TcpForwarder(Server.Host, Server.Port);
        var target = Target() with { Port = forwarder.Port };
        await using var cache = NewCache(target);

        var waiters = Enumerable.Range(0, 3).Select(_ => cache.GetAsync(CancellationToken.None)).ToArray();
        foreach (var waiter in waiters)
        {
            var error = await Assert.ThrowsAsync<PgCatalogException>(() => waiter);
            Assert.Contains("could not be loaded", error.Message);
            Assert.Contains("cannot reach the upstream server", error.Message);
            Assert.Contains($"127.0.0.1:{forwarder.Port}/{_database}", error.Message);
        }

        Assert.Null(cache.Current);
        forwarder.Start();
        var snapshot = await cache.GetAsync(CancellationToken.None);
        Assert.Equal(1, snapshot.Version);

        // The kept connection breaks while idle: the next load connects again by itself.
        forwarder.DropConnections();
        cache.Invalidate();
        Assert.Equal(2, (await cache.GetAsync(CancellationToken.None)).Version);
    }

    [Fact]
    public async Task A_view_the_catalog_role_cannot_parse_is_unknown_and_the_rest_loads()
    {
        string role = "gh_catalog_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        string password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        await Server.PsqlAsync($"""
            CREATE ROLE {role} LOGIN PASSWORD '{password}';
            SET ROLE {Server.AdminUser};
            CREATE SCHEMA locked;
            CREATE TABLE locked.s (a int, b text);
            CREATE VIEW public.peek AS SELECT b, a FROM locked.s;
            GRANT USAGE ON SCHEMA hr, "Sales" TO {role};
            """, _database);
        try
        {
            await using var cache = NewCache(Target() with { User = role, Password = SecretReference.FromValue(password) });
            var snapshot = await cache.GetAsync(CancellationToken.None);
            await using var connection = await OpenAsync();
            var oids = await OidsAsync(connection);
            uint s = oids["locked.s"];
            // Without USAGE on the schema the definition does not parse: unknown, with the pipeline still in step.
            AssertView(snapshot, oids["peek"], [("b", PgColumnOrigin.Unknown), ("a", PgColumnOrigin.Unknown)], [Col(s, 1), Col(s, 2)]);
            Assert.Equal(1, snapshot.ViewsNotDescribed);
            AssertView(snapshot, oids["hr.v_basic"], [("x", Col(oids["hr.t"], 2)), ("u", Expr), ("id", Col(oids["hr.t"], 1))],
                [Col(oids["hr.t"], 1), Col(oids["hr.t"], 2), Col(oids["hr.t"], 3)]);
        }
        finally
        {
            await Server.PsqlAsync($"DROP VIEW public.peek; DROP SCHEMA locked CASCADE; DROP OWNED BY {role}", _database);
            await Server.PsqlAsync($"DROP ROLE {role}", "postgres");
        }
    }

    [Fact]
    public async Task Views_over_a_table_locked_by_DDL_are_unknown_without_stalling_the_load()
    {
        await using var ddl = await OpenAsync();
        await ExecuteAsync(ddl, "CREATE TABLE hr.busy (k int, v text); CREATE VIEW hr.v_busy AS SELECT v FROM hr.busy");
        await ExecuteAsync(ddl, "BEGIN; LOCK TABLE hr.busy IN ACCESS EXCLUSIVE MODE");
        try
        {
            await using var cache = NewCache(Target(), new PgCatalogOptions { LockTimeout = TimeSpan.FromMilliseconds(100) });
            var snapshot = await cache.GetAsync(CancellationToken.None);
            await using var reader = await OpenAsync();
            var oids = await OidsAsync(reader);
            AssertView(snapshot, oids["hr.v_busy"], [("v", PgColumnOrigin.Unknown)], [Col(oids["hr.busy"], 2)]);
            Assert.Equal(1, snapshot.ViewsNotDescribed);
            AssertView(snapshot, oids["hr.v_deeper"], [("X2", Col(oids["hr.t"], 2))], [Col(oids["hr.t"], 2)]);
        }
        finally
        {
            await ExecuteAsync(ddl, "ROLLBACK");
        }
    }

    [Fact]
    public async Task A_catalog_over_the_column_limit_is_refused()
    {
        await using var cache = NewCache(Target(), new PgCatalogOptions { MaxColumns = 10 });
        var error = await Assert.ThrowsAsync<PgCatalogException>(() => cache.GetAsync(CancellationToken.None));
        Assert.Contains("more than 10 columns", error.Message);
    }

    private PgConnectionTarget Target() => new()
    {
        Name = "catalog",
        Host = Server.Host,
        Port = Server.Port,
        Database = _database,
        User = Server.AdminUser,
        Password = SecretReference.FromValue(Server.AdminPassword),
    };

    private static PgCatalogCache NewCache(PgConnectionTarget target, PgCatalogOptions? options = null) =>
        new(target, options ?? new PgCatalogOptions(), NullLogger.Instance);

    private static PgColumnOrigin Col(uint oid, short attnum) => PgColumnOrigin.Column(oid, attnum);

    private static PgColumnOrigin Expr => PgColumnOrigin.Expression;

    private static PgRelation Relation(PgCatalogSnapshot snapshot, uint oid)
    {
        Assert.True(snapshot.TryGetRelation(oid, out var relation), $"relation {oid} is not in the snapshot");
        return relation;
    }

    private static string?[] Names(PgRelation relation) =>
        Enumerable.Range(1, relation.ColumnCount).Select(i => relation.ColumnName((short)i)).ToArray();

    private static void AssertView(PgCatalogSnapshot snapshot, uint oid, (string Name, PgColumnOrigin Origin)[] columns, PgColumnOrigin[] dependsOn)
    {
        var view = Relation(snapshot, oid);
        Assert.True(view.IsView, $"{view} is not a view");
        Assert.Equal(columns.Select(c => c.Name), Names(view));
        Assert.Equal(columns.Select(c => c.Origin), Enumerable.Range(1, view.ColumnCount).Select(i => view.Origin((short)i)));
        Assert.Equal(dependsOn, view.DependsOn);
    }

    private async Task<NpgsqlConnection> OpenAsync()
    {
        var builder = new NpgsqlConnectionStringBuilder(Server.ConnectionString(_database)) { Pooling = false };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Relation OIDs by "schema.name" (and bare name for public and temporary ones), type OIDs by "type:name".</summary>
    private static async Task<Dictionary<string, uint>> OidsAsync(NpgsqlConnection connection)
    {
        var oids = new Dictionary<string, uint>();
        await using var command = new NpgsqlCommand("""
            SELECT n.nspname, c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            UNION ALL
            SELECT CASE WHEN n.nspname = 'pg_catalog' OR n.nspname = 'public' THEN 'type' ELSE 'type:' || n.nspname END,
                   t.typname, t.oid
              FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname IN ('pg_catalog', 'public', 'hr')
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            string schema = reader.GetString(0), name = reader.GetString(1);
            uint oid = reader.GetFieldValue<uint>(2);
            if (schema == "type")
            {
                oids["type:" + name] = oid;
            }
            else
            {
                oids[schema + "." + name] = oid;
                if (schema == "public" || schema.StartsWith("pg_temp_", StringComparison.Ordinal))
                {
                    oids[name] = oid;
                }
            }
        }

        return oids;
    }

    /// <summary>Counts loads and passes them on.</summary>
    private sealed class CountingSource(IPgCatalogSource inner) : IPgCatalogSource
    {
        private int _loads;

        public int Loads => Volatile.Read(ref _loads);

        public Task<PgCatalogSnapshot> LoadAsync(long version, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _loads);
            return inner.LoadAsync(version, cancellationToken);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>
    /// A loopback port that refuses connections until <see cref="Start"/>, then forwards each one to the server;
    /// <see cref="DropConnections"/> cuts the ones open, as a server restart would.
    /// </summary>
    private sealed class TcpForwarder(string host, int port) : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, FreePort());
        private readonly List<Socket> _open = [];
        private readonly CancellationTokenSource _stop = new();
        private Task _accepting = Task.CompletedTask;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public void Start()
        {
            _listener.Start();
            _accepting = AcceptAsync();
        }

        public void DropConnections()
        {
            lock (_open)
            {
                foreach (var socket in _open)
                {
                    socket.Dispose();
                }

                _open.Clear();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            DropConnections();
            try
            {
                await _accepting;
            }
            catch (Exception)
            {
            }

            _stop.Dispose();
        }

        private static int FreePort()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            return ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptSocketAsync(_stop.Token);
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await upstream.ConnectAsync(host, port, _stop.Token);
                lock (_open)
                {
                    _open.Add(client);
                    _open.Add(upstream);
                }

                _ = PumpAsync(client, upstream);
                _ = PumpAsync(upstream, client);
            }
        }

        private static async Task PumpAsync(Socket from, Socket to)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    int read = await from.ReceiveAsync(buffer, SocketFlags.None);
                    if (read == 0)
                    {
                        break;
                    }

                    await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None);
                }
            }
            catch (Exception)
            {
                // Either side gone: close both.
            }

            from.Dispose();
            to.Dispose();
        }
    }
}
