using Gatehouse.IntegrationTests.Infrastructure;

namespace Gatehouse.IntegrationTests;

/// <summary>psql (libpq) through the gateway: queries, TLS, \copy both ways, multi-statement queries, errors.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PsqlTests(PostgresFixture fixture) : IAsyncLifetime
{
    private GatewayHost _gateway = null!;

    private PostgresServer Server => fixture.Server;

    public Task InitializeAsync()
    {
        _gateway = GatewayHost.Start(Server, new GatewaySettings
        {
            Listeners = [new("pg"), new("tls", Tls: "{ mode: required, self_signed: true }")],
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    private Task<ProcessResult> Psql(string script, string sslMode = "disable", int? port = null) =>
        Clients.PsqlAsync(port ?? _gateway.Port, _gateway.AliceSecret, script, sslMode: sslMode);

    [Fact]
    public async Task A_simple_query_returns_the_rows()
    {
        var result = (await Psql("SELECT id, name FROM items ORDER BY id;")).EnsureSuccess("psql");

        Assert.Equal("1|alpha\n2|beta\n3|gamma\n", result.Stdout);
    }

    [Fact]
    public async Task Sslmode_require_connects_over_tls()
    {
        var result = (await Psql("\\conninfo\nSELECT 'ok';", sslMode: "require")).EnsureSuccess("psql");

        Assert.Contains("SSL connection (protocol: TLS", result.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("ok\n", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tls_required_listener_accepts_sslmode_require()
    {
        var result = (await Psql("\\conninfo\nSELECT 'ok';", sslMode: "require", port: _gateway.PortOf("tls"))).EnsureSuccess("psql");

        Assert.Contains("SSL connection (protocol: TLS", result.Stdout, StringComparison.Ordinal);
        Assert.EndsWith("ok\n", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tls_required_listener_refuses_sslmode_disable_with_the_gateways_tls_error()
    {
        var result = await Psql("SELECT 'must not run';", sslMode: "disable", port: _gateway.PortOf("tls"));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("FATAL:  this gateway requires TLS", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("must not run", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Copy_to_stdout_returns_the_same_data_as_the_server_gives_directly()
    {
        var expected = await Server.PsqlAsync("\\copy items to stdout");

        var result = (await Psql("\\copy items to stdout")).EnsureSuccess("psql");

        Assert.StartsWith("1\talpha\t\\\\x00010203\n", expected, StringComparison.Ordinal);
        Assert.Equal(expected, result.Stdout);
    }

    [Fact]
    public async Task Copy_from_stdin_lands_the_rows_in_the_table()
    {
        var table = Direct.UniqueName("psql_copy_in");
        await Server.PsqlAsync($"CREATE TABLE {table} (id int PRIMARY KEY, name text);");

        var result = await Psql($"\\copy {table} from stdin\n1\tone\n2\ttwo\n3\tthree with\\ttab\n\\.\n");

        result.EnsureSuccess("psql \\copy from stdin");
        Assert.Equal("1|one\n2|two\n3|three with\ttab\n", await Server.PsqlAsync($"SELECT id, name FROM {table} ORDER BY id;"));
    }

    [Fact]
    public async Task A_multi_statement_simple_query_runs_every_statement()
    {
        var table = Direct.UniqueName("psql_multi");
        await Server.PsqlAsync($"CREATE TABLE {table} (id int);");

        // psql -c sends the whole string as one Query message.
        var result = (await Clients.PsqlCommandAsync(_gateway.Port, _gateway.AliceSecret,
            $"INSERT INTO {table} VALUES (1); INSERT INTO {table} VALUES (2); SELECT count(*) AS n FROM {table}; SELECT 'last' AS s"))
            .EnsureSuccess("psql -c");

        Assert.EndsWith("2\nlast\n", result.Stdout, StringComparison.Ordinal);
        Assert.Equal("1\n2\n", await Server.PsqlAsync($"SELECT id FROM {table} ORDER BY id;"));
    }

    [Fact]
    public async Task A_division_by_zero_returns_sqlstate_22012_and_the_session_keeps_working()
    {
        var result = await Psql("\\set VERBOSITY verbose\nSELECT 1/0;\nSELECT 'still alive';\n");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("ERROR:  22012: division by zero", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("still alive\n", result.Stdout);
    }

    [Fact]
    public async Task A_copy_from_stdin_with_a_bad_row_fails_with_22P02_and_the_session_keeps_working()
    {
        var table = Direct.UniqueName("psql_copy_bad");
        await Server.PsqlAsync($"CREATE TABLE {table} (id int, name text);");
        var rows = string.Concat(Enumerable.Range(1, 2000).Select(i => $"{i}\trow {i}\n"));

        var result = await Psql($"\\set VERBOSITY verbose\n\\copy {table} from stdin\n{rows}not-a-number\tbad\n{rows}\\.\nSELECT 'still alive';\n");

        Assert.Contains("ERROR:  22P02: invalid input syntax for type integer", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("still alive\n", result.Stdout);
        Assert.Equal("0\n", await Server.PsqlAsync($"SELECT count(*) FROM {table};"));
    }

    [Fact]
    public async Task Large_object_import_and_export_through_fastpath_function_calls_round_trip_the_file()
    {
        var content = string.Concat(Enumerable.Range(0, 5000).Select(i => $"line {i} of the large object\n"));
        var source = Path.Combine(Path.GetTempPath(), Direct.UniqueName("lo_in") + ".txt");
        var target = Path.Combine(Path.GetTempPath(), Direct.UniqueName("lo_out") + ".txt");
        await File.WriteAllTextAsync(source, content);
        try
        {
            // libpq's lo_import/lo_export call lo_open, lowrite, loread and lo_close with FunctionCall messages.
            var result = (await Psql($"\\lo_import '{source}'\n\\lo_export :LASTOID '{target}'\nSELECT length(lo_get(:LASTOID));\n"))
                .EnsureSuccess("psql \\lo_import");

            Assert.EndsWith($"{content.Length}\n", result.Stdout, StringComparison.Ordinal);
            Assert.Equal(content, await File.ReadAllTextAsync(target));
        }
        finally
        {
            File.Delete(source);
            File.Delete(target);
        }
    }
}
