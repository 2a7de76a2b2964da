using System.Buffers.Binary;

namespace Gatehouse.Engine.Recording;

/// <summary>
/// Constants and primitive encodings of the recording format (docs/recording-format.md): varints, record headers,
/// the header and seal layouts, the domain strings of the hash chain and the signature.
/// </summary>
internal static class RecordingFormat
{
    /// <summary>File name suffix: <c>lz4 -d x.ghrec.lz4</c> leaves <c>x.ghrec</c>, the plain record stream.</summary>
    public const string FileExtension = ".ghrec.lz4";

    /// <summary>First bytes of the header payload.</summary>
    public static ReadOnlySpan<byte> Magic => "GHRC"u8;

    /// <summary>Format version in the header; a reader refuses versions it does not know.</summary>
    public const byte FormatVersion = 1;

    /// <summary>Hash algorithm id in the header: 1 = SHA-256 chain with HMAC-SHA256 seals.</summary>
    public const byte HashSha256 = 1;

    /// <summary>Seal payload version.</summary>
    public const byte SealVersion = 1;

    public const int NonceLength = 16;
    public const int HashLength = 32;

    /// <summary>kind (1) + direction (1) + time varint (up to 10) + length varint (up to 5).</summary>
    public const int MaxRecordHeaderLength = 17;

    /// <summary>version (1) + flags (1) + index (8) + stream offset (8) + previous (32) + chain value (32) + MAC (32).</summary>
    public const int SealPayloadLength = 114;

    /// <summary>The part of the seal payload the MAC covers (everything before the MAC).</summary>
    public const int SealSignedLength = SealPayloadLength - HashLength;

    /// <summary>Room kept at the end of every block buffer for its seal record (header at most 17 bytes + payload).</summary>
    public const int SealReserve = 136;

    /// <summary>Fixed part of the header payload: magic (4), version (1), hash id (1), nonce (16), start time (8).</summary>
    public const int HeaderFixedLength = 30;

    /// <summary>Domain of the chain seed: h0 = SHA-256(ChainDomain || header payload).</summary>
    public static ReadOnlySpan<byte> ChainDomain => "GHREC-CHAIN-1"u8;

    /// <summary>Domain of the seal MAC: HMAC-SHA256(key, SealDomain || seal payload[0..82]).</summary>
    public static ReadOnlySpan<byte> SealDomain => "GHREC-SEAL-1"u8;

    /// <summary>Kinds below this frame the recording and cannot be appended by callers.</summary>
    public const byte FirstEventKind = (byte)RecordKind.SessionStart;

    /// <summary>The LZ4 frame magic number (LZ4 frame format, "General Structure of LZ4 Frame format").</summary>
    public const uint Lz4FrameMagic = 0x184D2204;

    /// <summary>Skippable frames: 0x184D2A50 to 0x184D2A5F (ignored by lz4; never written by Gatehouse).</summary>
    public const uint Lz4SkippableMagicMask = 0xFFFFFFF0;
    public const uint Lz4SkippableMagic = 0x184D2A50;

    public static int VarintLength(ulong value)
    {
        // 7 bits per byte: 1 + floor(log2(value) / 7), and 1 for zero.
        int bits = 64 - (int)ulong.LeadingZeroCount(value | 1);
        return (bits + 6) / 7;
    }

    public static int WriteVarint(Span<byte> destination, ulong value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }

    /// <summary>Reads an unsigned LEB128 varint of at most 10 bytes; false when it is cut short or overlong.</summary>
    public static bool TryReadVarint(ReadOnlySpan<byte> source, out ulong value, out int consumed)
    {
        value = 0;
        int shift = 0;
        for (int i = 0; i < source.Length && i < 10; i++)
        {
            byte b = source[i];
            if (i == 9 && b > 1)
            {
                break; // more than 64 bits
            }

            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                consumed = i + 1;
                return true;
            }

            shift += 7;
        }

        value = 0;
        consumed = 0;
        return false;
    }

    public static int RecordHeaderLength(ulong timeMicros, int payloadLength)
        => 2 + VarintLength(timeMicros) + VarintLength((uint)payloadLength);

    public static int WriteRecordHeader(Span<byte> destination, RecordKind kind, RecordDirection direction, ulong timeMicros, int payloadLength)
    {
        destination[0] = (byte)kind;
        destination[1] = (byte)direction;
        int n = 2 + WriteVarint(destination[2..], timeMicros);
        return n + WriteVarint(destination[n..], (uint)payloadLength);
    }

    /// <summary>Parses one record header; false when the bytes do not hold a whole, valid one.</summary>
    public static bool TryReadRecordHeader(ReadOnlySpan<byte> source, out RecordKind kind, out RecordDirection direction,
        out ulong timeMicros, out int payloadLength, out int headerLength)
    {
        kind = default;
        direction = default;
        timeMicros = 0;
        payloadLength = 0;
        headerLength = 0;
        if (source.Length < 4)
        {
            return false;
        }

        kind = (RecordKind)source[0];
        direction = (RecordDirection)source[1];
        if (!TryReadVarint(source[2..], out timeMicros, out int timeLength)
            || !TryReadVarint(source[(2 + timeLength)..], out ulong length, out int lengthLength)
            || length > int.MaxValue)
        {
            return false;
        }

        headerLength = 2 + timeLength + lengthLength;
        payloadLength = (int)length;
        return source.Length - headerLength >= payloadLength;
    }

    public static void WriteUInt64(Span<byte> destination, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(destination, value);

    public static ulong ReadUInt64(ReadOnlySpan<byte> source) => BinaryPrimitives.ReadUInt64LittleEndian(source);
}

/// <summary>Bits of a seal's flags byte.</summary>
[Flags]
internal enum SealFlags : byte
{
    None = 0,

    /// <summary>The last block: the writer closed the recording.</summary>
    Final = 1,

    /// <summary>Written by crash recovery, not by the writer that recorded the session (always with <see cref="Final"/>).</summary>
    Recovered = 2,
}
