using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Engine;
using K4os.Hash.xxHash;

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
}

/// <summary>
/// Seals blocks and writes them as LZ4 frames: h(i) = SHA-256(h(i-1) || block), the seal record with the keyed
/// signature, then one LZ4 frame (independent blocks, content checksum) for the whole block. One instance per
/// thread: the hash objects and the frame buffer are reused.
/// </summary>
/// <remarks>
/// The frame is written here, around K4os's block compressor, rather than by its frame encoder: that encoder copies
/// the input into a buffer of its own and has no acceleration setting, and the two together cost about half of the
/// writer thread's time on result sets. The layout is the LZ4 frame format's (lz4_Frame_format.md): magic, FLG
/// (version 01, independent blocks, content checksum), BD (the block size class), HC; then blocks of
/// <c>size | data</c>, a block stored as it is (size's high bit) when it does not compress; the end mark; and the
/// xxHash32 of the content, so that <c>lz4 -t</c> and <c>lz4 -d</c> check every frame without Gatehouse.
/// </remarks>
internal sealed class BlockSealer : IDisposable
{
    /// <summary>FLG: version 01, blocks independent, no block checksum, no content size, content checksum, no dictionary.</summary>
    private const byte FrameFlags = 0b0110_0100;

    private const int FrameHeaderLength = 7;
    private const int FrameTrailerLength = 8;

    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly IncrementalHash _hmac;
    private readonly ArrayBufferWriter<byte> _frame = new(64 * 1024);
    private readonly int _lz4BlockSize;
    private readonly byte _blockDescriptor;
    private readonly int _acceleration;

    /// <param name="key">Signs the seals.</param>
    /// <param name="blockSize">The recording's block size: the LZ4 block size class is the smallest that holds it.</param>
    /// <param name="acceleration">LZ4's acceleration (1 = LZ4's default fast mode; higher is faster and compresses less).</param>
    public BlockSealer(RecordingKey key, int blockSize, int acceleration)
    {
        _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key.Secret);
        // BD: bits 4-6 are the maximum block size class, 4 = 64 KiB to 7 = 4 MiB.
        int sizeClass = blockSize <= 64 * 1024 ? 4 : blockSize <= 256 * 1024 ? 5 : blockSize <= 1024 * 1024 ? 6 : 7;
        _lz4BlockSize = 1 << (8 + 2 * sizeClass);
        _blockDescriptor = (byte)(sizeClass << 4);
        _acceleration = acceleration;
    }

    /// <summary>h0 = SHA-256("GHREC-CHAIN-1" || header payload): ties the chain to this session id and nonce.</summary>
    public static void ComputeChainSeed(ReadOnlySpan<byte> headerPayload, Span<byte> destination)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(RecordingFormat.ChainDomain);
        sha.AppendData(headerPayload);
        sha.GetHashAndReset(destination);
    }

    /// <summary>Bytes of frames sealed and not yet written (<see cref="WritePending"/>).</summary>
    public int PendingBytes => _frame.WrittenCount;

    /// <summary>Seals one block and writes its frame at once (recovery's single block).</summary>
    public void WriteBlock(Stream output, byte[] buffer, int contentLength, RecordingChain chain, SealFlags flags, ulong timeMicros)
    {
        SealBlock(buffer, contentLength, chain, flags, timeMicros);
        WritePending(output);
    }

    /// <summary>
    /// Writes the frames sealed since the last call, in one write. When it throws, they are dropped all the same:
    /// the recording has failed, and its chain (moved on already) is never used again.
    /// </summary>
    public void WritePending(Stream output)
    {
        try
        {
            if (_frame.WrittenCount > 0)
            {
                output.Write(_frame.WrittenSpan);
            }
        }
        finally
        {
            _frame.ResetWrittenCount();
        }
    }

    /// <summary>
    /// Seals <paramref name="buffer"/>[0..<paramref name="contentLength"/>) (the buffer has <see cref="RecordingFormat.SealReserve"/>
    /// bytes of room after it), encodes the block as one LZ4 frame after the frames pending, and moves the chain on.
    /// Nothing reaches the file before <see cref="WritePending"/>, which must come before another recording's block.
    /// </summary>
    public void SealBlock(byte[] buffer, int contentLength, RecordingChain chain, SealFlags flags, ulong timeMicros)
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

        int before = _frame.WrittenCount;
        EncodeFrame(buffer.AsSpan(0, blockLength));

        seal.Slice(50, RecordingFormat.HashLength).CopyTo(chain.Value);
        chain.NextIndex++;
        chain.StreamOffset += blockLength;
        chain.FileOffset += _frame.WrittenCount - before;
    }

    /// <summary>One LZ4 frame holding <paramref name="content"/>, in as many LZ4 blocks as its size class needs, into <see cref="_frame"/>.</summary>
    private void EncodeFrame(ReadOnlySpan<byte> content)
    {
        Span<byte> header = _frame.GetSpan(FrameHeaderLength);
        BinaryPrimitives.WriteUInt32LittleEndian(header, RecordingFormat.Lz4FrameMagic);
        header[4] = FrameFlags;
        header[5] = _blockDescriptor;
        // HC: the second byte of xxHash32 (seed 0) of the descriptor, FLG and BD.
        header[6] = (byte)(XXH32.DigestOf(header.Slice(4, 2)) >> 8);
        _frame.Advance(FrameHeaderLength);

        for (int offset = 0; offset < content.Length; offset += _lz4BlockSize)
        {
            var chunk = content.Slice(offset, Math.Min(_lz4BlockSize, content.Length - offset));
            Span<byte> block = _frame.GetSpan(4 + LZ4Codec.MaximumOutputSize(chunk.Length));
            int compressed = Compress(chunk, block[4..]);
            if (compressed <= 0 || compressed >= chunk.Length)
            {
                // Stored: the high bit of the size says the data is not compressed.
                BinaryPrimitives.WriteUInt32LittleEndian(block, (uint)chunk.Length | 0x8000_0000u);
                chunk.CopyTo(block[4..]);
                compressed = chunk.Length;
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(block, (uint)compressed);
            }

            _frame.Advance(4 + compressed);
        }

        Span<byte> trailer = _frame.GetSpan(FrameTrailerLength);
        BinaryPrimitives.WriteUInt32LittleEndian(trailer, 0); // end mark
        BinaryPrimitives.WriteUInt32LittleEndian(trailer[4..], XXH32.DigestOf(content));
        _frame.Advance(FrameTrailerLength);
    }

    /// <summary>One independent LZ4 block: a fresh context, so that nothing refers to an earlier block or frame.</summary>
    private unsafe int Compress(ReadOnlySpan<byte> source, Span<byte> target)
    {
        using var context = new Pubternal.FastContext();
        fixed (byte* from = source)
        fixed (byte* to = target)
        {
            return Pubternal.CompressFast(context, from, to, source.Length, target.Length, _acceleration);
        }
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
