using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Engine.Recording;

/// <summary>How long and how much to keep. A null limit does not apply.</summary>
/// <param name="MaxAge">Recordings last written longer ago than this are deleted.</param>
/// <param name="MaxTotalBytes">Beyond this total, the oldest recordings are deleted until the rest fits.</param>
public sealed record RecordingRetentionPolicy(TimeSpan? MaxAge, long? MaxTotalBytes);

/// <summary>What a retention pass did.</summary>
public sealed class RecordingRetentionResult
{
    /// <summary>Files deleted, oldest first.</summary>
    public required IReadOnlyList<string> Deleted { get; init; }

    /// <summary>Bytes freed.</summary>
    public required long DeletedBytes { get; init; }

    /// <summary>Files that were due but are open for writing (kept).</summary>
    public required IReadOnlyList<string> SkippedOpen { get; init; }

    /// <summary>Files that were due but could not be deleted (kept; logged).</summary>
    public required IReadOnlyList<string> Failed { get; init; }

    /// <summary>Recordings left.</summary>
    public required int KeptFiles { get; init; }

    /// <summary>Bytes left.</summary>
    public required long KeptBytes { get; init; }
}

/// <summary>
/// Deletes recordings older than an age and, beyond a total size, the oldest ones (by last write) until the rest
/// fits. A recording open for writing is never deleted: the writer holds a shared lock on its file, and a
/// recording is deleted only under an exclusive one (so this holds across processes too), or when the caller's
/// <c>isOpen</c> (e.g. <see cref="RecordingService.IsOpen"/>) says so.
/// </summary>
public static class RecordingRetention
{
    /// <summary>One pass over <paramref name="directory"/> (and below).</summary>
    public static RecordingRetentionResult Apply(string directory, RecordingRetentionPolicy policy, DateTimeOffset now,
        Func<string, bool>? isOpen = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(policy);
        logger ??= NullLogger.Instance;
        var files = new DirectoryInfo(directory)
            .EnumerateFiles("*" + RecordingFormat.FileExtension, SearchOption.AllDirectories)
            .OrderBy(f => f.LastWriteTimeUtc)
            .ThenBy(f => f.FullName, StringComparer.Ordinal)
            .ToList();
        long total = files.Sum(f => f.Length);
        DateTime? cutoff = policy.MaxAge is { } age ? now.UtcDateTime - age : null;
        var deleted = new List<string>();
        var skipped = new List<string>();
        var failed = new List<string>();
        long deletedBytes = 0;
        foreach (var file in files)
        {
            bool expired = file.LastWriteTimeUtc < cutoff;
            bool over = total > policy.MaxTotalBytes;
            if (!expired && !over)
            {
                break; // oldest first: no later file is older, and the total only shrinks
            }

            if (isOpen?.Invoke(file.FullName) == true)
            {
                skipped.Add(file.FullName);
                continue;
            }

            switch (TryDelete(file.FullName, out string? detail))
            {
                case DeleteResult.Deleted:
                    RecordingLog.RetentionDeleted(logger, file.FullName, file.Length, file.LastWriteTimeUtc);
                    deleted.Add(file.FullName);
                    deletedBytes += file.Length;
                    total -= file.Length;
                    break;
                case DeleteResult.Open:
                    skipped.Add(file.FullName);
                    break;
                default:
                    RecordingLog.RetentionFailed(logger, file.FullName, detail!);
                    failed.Add(file.FullName);
                    break;
            }
        }

        return new RecordingRetentionResult
        {
            Deleted = deleted,
            DeletedBytes = deletedBytes,
            SkippedOpen = skipped,
            Failed = failed,
            KeptFiles = files.Count - deleted.Count,
            KeptBytes = total,
        };
    }

    private enum DeleteResult
    {
        Deleted,
        Open,
        Failed,
    }

    private static DeleteResult TryDelete(string path, out string? detail)
    {
        detail = null;
        FileStream handle;
        try
        {
            // FileShare.None takes an exclusive lock, refused while a writer holds its shared one. DeleteOnClose
            // removes the file as the lock is released, so no writer can open it in between.
            handle = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (FileNotFoundException)
        {
            return DeleteResult.Deleted; // gone already
        }
        catch (IOException ex) when (ex.HResult == 11 || ex.Message.Contains("being used by another process", StringComparison.Ordinal))
        {
            return DeleteResult.Open; // EWOULDBLOCK on the lock: a writer has it
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            detail = ex.Message;
            return DeleteResult.Failed;
        }

        try
        {
            handle.Dispose();
            return DeleteResult.Deleted;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            detail = ex.Message;
            return DeleteResult.Failed;
        }
    }
}
