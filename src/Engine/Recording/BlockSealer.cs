using System.Buffers;
using System.Security.Cryptography;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;

namespace Gatehouse.Engine.Recording;

/// <summary>Where a recording's hash chain stands: the next block index, the last chain value, and offsets.</summary>
internal sealed class RecordingChain
{
    /// <summary>h(i-1): the chain value the next block links to (h0 before the first block).</summary>
    public readonly byte[] Value = new byte[RecordingFormat.HashLength];

    /// <summary>Index of the next block.</summary>
    public long NextIndex;

    /// <summary>Decompressed bytes of the recording written so far (seals included).</summary>
    public long StreamOffset;

    /// <summary>Bytes of the file written so far.</summary>
    public long FileOffset;

    /// <summary>Timestamp of the last record sealed, so that recovery can write a plausible time.</summary>
    public ulong LastTimeMicros;
}

/// <summary>
/// Seals blocks and writes them as LZ4 frames: h(i) = SHA-256(h(i-1) || block), the seal record with the keyed
/// signature, then one LZ4 frame (independent blocks, content checksum) for the whole block. One instance per
/// thread: the hash objects and the frame buffer are reused, so sealing allocates only inside K4os's encoder.
/// </summary>
internal sealed class BlockSealer : IDisposable
{
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly IncrementalHash _hmac;
    private readonly ArrayBufferWriter<byte> _frame = new(64 * 1024);
    private readonly LZ4EncoderSettings _settings;

    public BlockSealer(RecordingKey key, int blockSize, LZ4Level level)
    {
        _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.Secret);
        _settings = new LZ4EncoderSettings
        {
            // Independent blocks: each LZ4 block decodes without the previous one (LZ4 frame format, FLG.B.Indep).
            ChainBlocks = false,
            // The smallest LZ4 block size class that holds a whole recording block, seal included.
            BlockSize = blockSize <= 64 * 1024 ? 64 * 1024 : blockSize <= 256 * 1024 ? 256 * 1024 : blockSize <= 1024 * 1024 ? 1024 * 1024 : 4 * 1024 * 1024,
            // lz4 -t and lz4 -d check each frame's xxHash32 too, without Gatehouse.
            ContentChecksum = true,
            BlockChecksum = false,
            CompressionLevel = level,
        };
    }

    /// <summary>h0 = SHA-256("GHREC-CHAIN-1" || header payload): ties the chain to this session id and nonce.</summary>
    public static void ComputeChainSeed(ReadOnlySpan<byte> headerPayload, Span<byte> destination)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(RecordingFormat.ChainDomain);
        sha.AppendData(headerPayload);
        sha.GetHashAndReset(destination);
    }

    /// <summary>
    /// Seals <paramref name="buffer"/>[0..<paramref name="contentLength"/>) (the buffer has <see cref="RecordingFormat.SealReserve"/>
    /// bytes of room after it), encodes the block as one LZ4 frame and writes it. The chain moves on only when the
    /// write returned.
    /// </summary>
    public void WriteBlock(Stream output, byte[] buffer, int contentLength, RecordingChain chain, SealFlags flags, ulong timeMicros)
    {
        Span<byte> seal = stackalloc byte[RecordingFormat.SealPayloadLength];
        seal[0] = RecordingFormat.SealVersion;
        seal[1] = (byte)flags;
        RecordingFormat.WriteUInt64(seal[2..], (ulong)chain.NextIndex);
        RecordingFormat.WriteUInt64(seal[10..], (ulong)(chain.StreamOffset + contentLength));
        chain.Value.CopyTo(seal[18..]);
        _sha.AppendData(chain.Value);
        _sha.AppendData(buffer, 0, contentLength);
        _sha.GetHashAndReset(seal.Slice(50, RecordingFormat.HashLength));
        Sign(seal[..RecordingFormat.SealSignedLength], seal[RecordingFormat.SealSignedLength..]);

        int headerLength = RecordingFormat.WriteRecordHeader(buffer.AsSpan(contentLength), RecordKind.Seal, RecordDirection.None,
            timeMicros, RecordingFormat.SealPayloadLength);
        seal.CopyTo(buffer.AsSpan(contentLength + headerLength));
        int blockLength = contentLength + headerLength + RecordingFormat.SealPayloadLength;

        _frame.ResetWrittenCount();
        LZ4Frame.Encode(buffer.AsSpan(0, blockLength), _frame, _settings);
        output.Write(_frame.WrittenSpan);

        seal.Slice(50, RecordingFormat.HashLength).CopyTo(chain.Value);
        chain.NextIndex++;
        chain.StreamOffset += blockLength;
        chain.FileOffset += _frame.WrittenCount;
        chain.LastTimeMicros = timeMicros;
    }

    /// <summary>HMAC-SHA256(key, "GHREC-SEAL-1" || signed part of the seal).</summary>
    public void Sign(ReadOnlySpan<byte> signed, Span<byte> destination)
    {
        _hmac.AppendData(RecordingFormat.SealDomain);
        _hmac.AppendData(signed);
        _hmac.GetHashAndReset(destination);
    }

    /// <summary>SHA-256(previous || content): the chain value a seal must carry.</summary>
    public void Chain(ReadOnlySpan<byte> previous, ReadOnlySpan<byte> content, Span<byte> destination)
    {
        _sha.AppendData(previous);
        _sha.AppendData(content);
        _sha.GetHashAndReset(destination);
    }

    public void Dispose()
    {
        _sha.Dispose();
        _hmac.Dispose();
    }
}
