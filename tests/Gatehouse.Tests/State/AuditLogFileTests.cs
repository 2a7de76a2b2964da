using System.Text.Json;
using Gatehouse.Host.Config;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Tests.State;

public sealed class AuditLogFileTests
{
    [Fact]
    public async Task Every_event_goes_to_the_store_and_to_the_file_as_one_json_line()
    {
        await using var temp = await TempStore.OpenAsync();
        string path = Path.ChangeExtension(temp.Path, ".audit.jsonl");
        try
        {
            var at = new DateTimeOffset(2030, 1, 2, 9, 0, 0, TimeSpan.Zero);
            await using (var writer = new AuditWriter(temp.Store, NullLogger.Instance, file: new AuditLogFile(path)))
            {
                writer.Start();
                writer.Record(new AuditEvent(at, AuditKinds.GrantStarted, "alice", "demo", Subject: "gr_1", Actor: "bob", Detail: "role dba until \"10:00\""));
                writer.Record(new AuditEvent(at.AddSeconds(1), AuditKinds.StatementDenied, "alice", "demo", SessionId: 42, Subject: "no-drop"));
                await writer.FlushAsync();
            }

            var lines = await File.ReadAllLinesAsync(path);
            Assert.Equal(2, lines.Length);
            using var first = JsonDocument.Parse(lines[0]);
            Assert.Equal("2030-01-02T09:00:00+00:00", first.RootElement.GetProperty("at").GetString());
            Assert.Equal("grant.started", first.RootElement.GetProperty("kind").GetString());
            Assert.Equal("bob", first.RootElement.GetProperty("actor").GetString());
            Assert.Equal("role dba until \"10:00\"", first.RootElement.GetProperty("detail").GetString());
            Assert.False(first.RootElement.TryGetProperty("session", out _));
            using var second = JsonDocument.Parse(lines[1]);
            Assert.Equal(42, second.RootElement.GetProperty("session").GetInt64());
            Assert.Equal("no-drop", second.RootElement.GetProperty("subject").GetString());

            // The store has them too.
            var stored = await temp.Store.ListAuditAsync(at.AddMinutes(-1), 100);
            Assert.Equal(2, stored.Count);

            // Appended, never rewritten: a second writer adds to what is there.
            await using (var writer = new AuditWriter(temp.Store, NullLogger.Instance, file: new AuditLogFile(path)))
            {
                writer.Start();
                writer.Record(new AuditEvent(at.AddSeconds(2), AuditKinds.SessionEnded, "alice", "demo", SessionId: 42));
                await writer.FlushAsync();
            }

            Assert.Equal(3, (await File.ReadAllLinesAsync(path)).Length);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("state: { path: data/gh.db }", "/etc/gatehouse/data/gh.audit.jsonl")]
    [InlineData("state: { path: gh.db, audit_log: /var/log/gatehouse/audit.jsonl }", "/var/log/gatehouse/audit.jsonl")]
    [InlineData("state: { audit_log: none }", null)]
    public void The_audit_log_path_defaults_next_to_the_database(string state, string? expected)
    {
        var config = ConfigLoader.Load("listeners:\n  - address: 127.0.0.1:6432\npolicy: unrestricted\n" + state, "gatehouse.yaml", "/etc/gatehouse");
        Assert.Equal(expected, config.State.AuditLog);
    }
}
