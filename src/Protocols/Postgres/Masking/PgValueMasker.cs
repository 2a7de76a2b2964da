using System.Buffers.Binary;
using Gatehouse.Policy.Masking;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// A session's growable output buffer for rewritten messages: rewritten into it, then written to the pipe in one
/// piece (a DataRow's length comes first, and is only known at the end). Grows rarely; never shrinks.
/// </summary>
internal sealed class PgScratch
{
    private byte[] _buffer = new byte[4096];

    public int Length { get; set; }

    public Span<byte> Written => _buffer.AsSpan(0, Length);

    public void Reset() => Length = 0;

    /// <summary>Room for <paramref name="count"/> more bytes, at the end.</summary>
    public Span<byte> Reserve(int count)
    {
        if (_buffer.Length - Length < count)
        {
            int size = Math.Max(_buffer.Length * 2, Length + count);
            Array.Resize(ref _buffer, size);
        }

        return _buffer.AsSpan(Length, count);
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        Length += bytes.Length;
    }

    public void WriteByte(byte value)
    {
        Reserve(1)[0] = value;
        Length++;
    }

    public void WriteInt32(int value)
    {
        BinaryPrimitives.WriteInt32BigEndian(Reserve(4), value);
        Length += 4;
    }

    /// <summary>Overwrites a big-endian Int32 written earlier at <paramref name="offset"/>.</summary>
    public void PatchInt32(int offset, int value) => BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(offset, 4), value);
}

/// <summary>
/// Masks one value: by a rule's style, or where the detectors matched. Writes into a <see cref="PgScratch"/>;
/// returns false when the value must become NULL instead (style null, or a type whose bytes cannot hold a mask).
/// </summary>
internal static class PgValueMasker
{
    /// <summary>The masked form of a whole value.</summary>
    public static bool WriteMasked(MaskingRule rule, PgValueType type, ReadOnlySpan<byte> value, SessionMasking rules, PgScratch output)
    {
        if (rule.Style.Kind == MaskStyleKind.Null || type is PgValueType.Other or PgValueType.Characters)
        {
            return false;
        }

        var style = rule.Style;
        if (type is PgValueType.Json or PgValueType.JsonbBinary)
        {
            // A JSON string: redaction or a hash (kept characters could hold quotes or escapes).
            if (style.Kind == MaskStyleKind.KeepLast)
            {
                style = MaskStyle.Redact;
            }

            if (type == PgValueType.JsonbBinary)
            {
                output.WriteByte(1);
            }

            output.WriteByte((byte)'"');
            WriteStyle(style, value, rules, output);
            output.WriteByte((byte)'"');
            return true;
        }

        WriteStyle(style, value, rules, output);
        return true;
    }

    /// <summary>
    /// A value with detector matches (<paramref name="matches"/>; a count of -1 means too many to list: the whole
    /// value is masked by the first rule with detectors). False: NULL instead.
    /// </summary>
    public static bool WriteScanned(ReadOnlySpan<byte> value, ReadOnlySpan<DetectorMatch> matches, bool overflow, PgValueType type,
        SessionMasking rules, PgScratch output)
    {
        if (overflow)
        {
            var first = FirstDetectorRule(rules);
            return first is not null && WriteMasked(first, type, value, rules, output);
        }

        if (type is PgValueType.Other or PgValueType.Characters)
        {
            return false; // a number or date with a card number in it cannot hold "****"
        }

        foreach (var match in matches)
        {
            if (rules.RuleOfTag(match.Tag).Style.Kind == MaskStyleKind.Null)
            {
                return false;
            }
        }

        int at = 0;
        foreach (var match in matches)
        {
            output.Write(value[at..match.Start]);
            WriteStyle(rules.RuleOfTag(match.Tag).Style, value.Slice(match.Start, match.Length), rules, output);
            at = match.Start + match.Length;
        }

        output.Write(value[at..]);
        return true;
    }

    /// <summary>Text with every detector match replaced, for messages (errors, notices, COPY rows): never NULL.</summary>
    public static void WriteScannedText(ReadOnlySpan<byte> value, ReadOnlySpan<DetectorMatch> matches, SessionMasking rules, PgScratch output)
    {
        int at = 0;
        foreach (var match in matches)
        {
            output.Write(value[at..match.Start]);
            var style = rules.RuleOfTag(match.Tag).Style;
            WriteStyle(style.Kind == MaskStyleKind.Null ? MaskStyle.Redact : style, value.Slice(match.Start, match.Length), rules, output);
            at = match.Start + match.Length;
        }

        output.Write(value[at..]);
    }

    public static void WriteStyle(MaskStyle style, ReadOnlySpan<byte> value, SessionMasking rules, PgScratch output)
    {
        if (style.Kind == MaskStyleKind.Null)
        {
            style = MaskStyle.Redact;
        }

        int written = MaskText.Write(style, value, rules.Key, output.Reserve(MaskText.MaxLength(style, value.Length)));
        output.Length += written;
    }

    private static MaskingRule? FirstDetectorRule(SessionMasking rules)
    {
        foreach (var rule in rules.Rules)
        {
            if (rule.Detectors.Count > 0)
            {
                return rule;
            }
        }

        return null;
    }
}
