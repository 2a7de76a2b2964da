using System.CommandLine;
using System.Text;
using Gatehouse.Host.Config;
using Gatehouse.Host.Recordings;
using Gatehouse.Host.Review;
using Gatehouse.Host.State;

namespace Gatehouse.Host.Cli;

/// <summary>What one <c>gatehouse review</c> run asks for (the parsed command line).</summary>
/// <param name="ConfigFile">The gateway's config file: where the state store and the recordings are.</param>
/// <param name="Since">The window's start: a duration back from now or a date/time (<see cref="ReviewWindow"/>).</param>
/// <param name="Until">The window's end; null: now.</param>
/// <param name="Format">table, csv, json or html.</param>
/// <param name="Output">The file to write; null: standard output.</param>
internal sealed record ReviewRequest(string ConfigFile, string? Since, string? Until, IReadOnlyList<string> Identities, IReadOnlyList<string> Connections,
    string Format, string? Output);

/// <summary>
/// <c>gatehouse review</c>: the access review (docs/review.md), read from the state store and the session recordings
/// the config names, without a running gateway. Exit codes: 0 written, 1 the state store or the recordings could not
/// be read, 2 bad input or config (including a state store that does not exist).
/// </summary>
internal static class ReviewCommand
{
    /// <summary>The formats, as <c>--format</c> takes them.</summary>
    public static readonly IReadOnlyList<string> Formats = ["table", "csv", "json", "html"];

    /// <summary>The command, reading recordings through <paramref name="sessions"/> (default: <see cref="DefaultSessions"/>).</summary>
    public static Command Create(Func<GatehouseConfig, ICollection<string>, IReviewSessionSource>? sessions = null)
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The gateway's config file (its state and recording sections)", Required = true };
        var since = new Option<string>("--since")
        {
            Description = "The window's start: a duration back from now (30d, 12h) or a UTC date or time (2030-01-02, 2030-01-02T09:00Z)",
            Required = true,
        };
        var until = new Option<string?>("--until") { Description = "The window's end, in the same forms; default: now" };
        var identity = new Option<string[]>("--identity") { Description = "Only this identity (repeat for several)" };
        var connection = new Option<string[]>("--connection") { Description = "Only this connection (repeat for several)" };
        var format = new Option<string>("--format", "-f")
        {
            Description = "table (default), csv, json or html (one self-contained page)",
            DefaultValueFactory = _ => "table",
        };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write to this file (created readable by its owner only) instead of standard output" };
        var command = new Command("review",
            "The access review: who had access to what, approved by whom, for how long, and what they ran and saw (see docs/review.md)")
        {
            config, since, until, identity, connection, format, output,
        };
        command.SetAction((parse, ct) => RunAsync(
            new ReviewRequest(parse.GetValue(config)!.FullName, parse.GetValue(since), parse.GetValue(until), parse.GetValue(identity) ?? [],
                parse.GetValue(connection) ?? [], parse.GetValue(format) ?? "table", parse.GetValue(output)?.FullName),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, sessions ?? DefaultSessions, TimeProvider.System, ct));
        return command;
    }

    /// <summary>
    /// Where sessions come from when the caller does not say: the recordings folder, verified with the recording key.
    /// Without recordings (recording: off) or without the key, the report says so in its warnings.
    /// </summary>
    internal static IReviewSessionSource DefaultSessions(GatehouseConfig config, ICollection<string> notes)
    {
        if (!config.Recording.Enabled)
        {
            notes.Add("recording is off in the config (recording: off): sessions come from the state store, without what they ran");
            return NoRecordedSessions.Instance;
        }

        Engine.Recording.RecordingKey? key = null;
        try
        {
            key = config.Recording.LoadKey(create: false);
        }
        catch (InvalidOperationException ex)
        {
            notes.Add($"recordings are read without their key, so their seals are not checked: {ex.Message}");
        }

        return new Review.RecordingDirectorySource(config.Recording.Directory, key);
    }

    /// <summary>Runs one review; returns the exit code.</summary>
    internal static async Task<int> RunAsync(ReviewRequest request, TextWriter stdout, TextWriter stderr,
        Func<GatehouseConfig, ICollection<string>, IReviewSessionSource> sessions, TimeProvider time, CancellationToken ct)
    {
        string format = request.Format.Trim().ToLowerInvariant();
        if (!Formats.Contains(format))
        {
            await stderr.WriteLineAsync($"gatehouse: unknown format '{request.Format}': use table, csv, json or html").ConfigureAwait(false);
            return 2;
        }

        GatehouseConfig config;
        try
        {
            config = ConfigLoader.LoadFile(request.ConfigFile);
        }
        catch (ConfigException ex)
        {
            await ex.WriteToAsync(stderr).ConfigureAwait(false);
            return 2;
        }

        var now = time.GetUtcNow();
        DateTimeOffset since, until;
        try
        {
            (since, until) = ReviewWindow.Parse(request.Since, request.Until, now);
        }
        catch (ReviewInputException ex)
        {
            await stderr.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
            return 2;
        }

        if (!File.Exists(config.State.Path))
        {
            await stderr.WriteLineAsync($"gatehouse: the state store {config.State.Path} does not exist (state.path in {request.ConfigFile}): "
                                        + "a gateway creates it on its first start; check the config names the gateway's file").ConfigureAwait(false);
            return 2;
        }

        ReviewReport report;
        try
        {
            await using var store = new SqliteStateStore(config.State.Path);
            await store.OpenAsync(ct).ConfigureAwait(false);
            var notes = new List<string>();
            var source = sessions(config, notes);
            var (standing, known) = StandingAccessReader.Read(config);
            report = await new ReviewBuilder(store, source).BuildAsync(new ReviewOptions
            {
                Since = since,
                Until = until,
                Now = now,
                Identities = request.Identities,
                Connections = request.Connections,
                Standing = standing,
                StandingKnown = known,
                Notes = notes,
            }, ct).ConfigureAwait(false);
        }
        catch (StateStoreException ex)
        {
            await stderr.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (RecordingLookupException ex)
        {
            // The recordings folder exists but cannot be listed.
            await stderr.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
            return ex.ExitCode;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or Microsoft.Data.Sqlite.SqliteException)
        {
            await stderr.WriteLineAsync($"gatehouse: cannot read what the review needs: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        try
        {
            if (request.Output is { } file)
            {
                await WriteFileAsync(file, report, format, ct).ConfigureAwait(false);
                await stdout.WriteLineAsync($"Wrote {file}: {report.Summary.Identities} identities, {report.Summary.Grants} grant(s), "
                                            + $"{report.Summary.Sessions} session(s), {report.Warnings.Count} warning(s).").ConfigureAwait(false);
            }
            else
            {
                await stdout.WriteAsync(Render(report, format)).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync($"gatehouse: cannot write {request.Output}: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        // The terminal table shows its warnings; for everything else, damaged evidence is said on standard error too.
        if (format != "table" || request.Output is not null)
        {
            foreach (var warning in report.Warnings.Where(ReviewBuilder.IsDamagedWarning))
            {
                await stderr.WriteLineAsync($"gatehouse: warning: {warning}").ConfigureAwait(false);
            }
        }

        return 0;
    }

    /// <summary>The report in one format, as text.</summary>
    internal static string Render(ReviewReport report, string format)
    {
        if (format == "json")
        {
            using var buffer = new MemoryStream();
            ReviewJsonWriter.Write(report, buffer);
            return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length) + "\n";
        }

        // The CSV and HTML writers end their own lines (the CSV with CRLF); the table's lines end with \n everywhere.
        var text = new StringWriter { NewLine = "\n" };
        Action<ReviewReport, TextWriter> write = format switch
        {
            "csv" => ReviewCsvWriter.Write,
            "html" => ReviewHtmlWriter.Write,
            _ => ReviewTableWriter.Write,
        };
        write(report, text);
        return text.ToString();
    }

    /// <summary>Writes beside the target and renames, so a reader never sees half a report; the file is the owner's only.</summary>
    private static async Task WriteFileAsync(string file, ReviewReport report, string format, CancellationToken ct)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".";
        if (!Directory.Exists(folder))
        {
            throw new IOException($"the folder {folder} does not exist");
        }

        string temp = Path.Combine(folder, $".{Path.GetFileName(file)}.{Environment.ProcessId}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            await using (var stream = new FileStream(temp, options))
            {
                byte[] bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(Render(report, format));
                await stream.WriteAsync(bytes, ct).ConfigureAwait(false);
                await stream.FlushAsync(ct).ConfigureAwait(false);
            }

            File.Move(temp, file, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
