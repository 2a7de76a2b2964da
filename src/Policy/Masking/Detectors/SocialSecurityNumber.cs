using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// US Social Security numbers, <c>ddd-dd-dddd</c> or <c>ddd dd dddd</c> (the same separator twice; a bare run of nine
/// digits is too common to be one). Numbers the SSA never issues are not matched: area 000, 666 and 900-999, group 00,
/// serial 0000 (SSA, "Social Security Number Randomization", 2011).
/// </summary>
internal static class SocialSecurityNumber
{
    public const int Length = 11;

    /// <summary>11 when an SSN starts at <paramref name="at"/>, else 0.</summary>
    public static int Match(ReadOnlySpan<byte> text, int at)
    {
        if (at + Length > text.Length)
        {
            return 0;
        }

        var s = text.Slice(at, Length);
        byte separator = s[3];
        if (separator is not ((byte)'-' or (byte)' ') || s[6] != separator
            || !IsDigit(s[0]) || !IsDigit(s[1]) || !IsDigit(s[2]) || !IsDigit(s[4]) || !IsDigit(s[5])
            || !IsDigit(s[7]) || !IsDigit(s[8]) || !IsDigit(s[9]) || !IsDigit(s[10]))
        {
            return 0;
        }

        int area = ((s[0] - '0') * 100) + ((s[1] - '0') * 10) + (s[2] - '0');
        if (area is 0 or 666 or >= 900 || (s[4] == '0' && s[5] == '0') || (s[7] == '0' && s[8] == '0' && s[9] == '0' && s[10] == '0'))
        {
            return 0;
        }

        if (!BoundaryBefore(text, at) || !BoundaryAfter(text, at + Length)
            || (separator == '-' && NumberContinues(text, at, at + Length, separator)))
        {
            return 0;
        }

        return Length;
    }
}
