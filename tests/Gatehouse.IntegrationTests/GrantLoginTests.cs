using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Just-in-time grants at login, against the real server: a binding with <c>access: grant</c> gives its role only
/// while an approved grant is live; without one the login falls to a standing binding, or is refused with the
/// command that requests access.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class GrantLoginTests(PostgresFixture fixture)
{
    private PostgresServer Server => fixture.Server;

    [Fact]
    public async Task A_grant_gives_its_role_only_once_approved_and_the_standing_role_applies_before()
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = AccessTests.GrantPolicy });
        string table = Direct.UniqueName("grant");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int)");
        try
        {
            await using (var before = await gateway.OpenAsync())
            await using (var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES (1)", before))
            {
                var ex = await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync());
                Assert.Equal("42501", ex.SqlState);
                Assert.Contains("role:reader", ex.MessageText, StringComparison.Ordinal);
            }

            var requested = await gateway.Server.Access.RequestAsync("alice", "app", "writer", TimeSpan.FromMinutes(30), "load fix data");
            var pendingLogin = await gateway.OpenAsync();
            await using (pendingLogin)
            await using (var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES (1)", pendingLogin))
            {
                // Requested is not granted.
                Assert.Equal("42501", (await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync())).SqlState);
            }

            var decided = await gateway.Server.Access.DecideAsync(requested.Request!.Id, "bob", approve: true);
            Assert.NotNull(decided.Grant);

            await using (var granted = await gateway.OpenAsync())
            await using (var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES (2)", granted))
            {
                Assert.Equal(1, await insert.ExecuteNonQueryAsync());
            }

            Assert.Equal(1L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {table}"));
        }
        finally
        {
            await Direct.ExecuteAsync(Server, $"DROP TABLE {table}");
        }
    }

    [Fact]
    public async Task Without_a_standing_binding_a_login_without_a_grant_is_refused_with_the_command_to_request_one()
    {
        string grantOnly = AccessTests.GrantPolicy[..AccessTests.GrantPolicy.IndexOf("  - identities: [alice]\n    connections: [\"*\"]", StringComparison.Ordinal)];
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = grantOnly });

        await using var connection = new NpgsqlConnection(gateway.ConnectionString());
        var ex = await Assert.ThrowsAsync<PostgresException>(() => connection.OpenAsync());

        Assert.Equal("42501", ex.SqlState);
        Assert.Contains("needs a just-in-time grant of role \"writer\" on connection \"app\"", ex.MessageText, StringComparison.Ordinal);
        Assert.Contains("gatehouse access request --connection app --role writer", ex.Hint, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_live_psql_session_under_a_grant_ends_when_the_grant_expires()
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = AccessTests.GrantPolicy });
        var requested = await gateway.Server.Access.RequestAsync("alice", "app", "writer", TimeSpan.FromSeconds(4), "quick fix");
        Assert.NotNull((await gateway.Server.Access.DecideAsync(requested.Request!.Id, "bob", approve: true)).Grant);

        // psql stays connected: the first statement runs under the grant, the second comes after it ended.
        var psql = Clients.PsqlAsync(gateway.Port, gateway.AliceSecret,
            "SELECT 'under the grant';\n\\! sleep 7\nSELECT 'after the grant';");

        var result = await psql;
        Assert.Contains("under the grant", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("after the grant", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("terminating connection: the session was ended by the gateway: grant gr_", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("expired", result.Stderr, StringComparison.Ordinal);
        var ended = await gateway.WaitForSessionEndAsync("Killed");
        Assert.NotNull(ended);
        Assert.Contains("expired", ended.Message, StringComparison.Ordinal);
    }
}
