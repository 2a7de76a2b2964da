using System.CommandLine;
using System.Text.Json;
using Gatehouse.Engine.Recording;
using Gatehouse.Host;
using Gatehouse.Host.Config;
using Gatehouse.Tests.Recording;

namespace Gatehouse.Tests.Recordings;

/// <summary>
/// The recording commands end to end, through the real command line: verify (exit codes, damage, keys), sessions
/// list (filters, JSON), replay (what it prints), export (JSON lines), and their errors.
/// </summary>
public sealed class RecordingCommandsTests : IDisposable
{
    private readonly RecordingFixture _fixture = new();
    private readonly string _keyFile;
    private readonly RecordingKey _key;

    public RecordingCommandsTests()
    {
        // The key as the gateway reads it from its generated key file: hex text, the id its fingerprint.
        _keyFile = Path.Combine(_fixture.Directory, "..", $"{Guid.NewGuid():N}.key");
        File.WriteAllText(_keyFile, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n");
        _key = new RecordingConfig(_fixture.Directory) { GeneratedKeyFile = _keyFile }.LoadKey(create: false);
    }

    public void Dispose()
    {
        File.Delete(_keyFile);
        _fixture.Dispose();
    }

    private string Dir => _fixture.Directory;

    private static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int code = await Program.BuildCommand().Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error });
        return (code, output.ToString(), error.ToString());
    }

    private Task<string> FullAsync(string id = "sess-full-0001") => RecordedScenarios.FullSessionAsync(Dir, _key, id);

    [Fact]
    public async Task Replay_shows_the_session_as_it_happened()
    {
        string path = await FullAsync();
        var (code, output, error) = await RunAsync("replay", "sess-full", "--dir", Dir, "--key-file", _keyFile, "--max-rows", "1");

        Assert.Equal("", error);
        Assert.Equal(0, code);
        Assert.Equal($$"""
            Session sess-full-0001 (postgresql)
            identity:    alice
            connection:  orders
            role:        analyst
            client:      192.0.2.7:51234
            start:       2025-03-14 15:09:26.000Z
            end:         ClientTerminated (client) after 30.000s
            statements:  7 (2 denied, 2 held), 1 value masked
            integrity:   intact
            file:        {{path}}

            +0.000s    session start: database user app, listener main, upstream user gh_orders
            +1.000s    Q  SELECT id, email FROM customers WHERE id < 3
            +1.000s       allowed
            +1.020s       1 value masked in SELECT 2
                          id | email
                          ---+-----------------
                          1  | a***@example.com
                          (1 more row not shown; --max-rows 1)
            +1.020s       SELECT 2
            +2.000s    Q  UPDATE orders SET status = 'x'; DELETE FROM audit.log
            +2.000s       DENIED by rule no-unbounded-writes: writes without WHERE are refused
            +2.000s       ERROR 42501: statement refused by rule no-unbounded-writes
            +3.000s    P  s1: UPDATE public."Orders" SET status = $1 WHERE id = $2
            +3.000s       allowed
            +3.002s    B  s1: UPDATE public."Orders" SET status = $1 WHERE id = $2
                          $1 = 'shipped', $2 = '42'
            +3.002s       HELD by rule prod-writes: approval request ap_7
            +7.500s       APPROVED by bob
            +7.500s       allowed
            +7.510s       UPDATE 1
            +8.000s    P  SELEC 1
            +8.000s       allowed
            +8.000s    B  SELEC 1
                          $1 = NULL, $2 = \x00000007
            +8.000s       allowed
            +8.004s       ERROR 42601: syntax error at or near "SELEC"
            +9.000s    Q  DROP TABLE customers
            +9.000s       HELD by rule ddl-needs-approval: approval request ap_8
            +20.000s      REJECTED by carol: not during business hours
            +20.000s      DENIED by rule ddl-needs-approval
            +20.000s      ERROR 42501: approval request ap_8 was rejected by carol
            +21.000s   Q  COPY customers TO STDOUT
            +21.000s      allowed
                          1\ta***@example.com
                          (2 more COPY lines not shown; --max-rows 1)
            +21.050s      COPY 3
            +22.000s   Q  SELECT 1; SELECT 2
            +22.000s      allowed
                          ?column?
                          --------
                          1
            +22.001s      SELECT 1
            +22.001s      NOTICE 01000: second statement follows
                          ?column?
                          --------
                          2
            +22.001s      SELECT 1
            +30.000s   session end: ClientTerminated (client); 1234 bytes from the client, 5678 bytes from the server, 1 value masked

            """, output.ReplaceLineEndings("\n"));

        // With the default row limit every row is shown, NULL as NULL.
        (code, output, _) = await RunAsync("replay", path, "--key-file", _keyFile);
        Assert.Equal(0, code);
        Assert.Contains("              2  | NULL\n", output);
        Assert.Contains("              2\\t\\N\n", output);
        Assert.DoesNotContain("not shown", output);
    }

    [Fact]
    public async Task Verify_says_intact_for_each_recording_and_exits_0()
    {
        string first = await FullAsync("sess-v1");
        string second = await RecordedScenarios.ShortSessionAsync(Dir, _key, "sess-v2", "bob", "billing", SessionRecorder.DefaultStart.AddHours(1), ("SELECT 1", RecordedDecision.Allowed));

        var (code, output, error) = await RunAsync("verify", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal("", error);
        Assert.Equal(0, code);
        Assert.Equal($"intact       {first}\nintact       {second}\n2 recordings: 2 intact\n", output);

        // A file, and a folder, named on the command line; no folder is needed then.
        (code, output, _) = await RunAsync("verify", second, "--key-file", _keyFile);
        Assert.Equal((0, $"intact       {second}\n"), (code, output));
        (code, output, _) = await RunAsync("verify", Dir, "--key-file", _keyFile);
        Assert.Equal(0, code);
        Assert.Equal(3, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task Verify_reports_a_damaged_recording_and_exits_1_and_replay_warns()
    {
        string good = await FullAsync("sess-good");
        string path = await RecordedScenarios.LongSessionAsync(Dir, _key, "sess-bad");
        var block = (await RecordingReader.VerifyAsync(path, _key)).Blocks[3];
        byte[] bytes = await File.ReadAllBytesAsync(path);
        bytes[(int)block.FileOffset + 11 + (block.FileLength - 19) / 2] ^= 0x20;
        await File.WriteAllBytesAsync(path, bytes);

        var (code, output, _) = await RunAsync("verify", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal(1, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Equal($"intact       {good}", lines[1]);
        Assert.StartsWith($"damaged      {path}: the block at file offset {block.FileOffset} (block 3, by its place) is unreadable: ", lines[0]);
        Assert.Equal("2 recordings: 1 damaged, 1 intact", lines[2]);

        (code, output, var error) = await RunAsync("replay", "sess-bad", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal(1, code);
        var replay = output.Split('\n');
        Assert.Equal("Session sess-bad (postgresql)", replay[0]);
        Assert.Equal("WARNING: this recording is DAMAGED: it was altered, cut or signed with another key. Only the blocks that verified are shown:", replay[1]);
        Assert.StartsWith($"  - the block at file offset {block.FileOffset} (block 3, by its place) is unreadable: ", replay[2]);
        Assert.Contains("integrity:   DAMAGED", replay);
        Assert.Contains(replay, l => l.EndsWith("!! events missing: the events of block 3 are missing or failed verification (block 4 follows block 2)", StringComparison.Ordinal));
        Assert.StartsWith($"gatehouse: the recording {path} is damaged: the block at file offset {block.FileOffset}", error);
    }

    [Fact]
    public async Task Verify_without_the_key_checks_the_chain_and_says_so()
    {
        string path = await FullAsync();
        var (code, output, error) = await RunAsync("verify", "--dir", Dir);
        Assert.Equal((2, ""), (code, output));
        Assert.Equal("gatehouse: cannot verify without the key: give --config FILE or --key-file FILE (or --no-key to check the hash chain only)\n", error);

        (code, output, _) = await RunAsync("verify", "--dir", Dir, "--no-key");
        Assert.Equal((0, $"intact       {path}: hash chain only, signatures not checked\n"), (code, output));

        string missing = Path.Combine(Dir, "absent.key");
        (code, _, error) = await RunAsync("verify", "--dir", Dir, "--key-file", missing);
        Assert.Equal(2, code);
        Assert.Equal($"gatehouse: cannot verify without the key: the recording key file {missing} does not exist (the gateway creates it on its first start) "
                     + "(or use --no-key to check the hash chain only)\n", error);

        // Another key: the recording names the key it needs.
        string other = Path.Combine(Dir, "other.key");
        await File.WriteAllTextAsync(other, "another key of enough length 0123456789");
        var otherKey = new RecordingConfig(Dir) { GeneratedKeyFile = other }.LoadKey(create: false);
        (code, output, _) = await RunAsync("verify", path, "--key-file", other);
        Assert.Equal((1, $"unverifiable {path}: signed with key {_key.Id}, not {otherKey.Id}: give that key\n"), (code, output));
        (code, output, error) = await RunAsync("replay", path, "--key-file", other);
        Assert.Equal(1, code);
        Assert.Contains("WARNING: seal signatures were not checked: a rewritten recording would not be detected.\n", output);
        Assert.Contains($"integrity:   intact, signatures not checked (signed with key {_key.Id}, not the key given)\n", output);
        Assert.Equal($"gatehouse: the recording {path} is signed with key {_key.Id}, not the key given: it was not verified\n", error);

        (code, output, error) = await RunAsync("replay", path, "--no-key");
        Assert.Equal((0, ""), (code, error));
        Assert.Contains("integrity:   intact, signatures not checked (no key)\n", output);
    }

    [Fact]
    public async Task Verify_tells_a_recording_being_written_from_one_cut_short()
    {
        await using var live = SessionRecorder.Start(Dir, _key, "sess-live");
        live.At(1);
        live.Query("SELECT 1");
        await live.FlushAsync();

        string cut = await RecordedScenarios.LongSessionAsync(Dir, _key, "sess-cut", queries: 20);
        var verification = await RecordingReader.VerifyAsync(cut, _key);
        var last = verification.Blocks[^1];
        byte[] bytes = await File.ReadAllBytesAsync(cut);
        await File.WriteAllBytesAsync(cut, bytes.AsSpan(0, (int)last.FileOffset).ToArray());

        var (code, output, _) = await RunAsync("verify", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal(1, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // In file name order: the same start time, then the session id.
        Assert.Equal($"unsealed     {cut}: no final seal: cut short after block {verification.Blocks.Count - 2} (file offset {last.FileOffset}); "
                     + "a gateway seals it at its next start", lines[0]);
        Assert.Equal($"open         {live.Path}: being written now; verified through block 0", lines[1]);
        Assert.Equal("2 recordings: 1 open, 1 unsealed", lines[2]);

        (code, _, _) = await RunAsync("verify", live.Path, "--key-file", _keyFile);
        Assert.Equal(0, code);

        // Replay shows what there is, and fails only the one cut short.
        var (liveCode, liveOutput, liveError) = await RunAsync("replay", live.Path, "--key-file", _keyFile);
        Assert.Equal((0, ""), (liveCode, liveError));
        Assert.Contains("WARNING: this recording has no final seal: it is still being written, or its end was lost.\n", liveOutput);
        Assert.Contains("+1.000s    Q  SELECT 1\n", liveOutput);
        var (cutCode, _, cutError) = await RunAsync("replay", cut, "--key-file", _keyFile);
        Assert.Equal((1, $"gatehouse: the recording {cut} has no final seal: it was cut short\n"), (cutCode, cutError));
    }

    [Fact]
    public async Task Verify_finds_the_folder_and_key_in_the_config()
    {
        string path = await FullAsync();
        string config = Path.Combine(Dir, "..", $"{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(config, $$"""
            listeners:
              - name: pg
                protocol: postgres
                address: 127.0.0.1:6432
                tls: { mode: required, self_signed: true }
            connections:
              - name: orders
                host: db.internal
                database: app
                user: gatehouse
                password: { env: ORDERS_PASSWORD }
            identities: []
            policy: unrestricted
            recording:
              directory: {{Dir}}
              key: { file: {{_keyFile}} }
            """);
        try
        {
            var (code, output, error) = await RunAsync("verify", "-c", config);
            Assert.Equal("", error);
            Assert.Equal((0, $"intact       {path}\n"), (code, output));
            (code, output, _) = await RunAsync("sessions", "list", "--config", config, "--format", "json");
            Assert.Equal(0, code);
            Assert.Equal("sess-full-0001", JsonDocument.Parse(output).RootElement[0].GetProperty("session").GetString());
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task Missing_paths_unknown_options_and_missing_values_have_their_exit_codes()
    {
        await FullAsync();
        var (code, output, _) = await RunAsync("verify", Path.Combine(Dir, "nope.ghrec.lz4"), "--key-file", _keyFile);
        Assert.Equal((1, $"missing      {Path.Combine(Dir, "nope.ghrec.lz4")}: no such file or folder\n"), (code, output));

        Assert.Equal((2, "", "gatehouse: unknown option --fast (see gatehouse verify --help)\n"), await RunAsync("verify", "--fast", "--dir", Dir));
        Assert.Equal((2, "", "gatehouse: --dir needs a value (see --help)\n"), await RunAsync("verify", "--no-key", "--dir"));
        Assert.Equal((2, "", "gatehouse: say where the recordings are: --config FILE (its recording section) or --dir DIR\n"), await RunAsync("verify", "--no-key"));
        Assert.Equal((2, "", "gatehouse: say which session: gatehouse replay ID (a session id, a unique prefix of it, or a recording file)\n"),
            await RunAsync("replay", "--dir", Dir, "--no-key"));
        Assert.Equal((2, "", "gatehouse: one session at a time: gatehouse export ID (got a b)\n"), await RunAsync("export", "a", "b", "--dir", Dir, "--no-key"));
        Assert.Equal((2, "", "gatehouse: --max-rows is a number of rows, not 'many'\n"), await RunAsync("replay", "sess", "--max-rows", "many", "--dir", Dir, "--no-key"));
        Assert.Equal((2, "", "gatehouse: --format is jsonl, not 'csv'\n"), await RunAsync("export", "sess", "--format", "csv", "--dir", Dir, "--no-key"));
        Assert.Equal((2, "", "gatehouse: --no-key and --key-file contradict each other\n"), await RunAsync("replay", "sess", "--dir", Dir, "--no-key", "--key-file", _keyFile));
        Assert.Equal((1, "", $"gatehouse: the recording folder {Path.Combine(Dir, "none")} does not exist\n"),
            await RunAsync("sessions", "list", "--dir", Path.Combine(Dir, "none"), "--no-key"));
    }

    [Fact]
    public async Task Replay_and_export_find_a_session_by_id_or_unique_prefix_and_say_when_they_cannot()
    {
        await ShortSessionsAsync();
        var (code, output, error) = await RunAsync("replay", "nope", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal((1, "", $"gatehouse: no recording of session nope in {Dir}\n"), (code, output, error));

        (code, output, error) = await RunAsync("replay", "s-a", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal((2, "", $"gatehouse: session id prefix s-a is ambiguous in {Dir}: it starts 2 sessions (s-a1, s-a2); give more of the id\n"), (code, output, error));

        (code, output, _) = await RunAsync("replay", "s-b", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal(0, code);
        Assert.StartsWith("Session s-b1 (postgresql)\nidentity:    bob\n", output);

        (code, output, _) = await RunAsync("export", "s-a2", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal(0, code);
        Assert.All(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.Equal("s-a2", JsonDocument.Parse(line).RootElement.GetProperty("session").GetString()));
    }

    [Fact]
    public async Task Sessions_list_shows_one_row_per_session_sorted_by_start_and_filters()
    {
        await ShortSessionsAsync();
        await FullAsync();

        var (code, output, error) = await RunAsync("sessions", "list", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal("", error);
        Assert.Equal(0, code);
        Assert.Equal(
            [
                "ID|START|DURATION|IDENTITY|CONNECTION|STATEMENTS|DENIED|HELD|MASKED|END|INTEGRITY",
                "s-a1|2025-03-10 10:00:00Z|4.0s|alice|orders|2|1|0|0|ClientDisconnected|intact",
                "s-b1|2025-03-11 10:00:00Z|2.5s|bob|billing|1|0|0|0|ClientDisconnected|intact",
                "s-a2|2025-03-12 10:00:00Z|3.5s|alice|billing|1|0|1|0|ClientDisconnected|intact",
                "sess-full-0001|2025-03-14 15:09:26Z|30.0s|alice|orders|7|2|2|1|ClientTerminated|intact",
            ],
            Rows(output));

        Assert.Equal(["s-a1", "s-a2", "sess-full-0001"], await IdsAsync("--identity", "alice"));
        Assert.Equal(["s-a1", "sess-full-0001"], await IdsAsync("--connection", "orders"));
        Assert.Equal(["s-a1", "sess-full-0001"], await IdsAsync("--decision", "denied"));
        Assert.Equal(["s-a2", "sess-full-0001"], await IdsAsync("--decision", "held"));
        Assert.Equal(["s-a1", "s-b1", "s-a2", "sess-full-0001"], await IdsAsync("--decision", "allowed"));
        Assert.Equal(["s-a2"], await IdsAsync("--since", "2025-03-11T12:00:00Z", "--until", "2025-03-13"));
        Assert.Equal(["s-a2", "sess-full-0001"], await IdsAsync("--identity", "alice", "--since", "2025-03-11"));
        Assert.Equal([], await IdsAsync("--since", "1d"));

        (code, output, _) = await RunAsync("sessions", "list", "--dir", Dir, "--key-file", _keyFile, "--connection", "billing", "--format", "json");
        Assert.Equal(0, code);
        var sessions = JsonDocument.Parse(output).RootElement;
        Assert.Equal(2, sessions.GetArrayLength());
        var held = sessions[1];
        Assert.Equal("s-a2", held.GetProperty("session").GetString());
        Assert.Equal("alice", held.GetProperty("identity").GetString());
        Assert.Equal("analyst", held.GetProperty("role").GetString());
        Assert.Equal("2025-03-12T10:00:00.000000Z", held.GetProperty("start").GetString());
        Assert.Equal(3.5, held.GetProperty("duration_seconds").GetDouble());
        Assert.Equal((1, 0, 1, 0), (held.GetProperty("statements").GetInt32(), held.GetProperty("denied").GetInt32(), held.GetProperty("held").GetInt32(), held.GetProperty("masked").GetInt32()));
        Assert.Equal("ClientDisconnected", held.GetProperty("end_reason").GetString());
        Assert.Equal("intact", held.GetProperty("integrity").GetString());
        Assert.True(held.GetProperty("signatures_checked").GetBoolean());
        Assert.Equal(0, held.GetProperty("problems").GetArrayLength());

        Assert.Equal((2, "", "gatehouse: --decision is denied, held or allowed, not 'maybe'\n"), await RunAsync("sessions", "list", "--dir", Dir, "--no-key", "--decision", "maybe"));
        Assert.Equal((2, "", "gatehouse: --since is a duration back from now (2d, 90m) or an ISO 8601 time (2025-03-14T15:00:00Z), not 'yesterday'\n"),
            await RunAsync("sessions", "list", "--dir", Dir, "--no-key", "--since", "yesterday"));
        Assert.Equal((2, "", "gatehouse: --format is table or json, not 'xml'\n"), await RunAsync("sessions", "list", "--dir", Dir, "--no-key", "--format", "xml"));
    }

    [Fact]
    public void Since_and_until_take_a_duration_back_from_now_or_a_time()
    {
        var now = new DateTimeOffset(2025, 3, 14, 12, 0, 0, TimeSpan.Zero);
        Assert.True(Gatehouse.Host.Cli.TimeArgument.TryParse("2d", now, out var time));
        Assert.Equal(new DateTimeOffset(2025, 3, 12, 12, 0, 0, TimeSpan.Zero), time);
        Assert.True(Gatehouse.Host.Cli.TimeArgument.TryParse("1h30m", now, out time));
        Assert.Equal(new DateTimeOffset(2025, 3, 14, 10, 30, 0, TimeSpan.Zero), time);
        Assert.True(Gatehouse.Host.Cli.TimeArgument.TryParse("2025-03-01T08:00:00+02:00", now, out time));
        Assert.Equal(new DateTimeOffset(2025, 3, 1, 6, 0, 0, TimeSpan.Zero), time);
        Assert.True(Gatehouse.Host.Cli.TimeArgument.TryParse("2025-03-01", now, out time));
        Assert.Equal(new DateTimeOffset(2025, 3, 1, 0, 0, 0, TimeSpan.Zero), time);
        Assert.False(Gatehouse.Host.Cli.TimeArgument.TryParse("soon", now, out _));
    }

    [Fact]
    public async Task Export_writes_one_JSON_object_per_event()
    {
        string path = await FullAsync();
        var (code, output, error) = await RunAsync("export", "sess-full-0001", "--format", "jsonl", "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal("", error);
        Assert.Equal(0, code);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

        int events = 0;
        await foreach (var _ in Gatehouse.Host.Recordings.RecordingDigest.ReadEventsAsync(path, _key))
        {
            events++;
        }

        Assert.Equal(events, lines.Count);
        Assert.Equal(Enumerable.Range(0, lines.Count), lines.Select(l => l.GetProperty("seq").GetInt32()));
        Assert.All(lines, l => Assert.Equal("sess-full-0001", l.GetProperty("session").GetString()));

        var start = lines[0];
        Assert.Equal(("session_start", "none", "alice", "orders", "gh_orders"), (start.GetProperty("kind").GetString(), start.GetProperty("direction").GetString(),
            start.GetProperty("identity").GetString(), start.GetProperty("connection").GetString(), start.GetProperty("attributes").GetProperty("upstream_user").GetString()));

        var select = lines.First(l => l.GetProperty("kind").GetString() == "statement");
        Assert.Equal("2025-03-14T15:09:27.000000Z", select.GetProperty("time").GetString());
        Assert.Equal(1_000_000, select.GetProperty("offset_us").GetInt64());
        Assert.Equal("client_to_server", select.GetProperty("direction").GetString());
        Assert.Equal(("Q", 0, "SELECT id, email FROM customers WHERE id < 3", "read"), (select.GetProperty("message").GetString(), select.GetProperty("statement_index").GetInt32(),
            select.GetProperty("text").GetString(), select.GetProperty("class").GetString()));
        Assert.Equal(["customers"], select.GetProperty("tables").EnumerateArray().Select(t => t.GetString()));

        var bind = lines.First(l => l.GetProperty("kind").GetString() == "statement" && l.GetProperty("message").GetString() == "B");
        Assert.Equal(["shipped", "42"], bind.GetProperty("parameters").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal(("s1", ""), (bind.GetProperty("statement_name").GetString(), bind.GetProperty("portal").GetString()));

        var held = lines.First(l => l.GetProperty("kind").GetString() == "decision" && l.GetProperty("outcome").GetString() == "held");
        Assert.Equal((2, "prod-writes", "ap_7"), (held.GetProperty("statement_index").GetInt32(), held.GetProperty("rule").GetString(), held.GetProperty("ticket").GetString()));
        var approved = lines.First(l => l.GetProperty("kind").GetString() == "decision" && l.GetProperty("outcome").GetString() == "approved");
        Assert.Equal("bob", approved.GetProperty("approver").GetString());
        var rejected = lines.First(l => l.GetProperty("kind").GetString() == "decision" && l.GetProperty("outcome").GetString() == "rejected");
        Assert.Equal(("carol", "not during business hours"), (rejected.GetProperty("approver").GetString(), rejected.GetProperty("reason").GetString()));

        var meta = lines.Single(l => l.GetProperty("kind").GetString() == "result_meta");
        Assert.Equal((0, "SELECT 2", 1), (meta.GetProperty("statement_index").GetInt32(), meta.GetProperty("command_tag").GetString(), meta.GetProperty("masked_values").GetInt32()));

        var rows = lines.Where(l => l.GetProperty("kind").GetString() == "server_message" && l.GetProperty("type").GetString() == "DataRow").Take(2).ToList();
        Assert.All(rows, r => Assert.Equal(("server_to_client", "D", 0), (r.GetProperty("direction").GetString(), r.GetProperty("code").GetString(), r.GetProperty("statement_index").GetInt32())));
        Assert.Equal("[\"1\",\"a***@example.com\"]", rows[0].GetProperty("values").GetRawText());
        Assert.Equal("[\"2\",null]", rows[1].GetProperty("values").GetRawText());
        Assert.Equal("2025-03-14T15:09:27.020000Z", rows[0].GetProperty("time").GetString());

        var columns = lines.First(l => l.GetProperty("kind").GetString() == "server_message" && l.GetProperty("type").GetString() == "RowDescription");
        Assert.Equal(["id", "email"], columns.GetProperty("columns").EnumerateArray().Select(c => c.GetProperty("name").GetString()));

        var errors = lines.Where(l => l.GetProperty("kind").GetString() == "server_message" && l.GetProperty("type").GetString() == "ErrorResponse")
            .Select(l => $"{l.GetProperty("severity").GetString()} {l.GetProperty("sqlstate").GetString()}: {l.GetProperty("message").GetString()}");
        Assert.Equal(["ERROR 42501: statement refused by rule no-unbounded-writes", "ERROR 42601: syntax error at or near \"SELEC\"",
            "ERROR 42501: approval request ap_8 was rejected by carol"], errors);

        var key = lines.Single(l => l.GetProperty("kind").GetString() == "server_message" && l.GetProperty("type").GetString() == "BackendKeyData");
        Assert.Equal(4242, key.GetProperty("process_id").GetInt32());
        Assert.Equal(["session", "seq", "time", "offset_us", "kind", "direction", "type", "code", "stream_offset", "process_id"],
            key.EnumerateObject().Select(p => p.Name));

        var execute = lines.First(l => l.GetProperty("kind").GetString() == "client_message" && l.GetProperty("type").GetString() == "Execute");
        Assert.Equal((2, "", 0), (execute.GetProperty("statement_index").GetInt32(), execute.GetProperty("name").GetString(), execute.GetProperty("max_rows").GetInt32()));

        var end = lines[^1];
        Assert.Equal(("session_end", "ClientTerminated", "client", 1234, 5678, 1), (end.GetProperty("kind").GetString(), end.GetProperty("reason").GetString(),
            end.GetProperty("side").GetString(), end.GetProperty("bytes_from_client").GetInt32(), end.GetProperty("bytes_from_server").GetInt32(), end.GetProperty("masked_values").GetInt32()));
        Assert.Equal("2025-03-14T15:09:56.000000Z", end.GetProperty("time").GetString());

        // To a file: the same lines.
        string file = Path.Combine(Dir, "export.jsonl");
        (code, var toFile, error) = await RunAsync("export", "sess-full", "-o", file, "--dir", Dir, "--key-file", _keyFile);
        Assert.Equal((0, ""), (code, toFile));
        Assert.Equal($"{lines.Count} events of session sess-full-0001 written to {file}\n", error);
        Assert.Equal(output, await File.ReadAllTextAsync(file));
    }

    private async Task ShortSessionsAsync()
    {
        await RecordedScenarios.ShortSessionAsync(Dir, _key, "s-a1", "alice", "orders", new DateTimeOffset(2025, 3, 10, 10, 0, 0, TimeSpan.Zero),
            ("SELECT 1", RecordedDecision.Allowed), ("DELETE FROM t", RecordedDecision.Denied));
        await RecordedScenarios.ShortSessionAsync(Dir, _key, "s-b1", "bob", "billing", new DateTimeOffset(2025, 3, 11, 10, 0, 0, TimeSpan.Zero),
            ("SELECT 1", RecordedDecision.Allowed));
        await RecordedScenarios.ShortSessionAsync(Dir, _key, "s-a2", "alice", "billing", new DateTimeOffset(2025, 3, 12, 10, 0, 0, TimeSpan.Zero),
            ("UPDATE t SET a = 1 WHERE id = 1", RecordedDecision.Held));
    }

    private async Task<List<string>> IdsAsync(params string[] filter)
    {
        var (code, output, error) = await RunAsync(["sessions", "list", "--dir", Dir, "--key-file", _keyFile, .. filter]);
        Assert.Equal((0, ""), (code, error));
        return Rows(output).Skip(1).Select(r => r.Split('|')[0]).ToList();
    }

    /// <summary>The table's lines with the column padding turned into '|' (a cell holds single spaces at most).</summary>
    private static List<string> Rows(string table) =>
        table.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l != "  (none)").Select(l => System.Text.RegularExpressions.Regex.Replace(l, " {2,}", "|")).ToList();
}
