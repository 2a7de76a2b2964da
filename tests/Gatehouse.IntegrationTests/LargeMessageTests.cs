using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Rows near and over the gateway's server message limit (max_server_message: 4MiB): a row under it streams
/// through whole (assembled outside the pipe), a row over it ends that session with 54000, and only that session.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class LargeMessageTests(PostgresFixture fixture) : IAsyncLifetime
{
    private const int Limit = 4 * 1024 * 1024;

    private GatewayHost _gateway = null!;

    private PostgresServer Server => fixture.Server;

    public Task InitializeAsync()
    {
        _gateway = GatewayHost.Start(Server, new GatewaySettings { Limits = "{ max_server_message: 4MiB, drain_timeout: 5s }" });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task A_3_5_MiB_bytea_reads_back_intact()
    {
        var table = Direct.UniqueName("large_row");
        var data = new byte[7 * 512 * 1024];
        new Random(35).NextBytes(data);
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int, data bytea)");
        await using (var direct = await Direct.OpenAsync(Server))
        {
            await using var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES (1, $1)", direct);
            insert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = data });
            await insert.ExecuteNonQueryAsync();
        }

        await using var connection = await _gateway.OpenAsync();
        await using var select = new NpgsqlCommand($"SELECT data FROM {table} WHERE id = 1", connection);
        var read = (byte[])(await select.ExecuteScalarAsync())!;

        Assert.Equal(data.Length, read.Length);
        Assert.True(data.AsSpan().SequenceEqual(read), "the bytes read through the gateway differ from the bytes stored");
    }

    [Fact]
    public async Task A_5_MiB_row_fails_with_54000_naming_the_gateways_limit()
    {
        await using var connection = await _gateway.OpenAsync();
        await using var select = new NpgsqlCommand("SELECT convert_to(repeat('x', 5 * 1024 * 1024), 'UTF8')", connection);

        var error = await Assert.ThrowsAsync<PostgresException>(() => select.ExecuteScalarAsync());

        Assert.Equal(PostgresErrorCodes.ProgramLimitExceeded, error.SqlState);
        Assert.Contains($"gateway's limit of {Limit} bytes", error.MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_5_MiB_row_does_not_affect_a_session_opened_before_it()
    {
        await using var other = await _gateway.OpenAsync();
        await using (var warmUp = new NpgsqlCommand("SELECT 1", other))
        {
            Assert.Equal(1, await warmUp.ExecuteScalarAsync());
        }

        await using (var connection = await _gateway.OpenAsync())
        {
            await using var select = new NpgsqlCommand("SELECT convert_to(repeat('x', 5 * 1024 * 1024), 'UTF8')", connection);
            await Assert.ThrowsAsync<PostgresException>(() => select.ExecuteScalarAsync());
        }

        await using var after = new NpgsqlCommand("SELECT count(*) FROM items", other);
        Assert.Equal(3L, await after.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_parameter_over_max_client_message_fails_with_54000_naming_the_gateways_limit()
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Limits = "{ max_client_message: 1MiB, drain_timeout: 5s }" });
        await using var connection = await gateway.OpenAsync();
        await using var select = new NpgsqlCommand("SELECT length($1)", connection);
        select.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = new byte[2 * 1024 * 1024] });

        var error = await Assert.ThrowsAsync<PostgresException>(() => select.ExecuteScalarAsync());

        Assert.Equal(PostgresErrorCodes.ProgramLimitExceeded, error.SqlState);
        Assert.Contains("a message from the client exceeds the gateway's limit of 1048576 bytes", error.MessageText, StringComparison.Ordinal);
    }
}
