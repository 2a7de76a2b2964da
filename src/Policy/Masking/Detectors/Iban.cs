using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// International bank account numbers (ISO 13616-1): a country code of two capital letters, two check digits (02 to
/// 98), then 11 to 30 capital letters and digits; compact (<c>DE89370400440532013000</c>) or in groups of four with
/// single spaces and a shorter last group (<c>GB82 WEST 1234 5698 7654 32</c>). Valid when the mod-97 check gives 1.
/// </summary>
/// <remarks>
/// A grouped IBAN may be followed by a word that looks like one more group (<c>BE68 5390 0754 7034 EURO</c>): the
/// longest prefix of whole groups that passes the check is the match. The country code must be one that issues IBANs
/// (<see cref="Countries"/>), and for the 89 countries of the SWIFT IBAN registry the length must be that country's:
/// with the check digits, a code that merely looks like an IBAN (<c>SN12345678901234</c>) passes about once in 10,000.
/// </remarks>
internal static class Iban
{
    public const int MinLength = 15;
    public const int MaxLength = 34;

    private const byte Unknown = 0;
    private const byte AnyLength = 1;

    /// <summary>
    /// The countries that issue IBANs, with their length: the SWIFT IBAN registry (release 99, 2024), then countries
    /// whose banks use IBANs outside it (several in West and Central Africa, Algeria, Iran, Morocco) at any length.
    /// </summary>
    private const string Countries =
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 DK18 DO28 EE20 EG29 " +
        "ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HN28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 " +
        "LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 PL28 PS29 " +
        "PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 " +
        "YE30 AO BF BJ CF CG CI CM CV DZ GA GQ GW IR KM MA MG ML MZ NE SN TD TG";

    /// <summary>Per country code (26 × first letter + second): its length, <see cref="AnyLength"/> or <see cref="Unknown"/>.</summary>
    private static readonly byte[] Lengths = BuildLengths();

    /// <summary>The length in bytes of the IBAN at <paramref name="at"/> (two capitals, then a digit), or 0.</summary>
    public static int Match(ReadOnlySpan<byte> text, int at)
    {
        if (at + MinLength > text.Length || !IsUpper(text[at]) || !IsUpper(text[at + 1]) || !IsDigit(text[at + 2]) || !IsDigit(text[at + 3])
            || !BoundaryBefore(text, at))
        {
            return 0;
        }

        int check = ((text[at + 2] - '0') * 10) + (text[at + 3] - '0');
        int country = ((text[at] - 'A') * 26) + (text[at + 1] - 'A');
        int expected = Lengths[country];
        if (check is < 2 or > 98 || expected == Unknown)
        {
            return 0;
        }

        int run = CountUpperOrDigits(text, at);
        if (run != 4)
        {
            return run is >= MinLength and <= MaxLength && (expected == AnyLength || run == expected)
                && BoundaryAfter(text, at + run) && Mod97(text.Slice(at, run)) ? run : 0;
        }

        int best = 0;
        int chars = 4;
        int pos = at + 4;
        while (pos + 1 < text.Length && text[pos] == ' ')
        {
            int length = CountUpperOrDigits(text, pos + 1);
            chars += length;
            if (length is 0 or > 4 || chars > MaxLength)
            {
                break;
            }

            int groupEnd = pos + 1 + length;
            if (chars >= MinLength && (expected == AnyLength || chars == expected) && BoundaryAfter(text, groupEnd) && Mod97(text[at..groupEnd]))
            {
                best = groupEnd - at;
            }

            if (length < 4)
            {
                break;
            }

            pos = groupEnd;
        }

        return best;
    }

    /// <summary>
    /// ISO 7064 MOD 97-10 as ISO 13616 applies it: the first four characters moved to the end, letters read as
    /// 10 to 35, the whole number mod 97 must be 1. Spaces are skipped.
    /// </summary>
    public static bool Mod97(ReadOnlySpan<byte> iban)
    {
        int remainder = 0;
        foreach (byte b in iban[4..])
        {
            remainder = Append(remainder, b);
        }

        foreach (byte b in iban[..4])
        {
            remainder = Append(remainder, b);
        }

        return remainder == 1;

        static int Append(int remainder, byte b)
        {
            if (IsDigit(b))
            {
                return ((remainder * 10) + (b - '0')) % 97;
            }

            if (IsUpper(b))
            {
                return ((remainder * 100) + (b - 'A' + 10)) % 97;
            }

            return remainder;
        }
    }

    private static byte[] BuildLengths()
    {
        var lengths = new byte[26 * 26];
        foreach (string entry in Countries.Split(' '))
        {
            int code = ((entry[0] - 'A') * 26) + (entry[1] - 'A');
            lengths[code] = entry.Length == 2 ? AnyLength : byte.Parse(entry.AsSpan(2), System.Globalization.CultureInfo.InvariantCulture);
        }

        return lengths;
    }

    private static int CountUpperOrDigits(ReadOnlySpan<byte> text, int at)
    {
        int i = at;
        while (i < text.Length && (IsDigit(text[i]) || IsUpper(text[i])))
        {
            i++;
        }

        return i - at;
    }
}
