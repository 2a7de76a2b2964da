using System.Net.Sockets;
using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// GatehouseServer.StopAsync drains: the listeners close at once, a running statement finishes and its result
/// reaches the client, then each session ends with FATAL 57P01 at its next idle point.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class DrainTests(PostgresFixture fixture)
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(20);

    private PostgresServer Server => fixture.Server;

    private GatewayHost StartGateway(string drainTimeout = "10s") =>
        GatewayHost.Start(Server, new GatewaySettings { Limits = $"{{ drain_timeout: {drainTimeout} }}" });

    /// <summary>Starts SELECT 7 FROM pg_sleep(1) and returns once the server is running it.</summary>
    private async Task<Task<object?>> StartSleepAsync(NpgsqlConnection connection)
    {
        var marker = Direct.UniqueName("drain");
        var command = new NpgsqlCommand($"SELECT 7 /* {marker} */ FROM pg_sleep(1)", connection);
        var running = command.ExecuteScalarAsync();
        await Direct.WaitForActiveQueryAsync(Server, marker);
        return running;
    }

    [Fact]
    public async Task A_running_statement_finishes_with_its_result_while_the_gateway_drains()
    {
        await using var gateway = StartGateway();
        await using var connection = await gateway.OpenAsync();
        var running = await StartSleepAsync(connection);

        var stopping = gateway.Server.StopAsync();

        Assert.Equal(7, await running.WaitAsync(HangGuard));
        await stopping.WaitAsync(HangGuard);
    }

    [Fact]
    public async Task After_its_running_statement_a_draining_session_is_closed_with_57P01()
    {
        await using var gateway = StartGateway();
        await using var connection = await gateway.OpenAsync();
        var running = await StartSleepAsync(connection);
        var stopping = gateway.Server.StopAsync();
        await running.WaitAsync(HangGuard);

        await using var next = new NpgsqlCommand("SELECT 1", connection);
        var error = await Assert.ThrowsAsync<PostgresException>(() => next.ExecuteScalarAsync());

        Assert.Equal(PostgresErrorCodes.AdminShutdown, error.SqlState);
        await stopping.WaitAsync(HangGuard);
    }

    [Fact]
    public async Task A_new_connection_is_refused_while_the_gateway_drains()
    {
        await using var gateway = StartGateway();
        var port = gateway.Port;
        await using var connection = await gateway.OpenAsync();
        var running = await StartSleepAsync(connection);
        var stopping = gateway.Server.StopAsync();

        var refused = await Assert.ThrowsAsync<SocketException>(() => RawPgConnection.ConnectAsync(port));

        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
        await running.WaitAsync(HangGuard);
        await stopping.WaitAsync(HangGuard);
    }

    [Fact]
    public async Task An_idle_session_is_ended_by_the_drain_with_57P01()
    {
        await using var gateway = StartGateway();
        await using var raw = await RawPgConnection.ConnectAsync(gateway.Port);
        Assert.Null(await raw.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, gateway.AliceSecret));

        var stopping = gateway.Server.StopAsync();

        var error = Assert.Single(await raw.ReadUntilClosedAsync());
        Assert.Equal(('E', "57P01"), (error.Type, error.SqlState));
        await stopping.WaitAsync(HangGuard);
        Assert.NotNull(await gateway.WaitForSessionEndAsync("Drained"));
    }

    /// <summary>
    /// libpq's PQexecParams("COPY ... FROM STDIN") sends Parse/Bind/Describe/Execute/Sync, then CopyData, CopyDone
    /// and a second Sync (PQputCopyEnd, extended mode). The server ignores the first Sync in copy-in mode, so the
    /// exchange ends with one ReadyForQuery for two Syncs. The session is idle after it and must drain as idle.
    /// </summary>
    [Fact]
    public async Task An_idle_session_after_an_extended_protocol_copy_from_stdin_is_drained_not_cut_at_the_deadline()
    {
        var table = Direct.UniqueName("drain_copy");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int)");
        await using var gateway = StartGateway(drainTimeout: "3s");
        await using var raw = await RawPgConnection.ConnectAsync(gateway.Port);
        Assert.Null(await raw.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, gateway.AliceSecret));

        await raw.SendAsync(PgFrames.Parse($"COPY {table} FROM STDIN"), PgFrames.Bind(), PgFrames.Execute(), PgFrames.Sync());
        Assert.Equal("1", (await raw.ReadMessageAsync())?.Type.ToString());
        Assert.Equal("2", (await raw.ReadMessageAsync())?.Type.ToString());
        Assert.Equal("G", (await raw.ReadMessageAsync())?.Type.ToString());
        await raw.SendAsync(PgFrames.CopyData("1\n2\n"), PgFrames.CopyDone(), PgFrames.Sync());
        var completion = await raw.ReadUntilReadyAsync();
        Assert.Equal("CZ", string.Concat(completion.Select(m => m.Type)));
        Assert.Equal(2L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {table}"));

        var stopping = gateway.Server.StopAsync();
        var error = Assert.Single(await raw.ReadUntilClosedAsync());
        Assert.Equal(('E', "57P01"), (error.Type, error.SqlState));
        await stopping.WaitAsync(HangGuard);

        var ended = await gateway.Logs.WaitForAsync(l => l.EventId == 1011);
        Assert.NotNull(ended);
        Assert.Contains("ended: Drained ", ended.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_session_that_logs_in_while_the_gateway_drains_is_ended_without_waiting_for_the_drain_deadline()
    {
        await using var gateway = StartGateway(drainTimeout: "3s");
        await using var raw = await RawPgConnection.ConnectAsync(gateway.Port);
        Task? stopping = null;

        // The drain starts while this client is between its SCRAM messages; then it finishes logging in.
        var refusal = await raw.LoginAsync(
            PgFrames.Startup(("user", GatewayHost.Alice), ("database", GatewayHost.AppConnection)),
            gateway.AliceSecret,
            beforeProof: () =>
            {
                stopping = gateway.Server.StopAsync();
                return Task.CompletedTask;
            });

        var messages = refusal is { } error ? [error] : await raw.ReadUntilClosedAsync();
        var fatal = Assert.Single(messages);
        Assert.Equal('E', fatal.Type);
        Assert.Contains(fatal.SqlState, new[] { "57P01", "57P03" });
        await stopping!.WaitAsync(HangGuard);
        var ended = await gateway.Logs.WaitForAsync(l => l.EventId == 1011);
        Assert.NotNull(ended);
        Assert.DoesNotContain("ShutdownAborted", ended.Message, StringComparison.Ordinal);
    }
}
