using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// Payment card numbers (ISO/IEC 7812): 13 to 19 digits passing the Luhn check, written as one run of digits or
/// grouped as cards print them: fours with a shorter last group (<c>4111 1111 1111 1111</c>, <c>6011-0009-9013-9424-123</c>)
/// or 4-6-4 and 4-6-5 (Diners, Amex: <c>3782 822463 10005</c>), one kind of separator (a space or a dash) throughout.
/// </summary>
/// <remarks>
/// A group is a whole run of digits, never cut; so a card is never part of a longer run of digits or letters, but it
/// may be the first groups of a longer sequence (<c>4111 1111 1111 1111 12/25</c>) or follow a number
/// (<c>qty 2 4111 1111 1111 1111</c>, found when the caller tries the next group). Lists of numbers stay out because
/// of the group shapes: <c>100 200 300 400 500</c> is not a card.
/// <para>
/// The first digits must belong to an issuer range of that length (<see cref="IssuerAllows"/>): long identifiers
/// that happen to pass Luhn (one in ten does) mostly start with 1 (epoch milliseconds, snowflake ids), 0 (zero
/// padding) or 20 (date-based ids), and no card network issues those.
/// </para>
/// </remarks>
internal static class CardNumber
{
    public const int MinDigits = 13;
    public const int MaxDigits = 19;

    /// <summary>The length in bytes of the longest card number that starts at <paramref name="at"/>, or 0.</summary>
    public static int Match(ReadOnlySpan<byte> text, int at)
    {
        if (text[at] == '0' || !BoundaryBefore(text, at))
        {
            return 0;
        }

        int first = CountDigits(text, at);
        if (first >= MinDigits)
        {
            int end = at + first;
            return first <= MaxDigits && BoundaryAfter(text, end) && IssuerAllows(text[at..], first) && Luhn(text[at..end], first) ? first : 0;
        }

        if (first != 4 || at + 4 >= text.Length)
        {
            return 0;
        }

        byte separator = text[at + 4];
        if (separator is not ((byte)' ' or (byte)'-'))
        {
            return 0;
        }

        // Grouped: read the following groups while they can still be part of a card shape, and keep the longest
        // prefix that is a whole card shape and passes Luhn.
        int best = 0;
        int digits = 4;
        int groups = 1;
        bool amex = false;
        int pos = at + 4;
        while (pos + 1 < text.Length && text[pos] == separator)
        {
            int length = CountDigits(text, pos + 1);
            if (length == 0)
            {
                break;
            }

            int groupEnd = pos + 1 + length;
            digits += length;
            if (digits > MaxDigits)
            {
                break;
            }

            bool last; // this group may end a card
            bool more; // a group may follow it
            if (amex)
            {
                last = length is 4 or 5;
                more = false;
            }
            else if (groups == 1 && length == 6)
            {
                last = false;
                more = true;
                amex = true;
            }
            else
            {
                last = length <= 4;
                more = length == 4;
            }

            if (last && digits >= MinDigits && BoundaryAfter(text, groupEnd) && IssuerAllows(text[at..], digits) && Luhn(text[at..groupEnd], digits))
            {
                best = groupEnd - at;
            }

            if (!more)
            {
                break;
            }

            groups++;
            pos = groupEnd;
        }

        return best;
    }

    /// <summary>
    /// Whether a card network issues numbers of <paramref name="digits"/> digits that start as <paramref name="number"/>
    /// does (its first four bytes are digits), after the published IIN ranges, coarsely: 1 is UATP (15 digits); 2200-2204
    /// Mir and 2221-2720 Mastercard (16 to 19); 34 and 37 American Express (15), 35 JCB (16 to 19), 30, 36, 38 and 39
    /// Diners Club (14 to 19); 4 Visa, 5 Mastercard and Maestro, 6 Discover, UnionPay, Maestro and RuPay (13 to 19);
    /// 8 UnionPay and RuPay (16 to 19). Nothing starts with 0, 7 or 9 (petroleum and national ranges, outside the
    /// card networks).
    /// </summary>
    public static bool IssuerAllows(ReadOnlySpan<byte> number, int digits)
    {
        int two = ((number[0] - '0') * 10) + (number[1] - '0');
        int four = (two * 100) + ((number[2] - '0') * 10) + (number[3] - '0');
        return (number[0] - '0') switch
        {
            1 => digits == 15,
            2 => digits >= 16 && (four is >= 2200 and <= 2204 or >= 2221 and <= 2720),
            3 => two switch
            {
                34 or 37 => digits == 15,
                35 => digits >= 16,
                30 or 36 or 38 or 39 => digits >= 14,
                _ => false,
            },
            4 or 5 or 6 => true,
            8 => digits >= 16,
            _ => false,
        };
    }

    /// <summary>The Luhn (mod 10) check over the digits of <paramref name="text"/>, skipping separators.</summary>
    /// <param name="text">Digits and separators.</param>
    /// <param name="digits">How many digits <paramref name="text"/> holds.</param>
    public static bool Luhn(ReadOnlySpan<byte> text, int digits)
    {
        // Every second digit from the right is doubled: with the count known, that is the digit whose distance from
        // the end is even.
        int sum = 0;
        int remaining = digits;
        foreach (byte b in text)
        {
            int d = b - '0';
            if ((uint)d > 9)
            {
                continue;
            }

            if ((remaining & 1) == 0)
            {
                d *= 2;
                if (d > 9)
                {
                    d -= 9;
                }
            }

            sum += d;
            remaining--;
        }

        return sum % 10 == 0;
    }
}
