using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Tests.State;

/// <summary>Audit events POSTed to a real HTTP endpoint on loopback, in order, retried while it answers 503.</summary>
public sealed class AuditWebhookTests
{
    [Fact]
    public async Task Every_audit_event_is_posted_as_json_and_retried_until_the_endpoint_takes_it()
    {
        int port = FreePort();
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/audit/");
        listener.Start();
        var bodies = new List<string>();
        int requests = 0;
        var server = Task.Run(async () =>
        {
            while (bodies.Count < 2)
            {
                var context = await listener.GetContextAsync();
                using var reader = new StreamReader(context.Request.InputStream);
                string body = await reader.ReadToEndAsync();
                // The first attempt fails: the writer must try again.
                context.Response.StatusCode = ++requests == 1 ? 503 : 200;
                if (context.Response.StatusCode == 200)
                {
                    bodies.Add(body);
                }

                context.Response.Close();
            }
        });

        await using var temp = await TempStore.OpenAsync();
        await using var webhook = new WebhookAnnouncer(new Uri($"http://127.0.0.1:{port}/audit/"), NullLogger.Instance, firstPause: TimeSpan.FromMilliseconds(20));
        webhook.Start();
        var at = new DateTimeOffset(2030, 1, 2, 9, 0, 0, TimeSpan.Zero);
        await using (var writer = new AuditWriter(temp.Store, NullLogger.Instance, webhook: webhook))
        {
            writer.Start();
            writer.Record(new AuditEvent(at, AuditKinds.GrantStarted, "alice", "demo", Subject: "gr_1", Actor: "bob", Detail: "role dba for 1h"));
            writer.Record(new AuditEvent(at.AddSeconds(1), AuditKinds.StatementDenied, "alice", "demo", SessionId: 42, Subject: "no-drop"));
            await writer.FlushAsync();
        }

        await server.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(3, requests);
        using var first = JsonDocument.Parse(bodies[0]);
        Assert.Equal("audit.grant.started", first.RootElement.GetProperty("type").GetString());
        Assert.Equal("alice", first.RootElement.GetProperty("identity").GetString());
        Assert.Equal("bob", first.RootElement.GetProperty("actor").GetString());
        Assert.Equal("gr_1", first.RootElement.GetProperty("subject").GetString());
        Assert.Equal(at, first.RootElement.GetProperty("at").GetDateTimeOffset());
        using var second = JsonDocument.Parse(bodies[1]);
        Assert.Equal("audit.statement.denied", second.RootElement.GetProperty("type").GetString());
        Assert.Equal(42, second.RootElement.GetProperty("session").GetInt64());
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }
}
