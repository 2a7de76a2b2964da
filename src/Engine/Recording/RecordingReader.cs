using System.Buffers;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using K4os.Compression.LZ4.Streams;

namespace Gatehouse.Engine.Recording;

/// <summary>Settings of a <see cref="RecordingReader"/>.</summary>
public sealed class RecordingReaderOptions
{
    /// <summary>Also yield the events of blocks that failed verification (marked <c>Verified = false</c>), for forensics.</summary>
    public bool IncludeUnverified { get; init; }

    /// <summary>
    /// Largest block (compressed or decompressed) the reader accepts. 64 MiB: far above what a writer makes (a block,
    /// or one record of at most half the writer's buffer), and a bound on the memory a hostile file can claim.
    /// </summary>
    public int MaxBlockBytes { get; init; } = 64 * 1024 * 1024;
}

/// <summary>
/// Reads a recording block by block: splits the file into LZ4 frames, decompresses each, checks its content against
/// its seal (SHA-256 chain), the seal's signature (HMAC-SHA256 with the key) and its place in the chain (index and
/// previous value), and only then yields its events. Every problem is recorded with the block and file offset
/// concerned; <see cref="Verification"/> has the conclusion once the file has been read to its end.
/// </summary>
public sealed class RecordingReader : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly RecordingKey? _key;
    private readonly RecordingReaderOptions _options;
    private readonly Lz4FrameInput _input;
    private readonly ArrayBufferWriter<byte> _decoded = new(128 * 1024);
    private readonly List<RecordRef> _records = [];
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly IncrementalHash? _hmac;

    private readonly List<RecordingProblem> _problems = [];
    private readonly List<RecordingBlockInfo> _blocks = [];
    private readonly Dictionary<long, byte[]> _trustedChain = [];
    private readonly Dictionary<long, long> _blockOffsets = [];
    private byte[]? _seed;
    private long _maxIndex = -1;
    private long _streamOffset;
    private long _events;
    private bool _signaturesChecked;
    private int _macChecked;
    private int _macFailed;
    private int _altered;
    private RecordingBlockInfo? _final;
    private bool _dataAfterSealReported;
    private bool _prefixIntact = true;
    private long _verifiedBlocks;
    private long _verifiedFileOffset;
    private long _verifiedStreamOffset;
    private ulong _verifiedTime;
    private bool _ended;
    private RecordingVerification? _verification;

    /// <param name="stream">The recording, read from its start.</param>
    /// <param name="key">The key to check seal signatures with; null reads and checks the hash chain only.</param>
    /// <param name="leaveOpen">Leave <paramref name="stream"/> open on disposal.</param>
    /// <param name="options">Limits and whether unverified events are yielded.</param>
    public RecordingReader(Stream stream, RecordingKey? key, bool leaveOpen = false, RecordingReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _leaveOpen = leaveOpen;
        _key = key;
        _options = options ?? new RecordingReaderOptions();
        _input = new Lz4FrameInput(stream, _options.MaxBlockBytes);
        if (key is not null)
        {
            _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.Secret);
            _signaturesChecked = true;
        }
    }

    /// <summary>Opens a recording file for reading (it may still be being written: what is there is read).</summary>
    public static RecordingReader Open(string path, RecordingKey? key, RecordingReaderOptions? options = null)
        => new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan),
            key, leaveOpen: false, options);

    /// <summary>Reads and verifies a whole recording file.</summary>
    public static async Task<RecordingVerification> VerifyAsync(string path, RecordingKey? key, CancellationToken cancellationToken = default)
    {
        await using var reader = Open(path, key);
        return await reader.VerifyAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The header, once block 0 has been read.</summary>
    public RecordingHeader? Header { get; private set; }

    /// <summary>The conclusion, once the whole file has been read (null before).</summary>
    public RecordingVerification? Verification => _verification;

    /// <summary>Reads the rest of the recording without yielding events, and returns the conclusion.</summary>
    public async Task<RecordingVerification> VerifyAsync(CancellationToken cancellationToken = default)
    {
        while (await ReadBlockAsync(keepContent: false, cancellationToken).ConfigureAwait(false) is not null)
        {
        }

        return _verification!;
    }

    /// <summary>
    /// Yields the events of each block once the block has been verified (the events of blocks that fail are left out
    /// unless <see cref="RecordingReaderOptions.IncludeUnverified"/>). Framing records (header, seals) are not events.
    /// </summary>
    public async IAsyncEnumerable<RecordingEvent> ReadEventsAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await ReadBlockAsync(keepContent: true, cancellationToken).ConfigureAwait(false) is { } block)
        {
            bool verified = block.Info.Status == RecordingBlockStatus.Verified;
            if (!verified && !_options.IncludeUnverified)
            {
                continue;
            }

            foreach (var record in block.Records)
            {
                if (IsEvent(record.Kind))
                {
                    yield return new RecordingEvent(record.Kind, record.Direction, record.TimeMicros,
                        block.Content.AsMemory(record.PayloadOffset, record.PayloadLength), block.Info.Index, verified);
                }
            }
        }
    }

    private static bool IsEvent(RecordKind kind) => (byte)kind >= RecordingFormat.FirstEventKind || kind == RecordKind.Recovery;

    /// <summary>A decoded block: its info, and (when asked) its own copy of the content with the records in it.</summary>
    private sealed record DecodedBlock(RecordingBlockInfo Info, byte[] Content, RecordRef[] Records);

    /// <summary>Reads, decodes and verifies the next block; null at the end of the file (the conclusion is then set).</summary>
    private async ValueTask<DecodedBlock?> ReadBlockAsync(bool keepContent, CancellationToken cancellationToken)
    {
        while (!_ended)
        {
            var frame = await _input.NextAsync(cancellationToken).ConfigureAwait(false);
            switch (frame.Kind)
            {
                case FrameKind.End:
                    Finish();
                    return null;
                case FrameKind.Truncated:
                    _prefixIntact = false;
                    _problems.Add(new RecordingProblem(RecordingProblemKind.TruncatedBlock, _maxIndex + 1, frame.Offset,
                        $"the file ends inside a block: {frame.Length} bytes at offset {frame.Offset} after block {_maxIndex} ({frame.Detail})"));
                    Finish();
                    return null;
                case FrameKind.Skippable:
                case FrameKind.Garbage:
                    _prefixIntact = false;
                    _problems.Add(new RecordingProblem(RecordingProblemKind.UnexpectedData, -1, frame.Offset,
                        $"{frame.Length} bytes at offset {frame.Offset} are not a recording block ({frame.Detail ?? "a skippable frame"})"));
                    continue;
                default:
                    var block = ProcessFrame(frame, keepContent);
                    if (block is not null)
                    {
                        return block;
                    }

                    continue;
            }
        }

        return null;
    }

    private DecodedBlock? ProcessFrame(in FrameInfo frame, bool keepContent)
    {
        long expected = _maxIndex + 1;
        _decoded.ResetWrittenCount();
        string? failure = null;
        if (frame.DecodedBound > _options.MaxBlockBytes + 4L * 1024 * 1024)
        {
            failure = $"it would decompress to more than the reader's limit of {_options.MaxBlockBytes} bytes";
        }
        else
        {
            try
            {
                LZ4Frame.Decode(_input.Current(frame), _decoded, 0);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                failure = $"it cannot be decompressed ({ex.GetType().Name}: {ex.Message})";
            }
        }

        ReadOnlySpan<byte> block = _decoded.WrittenSpan;
        failure ??= ParseRecords(block);
        if (failure is not null)
        {
            return Unreadable(frame, expected, failure);
        }

        var sealRef = _records[^1];
        ReadOnlySpan<byte> seal = block.Slice(sealRef.PayloadOffset, sealRef.PayloadLength);
        if (seal[0] != RecordingFormat.SealVersion)
        {
            _problems.Add(new RecordingProblem(RecordingProblemKind.UnsupportedVersion, expected, frame.Offset,
                $"the block at offset {frame.Offset} has seal version {seal[0]}, unknown to this reader"));
            return Unreadable(frame, expected, null);
        }

        if (seal.Length != RecordingFormat.SealPayloadLength)
        {
            return Unreadable(frame, expected, $"its seal is {seal.Length} bytes, not {RecordingFormat.SealPayloadLength}");
        }

        var flags = (SealFlags)seal[1];
        long index = (long)Math.Min(RecordingFormat.ReadUInt64(seal[2..]), long.MaxValue);
        ReadOnlySpan<byte> previous = seal.Slice(18, RecordingFormat.HashLength);
        ReadOnlySpan<byte> chainValue = seal.Slice(50, RecordingFormat.HashLength);
        ReadOnlySpan<byte> content = block[..sealRef.RecordOffset];

        if (index == 0)
        {
            ReadHeader(block, frame.Offset);
        }
        else if (_records.Count > 1 && _records[0].Kind == RecordKind.Header)
        {
            _problems.Add(new RecordingProblem(RecordingProblemKind.BadHeader, index, frame.Offset, $"block {index} holds a header record; only block 0 may"));
        }

        Span<byte> computed = stackalloc byte[RecordingFormat.HashLength];
        _sha.AppendData(previous);
        _sha.AppendData(content);
        _sha.GetHashAndReset(computed);
        bool contentMatches = computed.SequenceEqual(chainValue);

        bool? signatureValid = null;
        if (_signaturesChecked && _hmac is not null)
        {
            Span<byte> mac = stackalloc byte[RecordingFormat.HashLength];
            _hmac.AppendData(RecordingFormat.SealDomain);
            _hmac.AppendData(seal[..RecordingFormat.SealSignedLength]);
            _hmac.GetHashAndReset(mac);
            signatureValid = CryptographicOperations.FixedTimeEquals(mac, seal[RecordingFormat.SealSignedLength..]);
            _macChecked++;
            if (signatureValid == false)
            {
                _macFailed++;
            }
        }

        var status = !contentMatches ? RecordingBlockStatus.Altered
            : signatureValid == false ? RecordingBlockStatus.BadSignature
            : RecordingBlockStatus.Verified;
        if (status == RecordingBlockStatus.Altered)
        {
            _altered++;
            _problems.Add(new RecordingProblem(RecordingProblemKind.AlteredBlock, index, frame.Offset,
                $"block {index} (file offset {frame.Offset}) does not match its seal: its content was altered"
                + (signatureValid == false ? ", and the seal's signature is not the key's" : "")));
        }
        else if (status == RecordingBlockStatus.BadSignature)
        {
            _problems.Add(new RecordingProblem(RecordingProblemKind.BadSignature, index, frame.Offset,
                $"the seal of block {index} (file offset {frame.Offset}) is not signed by key '{_key!.Id}'"));
        }

        bool inOrder = true;
        if (_blockOffsets.TryGetValue(index, out long firstOffset))
        {
            inOrder = false;
            _problems.Add(new RecordingProblem(RecordingProblemKind.DuplicateBlock, index, frame.Offset,
                $"block {index} appears again at file offset {frame.Offset} (first at {firstOffset})"));
        }
        else if (index < _maxIndex)
        {
            inOrder = false;
            _problems.Add(new RecordingProblem(RecordingProblemKind.ReorderedBlock, index, frame.Offset,
                $"block {index} (file offset {frame.Offset}) comes after block {_maxIndex}: blocks were reordered"));
        }

        bool linked = CheckLink(index, previous, status, frame.Offset);
        if (status != RecordingBlockStatus.BadSignature)
        {
            // An authentic seal's chain value is what the next block must link to, even when this block's content was altered.
            _trustedChain[index] = chainValue.ToArray();
        }

        _blockOffsets.TryAdd(index, frame.Offset);
        _maxIndex = Math.Max(_maxIndex, index);

        bool final = (flags & SealFlags.Final) != 0;
        if (_final is not null && !_dataAfterSealReported)
        {
            _dataAfterSealReported = true;
            _problems.Add(new RecordingProblem(RecordingProblemKind.DataAfterSeal, index, frame.Offset,
                $"block {index} (file offset {frame.Offset}) follows the final seal of block {_final.Index}"));
        }

        int events = 0;
        foreach (var record in _records)
        {
            if (IsEvent(record.Kind))
            {
                events++;
            }
        }

        var info = new RecordingBlockInfo
        {
            Index = index,
            FileOffset = frame.Offset,
            FileLength = frame.Length,
            StreamOffset = _streamOffset,
            Length = block.Length,
            Events = events,
            Status = status,
            Final = final,
            Recovered = (flags & SealFlags.Recovered) != 0,
            ChainValue = chainValue.ToArray(),
            SealTimeMicros = sealRef.TimeMicros,
            SignatureValid = signatureValid == true,
        };
        _blocks.Add(info);
        if (final && status == RecordingBlockStatus.Verified && _final is null)
        {
            _final = info;
        }

        if (status == RecordingBlockStatus.Verified)
        {
            _events += events;
        }

        if (_prefixIntact && status == RecordingBlockStatus.Verified && inOrder && linked && index == _verifiedBlocks && !_dataAfterSealReported)
        {
            _verifiedBlocks++;
            _verifiedFileOffset = frame.Offset + frame.Length;
            _verifiedStreamOffset = _streamOffset + block.Length;
            _verifiedTime = sealRef.TimeMicros;
        }
        else
        {
            _prefixIntact = false;
        }

        _streamOffset += block.Length;
        return new DecodedBlock(info, keepContent ? block.ToArray() : [], keepContent ? [.. _records] : []);
    }

    /// <summary>Checks that a block's previous-value field is the chain value of the block before it (h0 for block 0).</summary>
    private bool CheckLink(long index, ReadOnlySpan<byte> previous, RecordingBlockStatus status, long offset)
    {
        if (status == RecordingBlockStatus.BadSignature)
        {
            return false; // the seal itself is not authentic: its link says nothing
        }

        byte[]? expected = index == 0 ? _seed : _trustedChain.GetValueOrDefault(index - 1);
        if (expected is null)
        {
            // No header, or the block before is missing, not read yet (reordered) or not authentic: reported on its own.
            return false;
        }

        if (previous.SequenceEqual(expected))
        {
            return true;
        }

        _problems.Add(new RecordingProblem(RecordingProblemKind.ChainBroken, index, offset, index == 0
            ? $"block 0 (file offset {offset}) is not chained to this recording's header (session id and nonce)"
            : $"block {index} (file offset {offset}) does not follow block {index - 1}: its chain link differs (spliced from another recording?)"));
        return false;
    }

    /// <summary>Reads the header record at the start of block 0, and decides whether signatures can be checked.</summary>
    private void ReadHeader(ReadOnlySpan<byte> block, long offset)
    {
        if (Header is not null)
        {
            return; // a duplicate block 0: reported as such
        }

        var first = _records[0];
        ReadOnlySpan<byte> payload = first.Kind == RecordKind.Header ? block.Slice(first.PayloadOffset, first.PayloadLength) : default;
        RecordingHeader? header = null;
        string? problem = first.Kind != RecordKind.Header ? "block 0 does not start with a header record" : ParseHeader(payload, out header);
        if (problem is not null || header is null)
        {
            _problems.Add(new RecordingProblem(
                problem?.StartsWith("format version", StringComparison.Ordinal) == true ? RecordingProblemKind.UnsupportedVersion : RecordingProblemKind.BadHeader,
                0, offset, problem ?? "the header is unreadable"));
            return;
        }

        Header = header;
        _seed = new byte[RecordingFormat.HashLength];
        BlockSealer.ComputeChainSeed(payload, _seed);
        if (_key is not null && !string.Equals(header.KeyId, _key.Id, StringComparison.Ordinal))
        {
            _signaturesChecked = false;
            _problems.Add(new RecordingProblem(RecordingProblemKind.KeyIdMismatch, 0, offset,
                $"the recording is signed with key '{header.KeyId}', not '{_key.Id}': signatures were not checked"));
        }
    }

    private static string? ParseHeader(ReadOnlySpan<byte> payload, out RecordingHeader? header)
    {
        header = null;
        if (payload.Length < RecordingFormat.HeaderFixedLength + 2 || !payload.StartsWith(RecordingFormat.Magic))
        {
            return "the header record is too short or lacks the GHRC magic";
        }

        if (payload[4] != RecordingFormat.FormatVersion || payload[5] != RecordingFormat.HashSha256)
        {
            return $"format version {payload[4]} with hash {payload[5]} is unknown to this reader";
        }

        int offset = RecordingFormat.HeaderFixedLength;
        int sessionLength = payload[offset++];
        if (offset + sessionLength + 1 > payload.Length)
        {
            return "the header's session id runs past its end";
        }

        string sessionId = Encoding.UTF8.GetString(payload.Slice(offset, sessionLength));
        offset += sessionLength;
        int keyLength = payload[offset++];
        if (offset + keyLength > payload.Length)
        {
            return "the header's key id runs past its end";
        }

        string keyId = Encoding.UTF8.GetString(payload.Slice(offset, keyLength));
        long micros = (long)Math.Min(RecordingFormat.ReadUInt64(payload[22..]), (ulong)(DateTimeOffset.MaxValue - DateTimeOffset.UnixEpoch).Ticks / 10);
        header = new RecordingHeader
        {
            FormatVersion = payload[4],
            SessionId = sessionId,
            KeyId = keyId,
            Nonce = payload.Slice(6, RecordingFormat.NonceLength).ToArray(),
            StartTime = DateTimeOffset.UnixEpoch.AddTicks(micros * TimeSpan.TicksPerMicrosecond),
        };
        return null;
    }

    /// <summary>Splits a decoded block into records; the last must be its only seal. Returns why not, or null.</summary>
    private string? ParseRecords(ReadOnlySpan<byte> block)
    {
        _records.Clear();
        int position = 0;
        while (position < block.Length)
        {
            if (!RecordingFormat.TryReadRecordHeader(block[position..], out var kind, out var direction, out ulong time, out int length, out int headerLength))
            {
                return $"its record at byte {position} is malformed";
            }

            _records.Add(new RecordRef(kind, direction, time, position, position + headerLength, length));
            position += headerLength + length;
            if (kind == RecordKind.Seal && position != block.Length)
            {
                return $"its seal at byte {position - headerLength - length} is not its last record";
            }
        }

        if (_records.Count == 0 || _records[^1].Kind != RecordKind.Seal)
        {
            return "it has no seal";
        }

        return _records[^1].PayloadLength == 0 ? "its seal is empty" : null;
    }

    private DecodedBlock? Unreadable(in FrameInfo frame, long expected, string? failure)
    {
        if (failure is not null)
        {
            _problems.Add(new RecordingProblem(RecordingProblemKind.AlteredBlock, expected, frame.Offset,
                $"the block at file offset {frame.Offset} (block {expected}, by its place) is unreadable: {failure}"));
        }

        _altered++;
        _prefixIntact = false;
        // Count it as the block it stands for, so that it is not reported missing as well.
        _blockOffsets.TryAdd(expected, frame.Offset);
        _maxIndex = Math.Max(_maxIndex, expected);
        var info = new RecordingBlockInfo
        {
            Index = expected,
            FileOffset = frame.Offset,
            FileLength = frame.Length,
            StreamOffset = _streamOffset,
            Length = _decoded.WrittenCount,
            Events = 0,
            Status = RecordingBlockStatus.Unreadable,
        };
        _blocks.Add(info);
        _streamOffset += _decoded.WrittenCount;
        return new DecodedBlock(info, [], []);
    }

    /// <summary>The checks that need the whole file: missing blocks, the wrong key, the final seal; then the conclusion.</summary>
    private void Finish()
    {
        if (_ended)
        {
            return;
        }

        _ended = true;
        for (long i = 0; i <= _maxIndex; i++)
        {
            if (_blockOffsets.ContainsKey(i))
            {
                continue;
            }

            long first = i;
            while (i + 1 <= _maxIndex && !_blockOffsets.ContainsKey(i + 1))
            {
                i++;
            }

            long after = _blockOffsets.GetValueOrDefault(i + 1, -1);
            _problems.Add(new RecordingProblem(RecordingProblemKind.MissingBlocks, first, after,
                first == i ? $"block {first} is missing (deleted)" : $"blocks {first} to {i} are missing (deleted)"));
        }

        bool wrongKey = _signaturesChecked && _macChecked > 0 && _macFailed == _macChecked && _altered == 0;
        if (wrongKey)
        {
            // Every seal fails and every chain value matches: the seals are fine, the key is not theirs.
            _problems.RemoveAll(p => p.Kind == RecordingProblemKind.BadSignature);
            _problems.Add(new RecordingProblem(RecordingProblemKind.WrongKey, -1, -1,
                $"no seal verifies with key '{_key!.Id}' though every block matches its seal: the recording was signed with another key"));
        }

        // With the wrong key no seal is authentic, the final one included: that is the one problem, not a missing seal.
        if (_final is null && !(wrongKey && _blocks.Any(b => b.Final)))
        {
            _problems.Add(new RecordingProblem(RecordingProblemKind.Unsealed, _verifiedBlocks - 1, _verifiedFileOffset,
                $"no final seal: the recording may be truncated after block {_verifiedBlocks - 1} (verified through file offset {_verifiedFileOffset})"));
        }

        bool damaged = _problems.Any(p => p.Kind is not (RecordingProblemKind.Unsealed or RecordingProblemKind.TruncatedBlock or RecordingProblemKind.KeyIdMismatch));
        var integrity = damaged ? RecordingIntegrity.Damaged
            : _final is null ? RecordingIntegrity.Unsealed
            : _final.Recovered ? RecordingIntegrity.Recovered
            : RecordingIntegrity.Intact;
        _verification = new RecordingVerification
        {
            Integrity = integrity,
            Header = Header,
            SignaturesChecked = _signaturesChecked,
            Problems = [.. _problems],
            Blocks = [.. _blocks],
            Events = _events,
            VerifiedBlocks = _verifiedBlocks,
            VerifiedFileOffset = _verifiedFileOffset,
            VerifiedStreamOffset = _verifiedStreamOffset,
            VerifiedTimeMicros = _verifiedTime,
            FileLength = _input.Offset,
        };
    }

    public async ValueTask DisposeAsync()
    {
        _sha.Dispose();
        _hmac?.Dispose();
        if (!_leaveOpen)
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Where a record is in a decoded block.</summary>
    private readonly record struct RecordRef(RecordKind Kind, RecordDirection Direction, ulong TimeMicros, int RecordOffset, int PayloadOffset, int PayloadLength);
}
