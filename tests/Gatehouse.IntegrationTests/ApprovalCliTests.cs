using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Gatehouse.Host;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Policy.Approvals;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// The whole approval loop with real parts: psql sends a DELETE that policy holds, the webhook announces it, a
/// person approves (or denies) it with the gatehouse command line against the admin API while psql waits.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ApprovalCliTests(PostgresFixture fixture) : IAsyncLifetime, IDisposable
{
    private const string Token = "it-approval-token-0123456789abcdef";

    private readonly HttpListener _webhook = new();
    private readonly List<JsonDocument> _announced = [];
    private GatewayHost _gateway = null!;
    private string _ledger = null!;
    private Task _listening = Task.CompletedTask;

    private PostgresServer Server => fixture.Server;

    public async Task InitializeAsync()
    {
        int port = FreePort();
        _webhook.Prefixes.Add($"http://127.0.0.1:{port}/hook/");
        _webhook.Start();
        _listening = ListenAsync();

        _ledger = Direct.UniqueName("ledger");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {_ledger} (id int PRIMARY KEY); INSERT INTO {_ledger} VALUES (1), (2);");
        _gateway = GatewayHost.Start(Server, new GatewaySettings
        {
            Policy = ApprovalTests.ApprovalPolicy,
            Admin = $"{{ address: 127.0.0.1:0, token: {{ value: \"{Token}\" }} }}",
            Approvals = $"{{ webhook: \"http://127.0.0.1:{port}/hook/\", timeout: 5m }}",
        });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        _webhook.Stop();
        await _listening.ContinueWith(_ => { }, TaskScheduler.Default);
        await Direct.ExecuteAsync(Server, $"DROP TABLE IF EXISTS {_ledger}");
    }

    public void Dispose() => ((IDisposable)_webhook).Dispose();

    [Fact]
    public async Task A_held_delete_is_announced_and_approved_from_the_cli_while_psql_waits_and_another_is_denied()
    {
        var first = Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"DELETE FROM {_ledger} WHERE id = 1;");
        var held = await AnnouncedAsync($"WHERE id = 1");
        Assert.Equal(2L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {_ledger}"));

        var list = await CliAsync("approvals", "list");
        Assert.Equal(0, list.Code);
        Assert.Contains(held, list.Out, StringComparison.Ordinal);

        var approve = await CliAsync("approvals", "approve", held, "--as", "bob", "--reason", "ticket 7");
        Assert.True(approve.Code == 0, approve.Err);
        Assert.Equal("DELETE 1\n", (await first).EnsureSuccess("psql").Stdout);

        var second = Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"DELETE FROM {_ledger} WHERE id = 2;");
        var other = await AnnouncedAsync($"WHERE id = 2");
        var deny = await CliAsync("approvals", "deny", other, "--as", "bob", "--reason", "not today");
        Assert.True(deny.Code == 0, deny.Err);
        var refused = await second;
        Assert.Contains("bob denied the statement", refused.Stderr, StringComparison.Ordinal);
        Assert.Contains("not today", refused.Stderr, StringComparison.Ordinal);

        Assert.Equal(1L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {_ledger}"));
        Assert.Equal(2, await Direct.ScalarAsync<int>(Server, $"SELECT id FROM {_ledger}"));
        Assert.Equal(ApprovalState.Approved, _gateway.Server.Approvals.Find(held)!.State);
        Assert.Equal(ApprovalState.Denied, _gateway.Server.Approvals.Find(other)!.State);
    }

    /// <summary>Waits for the webhook POST announcing the held statement that contains <paramref name="fragment"/>; returns its id.</summary>
    private async Task<string> AnnouncedAsync(string fragment)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            lock (_announced)
            {
                foreach (var body in _announced)
                {
                    var text = body.RootElement.GetRawText();
                    if (text.Contains(_ledger, StringComparison.Ordinal) && text.Contains(fragment, StringComparison.Ordinal))
                    {
                        return FindId(body.RootElement) ?? throw new InvalidOperationException("no id in the webhook body: " + text);
                    }
                }
            }

            await Task.Delay(50);
        }

        throw new TimeoutException("the webhook did not announce the held statement");
    }

    private static string? FindId(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        foreach (var property in element.EnumerateObject())
        {
            if (property.Value.ValueKind == JsonValueKind.String && property.Value.GetString() is { } s && s.StartsWith("ap_", StringComparison.Ordinal))
            {
                return s;
            }

            if (FindId(property.Value) is { } nested)
            {
                return nested;
            }
        }

        return null;
    }

    private async Task ListenAsync()
    {
        while (_webhook.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _webhook.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            using (var reader = new StreamReader(context.Request.InputStream))
            {
                var body = JsonDocument.Parse(await reader.ReadToEndAsync());
                lock (_announced)
                {
                    _announced.Add(body);
                }
            }

            context.Response.StatusCode = 204;
            context.Response.Close();
        }
    }

    private async Task<(int Code, string Out, string Err)> CliAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        Environment.SetEnvironmentVariable("GATEHOUSE_ADMIN_TOKEN", Token);
        int code = await Program.BuildCommand().Parse([.. args, "--url", _gateway.Server.AdminUrl!.ToString()])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
