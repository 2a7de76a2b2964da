using System.Security.Cryptography;
using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Query cancellation through the gateway: the client's CancelRequest carries the gateway's keys, which the
/// gateway maps to the upstream session's own. Only a session's own keys may cancel its query.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CancelTests(PostgresFixture fixture) : IAsyncLifetime
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(20);

    private GatewayHost _gateway = null!;

    private PostgresServer Server => fixture.Server;

    public Task InitializeAsync()
    {
        _gateway = GatewayHost.Start(Server);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    /// <remarks>Over TLS this is covered out of process by <see cref="TlsSessionEndTests"/>.</remarks>
    [Fact]
    public async Task Command_Cancel_ends_a_running_query_with_57014_and_the_connection_stays_usable()
    {
        await using var connection = await _gateway.OpenAsync();
        var marker = Direct.UniqueName("cancel_cmd");
        await using var command = new NpgsqlCommand($"SELECT 1 /* {marker} */ FROM pg_sleep(30)", connection);
        var running = command.ExecuteScalarAsync();
        await Direct.WaitForActiveQueryAsync(Server, marker);

        command.Cancel();

        // Npgsql reports a cancelled query as an OperationCanceledException around the server's 57014 error.
        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.WaitAsync(HangGuard));
        var inner = Assert.IsType<PostgresException>(error.InnerException);
        Assert.Equal(PostgresErrorCodes.QueryCanceled, inner.SqlState);
        await using var after = new NpgsqlCommand("SELECT 'usable'", connection);
        Assert.Equal("usable", await after.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_cancellation_token_ends_a_running_query_with_57014_and_the_connection_stays_usable()
    {
        await using var connection = await _gateway.OpenAsync();
        var marker = Direct.UniqueName("cancel_token");
        await using var command = new NpgsqlCommand($"SELECT 1 /* {marker} */ FROM pg_sleep(30)", connection);
        using var cts = new CancellationTokenSource();
        var running = command.ExecuteScalarAsync(cts.Token);
        await Direct.WaitForActiveQueryAsync(Server, marker);

        await cts.CancelAsync();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.WaitAsync(HangGuard));
        var inner = Assert.IsType<PostgresException>(error.InnerException);
        Assert.Equal(PostgresErrorCodes.QueryCanceled, inner.SqlState);
        await using var after = new NpgsqlCommand("SELECT 'usable'", connection);
        Assert.Equal("usable", await after.ExecuteScalarAsync());
    }

    public enum ForeignKeys
    {
        OtherSessionsProcessIdAndKey,
        OtherSessionsProcessIdWithAWrongKey,
        OwnProcessIdWithAWrongKey,
        UnknownProcessId,
    }

    [Theory]
    [InlineData(ForeignKeys.OtherSessionsProcessIdAndKey)]
    [InlineData(ForeignKeys.OtherSessionsProcessIdWithAWrongKey)]
    [InlineData(ForeignKeys.OwnProcessIdWithAWrongKey)]
    [InlineData(ForeignKeys.UnknownProcessId)]
    public async Task A_cancel_request_without_the_sessions_own_keys_does_not_cancel_its_query(ForeignKeys keys)
    {
        await using var a = await _gateway.OpenAsync();
        await using var b = await RawPgConnection.ConnectAsync(_gateway.Port);
        Assert.Null(await b.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, _gateway.AliceSecret));
        var (processId, secretKey) = keys switch
        {
            ForeignKeys.OtherSessionsProcessIdAndKey => (b.ProcessId, b.SecretKey),
            ForeignKeys.OtherSessionsProcessIdWithAWrongKey => (b.ProcessId, b.SecretKey ^ 0x5a5a),
            ForeignKeys.OwnProcessIdWithAWrongKey => (a.ProcessID, RandomNumberGenerator.GetInt32(int.MinValue, int.MaxValue)),
            _ => (RandomNumberGenerator.GetInt32(1, int.MaxValue), RandomNumberGenerator.GetInt32(int.MinValue, int.MaxValue)),
        };

        var marker = Direct.UniqueName("not_cancelled");
        await using var command = new NpgsqlCommand($"SELECT 42 /* {marker} */ FROM pg_sleep(3)", a);
        var running = command.ExecuteScalarAsync();
        await Direct.WaitForActiveQueryAsync(Server, marker);

        await using (var cancel = await RawPgConnection.ConnectAsync(_gateway.Port))
        {
            await cancel.SendAsync(PgFrames.CancelRequest(processId, secretKey));

            // The gateway closes a cancel connection once it has acted on it; nothing is ever answered.
            Assert.Empty(await cancel.ReadUntilClosedAsync());
        }

        Assert.Equal(42, await running.WaitAsync(HangGuard));
    }
}
