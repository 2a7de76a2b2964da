using System.Collections.Concurrent;
using Gatehouse.Host;
using Gatehouse.Host.Config;
using Gatehouse.Host.Policy;
using Gatehouse.Policy.Identity;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Tests.Policy;

public sealed class PolicyReloaderTests : IDisposable
{
    // Generous: a loaded CI machine may be slow to deliver file events; the poll fallback runs every 2 s.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly string _directory = Directory.CreateTempSubdirectory("gatehouse-reload-").FullName;

    private string PolicyPath => Path.Combine(_directory, "policy.yaml");

    private static string Policy(string allow) => $$"""
        roles:
          app:
            allow: [{{allow}}]
        bindings:
          - identities: [alice]
            connections: [demo]
            role: app
        """;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task A_changed_file_is_swapped_in_an_invalid_one_is_refused_and_a_rename_replace_is_seen()
    {
        File.WriteAllText(PolicyPath, Policy("read, write"));
        var first = PolicyLoader.LoadFile(PolicyPath, PolicyCompileContext.None);
        var store = new PolicyStore(first.Snapshot!);
        var logs = new ListLogger();
        await using var reloader = new PolicyReloader(PolicyPath, store, PolicyCompileContext.None, logs, first.Stamp);
        reloader.Start();

        SessionPolicy before = store.Current.Resolve("alice", [], "demo")!;
        Assert.True(before.Decide("INSERT INTO t VALUES (1)"u8, SqlLexSettings.Default).IsAllowed);

        // An edit in place: the statement allowed before is now denied for a newly resolved policy.
        File.WriteAllText(PolicyPath, Policy("read"));
        await WaitFor(() => store.Current.Version > before.Snapshot.Version);
        PolicySnapshot second = store.Current;
        SessionPolicy after = second.Resolve("alice", [], "demo")!;
        PolicyDecision decision = after.Decide("INSERT INTO t VALUES (1)"u8, SqlLexSettings.Default);
        Assert.Equal(("role:app", PolicyAction.Deny), (after.Rule(decision.Rule).Name, decision.Action));
        await WaitFor(() => logs.Entries.Any(e => e.Id == 4002 && e.Message.Contains($"version {second.Version}", StringComparison.Ordinal)));

        // The old SessionPolicy still decides as its snapshot said: sessions re-resolve on a version change.
        Assert.True(before.Decide("INSERT INTO t VALUES (1)"u8, SqlLexSettings.Default).IsAllowed);

        // An invalid file: logged with its position, and the last good snapshot stays.
        File.WriteAllText(PolicyPath, Policy("read, wrte"));
        await WaitFor(() => logs.Entries.Any(e => e.Id == 4004 && e.Message.Contains($"{PolicyPath}:3:19: unknown class 'wrte'", StringComparison.Ordinal)));
        Assert.Same(second, store.Current);
        Assert.Contains(logs.Entries, e => e.Id == 4003 && e.Level == LogLevel.Error);

        // Editors write a new file and rename it over the old one.
        string temporary = Path.Combine(_directory, ".policy.yaml.swp");
        File.WriteAllText(temporary, Policy("read, write, ddl"));
        File.Move(temporary, PolicyPath, overwrite: true);
        await WaitFor(() => store.Current.Version > second.Version);
        Assert.True(store.Current.Resolve("alice", [], "demo")!.Decide("DROP TABLE t"u8, SqlLexSettings.Default).IsAllowed);
    }

    [Fact]
    public async Task A_forced_reload_swaps_at_once_and_reports_whether_it_did()
    {
        File.WriteAllText(PolicyPath, Policy("read"));
        var first = PolicyLoader.LoadFile(PolicyPath, PolicyCompileContext.None);
        var store = new PolicyStore(first.Snapshot!);
        var logs = new ListLogger();
        await using var reloader = new PolicyReloader(PolicyPath, store, PolicyCompileContext.None, logs, first.Stamp);

        Assert.True(await reloader.ReloadAsync());
        Assert.NotSame(first.Snapshot, store.Current);

        File.WriteAllText(PolicyPath, "roles: [");
        PolicySnapshot good = store.Current;
        Assert.False(await reloader.ReloadAsync());
        Assert.Same(good, store.Current);
        Assert.Contains(logs.Entries, e => e.Id == 4004 && e.Message.Contains("YAML syntax", StringComparison.Ordinal));

        File.Delete(PolicyPath);
        Assert.False(await reloader.ReloadAsync());
        Assert.Same(good, store.Current);
        Assert.Contains(logs.Entries, e => e.Id == 4004 && e.Message.Contains("cannot read the policy file", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_server_exposes_the_store_and_reloads_its_policy_file()
    {
        File.WriteAllText(PolicyPath, Policy("read"));
        string verifier = ScramVerifier.Create("s3cret").ToString();
        string configPath = Path.Combine(_directory, "gatehouse.yaml");
        File.WriteAllText(configPath, $$"""
            listeners:
              - address: 127.0.0.1:0
            connections:
              - { name: demo, host: 127.0.0.1, database: app, user: gw }
            identities:
              - { name: alice, secret: "{{verifier}}", connections: [demo] }
            policy: policy.yaml
            """);
        var config = ConfigLoader.LoadFile(configPath);
        await using var server = new GatehouseServer(config, NullLoggerFactory.Instance);
        Assert.Same(config.Policy, server.Policy.Current);
        Assert.False(server.Policy.Current.Resolve("alice", [], "demo")!.Decide("DELETE FROM t WHERE id = 1"u8, SqlLexSettings.Default).IsAllowed);

        File.WriteAllText(PolicyPath, Policy("read, write"));
        Assert.True(await server.ReloadPolicyAsync());
        Assert.True(server.Policy.Current.Resolve("alice", [], "demo")!.Decide("DELETE FROM t WHERE id = 1"u8, SqlLexSettings.Default).IsAllowed);
    }

    [Fact]
    public async Task An_unrestricted_server_has_nothing_to_reload()
    {
        string verifier = ScramVerifier.Create("s3cret").ToString();
        var config = ConfigLoader.Load($$"""
            listeners:
              - address: 127.0.0.1:0
            identities:
              - { name: alice, secret: "{{verifier}}" }
            policy: unrestricted
            """, "gatehouse.yaml", _directory);
        await using var server = new GatehouseServer(config, NullLoggerFactory.Instance);
        Assert.Same(PolicySnapshot.Unrestricted, server.Policy.Current);
        Assert.False(await server.ReloadPolicyAsync());
    }

    private static async Task WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the reload did not happen in time");
            await Task.Delay(25);
        }
    }

    private sealed record Entry(int Id, LogLevel Level, string Message);

    private sealed class ListLogger : ILogger
    {
        private readonly ConcurrentQueue<Entry> _entries = new();

        public IReadOnlyCollection<Entry> Entries => _entries;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _entries.Enqueue(new Entry(eventId.Id, logLevel, formatter(state, exception)));
    }
}
