using System.Buffers.Binary;
using System.Text;
using Gatehouse.IntegrationTests.Infrastructure;

namespace Gatehouse.IntegrationTests;

/// <summary>Startup packets a driver would not send: each is answered with the right error, or negotiated down.</summary>
[Collection(PostgresCollection.Name)]
public sealed class StartupTests(PostgresFixture fixture) : IAsyncLifetime
{
    private GatewayHost _gateway = null!;

    public Task InitializeAsync()
    {
        _gateway = GatewayHost.Start(fixture.Server);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    public enum BadStartup
    {
        PlaintextAfterSslRequestBeforeTheHandshake,
        Protocol2,
        NoUser,
        InvalidUtf8InAValue,
        NoTerminator,
        DataAfterTheTerminator,
    }

    private static byte[] Packet(BadStartup startup)
    {
        var good = PgFrames.Startup(("user", GatewayHost.Alice), ("database", GatewayHost.AppConnection));
        switch (startup)
        {
            case BadStartup.PlaintextAfterSslRequestBeforeTheHandshake:
                var sslRequest = new byte[8];
                BinaryPrimitives.WriteInt32BigEndian(sslRequest, 8);
                BinaryPrimitives.WriteInt32BigEndian(sslRequest.AsSpan(4), 80877103);
                return [.. sslRequest, .. good];
            case BadStartup.Protocol2:
                return PgFrames.Startup(2 << 16, ("user", GatewayHost.Alice), ("database", GatewayHost.AppConnection));
            case BadStartup.NoUser:
                return PgFrames.Startup(("database", GatewayHost.AppConnection));
            case BadStartup.InvalidUtf8InAValue:
                var bad = PgFrames.Startup(("user", GatewayHost.Alice), ("application_name", "ab"));
                bad[^3] = 0xff;
                return bad;
            case BadStartup.NoTerminator:
                var cut = good[..^1];
                BinaryPrimitives.WriteInt32BigEndian(cut, cut.Length);
                return cut;
            default:
                byte[] extra = [.. good, (byte)'x'];
                BinaryPrimitives.WriteInt32BigEndian(extra, extra.Length);
                return extra;
        }
    }

    [Theory]
    [InlineData(BadStartup.PlaintextAfterSslRequestBeforeTheHandshake, "08P01")]
    [InlineData(BadStartup.Protocol2, "0A000")]
    [InlineData(BadStartup.NoUser, "28000")]
    [InlineData(BadStartup.InvalidUtf8InAValue, "08P01")]
    [InlineData(BadStartup.NoTerminator, "08P01")]
    [InlineData(BadStartup.DataAfterTheTerminator, "08P01")]
    public async Task A_bad_startup_packet_is_answered_with_one_error_and_the_connection_closed(BadStartup startup, string sqlState)
    {
        await using var raw = await RawPgConnection.ConnectAsync(_gateway.Port);

        await raw.SendAsync(Packet(startup));

        var error = Assert.Single(await raw.ReadUntilClosedAsync());
        Assert.Equal(('E', sqlState), (error.Type, error.SqlState));
    }

    [Theory]
    [InlineData(3, 1, "")]
    [InlineData(3, 0, "_pq_.example")]
    [InlineData(3, 2, "_pq_.example")]
    public async Task A_newer_minor_version_or_protocol_option_is_negotiated_down_to_3_0_and_login_works(int major, int minor, string option)
    {
        await using var raw = await RawPgConnection.ConnectAsync(_gateway.Port);
        (string, string)[] parameters = option.Length == 0
            ? [("user", GatewayHost.Alice), ("database", GatewayHost.AppConnection)]
            : [("user", GatewayHost.Alice), ("database", GatewayHost.AppConnection), (option, "on")];

        var refusal = await raw.LoginAsync(PgFrames.Startup((major << 16) | minor, parameters), _gateway.AliceSecret);

        Assert.Null(refusal);
        var negotiate = Assert.NotNull(raw.NegotiateProtocolVersion);
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(negotiate.Body));
        var unrecognized = BinaryPrimitives.ReadInt32BigEndian(negotiate.Body.AsSpan(4));
        Assert.Equal(option.Length == 0 ? 0 : 1, unrecognized);
        if (option.Length > 0)
        {
            Assert.Equal(option + "\0", Encoding.UTF8.GetString(negotiate.Body, 8, negotiate.Body.Length - 8));
        }

        await raw.SendAsync(PgFrames.Query("SELECT 'negotiated'"));
        var messages = await raw.ReadUntilReadyAsync();
        Assert.Equal("TDCZ", string.Concat(messages.Select(m => m.Type)));
    }
}
