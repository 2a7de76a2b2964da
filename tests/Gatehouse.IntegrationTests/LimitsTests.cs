using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>The pre-authentication deadline, the connection limit, and garbage from one client among others.</summary>
[Collection(PostgresCollection.Name)]
public sealed class LimitsTests(PostgresFixture fixture)
{
    private PostgresServer Server => fixture.Server;

    public enum Stall
    {
        SendsNothing,
        SendsHalfAStartupPacket,
        StopsAfterTheStartupMessage,
    }

    [Theory]
    [InlineData(Stall.SendsNothing)]
    [InlineData(Stall.SendsHalfAStartupPacket)]
    [InlineData(Stall.StopsAfterTheStartupMessage)]
    public async Task A_client_that_stalls_before_login_is_disconnected_after_the_preauth_timeout(Stall stall)
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Limits = "{ preauth_timeout: 1s }" });
        await using var raw = await RawPgConnection.ConnectAsync(gateway.Port);
        var startup = PgFrames.Startup(("user", GatewayHost.Alice), ("database", GatewayHost.AppConnection));
        var expectAuthenticationRequest = false;
        switch (stall)
        {
            case Stall.SendsHalfAStartupPacket:
                await raw.SendAsync(startup[..(startup.Length / 2)]);
                break;
            case Stall.StopsAfterTheStartupMessage:
                await raw.SendAsync(startup);
                expectAuthenticationRequest = true;
                break;
        }

        // Far beyond the 1 s deadline plus the 1 s heartbeat: a guard, not a measurement.
        var messages = await raw.ReadUntilClosedAsync(TimeSpan.FromSeconds(8));

        var afterAuthRequest = expectAuthenticationRequest ? messages.Skip(1).ToList() : messages;
        if (expectAuthenticationRequest)
        {
            Assert.Equal('R', messages[0].Type);
        }

        Assert.All(afterAuthRequest, m => Assert.Equal(("E", "08006"), (m.Type.ToString(), m.SqlState)));
    }

    [Theory]
    [InlineData(SslMode.Disable)]
    [InlineData(SslMode.Prefer)]
    [InlineData(SslMode.Require)]
    public async Task A_connection_over_max_connections_is_refused_with_53300(SslMode sslMode)
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Limits = "{ max_connections: 2 }" });
        await using var first = await gateway.OpenAsync();
        await using var second = await gateway.OpenAsync();

        await using var third = new NpgsqlConnection(gateway.ConnectionString(sslMode: sslMode));
        var error = await Assert.ThrowsAsync<PostgresException>(() => third.OpenAsync());

        Assert.Equal(PostgresErrorCodes.TooManyConnections, error.SqlState);
        Assert.Contains("gateway connection limit", error.MessageText, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("disable")]
    [InlineData("prefer")]
    public async Task Psql_over_max_connections_is_refused_with_the_too_many_clients_error(string sslMode)
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Limits = "{ max_connections: 2 }" });
        await using var first = await gateway.OpenAsync();
        await using var second = await gateway.OpenAsync();

        var result = await Clients.PsqlAsync(gateway.Port, gateway.AliceSecret, "SELECT 'must not run';", sslMode: sslMode);

        Assert.Equal(2, result.ExitCode);
        Assert.True(result.Stderr.Contains("FATAL:  sorry, too many clients already (gateway connection limit)", StringComparison.Ordinal),
            $"psql said: {result.Stderr}");
    }

    [Fact]
    public async Task A_slot_freed_by_a_closed_session_can_be_used_again()
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Limits = "{ max_connections: 2 }" });
        await using var first = await gateway.OpenAsync();
        await using (var second = await gateway.OpenAsync())
        {
            await using var command = new NpgsqlCommand("SELECT 1", second);
            await command.ExecuteScalarAsync();
        }

        // The slot is released once the gateway has finished closing the session: retry until then.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            try
            {
                await using var again = await gateway.OpenAsync();
                await using var command = new NpgsqlCommand("SELECT 'again'", again);
                Assert.Equal("again", await command.ExecuteScalarAsync());
                return;
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.TooManyConnections && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    public enum Garbage
    {
        StartupPacketOfLength3,
        StartupPacketClaiming1GiB,
        UnknownMessageTypeAfterLogin,
        MessageLengthBelow4AfterLogin,
        QueryWithoutTerminatorAfterLogin,
        BindWithFormatCode7AfterLogin,
    }

    [Theory]
    [InlineData(Garbage.StartupPacketOfLength3)]
    [InlineData(Garbage.StartupPacketClaiming1GiB)]
    [InlineData(Garbage.UnknownMessageTypeAfterLogin)]
    [InlineData(Garbage.MessageLengthBelow4AfterLogin)]
    [InlineData(Garbage.QueryWithoutTerminatorAfterLogin)]
    [InlineData(Garbage.BindWithFormatCode7AfterLogin)]
    public async Task Garbage_from_one_client_gets_it_08P01_and_leaves_another_session_working(Garbage garbage)
    {
        await using var gateway = GatewayHost.Start(Server);
        await using var other = await gateway.OpenAsync();
        await using (var before = new NpgsqlCommand("SELECT 1", other))
        {
            Assert.Equal(1, await before.ExecuteScalarAsync());
        }

        await using var raw = await RawPgConnection.ConnectAsync(gateway.Port);
        if (garbage.ToString().EndsWith("AfterLogin", StringComparison.Ordinal))
        {
            Assert.Null(await raw.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, gateway.AliceSecret));
        }

        await raw.SendAsync(garbage switch
        {
            Garbage.StartupPacketOfLength3 => [0, 0, 0, 3],
            Garbage.StartupPacketClaiming1GiB => [0x40, 0, 0, 0, 0, 3, 0, 0],
            Garbage.UnknownMessageTypeAfterLogin => PgFrames.Typed('z', [1, 2, 3]),
            Garbage.MessageLengthBelow4AfterLogin => [(byte)'Q', 0, 0, 0, 2],
            Garbage.QueryWithoutTerminatorAfterLogin => PgFrames.Typed('Q', "SELECT 1"u8),
            _ => PgFrames.Typed('B', [0, 0, 0, 1, 0, 7, 0, 0, 0, 0]),
        });

        var messages = await raw.ReadUntilClosedAsync();
        var error = Assert.Single(messages);
        Assert.Equal(('E', "08P01"), (error.Type, error.SqlState));
        await using var after = new NpgsqlCommand("SELECT count(*) FROM items", other);
        Assert.Equal(3L, await after.ExecuteScalarAsync());
    }
}
