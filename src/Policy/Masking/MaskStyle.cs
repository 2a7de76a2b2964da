using System.Security.Cryptography;

namespace Gatehouse.Policy.Masking;

/// <summary>How a masked value is shown.</summary>
public enum MaskStyleKind : byte
{
    /// <summary>Replaced by <c>****</c>: neither the value nor its length shows.</summary>
    Redact,

    /// <summary><c>****</c> followed by the value's last N characters (only when the value has more than 2N).</summary>
    KeepLast,

    /// <summary>A keyed hash (SipHash-2-4, 16 hex digits): equal values mask equally, so joins and grouping still work.</summary>
    Hash,

    /// <summary>SQL NULL (a detector match makes the whole value NULL).</summary>
    Null,
}

/// <summary>A masking style and its parameter.</summary>
/// <param name="Keep">For <see cref="MaskStyleKind.KeepLast"/>: how many trailing characters stay.</param>
public readonly record struct MaskStyle(MaskStyleKind Kind, int Keep = 0)
{
    /// <summary>Most trailing characters a policy may keep.</summary>
    public const int MaxKeep = 64;

    public static MaskStyle Redact => new(MaskStyleKind.Redact);

    public override string ToString() => Kind switch
    {
        MaskStyleKind.Redact => "redact",
        MaskStyleKind.KeepLast => $"keep_last {Keep}",
        MaskStyleKind.Hash => "hash",
        _ => "null",
    };
}

/// <summary>
/// Writes masked text: allocation-free, into a caller's buffer. Every output is plain ASCII without quotes,
/// backslashes, tabs or newlines (the kept characters aside), so it is valid inside SQL text, JSON strings
/// and COPY text fields.
/// </summary>
public static class MaskText
{
    /// <summary>What redaction writes.</summary>
    public static ReadOnlySpan<byte> Redaction => "****"u8;

    /// <summary>Hex digits a keyed hash shows (the 64 bits of SipHash-2-4).</summary>
    public const int HashLength = 16;

    /// <summary>
    /// The most bytes <see cref="Write"/> writes for a value of <paramref name="valueLength"/> bytes (-1 for
    /// <see cref="MaskStyleKind.Null"/>, which writes nothing: the caller writes NULL).
    /// </summary>
    public static int MaxLength(MaskStyle style, int valueLength) => style.Kind switch
    {
        MaskStyleKind.Redact => Redaction.Length,
        MaskStyleKind.KeepLast => Redaction.Length + Math.Min(valueLength, style.Keep * 4),
        MaskStyleKind.Hash => HashLength,
        _ => -1,
    };

    /// <summary>
    /// Writes the masked form of <paramref name="value"/> (UTF-8) and returns its length; -1 for
    /// <see cref="MaskStyleKind.Null"/>. <paramref name="destination"/> must hold <see cref="MaxLength"/> bytes.
    /// </summary>
    /// <param name="key">The hash style's key (<see cref="DeriveKey"/>, 16 bytes); used by <see cref="MaskStyleKind.Hash"/> only.</param>
    public static int Write(MaskStyle style, ReadOnlySpan<byte> value, ReadOnlySpan<byte> key, Span<byte> destination)
    {
        switch (style.Kind)
        {
            case MaskStyleKind.Redact:
                Redaction.CopyTo(destination);
                return Redaction.Length;
            case MaskStyleKind.KeepLast:
            {
                Redaction.CopyTo(destination);
                int start = TailStart(value, style.Keep);
                if (start < 0)
                {
                    return Redaction.Length;
                }

                value[start..].CopyTo(destination[Redaction.Length..]);
                return Redaction.Length + value.Length - start;
            }

            case MaskStyleKind.Hash:
            {
                ulong hash = SipHash.Hash24(key, value);
                for (int i = 0; i < HashLength; i++)
                {
                    destination[i] = Hex((int)(hash >> (60 - (4 * i))) & 0xF);
                }

                return HashLength;
            }

            default:
                return -1;
        }
    }

    /// <summary>
    /// The hash style's key from the configured secret (any length, 16 bytes or more): the first 16 bytes of its
    /// SHA-256, so every byte of the secret counts.
    /// </summary>
    public static byte[] DeriveKey(ReadOnlySpan<byte> secret) => SHA256.HashData(secret)[..SipHash.KeyLength];

    private static byte Hex(int nibble) => (byte)(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);

    /// <summary>
    /// The byte offset where the last <paramref name="keep"/> characters start, or -1 when the value has no more
    /// than twice as many characters (showing them would show too much of it).
    /// </summary>
    private static int TailStart(ReadOnlySpan<byte> value, int keep)
    {
        if (keep <= 0)
        {
            return -1;
        }

        int chars = 0;
        int start = value.Length;
        int i = value.Length - 1;
        for (; i >= 0 && chars < keep; i--)
        {
            if ((value[i] & 0xC0) != 0x80)
            {
                chars++;
                start = i;
            }
        }

        // At least `keep` more characters must stand before the tail.
        int before = 0;
        for (; i >= 0 && before < keep; i--)
        {
            if ((value[i] & 0xC0) != 0x80)
            {
                before++;
            }
        }

        return chars == keep && before == keep && i >= 0 ? start : -1;
    }
}
