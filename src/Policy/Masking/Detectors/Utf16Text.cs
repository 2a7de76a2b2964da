using System.Buffers;
using System.Text;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// A UTF-8 value transcoded to UTF-16 for <see cref="System.Text.RegularExpressions.Regex"/>, with the offset map
/// back. ASCII runs are widened with a vectorised copy and map one to one; every other character is decoded as a
/// <see cref="Rune"/>, an ill-formed sequence becoming one U+FFFD (the maximal subpart, as
/// <see cref="Rune.DecodeFromUtf8"/> reads it), so the map can retrace the transcoding exactly without storing it.
/// </summary>
internal ref struct Utf16Text
{
    private readonly ReadOnlySpan<byte> _utf8;
    private readonly bool _ascii;

    // Two cursors over the map, each a pair of a byte and a char offset at a character boundary. Starts and search
    // positions only move forward during a scan; match ends usually do, and when one does not, it restarts from
    // the start cursor (which is never past it).
    private int _startByte;
    private int _startChar;
    private int _endByte;
    private int _endChar;

    /// <param name="utf8">The value.</param>
    /// <param name="buffer">At least <c>utf8.Length</c> chars (a byte never becomes more than one char).</param>
    public Utf16Text(ReadOnlySpan<byte> utf8, Span<char> buffer)
    {
        _utf8 = utf8;
        Chars = buffer[..Transcode(utf8, buffer, out _ascii)];
    }

    public ReadOnlySpan<char> Chars { get; }

    /// <summary>The char offset of byte offset <paramref name="byteOffset"/> (of the next character, when it falls inside one).</summary>
    public int CharOf(int byteOffset)
    {
        if (_ascii)
        {
            return byteOffset;
        }

        if (byteOffset < _startByte)
        {
            _startByte = _startChar = 0;
        }

        while (_startByte < byteOffset)
        {
            Step(_utf8, ref _startByte, ref _startChar);
        }

        return _startChar;
    }

    /// <summary>The byte offset where the character holding char <paramref name="charOffset"/> starts.</summary>
    public int StartOf(int charOffset)
    {
        if (_ascii)
        {
            return charOffset;
        }

        if (charOffset < _startChar)
        {
            _startByte = _startChar = 0;
        }

        while (_startChar < charOffset)
        {
            // Stop before a character that charOffset falls inside (the second half of a surrogate pair).
            int b = _startByte;
            int c = _startChar;
            Step(_utf8, ref b, ref c);
            if (c > charOffset)
            {
                break;
            }

            (_startByte, _startChar) = (b, c);
        }

        return _startByte;
    }

    /// <summary>The byte offset just past the character that holds char <paramref name="charOffset"/> - 1.</summary>
    public int EndOf(int charOffset)
    {
        if (_ascii)
        {
            return charOffset;
        }

        if (charOffset < _endChar)
        {
            (_endByte, _endChar) = (_startByte, _startChar);
            if (charOffset < _endChar)
            {
                _endByte = _endChar = 0;
            }
        }

        while (_endChar < charOffset)
        {
            Step(_utf8, ref _endByte, ref _endChar);
        }

        return _endByte;
    }

    /// <summary>Reads one character of the transcoding: its bytes and chars.</summary>
    private static void Step(ReadOnlySpan<byte> utf8, ref int byteOffset, ref int charOffset)
    {
        if (utf8[byteOffset] < 0x80)
        {
            byteOffset++;
            charOffset++;
            return;
        }

        var status = Rune.DecodeFromUtf8(utf8[byteOffset..], out Rune rune, out int consumed);
        byteOffset += Math.Max(consumed, 1);
        charOffset += status == OperationStatus.Done ? rune.Utf16SequenceLength : 1;
    }

    private static int Transcode(ReadOnlySpan<byte> utf8, Span<char> chars, out bool ascii)
    {
        ascii = true;
        int b = 0;
        int c = 0;
        while (b < utf8.Length)
        {
            int nonAscii = utf8[b..].IndexOfAnyInRange((byte)0x80, (byte)0xFF);
            int run = nonAscii < 0 ? utf8.Length - b : nonAscii;
            if (run > 0)
            {
                Ascii.ToUtf16(utf8.Slice(b, run), chars[c..], out _);
                b += run;
                c += run;
            }

            ascii &= nonAscii < 0;
            while (b < utf8.Length && utf8[b] >= 0x80)
            {
                var status = Rune.DecodeFromUtf8(utf8[b..], out Rune rune, out int consumed);
                if (status != OperationStatus.Done)
                {
                    rune = Rune.ReplacementChar;
                }

                c += rune.EncodeToUtf16(chars[c..]);
                b += Math.Max(consumed, 1);
            }
        }

        return c;
    }
}
