using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// E-mail addresses in the practical form of RFC 5322 addr-spec: <c>local@domain.tld</c>. The local part is letters,
/// digits and <c>._%+-</c>; the domain is labels of letters, digits and inner dashes joined by dots, at least two, and
/// the last (the top-level domain) is two or more letters. Bytes of multi-byte UTF-8 characters count as letters in
/// both (RFC 6531 addresses, IDNs), so a name such as <c>José.garcia@...</c> is masked whole. Quoted local parts and
/// address literals are not matched.
/// </summary>
internal static class EmailAddress
{
    /// <summary>The shortest address: <c>a@b.co</c>.</summary>
    public const int MinLength = 6;

    /// <summary>The first address that starts at or after <paramref name="from"/>, found from its <c>@</c>.</summary>
    /// <remarks>
    /// The local part is read backwards from the <c>@</c>, but never before <paramref name="from"/>: the scanner
    /// searches from the end of the previous match, and an address that match overlaps keeps its remaining bytes.
    /// Every byte is read at most once forwards (as a domain) and once backwards (as a local part).
    /// </remarks>
    public static bool FindNext(ReadOnlySpan<byte> text, int from, out Hit hit)
    {
        int i = from;
        while (i < text.Length)
        {
            int next = text[i..].IndexOf((byte)'@');
            if (next < 0)
            {
                break;
            }

            int at = i + next;
            if (at > from && at + 4 < text.Length && IsDomainByte(text[at + 1]) && IsLocalByte(text[at - 1]))
            {
                int start = at;
                while (start > from && IsLocalByte(text[start - 1]))
                {
                    start--;
                }

                while (start < at && text[start] == '.')
                {
                    start++;
                }

                int end = start < at ? DomainEnd(text, at + 1) : 0;
                if (end > 0)
                {
                    hit = new Hit(start, end - start, DetectorKind.Email);
                    return true;
                }
            }

            i = at + 1;
        }

        hit = default;
        return false;
    }

    /// <summary>Where the domain that starts at <paramref name="at"/> ends (after its top-level domain), or 0.</summary>
    private static int DomainEnd(ReadOnlySpan<byte> text, int at)
    {
        // The longest run of labels whose last label is a top-level domain: "example.com." ends before the dot,
        // "example.com.123" after "com".
        int end = 0;
        int labels = 0;
        int i = at;
        while (true)
        {
            int labelStart = i;
            while (i < text.Length && IsDomainByte(text[i]))
            {
                i++;
            }

            if (i == labelStart || text[labelStart] == '-' || text[i - 1] == '-')
            {
                break;
            }

            labels++;
            if (labels >= 2 && IsTopLevel(text[labelStart..i]))
            {
                end = i;
            }

            if (i + 1 >= text.Length || text[i] != '.')
            {
                break;
            }

            i++;
        }

        return end;
    }

    private static bool IsTopLevel(ReadOnlySpan<byte> label)
    {
        if (label.Length < 2)
        {
            return false;
        }

        foreach (byte b in label)
        {
            if (!IsLetter(b))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsLocalByte(byte b) => IsAlnum(b) || b >= 0x80 || b is (byte)'.' or (byte)'_' or (byte)'%' or (byte)'+' or (byte)'-';

    private static bool IsDomainByte(byte b) => IsAlnum(b) || b >= 0x80 || b == '-';
}
