using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// A misbehaving upstream server (a fake built from the gateway's own codecs) sends a malformed message in the
/// middle of a result: the gateway must not forward it, must tell the client 08P01, log a server protocol
/// violation, and keep serving every other session.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FakeUpstreamTests(PostgresFixture fixture)
{
    public enum Malformed
    {
        DataRowWithTwoColumnsButOneValue,
        DataRowValueLongerThanTheMessage,
        DataRowWithBytesAfterTheLastValue,
        DataRowWithANegativeColumnCount,
        RowDescriptionWithFormatCode7,
        ReadyForQueryWithStatusX,
        CommandCompleteWithoutTerminator,
        ErrorResponseWithoutTerminator,
        UnknownMessageType,
        BackendKeyDataAfterLogin,
        AuthenticationRequestAfterLogin,
    }

    private static byte[] Frame(Malformed malformed) => malformed switch
    {
        Malformed.DataRowWithTwoColumnsButOneValue => PgFrames.Typed('D', [0, 2, 0, 0, 0, 1, (byte)'1']),
        Malformed.DataRowValueLongerThanTheMessage => PgFrames.Typed('D', [0, 1, 0, 0, 0, 16, (byte)'1']),
        Malformed.DataRowWithBytesAfterTheLastValue => PgFrames.Typed('D', [0, 1, 0, 0, 0, 1, (byte)'1', (byte)'x']),
        Malformed.DataRowWithANegativeColumnCount => PgFrames.Typed('D', [0xff, 0xff]),
        Malformed.RowDescriptionWithFormatCode7 => PgFrames.Typed('T', [0, 1, (byte)'n', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 7]),
        Malformed.ReadyForQueryWithStatusX => PgFrames.Typed('Z', [(byte)'X']),
        Malformed.CommandCompleteWithoutTerminator => PgFrames.Typed('C', "SELECT 1"u8),
        Malformed.ErrorResponseWithoutTerminator => PgFrames.Typed('E', "SERROR\0C42000\0Mboom\0"u8),
        Malformed.UnknownMessageType => PgFrames.Typed('!', [1, 2, 3]),
        Malformed.BackendKeyDataAfterLogin => PgFrames.Typed('K', [0, 0, 0, 1, 0, 0, 0, 2]),
        _ => PgFrames.Typed('R', [0, 0, 0, 3]),
    };

    /// <summary>Npgsql for the fake connection: no type loading, so the first query is the test's own.</summary>
    private static NpgsqlDataSource FakeDataSource(GatewayHost gateway)
    {
        var builder = new NpgsqlDataSourceBuilder(gateway.ConnectionString(database: "fake"));
        builder.ConfigureTypeLoading(t => t.EnableTypeLoading(false));
        return builder.Build();
    }

    [Theory]
    [InlineData(Malformed.DataRowWithTwoColumnsButOneValue)]
    [InlineData(Malformed.DataRowValueLongerThanTheMessage)]
    [InlineData(Malformed.DataRowWithBytesAfterTheLastValue)]
    [InlineData(Malformed.DataRowWithANegativeColumnCount)]
    [InlineData(Malformed.RowDescriptionWithFormatCode7)]
    [InlineData(Malformed.ReadyForQueryWithStatusX)]
    [InlineData(Malformed.CommandCompleteWithoutTerminator)]
    [InlineData(Malformed.ErrorResponseWithoutTerminator)]
    [InlineData(Malformed.UnknownMessageType)]
    [InlineData(Malformed.BackendKeyDataAfterLogin)]
    [InlineData(Malformed.AuthenticationRequestAfterLogin)]
    public async Task A_malformed_server_message_fails_the_client_with_08P01_and_is_logged_as_a_server_protocol_violation(Malformed malformed)
    {
        await using var fake = new FakeUpstream(Frame(malformed));
        await using var gateway = GatewayHost.Start(fixture.Server, new GatewaySettings { ExtraConnections = [new("fake", fake.Port)] });
        await using var dataSource = FakeDataSource(gateway);
        await using var connection = await dataSource.OpenConnectionAsync();

        await using var command = new NpgsqlCommand("SELECT 1", connection);
        var error = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteScalarAsync());

        Assert.Equal(PostgresErrorCodes.ProtocolViolation, error.SqlState);
        Assert.Equal(1, fake.RequestsAnswered);
        var logged = await gateway.WaitForSessionEndAsync("ServerProtocolViolation");
        Assert.True(logged is not null, $"no session end with ServerProtocolViolation in the gateway log:\n{gateway.Logs.Dump()}");
    }

    [Fact]
    public async Task A_malformed_server_message_in_one_session_leaves_the_gateways_other_sessions_working()
    {
        await using var fake = new FakeUpstream(Frame(Malformed.DataRowWithTwoColumnsButOneValue));
        await using var gateway = GatewayHost.Start(fixture.Server, new GatewaySettings { ExtraConnections = [new("fake", fake.Port)] });
        await using var real = await gateway.OpenAsync();
        await using (var dataSource = FakeDataSource(gateway))
        {
            await using var broken = await dataSource.OpenConnectionAsync();
            await using var command = new NpgsqlCommand("SELECT 1", broken);
            await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteScalarAsync());
        }

        await using var onExisting = new NpgsqlCommand("SELECT count(*) FROM items", real);
        Assert.Equal(3L, await onExisting.ExecuteScalarAsync());
        await using var fresh = await gateway.OpenAsync();
        await using var onFresh = new NpgsqlCommand("SELECT 'fresh'", fresh);
        Assert.Equal("fresh", await onFresh.ExecuteScalarAsync());
    }
}
