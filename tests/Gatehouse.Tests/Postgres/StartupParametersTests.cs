using System.Text;
using Gatehouse.Protocols.Postgres;

namespace Gatehouse.Tests.Postgres;

public sealed class StartupParametersTests
{
    private static byte[] Pairs(params string[] items) =>
        [.. items.SelectMany(i => Encoding.UTF8.GetBytes(i).Append((byte)0)), 0];

    [Fact]
    public void User_database_and_allowed_settings_are_sorted_out()
    {
        var p = StartupParameters.Parse(Pairs("user", "alice", "database", "demo", "application_name", "psql", "client_encoding", "UTF8"));
        Assert.Null(p.Error);
        Assert.Equal("alice", p.User);
        Assert.Equal("demo", p.Database);
        Assert.Equal(["application_name", "client_encoding"], p.Forwarded.Select(f => f.Key));
    }

    [Theory]
    [InlineData("options", "-c role=postgres", "42501")]
    [InlineData("replication", "database", "42501")]
    [InlineData("replication", "true", "42501")]
    [InlineData("session_authorization", "postgres", "42501")]
    [InlineData("role", "postgres", "42501")]
    [InlineData("default_transaction_read_only", "off", "42501")]
    [InlineData("search_path", "evil, pg_catalog", "42501")]
    [InlineData("search_path", "public,\"pg_catalog\"", "42501")]
    [InlineData("search_path", "a, b, PG_CATALOG", "42501")]
    public void Settings_that_could_get_around_the_gateway_are_refused(string name, string value, string sqlState)
    {
        var p = StartupParameters.Parse(Pairs("user", "alice", name, value));
        Assert.NotNull(p.Error);
        Assert.Equal(sqlState, p.Error!.SqlState);
        Assert.Contains(name, p.Error.Message);
    }

    [Theory]
    [InlineData("\"$user\", public")]
    [InlineData("pg_catalog, public")]
    [InlineData("app")]
    [InlineData("public, \"pg_catalog2\"")]
    public void A_search_path_that_keeps_the_builtins_first_is_forwarded(string value)
    {
        var p = StartupParameters.Parse(Pairs("user", "alice", "search_path", value));
        Assert.Null(p.Error);
        Assert.Equal(value, Assert.Single(p.Forwarded).Value);
    }

    [Fact]
    public void Replication_off_is_an_ordinary_session()
    {
        var p = StartupParameters.Parse(Pairs("user", "alice", "replication", "false"));
        Assert.Null(p.Error);
        Assert.Empty(p.Forwarded);
    }

    [Fact]
    public void Protocol_options_are_collected_to_be_declined()
    {
        var p = StartupParameters.Parse(Pairs("user", "alice", "_pq_.compression", "on"));
        Assert.Null(p.Error);
        Assert.Equal(["_pq_.compression"], p.ProtocolOptions);
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { (byte)'u', 0 })]
    [InlineData(new byte[] { (byte)'u', 0, (byte)'a' })]
    [InlineData(new byte[] { (byte)'u', (byte)'s' })]
    [InlineData(new byte[] { 0, 1 })]
    public void Malformed_layouts_are_protocol_violations(byte[] pairs)
    {
        var p = StartupParameters.Parse(pairs);
        Assert.Equal("08P01", p.Error?.SqlState);
    }

    [Fact]
    public void A_startup_without_user_is_refused()
    {
        var p = StartupParameters.Parse(Pairs("database", "demo"));
        Assert.Equal("28000", p.Error?.SqlState);
    }

    [Fact]
    public void Invalid_utf8_is_refused()
    {
        byte[] pairs = [.. "user"u8, 0, 0xC3, 0x28, 0, 0];
        Assert.Equal("08P01", StartupParameters.Parse(pairs).Error?.SqlState);
    }
}
