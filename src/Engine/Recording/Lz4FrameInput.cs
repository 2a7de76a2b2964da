using System.Buffers.Binary;

namespace Gatehouse.Engine.Recording;

/// <summary>What <see cref="Lz4FrameInput.NextAsync"/> found at the current position of a recording file.</summary>
internal enum FrameKind
{
    /// <summary>The end of the file, at a frame boundary.</summary>
    End,

    /// <summary>A whole LZ4 frame.</summary>
    Frame,

    /// <summary>An LZ4 skippable frame (ignored by lz4; never written by Gatehouse).</summary>
    Skippable,

    /// <summary>Bytes that are not a frame, up to the next LZ4 magic number or the end.</summary>
    Garbage,

    /// <summary>The file ends inside a frame.</summary>
    Truncated,
}

/// <summary>A frame found by <see cref="Lz4FrameInput"/>: where, how long, and how large it may decode.</summary>
internal readonly record struct FrameInfo(FrameKind Kind, long Offset, int Length, long DecodedBound, string? Detail);

/// <summary>
/// Splits a recording file into LZ4 frames without decoding them (LZ4 frame format: magic, FLG, BD, optional content
/// size and dictionary id, HC, blocks of <c>size | data | [checksum]</c>, end mark, optional content checksum), so that
/// each block's place in the file is known and a damaged frame can be skipped to the next magic number.
/// </summary>
internal sealed class Lz4FrameInput
{
    private const int ReadChunk = 64 * 1024;

    /// <summary>The LZ4 frame magic number as it is stored (little-endian).</summary>
    private static ReadOnlySpan<byte> FrameMagicBytes => [0x04, 0x22, 0x4D, 0x18];

    private readonly Stream _stream;
    private readonly int _maxFrame;
    private byte[] _buffer = new byte[ReadChunk * 2];
    private int _start;
    private int _end;
    private bool _eof;

    public Lz4FrameInput(Stream stream, int maxFrame)
    {
        _stream = stream;
        _maxFrame = maxFrame;
    }

    /// <summary>File offset of the current position.</summary>
    public long Offset { get; private set; }

    /// <summary>The bytes of the frame last returned (valid until the next call).</summary>
    public ReadOnlySpan<byte> Current(in FrameInfo frame) => _buffer.AsSpan(_start - frame.Length, frame.Length);

    /// <summary>Finds the next frame and moves past it.</summary>
    public async ValueTask<FrameInfo> NextAsync(CancellationToken cancellationToken)
    {
        long offset = Offset;
        if (!await EnsureAsync(4, cancellationToken).ConfigureAwait(false))
        {
            int left = _end - _start;
            Advance(left);
            return left == 0 ? new FrameInfo(FrameKind.End, offset, 0, 0, null) : new FrameInfo(FrameKind.Truncated, offset, left, 0, "a partial magic number");
        }

        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start));
        if (magic == RecordingFormat.Lz4FrameMagic)
        {
            var (status, length, bound, detail) = await MeasureFrameAsync(cancellationToken).ConfigureAwait(false);
            switch (status)
            {
                case FrameKind.Frame:
                    Advance(length);
                    return new FrameInfo(FrameKind.Frame, offset, length, bound, null);
                case FrameKind.Truncated:
                    int left = _end - _start;
                    Advance(left);
                    return new FrameInfo(FrameKind.Truncated, offset, left, 0, detail);
                default:
                    return await SkipGarbageAsync(offset, detail, cancellationToken).ConfigureAwait(false);
            }
        }

        if ((magic & RecordingFormat.Lz4SkippableMagicMask) == RecordingFormat.Lz4SkippableMagic)
        {
            if (!await EnsureAsync(8, cancellationToken).ConfigureAwait(false))
            {
                int left = _end - _start;
                Advance(left);
                return new FrameInfo(FrameKind.Truncated, offset, left, 0, "a partial skippable frame");
            }

            uint size = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start + 4));
            long skipped = await SkipAsync(8L + size, cancellationToken).ConfigureAwait(false);
            return skipped == 8L + size
                ? new FrameInfo(FrameKind.Skippable, offset, (int)Math.Min(skipped, int.MaxValue), 0, null)
                : new FrameInfo(FrameKind.Truncated, offset, (int)Math.Min(skipped, int.MaxValue), 0, "a partial skippable frame");
        }

        return await SkipGarbageAsync(offset, "not an LZ4 frame", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Walks the frame at the current position: its length, or why it is not a valid frame.</summary>
    private async ValueTask<(FrameKind Status, int Length, long Bound, string? Detail)> MeasureFrameAsync(CancellationToken cancellationToken)
    {
        if (!await EnsureAsync(7, cancellationToken).ConfigureAwait(false))
        {
            return (FrameKind.Truncated, 0, 0, "a partial frame header");
        }

        byte flg = _buffer[_start + 4];
        byte bd = _buffer[_start + 5];
        if ((flg >> 6) != 1 || (flg & 0x02) != 0 || (bd & 0x8F) != 0)
        {
            return (FrameKind.Garbage, 0, 0, "an invalid LZ4 frame descriptor");
        }

        int blockMax = ((bd >> 4) & 0x7) switch
        {
            4 => 64 * 1024,
            5 => 256 * 1024,
            6 => 1024 * 1024,
            7 => 4 * 1024 * 1024,
            _ => 0,
        };
        if (blockMax == 0)
        {
            return (FrameKind.Garbage, 0, 0, "an invalid LZ4 block size");
        }

        bool blockChecksum = (flg & 0x10) != 0;
        bool contentSize = (flg & 0x08) != 0;
        bool contentChecksum = (flg & 0x04) != 0;
        bool dictionary = (flg & 0x01) != 0;
        int position = 4 + 2 + (contentSize ? 8 : 0) + (dictionary ? 4 : 0) + 1;
        long blocks = 0;
        while (true)
        {
            if (!await EnsureAsync(position + 4, cancellationToken).ConfigureAwait(false))
            {
                return (FrameKind.Truncated, 0, 0, $"the frame's block {blocks} is cut");
            }

            uint size = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start + position));
            position += 4;
            if (size == 0)
            {
                break; // end mark
            }

            int length = (int)(size & 0x7FFFFFFF);
            if (length > blockMax)
            {
                return (FrameKind.Garbage, 0, 0, $"an LZ4 block of {length} bytes, above the frame's maximum of {blockMax}");
            }

            position += length + (blockChecksum ? 4 : 0);
            blocks++;
            if (position > _maxFrame || blocks * blockMax > _maxFrame + (long)blockMax)
            {
                return (FrameKind.Garbage, 0, 0, $"a frame larger than the reader's limit of {_maxFrame} bytes");
            }

            if (!await EnsureAsync(position, cancellationToken).ConfigureAwait(false))
            {
                return (FrameKind.Truncated, 0, 0, $"the frame's block {blocks - 1} is cut");
            }
        }

        if (contentChecksum)
        {
            position += 4;
            if (!await EnsureAsync(position, cancellationToken).ConfigureAwait(false))
            {
                return (FrameKind.Truncated, 0, 0, "the frame's content checksum is cut");
            }
        }

        return (FrameKind.Frame, position, blocks * blockMax, null);
    }

    /// <summary>Skips to the next LZ4 magic number after the current position (or to the end).</summary>
    private async ValueTask<FrameInfo> SkipGarbageAsync(long offset, string? detail, CancellationToken cancellationToken)
    {
        long skipped = 0;
        // The byte at the current position starts no valid frame: search from the next one.
        Advance(1);
        skipped++;
        while (true)
        {
            int found = _buffer.AsSpan(_start, _end - _start).IndexOf(FrameMagicBytes);
            if (found >= 0)
            {
                Advance(found);
                skipped += found;
                break;
            }

            // Keep the last three bytes: a magic number may straddle the next read.
            int keep = Math.Min(3, _end - _start);
            int drop = _end - _start - keep;
            Advance(drop);
            skipped += drop;
            if (!await EnsureAsync(keep + 1, cancellationToken).ConfigureAwait(false))
            {
                skipped += _end - _start;
                Advance(_end - _start);
                break;
            }
        }

        return new FrameInfo(FrameKind.Garbage, offset, (int)Math.Min(skipped, int.MaxValue), 0, detail);
    }

    private async ValueTask<long> SkipAsync(long count, CancellationToken cancellationToken)
    {
        long skipped = 0;
        while (skipped < count)
        {
            if (_end == _start && !await EnsureAsync(1, cancellationToken).ConfigureAwait(false))
            {
                break;
            }

            int step = (int)Math.Min(count - skipped, _end - _start);
            Advance(step);
            skipped += step;
        }

        return skipped;
    }

    private void Advance(int count)
    {
        _start += count;
        Offset += count;
    }

    /// <summary>Makes at least <paramref name="count"/> bytes available from the current position; false at the end.</summary>
    private async ValueTask<bool> EnsureAsync(int count, CancellationToken cancellationToken)
    {
        while (_end - _start < count)
        {
            if (_eof)
            {
                return false;
            }

            if (_buffer.Length - _start < count + ReadChunk)
            {
                // Move what is left to the front, growing the buffer when one frame needs more room.
                int live = _end - _start;
                byte[] target = _buffer.Length < count + ReadChunk ? new byte[Math.Max(_buffer.Length * 2, count + ReadChunk)] : _buffer;
                Buffer.BlockCopy(_buffer, _start, target, 0, live);
                _buffer = target;
                _start = 0;
                _end = live;
            }

            int read = await _stream.ReadAsync(_buffer.AsMemory(_end, _buffer.Length - _end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                _eof = true;
            }

            _end += read;
        }

        return true;
    }
}
