using System.Runtime.CompilerServices;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// Byte classes the detectors test, as branch-free comparisons. Only ASCII bytes are letters or digits: a byte of a
/// multi-byte UTF-8 sequence (0x80 and up) is neither, so a value written in another script is a boundary.
/// </summary>
internal static class ByteClass
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsUpper(byte b) => (uint)(b - 'A') <= 'Z' - 'A';

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsLetter(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsAlnum(byte b) => IsDigit(b) || IsLetter(b);

    /// <summary>The base64url alphabet (RFC 4648 section 5): letters, digits, <c>-</c> and <c>_</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsBase64Url(byte b) => IsAlnum(b) || b is (byte)'-' or (byte)'_';

    /// <summary>True when the byte before <paramref name="at"/> is not a letter or digit (or there is none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool BoundaryBefore(ReadOnlySpan<byte> text, int at) => at == 0 || !IsAlnum(text[at - 1]);

    /// <summary>True when the byte at <paramref name="end"/> is not a letter or digit (or the text ends there).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool BoundaryAfter(ReadOnlySpan<byte> text, int end) => end >= text.Length || !IsAlnum(text[end]);

    /// <summary>
    /// True when a number written with <paramref name="separator"/> goes on past the range: a digit and the separator
    /// just before <paramref name="start"/>, or the separator and a digit just after <paramref name="end"/>
    /// (<c>12-123-45-6789</c> is a longer identifier, not an SSN).
    /// </summary>
    public static bool NumberContinues(ReadOnlySpan<byte> text, int start, int end, byte separator) =>
        (start >= 2 && text[start - 1] == separator && IsDigit(text[start - 2]))
        || (end + 1 < text.Length && text[end] == separator && IsDigit(text[end + 1]));

    /// <summary>The number of bytes from <paramref name="at"/> that are digits.</summary>
    public static int CountDigits(ReadOnlySpan<byte> text, int at)
    {
        int i = at;
        while ((uint)i < (uint)text.Length && IsDigit(text[i]))
        {
            i++;
        }

        return i - at;
    }

    /// <summary>The number of bytes from <paramref name="at"/> that are letters or digits.</summary>
    public static int CountAlnum(ReadOnlySpan<byte> text, int at)
    {
        int i = at;
        while ((uint)i < (uint)text.Length && IsAlnum(text[i]))
        {
            i++;
        }

        return i - at;
    }

    /// <summary>The number of bytes from <paramref name="at"/> that are base64url.</summary>
    public static int CountBase64Url(ReadOnlySpan<byte> text, int at)
    {
        int i = at;
        while ((uint)i < (uint)text.Length && IsBase64Url(text[i]))
        {
            i++;
        }

        return i - at;
    }
}
