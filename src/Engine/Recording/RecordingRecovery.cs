using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Engine.Recording;

/// <summary>What <see cref="RecordingRecovery.SealAsync"/> did.</summary>
public enum RecordingRecoveryOutcome
{
    /// <summary>The recording has a final seal already: left alone.</summary>
    AlreadySealed,

    /// <summary>A recovery seal was appended (after any partial block was cut off).</summary>
    Sealed,

    /// <summary>The file holds no whole block (the writer died within its first interval): nothing can be sealed.</summary>
    Empty,

    /// <summary>Not sealed: the file is being written, the key does not match, or its last block is damaged.</summary>
    Refused,
}

/// <summary>The result of sealing one left-over recording.</summary>
public sealed class RecordingRecoveryResult
{
    /// <summary>The file.</summary>
    public required string Path { get; init; }

    /// <summary>What was done.</summary>
    public required RecordingRecoveryOutcome Outcome { get; init; }

    /// <summary>The verification before anything was changed (null when the file could not be opened).</summary>
    public RecordingVerification? Before { get; init; }

    /// <summary>Bytes of a partial last block cut off before the seal (they could not have been verified).</summary>
    public long DiscardedBytes { get; init; }

    /// <summary>The index of the block the recovery seal follows, or -1.</summary>
    public long SealedAfterBlock { get; init; } = -1;

    /// <summary>Why, in words.</summary>
    public required string Detail { get; init; }
}

/// <summary>
/// Seals recordings that a killed process left without a final seal, so that the next start leaves every recording
/// sealed: the file is verified, a partial last block (a frame cut by the crash) is cut off, and a block holding a
/// <see cref="RecordKind.Recovery"/> event is appended under a seal flagged <c>Final | Recovered</c>, chained to the
/// last block. A verifier then reports <see cref="RecordingIntegrity.Recovered"/>: what is there is intact, and what
/// the dead writer had not written yet (at most about one flush interval) is lost. Problems found before stay
/// visible: recovery never seals after a damaged last block, and never rewrites earlier blocks.
/// </summary>
public static class RecordingRecovery
{
    /// <summary>Seals one recording if it is unsealed. Takes an exclusive lock: a file being written is refused.</summary>
    public static async Task<RecordingRecoveryResult> SealAsync(string path, RecordingKey key, ILogger? logger = null,
        TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(key);
        logger ??= NullLogger.Instance;
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Refuse(logger, path, null, $"cannot open it exclusively (being written?): {ex.Message}");
        }

        await using (file.ConfigureAwait(false))
        {
            RecordingVerification before;
            await using (var reader = new RecordingReader(file, key, leaveOpen: true))
            {
                before = await reader.VerifyAsync(cancellationToken).ConfigureAwait(false);
            }

            if (before.Blocks.Any(b => b.Final && b.Status == RecordingBlockStatus.Verified))
            {
                return new RecordingRecoveryResult { Path = path, Outcome = RecordingRecoveryOutcome.AlreadySealed, Before = before, Detail = "already sealed" };
            }

            if (!before.SignaturesChecked || before.Has(RecordingProblemKind.WrongKey))
            {
                return Refuse(logger, path, before, $"its seals cannot be verified with key '{key.Id}', so it cannot be sealed with it");
            }

            if (before.Blocks.Count == 0 || before.Header is null)
            {
                return new RecordingRecoveryResult
                {
                    Path = path,
                    Outcome = RecordingRecoveryOutcome.Empty,
                    Before = before,
                    Detail = $"no whole block with a header ({before.FileLength} bytes): nothing to seal",
                };
            }

            var last = before.Blocks[^1];
            if (last.Status is not (RecordingBlockStatus.Verified or RecordingBlockStatus.Altered))
            {
                return Refuse(logger, path, before, $"its last block ({last.Index}, file offset {last.FileOffset}) is {last.Status}: sealing after it would vouch for it");
            }

            long end = last.FileOffset + last.FileLength;
            long discarded = file.Length - end;
            file.SetLength(end);
            file.Position = end;

            var chain = new RecordingChain { NextIndex = last.Index + 1, StreamOffset = last.StreamOffset + last.Length, FileOffset = end };
            last.ChainValue.Span.CopyTo(chain.Value);
            DateTimeOffset now = (timeProvider ?? TimeProvider.System).GetUtcNow();
            ulong sinceStart = (ulong)Math.Max(0, (now - before.Header.StartTime).Ticks / TimeSpan.TicksPerMicrosecond);
            ulong time = Math.Max(last.SealTimeMicros, sinceStart);

            byte[] json = RecoveryEvent(now, last.Index, discarded, before);
            var buffer = new byte[RecordingFormat.RecordHeaderLength(time, json.Length) + json.Length + RecordingFormat.SealReserve];
            int n = RecordingFormat.WriteRecordHeader(buffer, RecordKind.Recovery, RecordDirection.None, time, json.Length);
            json.CopyTo(buffer, n);
            using (var sealer = new BlockSealer(key, 64 * 1024, RecordingOptions.DefaultAcceleration))
            {
                sealer.WriteBlock(file, buffer, n + json.Length, chain, SealFlags.Final | SealFlags.Recovered, time);
            }

            file.Flush(flushToDisk: true);
            RecordingLog.RecoverySealed(logger, path, last.Index, discarded);
            return new RecordingRecoveryResult
            {
                Path = path,
                Outcome = RecordingRecoveryOutcome.Sealed,
                Before = before,
                DiscardedBytes = discarded,
                SealedAfterBlock = last.Index,
                Detail = $"sealed after block {last.Index}" + (discarded > 0 ? $", {discarded} bytes of a partial block cut off" : ""),
            };
        }
    }

    /// <summary>
    /// Seals every unsealed recording in a directory (and below), skipping those being written; meant for start-up,
    /// before the service writes new ones. Every file is read whole once.
    /// </summary>
    public static async Task<IReadOnlyList<RecordingRecoveryResult>> SealDirectoryAsync(string directory, RecordingKey key, ILogger? logger = null,
        CancellationToken cancellationToken = default)
    {
        var results = new List<RecordingRecoveryResult>();
        foreach (string path in Directory.EnumerateFiles(directory, "*" + RecordingFormat.FileExtension, SearchOption.AllDirectories))
        {
            results.Add(await SealAsync(path, key, logger, null, cancellationToken).ConfigureAwait(false));
        }

        return results;
    }

    private static byte[] RecoveryEvent(DateTimeOffset now, long lastBlock, long discarded, RecordingVerification before)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream))
        {
            json.WriteStartObject();
            json.WriteString("reason", "unsealed");
            json.WriteString("recovered_at", now.ToUniversalTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteNumber("last_block", lastBlock);
            json.WriteNumber("discarded_bytes", discarded);
            json.WriteStartArray("problems");
            foreach (var problem in before.Problems)
            {
                if (problem.Kind is not RecordingProblemKind.Unsealed and not RecordingProblemKind.TruncatedBlock)
                {
                    json.WriteStringValue(problem.ToString());
                }
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return stream.ToArray();
    }

    private static RecordingRecoveryResult Refuse(ILogger logger, string path, RecordingVerification? before, string detail)
    {
        RecordingLog.RecoveryRefused(logger, path, detail);
        return new RecordingRecoveryResult { Path = path, Outcome = RecordingRecoveryOutcome.Refused, Before = before, Detail = detail };
    }
}
