using Gatehouse.IntegrationTests.Infrastructure;

namespace Gatehouse.IntegrationTests;

/// <summary>psycopg2 (libpq, Debian's /usr/bin/python3) through the gateway.</summary>
[Collection(PostgresCollection.Name)]
public sealed class Psycopg2Tests(PostgresFixture fixture) : IAsyncLifetime
{
    private GatewayHost _gateway = null!;

    private PostgresServer Server => fixture.Server;

    public Task InitializeAsync()
    {
        _gateway = GatewayHost.Start(Server);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    private string Dsn(string sslMode) =>
        $"host={GatewayHost.Localhost} port={_gateway.Port} user={GatewayHost.Alice} password={_gateway.AliceSecret} dbname={GatewayHost.AppConnection} sslmode={sslMode}";

    private async Task<string> RunAsync(string body, string sslMode = "disable")
    {
        var script = $"""
            import os, sys
            import psycopg2, psycopg2.errors
            conn = psycopg2.connect(os.environ["GH_DSN"])
            cur = conn.cursor()
            {body}
            conn.close()
            print("done")
            """;
        var result = await Clients.PythonAsync(script, Dsn(sslMode));
        Assert.True(result.ExitCode == 0, $"python exited with {result.ExitCode}\nstdout:\n{result.Stdout}\nstderr:\n{result.Stderr}");
        return result.Stdout;
    }

    [Theory]
    [InlineData("disable")]
    [InlineData("require")]
    public async Task A_parameterised_query_and_fetched_rows_come_back(string sslMode)
    {
        var output = await RunAsync("""
            cur.execute("SELECT %s + %s, %s || '!'", (40, 2, "héllo"))
            print("param", *cur.fetchone(), sep="|")
            cur.execute("SELECT id, name FROM items WHERE id >= %(min)s ORDER BY id", {"min": 2})
            for row in cur.fetchall():
                print("row", *row, sep="|")
            """, sslMode);

        Assert.Equal("param|42|héllo!\nrow|2|beta\nrow|3|gamma\ndone\n", output);
    }

    [Fact]
    public async Task An_error_reports_its_sqlstate_and_after_rollback_the_session_keeps_working()
    {
        var output = await RunAsync("""
            try:
                cur.execute("SELECT 1/0")
            except psycopg2.errors.DivisionByZero as e:
                print("error", e.pgcode, sep="|")
            print("in failed transaction", conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INERROR, sep="|")
            conn.rollback()
            cur.execute("SELECT 'still alive'")
            print("after", cur.fetchone()[0], sep="|")
            """);

        Assert.Equal("error|22012\nin failed transaction|True\nafter|still alive\ndone\n", output);
    }

    [Fact]
    public async Task A_rollback_discards_the_transactions_insert()
    {
        var table = Direct.UniqueName("psycopg2_rollback");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int)");

        var output = await RunAsync($"""
            cur.execute("INSERT INTO {table} VALUES (1), (2)")
            cur.execute("SELECT count(*) FROM {table}")
            print("inside", cur.fetchone()[0], sep="|")
            conn.rollback()
            cur.execute("SELECT count(*) FROM {table}")
            print("after", cur.fetchone()[0], sep="|")
            """);

        Assert.Equal("inside|2\nafter|0\ndone\n", output);
        Assert.Equal(0L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {table}"));
    }
}
