using System.Text;

namespace Gatehouse.Engine.Recording;

/// <summary>What a verification concluded about a recording as a whole.</summary>
public enum RecordingIntegrity
{
    /// <summary>Every block is present, in order, matches its seal, and the writer's final seal ends the file.</summary>
    Intact,

    /// <summary>
    /// Intact up to a final seal written by <see cref="RecordingRecovery"/>: the writer did not finish (the process
    /// died), so what was recorded after the last block before recovery was lost.
    /// </summary>
    Recovered,

    /// <summary>No final seal: readable and verified as far as it goes, but possibly truncated (see the problems).</summary>
    Unsealed,

    /// <summary>Something was altered, removed, reordered or signed with another key (see the problems).</summary>
    Damaged,
}

/// <summary>One thing wrong with a recording.</summary>
public enum RecordingProblemKind
{
    /// <summary>Block 0 does not start with a valid header, or a header appears elsewhere.</summary>
    BadHeader,

    /// <summary>The recording's format or seal version is newer than this reader.</summary>
    UnsupportedVersion,

    /// <summary>The header names another key than the one given: signatures were not checked.</summary>
    KeyIdMismatch,

    /// <summary>No block's signature verifies with the key given, though the hash chain is whole: the wrong key.</summary>
    WrongKey,

    /// <summary>A block's content does not match its seal's hash, or cannot be decompressed or parsed.</summary>
    AlteredBlock,

    /// <summary>A block's seal is not signed by the key (the seal was forged or altered).</summary>
    BadSignature,

    /// <summary>Blocks are missing (deleted): their indexes never appear.</summary>
    MissingBlocks,

    /// <summary>A block appears after a block with a higher index.</summary>
    ReorderedBlock,

    /// <summary>A block index appears twice.</summary>
    DuplicateBlock,

    /// <summary>A block does not link to the block before it (the chain value differs: spliced from elsewhere).</summary>
    ChainBroken,

    /// <summary>The file ends inside a block (a partial LZ4 frame): the writer was stopped or the file was cut.</summary>
    TruncatedBlock,

    /// <summary>There is no final seal: the recording may be truncated after its last block.</summary>
    Unsealed,

    /// <summary>Blocks follow the final seal.</summary>
    DataAfterSeal,

    /// <summary>Bytes that are not an LZ4 frame (skipped to the next frame).</summary>
    UnexpectedData,
}

/// <summary>One thing wrong, where it is, and what exactly.</summary>
/// <param name="Kind">What is wrong.</param>
/// <param name="Block">The block index concerned (for an unreadable block, the index it should have had), or -1.</param>
/// <param name="FileOffset">Where in the file (the start of the frame concerned), or -1.</param>
/// <param name="Detail">A sentence for people.</param>
public readonly record struct RecordingProblem(RecordingProblemKind Kind, long Block, long FileOffset, string Detail)
{
    public override string ToString() => $"{Kind}: {Detail}";
}

/// <summary>How one block fared.</summary>
public enum RecordingBlockStatus
{
    /// <summary>Content matches the seal; the seal's signature is valid (or was not checked: no key).</summary>
    Verified,

    /// <summary>Decoded, but the content does not match its (authentic) seal.</summary>
    Altered,

    /// <summary>The seal's signature is not the key's.</summary>
    BadSignature,

    /// <summary>Cannot be decompressed, parsed, or has no seal.</summary>
    Unreadable,
}

/// <summary>One block (one LZ4 frame) of a recording, in file order.</summary>
public sealed class RecordingBlockInfo
{
    /// <summary>The index in its seal (for an unreadable block, the index it should have had).</summary>
    public required long Index { get; init; }

    /// <summary>Start of the block's LZ4 frame in the file.</summary>
    public required long FileOffset { get; init; }

    /// <summary>Length of the LZ4 frame.</summary>
    public required int FileLength { get; init; }

    /// <summary>Offset of the block in the decompressed stream.</summary>
    public required long StreamOffset { get; init; }

    /// <summary>Decompressed length, seal included.</summary>
    public required int Length { get; init; }

    /// <summary>Event records in the block.</summary>
    public required int Events { get; init; }

    /// <summary>How it fared.</summary>
    public required RecordingBlockStatus Status { get; init; }

    /// <summary>The writer's final seal (or recovery's).</summary>
    public bool Final { get; init; }

    /// <summary>Sealed by recovery.</summary>
    public bool Recovered { get; init; }

    /// <summary>The chain value h(i) in the seal (empty when unreadable).</summary>
    public ReadOnlyMemory<byte> ChainValue { get; init; }

    /// <summary>The seal's time, in microseconds since the session started.</summary>
    public ulong SealTimeMicros { get; init; }

    /// <summary>Whether the seal's signature was checked and valid.</summary>
    internal bool SignatureValid { get; init; }
}

/// <summary>Everything <see cref="RecordingReader"/> found: the conclusion, each problem, each block.</summary>
public sealed class RecordingVerification
{
    /// <summary>The conclusion.</summary>
    public required RecordingIntegrity Integrity { get; init; }

    /// <summary>The header, when block 0 was readable.</summary>
    public RecordingHeader? Header { get; init; }

    /// <summary>Whether seal signatures were checked (a key was given and its id matches the header's).</summary>
    public required bool SignaturesChecked { get; init; }

    /// <summary>Everything wrong, in file order (then missing blocks, then the missing seal).</summary>
    public required IReadOnlyList<RecordingProblem> Problems { get; init; }

    /// <summary>Every block in file order.</summary>
    public required IReadOnlyList<RecordingBlockInfo> Blocks { get; init; }

    /// <summary>Event records in verified blocks.</summary>
    public required long Events { get; init; }

    /// <summary>Blocks 0..n-1 verified, in order, with no problem: the verified prefix.</summary>
    public required long VerifiedBlocks { get; init; }

    /// <summary>End of the verified prefix in the file (where a truncation after it starts).</summary>
    public required long VerifiedFileOffset { get; init; }

    /// <summary>End of the verified prefix in the decompressed stream.</summary>
    public required long VerifiedStreamOffset { get; init; }

    /// <summary>Time of the last verified seal, in microseconds since the session started.</summary>
    public required ulong VerifiedTimeMicros { get; init; }

    /// <summary>Length of the file read.</summary>
    public required long FileLength { get; init; }

    /// <summary>A final seal was found (the writer's or recovery's).</summary>
    public bool IsSealed => Integrity is RecordingIntegrity.Intact or RecordingIntegrity.Recovered
        || Blocks.Any(b => b.Final && b.Status == RecordingBlockStatus.Verified);

    /// <summary>Whether a problem of this kind was found.</summary>
    public bool Has(RecordingProblemKind kind) => Problems.Any(p => p.Kind == kind);

    /// <summary>A short report for people: the conclusion, then one line per problem.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(Integrity).Append(": ").Append(Blocks.Count).Append(" blocks, ").Append(Events).Append(" events, verified through block ")
            .Append(VerifiedBlocks - 1).Append(" (file offset ").Append(VerifiedFileOffset).Append(')');
        if (!SignaturesChecked)
        {
            text.Append(", signatures not checked");
        }

        foreach (var problem in Problems)
        {
            text.AppendLine().Append("  ").Append(problem);
        }

        return text.ToString();
    }
}

/// <summary>The header of a recording (record kind 0x01, first in block 0).</summary>
public sealed class RecordingHeader
{
    /// <summary>Format version (1).</summary>
    public required int FormatVersion { get; init; }

    /// <summary>The session id (cut to 255 UTF-8 bytes).</summary>
    public required string SessionId { get; init; }

    /// <summary>The id of the key that signs the seals.</summary>
    public required string KeyId { get; init; }

    /// <summary>The random nonce that seeds the chain with the session id.</summary>
    public required ReadOnlyMemory<byte> Nonce { get; init; }

    /// <summary>Wall-clock start of the session: event times are offsets from it.</summary>
    public required DateTimeOffset StartTime { get; init; }
}

/// <summary>One event read from a recording.</summary>
/// <param name="Kind">The record kind (unknown kinds are passed through).</param>
/// <param name="Direction">Which way the bytes went.</param>
/// <param name="TimeMicros">Microseconds since the session started.</param>
/// <param name="Payload">The payload; the memory stays valid (each block has its own buffer).</param>
/// <param name="Block">The block it came from.</param>
/// <param name="Verified">Whether its block verified (false only with <see cref="RecordingReaderOptions.IncludeUnverified"/>).</param>
public readonly record struct RecordingEvent(RecordKind Kind, RecordDirection Direction, ulong TimeMicros, ReadOnlyMemory<byte> Payload, long Block, bool Verified)
{
    /// <summary>The time since the session started.</summary>
    public TimeSpan Time => TimeSpan.FromMicroseconds(TimeMicros);
}
