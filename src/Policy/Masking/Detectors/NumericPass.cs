using System.Numerics;
using System.Runtime.CompilerServices;
using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// One pass for the detectors of numbers (card, SSN, phone, IBAN): <see cref="Anchors.NextNumeric"/> finds the next
/// place one could start by the shape of its first bytes (<c>ddd-dd-dddd</c>, <c>dddd dddd</c>, <c>+</c> and digits,
/// two capitals and two digits, ...), 64 bytes at a time, and the checks run there only. Dates, times, amounts and
/// most identifiers have none of these shapes and are never stopped at.
/// </summary>
internal static class NumericPass
{
    /// <summary>The shortest run of digits and separators that can hold an SSN (11), a card (13) or a NANP number (12).</summary>
    private const int MinRun = SocialSecurityNumber.Length;

    /// <summary>The shortest match of the pass: <c>+</c> and 8 digits.</summary>
    public const int MinLength = 1 + PhoneNumber.MinInternationalDigits;

    /// <summary>The first match at or after <paramref name="from"/> of the kinds in <paramref name="kinds"/> (leftmost, then longest).</summary>
    /// <param name="text">The value.</param>
    /// <param name="from">Where to start.</param>
    /// <param name="kinds">The kinds to look for.</param>
    /// <param name="candidates">
    /// For a text of up to <see cref="Anchors.CellLength"/> bytes, its candidates as <see cref="Anchors.Present"/>
    /// found them (the scanner has them already); ignored for a longer text, whose candidates are searched.
    /// </param>
    /// <param name="hit">The match.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool FindNext(ReadOnlySpan<byte> text, int from, KindMask kinds, ulong candidates, out Hit hit)
    {
        bool cell = text.Length <= Anchors.CellLength;
        bool card = (kinds & KindMask.Card) != 0;
        int i = from;
        while (i < text.Length)
        {
            i = cell ? NextCandidate(candidates, i) : Anchors.NextNumeric(text, i, kinds);
            if (i < 0)
            {
                break;
            }

            byte b = text[i];
            int length;
            if (b == '+')
            {
                // A card number after a plus sign is a card, when cards are looked for.
                if ((length = PhoneNumber.MatchInternational(text, i)) > 0
                    && !(card && i + 1 < text.Length && IsDigit(text[i + 1]) && CardNumber.Match(text, i + 1) > 0))
                {
                    hit = new Hit(i, length, DetectorKind.Phone);
                    return true;
                }

                i++;
            }
            else if (b == '(')
            {
                // With its trunk prefix when there is one: "1 (800) 555-0199".
                if (i - 2 >= from && text[i - 2] == '1' && (length = PhoneNumber.MatchNorthAmerican(text, i - 2)) > 0)
                {
                    hit = new Hit(i - 2, length, DetectorKind.Phone);
                    return true;
                }

                if ((length = PhoneNumber.MatchNorthAmerican(text, i)) > 0)
                {
                    hit = new Hit(i, length, DetectorKind.Phone);
                    return true;
                }

                i++;
            }
            else if (!IsDigit(b))
            {
                if ((length = Iban.Match(text, i)) > 0)
                {
                    hit = new Hit(i, length, DetectorKind.Iban);
                    return true;
                }

                i++;
            }
            else
            {
                // A digit that starts a run long enough for a card, SSN or NANP number: every group start of the
                // run is tried, and the run is done.
                int end = i + 1;
                while (end < text.Length && IsRunByte(text[end]))
                {
                    end++;
                }

                if (MatchRun(text, i, end, kinds, out hit))
                {
                    return true;
                }

                i = end;
            }
        }

        hit = default;
        return false;
    }

    /// <summary>Tries every group start of the run [<paramref name="start"/>, <paramref name="end"/>) in order.</summary>
    private static bool MatchRun(ReadOnlySpan<byte> text, int start, int end, KindMask kinds, out Hit hit)
    {
        bool card = (kinds & KindMask.Card) != 0;
        bool ssn = (kinds & KindMask.Ssn) != 0;
        bool phone = (kinds & KindMask.Phone) != 0;
        int g = start;
        while (end - g >= MinRun)
        {
            int best = 0;
            DetectorKind kind = default;
            if (ssn && SocialSecurityNumber.Match(text, g) is var s && s > best)
            {
                (best, kind) = (s, DetectorKind.Ssn);
            }

            if (phone && PhoneNumber.MatchNorthAmerican(text, g) is var p && p > best)
            {
                (best, kind) = (p, DetectorKind.Phone);
            }

            if (card && CardNumber.Match(text, g) is var c && c > best)
            {
                (best, kind) = (c, DetectorKind.Card);
            }

            if (best > 0)
            {
                hit = new Hit(g, best, kind);
                return true;
            }

            // The next group: past the digits, then past the separators.
            while (g < end && IsDigit(text[g]))
            {
                g++;
            }

            while (g < end && !IsDigit(text[g]))
            {
                g++;
            }
        }

        hit = default;
        return false;
    }

    /// <summary>The first set bit of <paramref name="candidates"/> at or after <paramref name="from"/>, or -1.</summary>
    private static int NextCandidate(ulong candidates, int from)
    {
        ulong rest = from >= 64 ? 0 : candidates & (ulong.MaxValue << from);
        return rest == 0 ? -1 : BitOperations.TrailingZeroCount(rest);
    }

    private static bool IsRunByte(byte b) => IsDigit(b) || b is (byte)' ' or (byte)'-' or (byte)'.';
}
