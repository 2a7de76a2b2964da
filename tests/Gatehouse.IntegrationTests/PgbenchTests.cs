using System.Globalization;
using Gatehouse.IntegrationTests.Infrastructure;

namespace Gatehouse.IntegrationTests;

/// <summary>pgbench's select-only workload through the gateway in each query mode, 4 clients at once.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PgbenchTests(PostgresFixture fixture) : IAsyncLifetime
{
    private static readonly SemaphoreSlim InitLock = new(1, 1);
    private static PostgresServer? s_initializedServer;

    private GatewayHost _gateway = null!;

    public async Task InitializeAsync()
    {
        await InitializeOnceAsync(fixture.Server);
        _gateway = GatewayHost.Start(fixture.Server);
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    /// <summary>pgbench -i -s 1, straight against the server as its superuser, once per server.</summary>
    internal static async Task InitializeOnceAsync(PostgresServer server)
    {
        await InitLock.WaitAsync();
        try
        {
            if (ReferenceEquals(s_initializedServer, server))
            {
                return;
            }

            var env = Clients.LibpqEnvironment(password: "", sslMode: "disable");
            env["PGPASSWORD"] = null;
            (await ProcessRunner.RunAsync(
                "pgbench",
                ["-i", "-s", "1", "-q", "-h", server.SocketDirectory, "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "app"],
                env: env,
                timeout: TimeSpan.FromMinutes(2))).EnsureSuccess("pgbench -i");
            s_initializedServer = server;
        }
        finally
        {
            InitLock.Release();
        }
    }

    [Theory]
    [InlineData("simple")]
    [InlineData("extended")]
    [InlineData("prepared")]
    public async Task Select_only_run_completes_without_failed_transactions(string queryMode)
    {
        var result = await Clients.PgbenchAsync(_gateway.Port, _gateway.AliceSecret, "-S", "-t", "200", "-c", "4", "-M", queryMode, "-n");

        Assert.True(result.ExitCode == 0, $"pgbench exited with {result.ExitCode}\nstdout:\n{result.Stdout}\nstderr:\n{result.Stderr}");
        Assert.Contains($"query mode: {queryMode}", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("number of transactions actually processed: 800/800", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("number of failed transactions: 0 (0.000%)", result.Stdout, StringComparison.Ordinal);
    }
}
