using System.Text;
using Gatehouse.IntegrationTests.Infrastructure;

namespace Gatehouse.IntegrationTests;

/// <summary>First end-to-end checks of masking through psql against the real server.</summary>
[Collection(PostgresCollection.Name)]
public sealed class MaskingSmokeTests(PostgresFixture fixture) : IAsyncLifetime
{
    private GatewayHost _gateway = null!;
    private string _table = null!;

    public async Task InitializeAsync()
    {
        _table = Direct.UniqueName("cust");
        await Direct.ExecuteAsync(fixture.Server, $"""
            CREATE TABLE {_table} (id int PRIMARY KEY, name text, ssn text, note text);
            INSERT INTO {_table} VALUES (1, 'Ada', '123-45-6789', 'card 4111 1111 1111 1111'), (2, 'Bob', '987-65-4321', 'mail bob@example.com');
            """);
        string policy = GatewaySettings.AllowAllPolicy + $"""

            masking:
              rules:
                - name: ssn
                  columns: [public.{_table}.ssn]
                  style: keep_last
                - name: detectors
                  detect: [card, email]
            """;
        _gateway = GatewayHost.Start(fixture.Server, new GatewaySettings { Policy = policy });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await Direct.ExecuteAsync(fixture.Server, $"DROP TABLE IF EXISTS {_table}");
    }

    [Fact]
    public async Task Psql_select_star_masks_by_origin_and_by_detector()
    {
        await using var tap = new ByteTap(_gateway.Port);
        var result = await Clients.PsqlAsync(tap.Port, _gateway.AliceSecret, $"SELECT * FROM {_table} ORDER BY id; SELECT upper(ssn) AS x FROM {_table};");
        Assert.Equal(0, result.ExitCode);
        string received = Encoding.UTF8.GetString(tap.Received());
        Assert.DoesNotContain("123-45-6789", received, StringComparison.Ordinal);
        Assert.DoesNotContain("4111 1111 1111 1111", received, StringComparison.Ordinal);
        Assert.DoesNotContain("bob@example.com", received, StringComparison.Ordinal);
        Assert.Contains("1|Ada|****6789|card ****", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("2|Bob|****4321|mail ****", result.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("123-45", result.Stdout, StringComparison.Ordinal);
    }
}
