using Gatehouse.Engine.Recording;

namespace Gatehouse.Host.Recordings;

/// <summary>A recording could not be found or read; <see cref="ExitCode"/> is what the command returns.</summary>
public sealed class RecordingLookupException(string message, int exitCode) : Exception(message)
{
    /// <summary>1: not found or unreadable; 2: the request was ambiguous or incomplete.</summary>
    public int ExitCode { get; } = exitCode;
}

/// <summary>Finds recordings in the recordings folder: every file, or the one of a session id (or a unique prefix of it).</summary>
public static class RecordingFiles
{
    /// <summary>Every recording (<c>*.ghrec.lz4</c>) in the folder and below, in file name order (start time, then session id).</summary>
    /// <exception cref="RecordingLookupException">The folder does not exist or cannot be listed.</exception>
    public static IReadOnlyList<string> Find(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new RecordingLookupException($"the recording folder {directory} does not exist", 1);
        }

        try
        {
            return Directory.EnumerateFiles(directory, "*" + RecordingService.FileExtension, SearchOption.AllDirectories)
                .OrderBy(Path.GetFileName, StringComparer.Ordinal)
                .ThenBy(p => p, StringComparer.Ordinal)
                .ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new RecordingLookupException($"cannot list the recording folder {directory}: {ex.Message}", 1);
        }
    }

    /// <summary>
    /// Whether a gateway is writing the file now: its writer holds a shared lock (docs/recording-format.md, "File
    /// name"), so an exclusive open fails. False when the file can be opened exclusively, or not at all.
    /// </summary>
    public static bool IsBeingWritten(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None, 1);
            return false;
        }
        catch (IOException) when (File.Exists(path))
        {
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// The recording of a session, read and verified: <paramref name="idOrPath"/> is a recording file's path, a
    /// session id, or a prefix of exactly one session id in <paramref name="directory"/>.
    /// </summary>
    /// <exception cref="RecordingLookupException">No such recording, an ambiguous prefix, or a file that cannot be read.</exception>
    public static async Task<RecordedSession> ResolveAsync(string idOrPath, string? directory, RecordingKey? key, CancellationToken cancellationToken = default)
    {
        if (File.Exists(idOrPath))
        {
            return await ReadAsync(idOrPath, key, cancellationToken).ConfigureAwait(false);
        }

        if (directory is null)
        {
            throw new RecordingLookupException($"{idOrPath} is not a file; say where the recordings are (--config FILE or --dir DIR) to look it up as a session id", 2);
        }

        if (idOrPath.Length == 0)
        {
            throw new RecordingLookupException("say which session: its id, a prefix of it, or a recording file", 2);
        }

        var files = Find(directory);
        // The id as the gateway spells it in file names (any start time will do: only the id part is kept).
        string wanted = RecordingService.SessionIdFromFileName(RecordingService.FileName(DateTimeOffset.UnixEpoch, idOrPath));
        var candidates = files.Where(f => RecordingService.SessionIdFromFileName(f).StartsWith(wanted, StringComparison.Ordinal)).ToList();
        var exactNames = candidates.Where(f => RecordingService.SessionIdFromFileName(f) == wanted).ToList();
        if (exactNames.Count > 0)
        {
            // A file name keeps 100 characters of the id and replaces some: the id in the recording decides.
            var sessions = new List<RecordedSession>();
            foreach (string file in exactNames)
            {
                sessions.Add(await ReadAsync(file, key, cancellationToken).ConfigureAwait(false));
            }

            var exact = sessions.Where(s => s.SessionId == idOrPath).ToList();
            if (exact.Count == 1 || (exact.Count == 0 && sessions.Count == 1))
            {
                return exact.Count == 1 ? exact[0] : sessions[0];
            }

            if (exact.Count > 1)
            {
                throw new RecordingLookupException(
                    $"session {idOrPath} has {exact.Count} recordings in {directory}: {string.Join(", ", exact.Select(s => s.Path))}; give the file", 2);
            }

            var prefixed = sessions.Where(s => s.SessionId.StartsWith(idOrPath, StringComparison.Ordinal)).ToList();
            if (prefixed.Count == 1)
            {
                return prefixed[0];
            }

            candidates = prefixed.Count > 1 ? [.. prefixed.Select(s => s.Path)] : exactNames;
        }

        if (candidates.Count == 0)
        {
            throw new RecordingLookupException($"no recording of session {idOrPath} in {directory}", 1);
        }

        if (candidates.Count > 1)
        {
            var ids = candidates.Select(RecordingService.SessionIdFromFileName).Distinct(StringComparer.Ordinal).ToList();
            throw new RecordingLookupException(
                $"session id prefix {idOrPath} is ambiguous in {directory}: it starts {candidates.Count} sessions ({string.Join(", ", ids.Take(10))}{(ids.Count > 10 ? ", ..." : "")}); give more of the id", 2);
        }

        return await ReadAsync(candidates[0], key, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads a recording's digest; an unreadable file is a <see cref="RecordingLookupException"/>.</summary>
    public static async Task<RecordedSession> ReadAsync(string path, RecordingKey? key, CancellationToken cancellationToken = default)
    {
        try
        {
            return await RecordingDigest.ReadAsync(path, key, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new RecordingLookupException($"cannot read {path}: {ex.Message}", 1);
        }
    }
}

/// <summary>Which sessions <c>gatehouse sessions list</c> shows.</summary>
public sealed record SessionFilter
{
    /// <summary>Only sessions of this identity (exact).</summary>
    public string? Identity { get; init; }

    /// <summary>Only sessions on this connection (exact).</summary>
    public string? Connection { get; init; }

    /// <summary>Only sessions that started at or after this time.</summary>
    public DateTimeOffset? Since { get; init; }

    /// <summary>Only sessions that started at or before this time.</summary>
    public DateTimeOffset? Until { get; init; }

    /// <summary>Only sessions with at least one statement decided so: <see cref="RecordedDecision.Denied"/>, <see cref="RecordedDecision.Held"/> or <see cref="RecordedDecision.Allowed"/>.</summary>
    public RecordedDecision? Decision { get; init; }

    /// <summary>Whether the session passes every criterion given.</summary>
    public bool Matches(RecordedSession session) =>
        (Identity is null || session.Identity == Identity)
        && (Connection is null || session.Connection == Connection)
        && (Since is null || session.Start >= Since)
        && (Until is null || session.Start <= Until)
        && Decision switch
        {
            null => true,
            RecordedDecision.Held => session.Held > 0,
            { } outcome => session.Statements.Any(s => s.Decided && s.Outcome == outcome),
        };
}
