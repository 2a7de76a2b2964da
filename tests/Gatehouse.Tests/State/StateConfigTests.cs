using System.Net;
using Gatehouse.Host.Config;

namespace Gatehouse.Tests.State;

public sealed class StateConfigTests
{
    private const string Base = """
        listeners:
          - address: 127.0.0.1:6432
        policy: unrestricted
        """;

    private static GatehouseConfig Load(string extra) => ConfigLoader.Load(Base + "\n" + extra, "gatehouse.yaml", "/etc/gatehouse");

    private static ConfigException Fails(string extra) => Assert.Throws<ConfigException>(() => Load(extra));

    [Fact]
    public void Defaults_put_the_database_next_to_the_config_and_serve_no_admin_api()
    {
        var config = Load("");
        Assert.Equal("/etc/gatehouse/gatehouse.db", config.State.Path);
        Assert.Null(config.Admin);
        Assert.Equal((null, TimeSpan.FromMinutes(15), TimeSpan.FromHours(24), false),
            (config.Approvals.Webhook, config.Approvals.StatementTimeout, config.Approvals.AccessRequestTimeout, config.Approvals.AllowSelfApproval));
    }

    [Fact]
    public void Every_value_is_read()
    {
        var config = Load("""
            state: { path: data/state.db }
            admin:
              address: "[::1]:7171"
              token: { env: GATEHOUSE_ADMIN_TOKEN }
            approvals:
              webhook: https://hooks.example.com/gatehouse
              timeout: 5m
              request_timeout: 2h
              allow_self_approval: true
            """);
        Assert.Equal("/etc/gatehouse/data/state.db", config.State.Path);
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 7171), config.Admin!.EndPoint);
        Assert.Equal("env:GATEHOUSE_ADMIN_TOKEN", config.Admin.Token.ToString());
        Assert.Equal(new Uri("http://[::1]:7171/"), config.Admin.BaseUrl());
        Assert.Equal((new Uri("https://hooks.example.com/gatehouse"), TimeSpan.FromMinutes(5), TimeSpan.FromHours(2), true),
            (config.Approvals.Webhook, config.Approvals.StatementTimeout, config.Approvals.AccessRequestTimeout, config.Approvals.AllowSelfApproval));
    }

    [Fact]
    public void The_admin_address_defaults_to_loopback()
    {
        var config = Load("admin: { token: { env: T } }");
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 7070), config.Admin!.EndPoint);
    }

    [Theory]
    [InlineData("admin: { address: 0.0.0.0:7070, token: { env: T } }", 4, "not a loopback address", "needs tls")]
    [InlineData("admin: { address: 10.0.0.5:7070, token: { env: T } }", 4, "not a loopback address", "needs tls")]
    [InlineData("admin: { address: 127.0.0.1:7070 }", 4, "admin needs 'token'", "")]
    [InlineData("admin: { token: { value: short } }", 4, "at least 16 characters", "")]
    [InlineData("admin: { address: localhost:70, token: { env: T } }", 4, "must be IP:port", "")]
    [InlineData("admin: { token: { env: T }, tls: { certificate: nope.crt, key: nope.key } }", 4, "cannot load the admin certificate", "")]
    [InlineData("admin: { token: { env: T }, port: 1 }", 4, "unknown key 'port' in admin", "")]
    [InlineData("state: { file: x.db }", 4, "unknown key 'file' in state", "")]
    [InlineData("approvals: { webhook: ftp://x/y }", 4, "must be an http:// or https:// URL", "")]
    [InlineData("approvals: { timeout: 0 }", 4, "'timeout' in approvals must be longer than 0", "")]
    [InlineData("approvals: { allow_self_approval: maybe }", 4, "must be true or false", "")]
    public void Mistakes_are_errors_at_their_line(string extra, int line, string message, string more)
    {
        var error = Assert.Single(Fails(extra).Errors);
        Assert.Equal(line, error.Line);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains(more, error.Message, StringComparison.Ordinal);
    }
}
