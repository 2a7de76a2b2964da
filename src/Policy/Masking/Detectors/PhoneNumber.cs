using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// Phone numbers: international ones written with <c>+</c> (ITU-T E.164: at most 15 digits; 8 at least here), and the
/// North American forms <c>(ddd) ddd-dddd</c>, <c>ddd-ddd-dddd</c>, <c>ddd.ddd.dddd</c>, <c>ddd ddd dddd</c>, with the
/// trunk prefix 1 in front when there is one (<c>1-800-555-0199</c>, <c>1 (800) 555-0199</c>). A run of digits without
/// separators is a phone number only after <c>+</c>: bare runs are order numbers and amounts far more often. The
/// shapes never take an SSN (3-2-4 digits) or a grouped card (4-4-4-4, 4-6-5); a card number written after <c>+</c> is
/// a card when cards are detected (<see cref="NumericPass"/>).
/// </summary>
internal static class PhoneNumber
{
    /// <summary>The fewest digits of an international number: the shortest national numbers with a country code.</summary>
    public const int MinInternationalDigits = 8;

    /// <summary>The most digits of an international number (E.164 section 6.1).</summary>
    public const int MaxInternationalDigits = 15;

    /// <summary>
    /// The length of an international number at <paramref name="at"/> (a <c>+</c>), or 0. Digits may be separated
    /// by a space, dash or dot, and grouped with parentheses (<c>+44 (0)20 7946 0958</c>); the match ends at the
    /// last digit. One dot as the only separator reads as a signed decimal (<c>+40.689247</c>), not a number.
    /// </summary>
    public static int MatchInternational(ReadOnlySpan<byte> text, int at)
    {
        if (at > 0 && (IsAlnum(text[at - 1]) || text[at - 1] == '+'))
        {
            return 0;
        }

        int digits = 0;
        int end = 0;
        int dots = 0;
        int otherSeparators = 0;
        int pendingDots = 0;
        int pendingOthers = 0;
        int run = 0; // separators since the last digit
        byte previous = (byte)'+';
        for (int i = at + 1; i < text.Length; i++)
        {
            byte b = text[i];
            if (IsDigit(b))
            {
                if (++digits > MaxInternationalDigits)
                {
                    return 0;
                }

                dots += pendingDots;
                otherSeparators += pendingOthers;
                pendingDots = pendingOthers = run = 0;
                end = i + 1;
            }
            else if (b is (byte)' ' or (byte)'-' or (byte)'.' or (byte)'(' or (byte)')')
            {
                bool plain = b is not ((byte)'(' or (byte)')');
                if ((digits == 0 && b != '(') || ++run > 2 || (plain && previous is (byte)' ' or (byte)'-' or (byte)'.'))
                {
                    break;
                }

                if (b == '.')
                {
                    pendingDots++;
                }
                else
                {
                    pendingOthers++;
                }
            }
            else
            {
                break;
            }

            previous = b;
        }

        if (digits < MinInternationalDigits || !BoundaryAfter(text, end) || (dots == 1 && otherSeparators == 0))
        {
            return 0;
        }

        return end - at;
    }

    /// <summary>The length of a North American number at <paramref name="at"/> (a digit or <c>(</c>), or 0.</summary>
    public static int MatchNorthAmerican(ReadOnlySpan<byte> text, int at)
    {
        // "1-800-555-0199", "1 (800) 555-0199": the trunk prefix belongs to the number.
        if (text[at] == '1' && at + 2 < text.Length && text[at + 1] is (byte)'-' or (byte)' ' or (byte)'.' && BoundaryBefore(text, at))
        {
            byte separator = text[at + 1];
            int body = Body(text, at + 2, separator);
            if (body > 0 && !(separator != ' ' && NumberContinues(text, at, at + 2 + body, separator)))
            {
                return 2 + body;
            }
        }

        if (text[at] != '(' && !BoundaryBefore(text, at))
        {
            return 0;
        }

        int length = Body(text, at, 0);
        if (length > 0 && text[at] != '(' && text[at + 3] != ' ' && NumberContinues(text, at, at + length, text[at + 3]))
        {
            return 0;
        }

        return length;
    }

    /// <summary>
    /// <c>(ddd) ddd-dddd</c> (a space after the parenthesis or not; dash, dot or space before the last four) or
    /// <c>ddd S ddd S dddd</c> with the same separator S; <paramref name="separator"/>, when not 0, is the one the
    /// trunk prefix used, which the plain form must repeat. The number must end at a boundary.
    /// </summary>
    private static int Body(ReadOnlySpan<byte> text, int at, byte separator)
    {
        int i = at;
        if (text[i] == '(')
        {
            if (!Digits(text, i + 1, 3) || !At(text, i + 4, (byte)')'))
            {
                return 0;
            }

            i += 5;
            if (At(text, i, (byte)' '))
            {
                i++;
            }

            if (!Digits(text, i, 3) || i + 3 >= text.Length || text[i + 3] is not ((byte)'-' or (byte)'.' or (byte)' ') || !Digits(text, i + 4, 4))
            {
                return 0;
            }

            i += 8;
        }
        else
        {
            if (!Digits(text, i, 3) || i + 3 >= text.Length)
            {
                return 0;
            }

            byte s = text[i + 3];
            if (s is not ((byte)'-' or (byte)'.' or (byte)' ') || (separator != 0 && s != separator)
                || !Digits(text, i + 4, 3) || !At(text, i + 7, s) || !Digits(text, i + 8, 4))
            {
                return 0;
            }

            i += 12;
        }

        return BoundaryAfter(text, i) ? i - at : 0;
    }

    private static bool At(ReadOnlySpan<byte> text, int i, byte b) => i < text.Length && text[i] == b;

    private static bool Digits(ReadOnlySpan<byte> text, int i, int count)
    {
        if (i + count > text.Length)
        {
            return false;
        }

        for (int k = i; k < i + count; k++)
        {
            if (!IsDigit(text[k]))
            {
                return false;
            }
        }

        return true;
    }
}
