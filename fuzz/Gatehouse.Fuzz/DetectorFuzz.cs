using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;
using System.Text.Unicode;
using Gatehouse.Policy.Masking;

namespace Gatehouse.Fuzz;

/// <summary>
/// The <c>MaskingDetectors</c> target: <see cref="ValueScanner.Scan"/> over one text value. Input: a control byte,
/// a byte choosing the built-in kinds (bit i: kind i; bit 7 also the PEM detector), then the value (at most
/// <see cref="MaxText"/> bytes). Control bits 0-2 choose the room for matches (0, 1, 2, 3, 4, 8, 16 or 256),
/// bit 3 adds custom patterns (ASCII, non-ASCII, one that can match empty, one on U+FFFD).
/// </summary>
/// <remarks>
/// Oracles. Scan never throws; the count is -1 or fits the room; matches lie inside the value, are non-empty,
/// ordered and do not overlap, and carry the tag of a detector that was asked for; a second scan gives the same; a
/// smaller room gives the same first matches, or -1 exactly when there are more. Every built-in match is what its
/// kind says, re-checked independently (Luhn, ISO 7064 mod 97 over a big integer, the SSA ranges, the token shapes,
/// ...); on valid UTF-8 every match starts and ends on a character boundary. Without custom patterns, the matches
/// equal <see cref="DetectorReference"/>'s (no vector prefilter, every position tried), so a prefilter that skips a
/// real match is a finding. The 128-bit and 256-bit vector code agree on every candidate.
/// </remarks>
internal static class DetectorFuzz
{
    public const int MaxText = 16 * 1024;

    private static readonly int[] Rooms = [0, 1, 2, 3, 4, 8, 16, 256];

    /// <summary>Custom patterns of the scanners with bit 3 (tags 100 and up).</summary>
    private static readonly string[] Patterns = [@"EMP-\d{6}", @"Größe\s*\d+", @"\d*", "\uFFFD+"];

    public static void Run(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2)
        {
            return;
        }

        int room = Rooms[data[0] & 7];
        bool custom = (data[0] & 8) != 0;
        int kindBits = data[1] | ((data[1] & 0x80) << 1);
        var text = data[2..];
        if (text.Length > MaxText)
        {
            text = text[..MaxText];
        }

        var (scanner, specs) = Scanners.Get(kindBits, custom);
        var all = new DetectorMatch[text.Length + 1];
        int total = scanner.Scan(text, all);
        Expect(total >= 0, "a scan with room for a match per byte returned -1", text);
        var found = all.AsSpan(0, total);
        Structure(text, found, specs);

        var again = new DetectorMatch[text.Length + 1];
        Expect(scanner.Scan(text, again) == total && found.SequenceEqual(again.AsSpan(0, total)), "a second scan gave different matches", text);

        var limited = new DetectorMatch[room];
        int count = scanner.Scan(text, limited);
        Expect(total > room ? count == -1 : count == total && found.SequenceEqual(limited.AsSpan(0, count)),
            $"with room for {room} of {total} matches the scan returned {count}", text);

        foreach (var match in found)
        {
            var spec = specs.First(s => s.Tag == match.Tag);
            if (spec.Kind != DetectorKind.Custom)
            {
                Expect(IsKind(spec.Kind, text.Slice(match.Start, match.Length)),
                    $"{DetectorNames.NameOf(spec.Kind)} matched \"{Encoding.UTF8.GetString(text.Slice(match.Start, match.Length))}\" at {match.Start}", text);
            }
        }

        if (Utf8.IsValid(text))
        {
            foreach (var match in found)
            {
                Expect(IsBoundary(text, match.Start) && IsBoundary(text, match.End), $"a match at {match.Start}+{match.Length} cuts a character", text);
            }
        }

        if (!custom)
        {
            var reference = DetectorReference.Scan(text, specs);
            Expect(reference.SequenceEqual(found.ToArray()),
                $"the scanner found [{string.Join(", ", found.ToArray())}], the reference without prefilters [{string.Join(", ", reference)}]", text);
        }

        VectorWidthsAgree(text);
    }

    /// <summary>Runs a scan with every built-in kind and returns the number of matches (for seed checks).</summary>
    public static int CountAll(ReadOnlySpan<byte> text)
    {
        var (scanner, _) = Scanners.Get(0x1FF, custom: false);
        var matches = new DetectorMatch[text.Length + 1];
        return scanner.Scan(text, matches);
    }

    private static void Structure(ReadOnlySpan<byte> text, ReadOnlySpan<DetectorMatch> found, DetectorSpec[] specs)
    {
        int end = 0;
        foreach (var match in found)
        {
            Expect(match.Start >= end && match.Length > 0 && match.End <= text.Length,
                $"match {match} is out of order, empty, overlaps the one before or runs past the value ({text.Length} bytes)", text);
            Expect(specs.Any(s => s.Tag == match.Tag), $"match {match} has a tag no detector has", text);
            end = match.End;
        }
    }

    private static void VectorWidthsAgree(ReadOnlySpan<byte> text)
    {
        var kinds = (KindMask)0x1FF;
        uint wide = Anchors.Present<ByteBlock256>(text, 0xFF, kinds, out ulong wideNumeric);
        uint narrow = Anchors.Present<ByteBlock128>(text, 0xFF, kinds, out ulong narrowNumeric);
        Expect(wide == narrow && wideNumeric == narrowNumeric, $"256-bit and 128-bit prefilters disagree: {wide:X}/{wideNumeric:X} and {narrow:X}/{narrowNumeric:X}", text);
        for (int from = 0; from <= text.Length; from += 1 + (from / 7))
        {
            int a = Anchors.NextNumeric<ByteBlock256>(text, from, kinds);
            int b = Anchors.NextNumeric<ByteBlock128>(text, from, kinds);
            Expect(a == b, $"from {from}, the next number candidate is {a} with 256-bit vectors and {b} with 128-bit", text);
        }
    }

    // ---- Independent checks of each kind ----------------------------------------------------------------------

    private static bool IsKind(DetectorKind kind, ReadOnlySpan<byte> match)
    {
        string s = Encoding.Latin1.GetString(match);
        return kind switch
        {
            DetectorKind.Card => IsCard(s),
            DetectorKind.Ssn => Regex.IsMatch(s, @"^(?!000|666|9)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}$"),
            DetectorKind.Email => Regex.IsMatch(s, @"^[^@\x00-\x20]+@[^@\x00-\x20]+\.[A-Za-z]{2,}$"),
            DetectorKind.Phone => IsPhone(s),
            DetectorKind.Iban => IsIban(s),
            DetectorKind.AwsKey => Regex.IsMatch(s, "^A(KI|SI|BI|CC|GP|ID|IP|NP|NV|PK|RO|SC)A[A-Z2-7]{16}$"),
            DetectorKind.SecretToken => Regex.IsMatch(
                s,
                "^(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}|xox[bpars]-[A-Za-z0-9-]{10,}"
                + "|[sr]k_live_[A-Za-z0-9]{16,}|sk_test_[A-Za-z0-9]{16,}|AIza[A-Za-z0-9_-]{35,}|[A-Za-z0-9/+]{40})$"),
            DetectorKind.Jwt => Regex.IsMatch(s, @"^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+){0,2}$"),
            DetectorKind.PemPrivateKey => Regex.IsMatch(s, @"^-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----", RegexOptions.Singleline),
            _ => false,
        };
    }

    private static bool IsCard(string s)
    {
        if (!Regex.IsMatch(s, @"^\d+(?:([ -])\d+(?:\1\d+)*)?$"))
        {
            return false;
        }

        string digits = s.Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal);
        int sum = 0;
        for (int i = 0; i < digits.Length; i++)
        {
            int d = digits[digits.Length - 1 - i] - '0';
            sum += i % 2 == 1 ? (d * 2 > 9 ? (d * 2) - 9 : d * 2) : d;
        }

        return digits.Length is >= 13 and <= 19 && digits[0] != '0' && sum % 10 == 0;
    }

    private static bool IsPhone(string s)
    {
        int digits = s.Count(char.IsAsciiDigit);
        return s.StartsWith('+')
            ? digits is >= 8 and <= 15 && Regex.IsMatch(s, @"^\+[0-9 ().-]+$") && char.IsAsciiDigit(s[^1])
            : Regex.IsMatch(s, @"^(1[ .-])?(\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}([ .-])\d{3}\3\d{4})$");
    }

    private static bool IsIban(string s)
    {
        string compact = s.Replace(" ", "", StringComparison.Ordinal);
        if (!Regex.IsMatch(compact, "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"))
        {
            return false;
        }

        string rearranged = compact[4..] + compact[..4];
        var number = BigInteger.Parse(string.Concat(rearranged.Select(c => char.IsAsciiDigit(c) ? c.ToString() : (c - 'A' + 10).ToString(System.Globalization.CultureInfo.InvariantCulture))), System.Globalization.CultureInfo.InvariantCulture);
        return number % 97 == 1;
    }

    private static bool IsBoundary(ReadOnlySpan<byte> text, int offset) => offset == text.Length || (text[offset] & 0xC0) != 0x80;

    private static void Expect(bool condition, string finding, ReadOnlySpan<byte> bytes)
    {
        if (!condition)
        {
            const int Shown = 256;
            string hex = Convert.ToHexString(bytes[..Math.Min(bytes.Length, Shown)]);
            throw new FuzzFindingException($"{finding}; bytes ({bytes.Length}): {hex}{(bytes.Length > Shown ? "..." : "")}");
        }
    }

    /// <summary>Scanners by configuration, compiled on first use (inside a run, after the fuzzer is set up).</summary>
    private static class Scanners
    {
        private static readonly Dictionary<(int, bool), (ValueScanner, DetectorSpec[])> Cache = [];

        public static (ValueScanner Scanner, DetectorSpec[] Specs) Get(int kindBits, bool custom)
        {
            lock (Cache)
            {
                if (!Cache.TryGetValue((kindBits, custom), out var entry))
                {
                    var specs = new List<DetectorSpec>();
                    for (int k = 0; k < (int)DetectorKind.Custom; k++)
                    {
                        if ((kindBits & (1 << k)) != 0)
                        {
                            specs.Add(new DetectorSpec((DetectorKind)k, 10 + k));
                        }
                    }

                    if (custom)
                    {
                        specs.AddRange(Patterns.Select((p, i) => new DetectorSpec(DetectorKind.Custom, 100 + i, p)));
                    }

                    entry = (ValueScanner.Create(specs), [.. specs]);
                    Cache[(kindBits, custom)] = entry;
                }

                return entry;
            }
        }
    }
}
