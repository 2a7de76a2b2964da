using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Sessions over TLS that the gateway ends while the client keeps its side open (a cancel request, a drain of
/// an idle pooled connection). These run the gatehouse command line as a child process: if ending such a
/// session kills the gateway, only the child dies and the test says so.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class TlsSessionEndTests(PostgresFixture fixture)
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(20);

    private PostgresServer Server => fixture.Server;

    /// <summary>Waits until the gateway logged the end of a session for <paramref name="reason"/>, or exited.</summary>
    private static async Task WaitForSessionEndOrExitAsync(GatewayProcess gateway, string reason)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!gateway.HasExited && !gateway.Output.Contains($"ended: {reason} ", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Command_Cancel_over_tls_ends_the_query_with_57014_and_the_gateway_keeps_running()
    {
        await using var gateway = await GatewayProcess.StartAsync(Server);
        await using var connection = new NpgsqlConnection(gateway.ConnectionString(SslMode.Require));
        await connection.OpenAsync();
        var marker = Direct.UniqueName("tls_cancel");
        await using var command = new NpgsqlCommand($"SELECT 1 /* {marker} */ FROM pg_sleep(30)", connection);
        var running = command.ExecuteScalarAsync();
        await Direct.WaitForActiveQueryAsync(Server, marker);

        command.Cancel();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running.WaitAsync(HangGuard));
        Assert.Equal(PostgresErrorCodes.QueryCanceled, Assert.IsType<PostgresException>(error.InnerException).SqlState);
        await WaitForSessionEndOrExitAsync(gateway, "OutOfBandRequestServed");
        Assert.False(gateway.HasExited, $"the gateway process died after serving a cancel request over TLS:\n{gateway.Output}");
    }

    [Theory]
    [InlineData(SslMode.Require, "TLS")]
    [InlineData(SslMode.Disable, "plaintext")]
    public async Task Sigterm_with_an_idle_session_drains_and_exits_with_code_0(SslMode sslMode, string kind)
    {
        await using var gateway = await GatewayProcess.StartAsync(Server);
        await using var connection = new NpgsqlConnection(gateway.ConnectionString(sslMode));
        await connection.OpenAsync();
        await using (var command = new NpgsqlCommand("SELECT 1", connection))
        {
            Assert.Equal(1, await command.ExecuteScalarAsync());
        }

        var exitCode = await gateway.TerminateAsync(HangGuard);

        Assert.True(exitCode == 0, $"the gateway exited with {exitCode} on SIGTERM with an idle {kind} session:\n{gateway.Output}");
    }

    [Fact]
    public async Task A_tls_client_that_stalls_before_login_is_disconnected_and_the_gateway_keeps_running()
    {
        await using var gateway = await GatewayProcess.StartAsync(Server, new GatewaySettings { Limits = "{ preauth_timeout: 1s }" });
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(GatewayHost.Localhost, gateway.Port);
        var plain = tcp.GetStream();
        var sslRequest = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(sslRequest, 8);
        BinaryPrimitives.WriteInt32BigEndian(sslRequest.AsSpan(4), 80877103);
        await plain.WriteAsync(sslRequest);
        var answer = new byte[1];
        await plain.ReadExactlyAsync(answer);
        Assert.Equal((byte)'S', answer[0]);
#pragma warning disable CA5359 // The gateway's certificate is self-signed; this test is about its deadline, not its identity.
        await using var tls = new SslStream(plain, leaveInnerStreamOpen: false, (_, _, _, _) => true);
#pragma warning restore CA5359
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" });

        // Say nothing more: the pre-authentication deadline must end the session.
        using var guard = new CancellationTokenSource(HangGuard);
        var buffer = new byte[1024];
        try
        {
            while (await tls.ReadAsync(buffer, guard.Token) > 0)
            {
            }
        }
        catch (IOException)
        {
        }

        await WaitForSessionEndOrExitAsync(gateway, "PreAuthTimeout");
        Assert.False(gateway.HasExited, $"the gateway process died when a TLS client hit the pre-authentication deadline:\n{gateway.Output}");
    }

    [Fact]
    public async Task An_idle_tls_session_is_ended_at_the_idle_timeout_and_the_gateway_keeps_running()
    {
        await using var gateway = await GatewayProcess.StartAsync(Server, new GatewaySettings { Limits = "{ idle_timeout: 1s }" });
        await using var connection = new NpgsqlConnection(gateway.ConnectionString(SslMode.Require));
        await connection.OpenAsync();
        await using (var command = new NpgsqlCommand("SELECT 1", connection))
        {
            Assert.Equal(1, await command.ExecuteScalarAsync());
        }

        await WaitForSessionEndOrExitAsync(gateway, "IdleTimeout");

        Assert.False(gateway.HasExited, $"the gateway process died when an idle TLS session hit the idle timeout:\n{gateway.Output}");
        Assert.Contains("ended: IdleTimeout ", gateway.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_idle_plaintext_session_is_ended_at_the_idle_timeout_with_57P05()
    {
        await using var gateway = await GatewayProcess.StartAsync(Server, new GatewaySettings { Limits = "{ idle_timeout: 1s }" });
        await using var raw = await RawPgConnection.ConnectAsync(gateway.Port);
        Assert.Null(await raw.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, gateway.AliceSecret));

        var messages = await raw.ReadUntilClosedAsync(HangGuard);

        var error = Assert.Single(messages);
        Assert.Equal(('E', "57P05"), (error.Type, error.SqlState));
    }

    [Theory]
    [InlineData(SslMode.Require)]
    [InlineData(SslMode.Disable)]
    public async Task A_session_whose_upstream_backend_is_terminated_ends_as_ServerDisconnected(SslMode sslMode)
    {
        await using var gateway = await GatewayProcess.StartAsync(Server);
        await using var connection = new NpgsqlConnection(gateway.ConnectionString(sslMode));
        await connection.OpenAsync();
        int backend;
        await using (var command = new NpgsqlCommand("SELECT pg_backend_pid()", connection))
        {
            backend = (int)(await command.ExecuteScalarAsync())!;
        }

        Assert.True(await Direct.ScalarAsync<bool>(Server, $"SELECT pg_terminate_backend({backend})"));

        await WaitForSessionEndOrExitAsync(gateway, "ServerDisconnected");
        Assert.False(gateway.HasExited, $"the gateway process died:\n{gateway.Output}");
        Assert.True(gateway.Output.Contains("ended: ServerDisconnected ", StringComparison.Ordinal),
            $"no session end with ServerDisconnected in the gateway log:\n{gateway.Output}");
    }
}
