using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Gatehouse.Engine.Recording;
using Gatehouse.Host.Config;
using Gatehouse.Host.Recordings;

namespace Gatehouse.Host.Cli;

/// <summary>
/// <c>gatehouse verify</c>, <c>gatehouse sessions list</c>, <c>gatehouse replay</c> and <c>gatehouse export</c>:
/// session recordings, read from the recordings folder (docs/recordings.md). Where they are and the key that signs
/// them: <c>--config FILE</c> (its <c>recording</c> section), or <c>--dir DIR</c> and <c>--key-file FILE</c>; the
/// two combine (<c>--dir</c> and <c>--key-file</c> win). <c>--no-key</c> reads without the key: the hash chain
/// still shows damage, but not a deliberate rewrite. Exit codes: 0 done (every recording intact or recovered),
/// 1 a recording is damaged, unverifiable, missing or unreadable, 2 a usage or config problem.
/// </summary>
internal static class RecordingCommands
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    public static Command Verify()
    {
        var common = new CommonOptions();
        var paths = Positional("path", "Recording files or folders (searched below); default: the recording folder");
        var command = new Command("verify", "Verify session recordings: intact, recovered after a crash, or damaged (and how)") { paths };
        common.AddTo(command);
        command.SetAction((parse, ct) => RunAsync(parse, async (output, error) =>
        {
            string[] given = parse.GetValue(paths) ?? [];
            if (given.FirstOrDefault(p => p.StartsWith('-') && !File.Exists(p) && !Directory.Exists(p)) is { } unknown)
            {
                throw new RecordingLookupException($"unknown option {unknown} (see gatehouse verify --help)", Usage);
            }

            var place = common.Resolve(parse, needDirectory: given.Length == 0);
            var files = new List<string>();
            int failed = 0;
            if (given.Length == 0)
            {
                files.AddRange(RecordingFiles.Find(place.Directory!));
            }

            foreach (string path in given)
            {
                if (Directory.Exists(path))
                {
                    files.AddRange(RecordingFiles.Find(path));
                }
                else if (File.Exists(path))
                {
                    files.Add(path);
                }
                else
                {
                    await output.WriteLineAsync(Line("missing", path, "no such file or folder")).ConfigureAwait(false);
                    failed++;
                }
            }

            var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
            foreach (string file in files)
            {
                var (status, detail, ok) = await VerifyOneAsync(file, place.Key, ct).ConfigureAwait(false);
                await output.WriteLineAsync(Line(status, file, detail)).ConfigureAwait(false);
                counts[status] = counts.GetValueOrDefault(status) + 1;
                failed += ok ? 0 : 1;
            }

            if (files.Count == 0 && given.Length == 0)
            {
                await output.WriteLineAsync($"no recordings in {place.Directory}").ConfigureAwait(false);
            }
            else if (files.Count > 1)
            {
                await output.WriteLineAsync($"{files.Count} recordings: {string.Join(", ", counts.Select(c => $"{c.Value} {c.Key}"))}"
                                            + (place.Key is null ? " (hash chains only: signatures not checked)" : "")).ConfigureAwait(false);
            }

            return failed == 0 ? Ok : Failed;
        }));
        return command;
    }

    /// <summary>One recording's verdict: a status word, what is wrong, and whether that is acceptable.</summary>
    private static async Task<(string Status, string? Detail, bool Ok)> VerifyOneAsync(string path, RecordingKey? key, CancellationToken ct)
    {
        RecordingVerification v;
        try
        {
            v = await RecordingReader.VerifyAsync(path, key, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return ("unreadable", ex.Message, false);
        }

        string problems = string.Join("; ", v.Problems.Where(p => p.Kind != RecordingProblemKind.Unsealed || v.Integrity != RecordingIntegrity.Unsealed).Select(p => p.Detail));
        if (v.Has(RecordingProblemKind.KeyIdMismatch) && v.Integrity != RecordingIntegrity.Damaged)
        {
            return ("unverifiable", $"signed with key {v.Header?.KeyId}, not {key?.Id}: give that key", false);
        }

        string chainOnly = key is null ? "hash chain only, signatures not checked" : "";
        switch (v.Integrity)
        {
            case RecordingIntegrity.Intact:
                return ("intact", key is null ? chainOnly : null, true);
            case RecordingIntegrity.Recovered:
                return ("recovered", "the gateway stopped while recording; crash recovery sealed what was written" + (key is null ? "; " + chainOnly : ""), true);
            case RecordingIntegrity.Unsealed when RecordingFiles.IsBeingWritten(path):
                return ("open", $"being written now; verified through block {v.VerifiedBlocks - 1}" + (key is null ? "; " + chainOnly : ""), true);
            case RecordingIntegrity.Unsealed:
                return ("unsealed", $"no final seal: cut short after block {v.VerifiedBlocks - 1} (file offset {v.VerifiedFileOffset}); "
                                    + "a gateway seals it at its next start" + (problems.Length > 0 ? "; " + problems : ""), false);
            default:
                return ("damaged", problems, false);
        }
    }

    private static string Line(string status, string path, string? detail) => $"{status,-12} {path}{(string.IsNullOrEmpty(detail) ? "" : ": " + detail)}";

    public static Command Sessions()
    {
        var common = new CommonOptions();
        var identity = ValueOption("--identity", "Only sessions of this identity");
        var connection = ValueOption("--connection", "Only sessions on this connection");
        var since = ValueOption("--since", "Only sessions that started since: a duration back from now (2d, 90m) or an ISO 8601 time");
        var until = ValueOption("--until", "Only sessions that started until: a duration back from now or an ISO 8601 time");
        var decision = ValueOption("--decision", "Only sessions with a statement denied, held or allowed");
        var format = ValueOption("--format", "table (default) or json");
        var extra = Positional("extra", "", hidden: true);
        var list = new Command("list", "One line per recorded session: who, when, how long, statements, denials, holds, masked values, how it ended, integrity")
        {
            identity, connection, since, until, decision, format, extra,
        };
        common.AddTo(list);
        list.SetAction((parse, ct) => RunAsync(parse, async (output, error) =>
        {
            NoPositional(parse, extra);
            var now = TimeProvider.System.GetUtcNow();
            var filter = new SessionFilter
            {
                Identity = Value(parse, identity),
                Connection = Value(parse, connection),
                Since = Time(Value(parse, since), "--since", now),
                Until = Time(Value(parse, until), "--until", now),
                Decision = Value(parse, decision) switch
                {
                    null => null,
                    "denied" => RecordedDecision.Denied,
                    "held" => RecordedDecision.Held,
                    "allowed" => RecordedDecision.Allowed,
                    { } other => throw new RecordingLookupException($"--decision is denied, held or allowed, not '{other}'", Usage),
                },
            };
            string shape = Value(parse, format) ?? "table";
            if (shape is not ("table" or "json"))
            {
                throw new RecordingLookupException($"--format is table or json, not '{shape}'", Usage);
            }

            var place = common.Resolve(parse, needDirectory: true);
            var sessions = new List<RecordedSession>();
            int unreadable = 0;
            foreach (string file in RecordingFiles.Find(place.Directory!))
            {
                try
                {
                    sessions.Add(await RecordingFiles.ReadAsync(file, place.Key, ct).ConfigureAwait(false));
                }
                catch (RecordingLookupException ex)
                {
                    await error.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
                    unreadable++;
                }
            }

            var shown = sessions.Where(filter.Matches).OrderBy(s => s.Start).ThenBy(s => s.SessionId, StringComparer.Ordinal).ToList();
            if (shape == "json")
            {
                await output.WriteLineAsync(SessionsJson(shown)).ConfigureAwait(false);
            }
            else
            {
                TextTable.Write(output, ["ID", "START", "DURATION", "IDENTITY", "CONNECTION", "STATEMENTS", "DENIED", "HELD", "MASKED", "END", "INTEGRITY"],
                    shown.Select(s => new[]
                    {
                        s.SessionId, TextTable.Time(s.Start), DurationOf(s.Duration), s.Identity, s.Connection, Count(s.Statements.Count), Count(s.Denied), Count(s.Held),
                        s.MaskedValues.ToString(CultureInfo.InvariantCulture), s.EndReason ?? "-", IntegrityWord(s),
                    }));
            }

            return unreadable == 0 ? Ok : Failed;
        }));
        return new Command("sessions", "Recorded sessions") { list };
    }

    public static Command Replay()
    {
        var common = new CommonOptions();
        var id = Positional("id", "The session id, a unique prefix of it, or a recording file");
        var maxRows = ValueOption("--max-rows", "Rows shown of each result (default 50); the others are counted");
        var command = new Command("replay", "Show a recorded session as it happened: statements, decisions, results, errors, in time order") { id, maxRows };
        common.AddTo(command);
        command.SetAction((parse, ct) => RunAsync(parse, async (output, error) =>
        {
            string session = RequiredId(parse.GetValue(id), "replay");
            int rows = 50;
            if (Value(parse, maxRows) is { } text && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out rows) || rows < 0))
            {
                throw new RecordingLookupException($"--max-rows is a number of rows, not '{text}'", Usage);
            }

            var place = common.Resolve(parse, needDirectory: !File.Exists(session));
            var digest = await RecordingFiles.ResolveAsync(session, place.Directory, place.Key, ct).ConfigureAwait(false);
            await RecordingReplay.WriteAsync(digest, RecordingDigest.ReadEventsAsync(digest.Path, place.Key, ct), output,
                new ReplayOptions { MaxRows = rows }, ct).ConfigureAwait(false);
            return await DamageAsync(digest, error).ConfigureAwait(false);
        }));
        return command;
    }

    public static Command Export()
    {
        var common = new CommonOptions();
        var id = Positional("id", "The session id, a unique prefix of it, or a recording file");
        var format = ValueOption("--format", "jsonl (the default and only format): one JSON object per event");
        var file = ValueOption("--output", "Write to this file (replaced if it exists) instead of standard output", "-o");
        var command = new Command("export", "Export a recorded session's events as JSON lines, for a SIEM (docs/recording-format.md)") { id, format, file };
        common.AddTo(command);
        command.SetAction((parse, ct) => RunAsync(parse, async (output, error) =>
        {
            string session = RequiredId(parse.GetValue(id), "export");
            if (Value(parse, format) is { } shape && shape != "jsonl")
            {
                throw new RecordingLookupException($"--format is jsonl, not '{shape}'", Usage);
            }

            var place = common.Resolve(parse, needDirectory: !File.Exists(session));
            var digest = await RecordingFiles.ResolveAsync(session, place.Directory, place.Key, ct).ConfigureAwait(false);
            var events = RecordingDigest.ReadEventsAsync(digest.Path, place.Key, ct);
            if (Value(parse, file) is { } target)
            {
                StreamWriter writer;
                try
                {
                    writer = new StreamWriter(target, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { NewLine = "\n" };
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new RecordingLookupException($"cannot write {target}: {ex.Message}", Failed);
                }

                await using (writer.ConfigureAwait(false))
                {
                    long lines = await RecordingExport.WriteJsonLinesAsync(digest, events, writer, ct).ConfigureAwait(false);
                    await error.WriteLineAsync($"{lines} events of session {digest.SessionId} written to {target}").ConfigureAwait(false);
                }
            }
            else
            {
                await RecordingExport.WriteJsonLinesAsync(digest, events, output, ct).ConfigureAwait(false);
            }

            return await DamageAsync(digest, error).ConfigureAwait(false);
        }));
        return command;
    }

    private static string RequiredId(string[]? ids, string command) => ids switch
    {
        [{ Length: > 0 } id] when !id.StartsWith('-') || File.Exists(id) => id,
        [{ } id] when id.StartsWith('-') => throw new RecordingLookupException($"unknown option {id} (see gatehouse {command} --help)", Usage),
        [_, _, ..] => throw new RecordingLookupException($"one session at a time: gatehouse {command} ID (got {string.Join(' ', ids)})", Usage),
        _ => throw new RecordingLookupException($"say which session: gatehouse {command} ID (a session id, a unique prefix of it, or a recording file)", Usage),
    };

    /// <summary>
    /// An option that takes a value. Its arity admits none, so that a missing value is reported by
    /// <see cref="Value"/> as a usage error (exit 2) rather than by the parser (which exits 1, the code for a damaged recording).
    /// </summary>
    private static Option<string?> ValueOption(string name, string description, params string[] aliases) =>
        new(name, aliases) { Description = description, Arity = ArgumentArity.ZeroOrOne };

    /// <summary>Positional words; any number, so that extra or unknown ones are this command's usage errors (exit 2), not the parser's.</summary>
    private static Argument<string[]> Positional(string name, string description, bool hidden = false) =>
        new(name) { Description = description, Arity = ArgumentArity.ZeroOrMore, Hidden = hidden };

    /// <summary>The option's value; a usage error when the option was given without one.</summary>
    private static string? Value(ParseResult parse, Option<string?> option)
    {
        if (parse.GetResult(option) is { Implicit: false } result && result.Tokens.Count == 0)
        {
            throw new RecordingLookupException($"{option.Name} needs a value (see --help)", Usage);
        }

        return parse.GetValue(option);
    }

    private static void NoPositional(ParseResult parse, Argument<string[]> extra)
    {
        if (parse.GetValue(extra) is [{ } first, ..])
        {
            throw new RecordingLookupException(first.StartsWith('-') ? $"unknown option {first} (see --help)" : $"unexpected argument {first} (see --help)", Usage);
        }
    }

    /// <summary>
    /// After a replay or export: what <c>verify</c> would fail (damaged, signed with another key, cut short) is said
    /// again on standard error, and exits 1.
    /// </summary>
    private static async Task<int> DamageAsync(RecordedSession session, TextWriter error)
    {
        string? failure = session.Integrity == RecordingIntegrity.Damaged
            ? $"is damaged: {string.Join("; ", session.Problems)}"
            : session.Verification?.Has(RecordingProblemKind.KeyIdMismatch) == true
                ? $"is signed with key {session.KeyId}, not the key given: it was not verified"
                : session.Integrity == RecordingIntegrity.Unsealed && !RecordingFiles.IsBeingWritten(session.Path)
                    ? "has no final seal: it was cut short"
                    : null;
        if (failure is null)
        {
            return Ok;
        }

        await error.WriteLineAsync($"gatehouse: the recording {session.Path} {failure}").ConfigureAwait(false);
        return Failed;
    }

    private static DateTimeOffset? Time(string? text, string option, DateTimeOffset now)
    {
        if (text is null)
        {
            return null;
        }

        return TimeArgument.TryParse(text, now, out var time)
            ? time
            : throw new RecordingLookupException($"{option} is a duration back from now (2d, 90m) or an ISO 8601 time (2025-03-14T15:00:00Z), not '{text}'", Usage);
    }

    private static string Count(int n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>A session's integrity in a word or two: intact, recovered, unsealed, damaged; "unchecked" when signatures were not.</summary>
    private static string IntegrityWord(RecordedSession s) =>
        s.Integrity.ToString().ToLowerInvariant() + (s.SignaturesChecked || s.Integrity == RecordingIntegrity.Damaged ? "" : " (unchecked)");

    /// <summary>A duration to the tenth of a second below a minute, else in hours, minutes and seconds: <c>12.3s</c>, <c>4m05s</c>, <c>2h03m10s</c>.</summary>
    internal static string DurationOf(TimeSpan duration)
    {
        if (duration < TimeSpan.FromMinutes(1))
        {
            return duration.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";
        }

        return duration < TimeSpan.FromHours(1)
            ? $"{duration.Minutes}m{duration.Seconds:00}s"
            : $"{(int)duration.TotalHours}h{duration.Minutes:00}m{duration.Seconds:00}s";
    }

    private static string SessionsJson(IEnumerable<RecordedSession> sessions)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartArray();
            foreach (var s in sessions)
            {
                json.WriteStartObject();
                json.WriteString("session", s.SessionId);
                json.WriteString("path", s.Path);
                json.WriteString("protocol", s.Protocol);
                RecordingExport.Optional(json, "identity", s.Identity);
                RecordingExport.Optional(json, "connection", s.Connection);
                RecordingExport.Optional(json, "role", s.Role);
                RecordingExport.Optional(json, "client_address", s.ClientAddress);
                json.WriteString("start", RecordingExport.TimeText(s.Start));
                json.WriteString("end", RecordingExport.TimeText(s.End));
                json.WriteNumber("duration_seconds", Math.Round(s.Duration.TotalSeconds, 6));
                json.WriteNumber("statements", s.Statements.Count);
                json.WriteNumber("denied", s.Denied);
                json.WriteNumber("held", s.Held);
                json.WriteNumber("masked", s.MaskedValues);
                RecordingExport.Optional(json, "end_reason", s.EndReason);
                json.WriteString("integrity", s.Integrity.ToString().ToLowerInvariant());
                json.WriteBoolean("signatures_checked", s.SignaturesChecked);
                RecordingExport.Strings(json, "problems", s.Problems);
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Runs a command's work and turns failures into a message on standard error and an exit code.</summary>
    private static async Task<int> RunAsync(ParseResult parse, Func<TextWriter, TextWriter, Task<int>> work)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        if (parse.UnmatchedTokens.Count > 0)
        {
            await error.WriteLineAsync($"gatehouse: unexpected argument(s): {string.Join(' ', parse.UnmatchedTokens)} (see --help)").ConfigureAwait(false);
            return Usage;
        }

        try
        {
            return await work(output, error).ConfigureAwait(false);
        }
        catch (RecordingLookupException ex)
        {
            await error.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
            return ex.ExitCode;
        }
        catch (ConfigException ex)
        {
            await ex.WriteToAsync(error).ConfigureAwait(false);
            return Usage;
        }
    }

    /// <summary>Where the recordings are and the key that verifies them.</summary>
    private sealed record Place(string? Directory, RecordingKey? Key);

    /// <summary>The options every recording command takes: <c>--config</c>, <c>--dir</c>, <c>--key-file</c>, <c>--no-key</c>.</summary>
    private sealed class CommonOptions
    {
        private readonly Option<string?> _config = ValueOption("--config", "The gateway's config file: its recording section gives the folder and the key", "-c");

        private readonly Option<string?> _directory = ValueOption("--dir", "The recordings folder (instead of the config's)");

        private readonly Option<string?> _keyFile = ValueOption("--key-file", "A file holding the recording key (as the gateway reads it; instead of the config's)");

        private readonly Option<bool> _noKey = new("--no-key")
        {
            Description = "Read without the key: the hash chain shows damage and reordering, but a deliberate rewrite is not detected",
        };

        public void AddTo(Command command)
        {
            command.Options.Add(_config);
            command.Options.Add(_directory);
            command.Options.Add(_keyFile);
            command.Options.Add(_noKey);
        }

        public Place Resolve(ParseResult parse, bool needDirectory)
        {
            string? configFile = Value(parse, _config);
            string? directory = Value(parse, _directory);
            string? keyFile = Value(parse, _keyFile);
            bool noKey = parse.GetValue(_noKey);
            RecordingConfig? recording = configFile is null ? null : ConfigLoader.LoadFile(Path.GetFullPath(configFile)).Recording;
            directory = directory is not null ? Path.GetFullPath(directory) : recording?.Directory;
            if (needDirectory && directory is null)
            {
                throw new RecordingLookupException("say where the recordings are: --config FILE (its recording section) or --dir DIR", Usage);
            }

            if (noKey)
            {
                return keyFile is null
                    ? new Place(directory, null)
                    : throw new RecordingLookupException("--no-key and --key-file contradict each other", Usage);
            }

            try
            {
                if (keyFile is not null)
                {
                    // The same reading as the gateway's: the file's text, trimmed; the key id is its fingerprint.
                    return new Place(directory, new RecordingConfig(directory ?? ".") { GeneratedKeyFile = Path.GetFullPath(keyFile) }.LoadKey(create: false));
                }

                if (recording is not null)
                {
                    return new Place(directory, recording.LoadKey(create: false));
                }
            }
            catch (InvalidOperationException ex)
            {
                throw new RecordingLookupException($"cannot verify without the key: {ex.Message} (or use --no-key to check the hash chain only)", Usage);
            }

            throw new RecordingLookupException("cannot verify without the key: give --config FILE or --key-file FILE (or --no-key to check the hash chain only)", Usage);
        }
    }
}
