using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// The pass over capital <c>A</c>: AWS access key ids and Google API keys both start with it, so one vectorised
/// search serves both. An AWS key id is a documented four-letter prefix (AKIA for a user's long-term key, ASIA for
/// a temporary one, and the prefixes of the other IAM unique ids: ABIA, ACCA, AGPA, AIDA, AIPA, ANPA, ANVA, APKA,
/// AROA, ASCA) and 16 characters of the base32 alphabet [A-Z2-7], 20 in all, between word boundaries. A Google API
/// key is <c>AIza</c> and 35 or more characters of [A-Za-z0-9_-].
/// </summary>
internal static class AccessKeys
{
    /// <summary>An AWS access key id: a 4-letter prefix and 16 base32 characters.</summary>
    public const int AwsKeyLength = 20;

    /// <summary>The shortest Google API key: <c>AIza</c> and 35.</summary>
    public const int GoogleKeyMinLength = 4 + 35;

    /// <summary>The first AWS key id (when <paramref name="aws"/>) or Google API key (when <paramref name="google"/>) at or after <paramref name="from"/>.</summary>
    public static bool FindNext(ReadOnlySpan<byte> text, int from, bool aws, bool google, out Hit hit)
    {
        int i = from;
        while (i < text.Length)
        {
            int next = text[i..].IndexOf((byte)'A');
            if (next < 0)
            {
                break;
            }

            int at = i + next;
            if (at + AwsKeyLength <= text.Length)
            {
                if (aws && text[at + 3] == 'A' && IsAwsKey(text, at))
                {
                    hit = new Hit(at, AwsKeyLength, DetectorKind.AwsKey);
                    return true;
                }

                int length;
                if (google && text[at + 1] == 'I' && text[at + 2] == 'z' && text[at + 3] == 'a' && (length = GoogleKeyLength(text, at)) > 0)
                {
                    hit = new Hit(at, length, DetectorKind.SecretToken);
                    return true;
                }
            }

            i = at + 1;
        }

        hit = default;
        return false;
    }

    private static bool IsAwsKey(ReadOnlySpan<byte> text, int at)
    {
        // The two middle letters of the prefix (the first and last are A).
        bool prefix = (text[at + 1], text[at + 2]) switch
        {
            ((byte)'K', (byte)'I') or ((byte)'S', (byte)'I') or ((byte)'B', (byte)'I') or ((byte)'C', (byte)'C')
                or ((byte)'G', (byte)'P') or ((byte)'I', (byte)'D') or ((byte)'I', (byte)'P') or ((byte)'N', (byte)'P')
                or ((byte)'N', (byte)'V') or ((byte)'P', (byte)'K') or ((byte)'R', (byte)'O') or ((byte)'S', (byte)'C') => true,
            _ => false,
        };
        if (!prefix || !BoundaryBefore(text, at) || !BoundaryAfter(text, at + AwsKeyLength))
        {
            return false;
        }

        foreach (byte b in text.Slice(at + 4, AwsKeyLength - 4))
        {
            if (!IsUpper(b) && (uint)(b - '2') > '7' - '2')
            {
                return false;
            }
        }

        return true;
    }

    private static int GoogleKeyLength(ReadOnlySpan<byte> text, int at)
    {
        if (!BoundaryBefore(text, at))
        {
            return 0;
        }

        int length = 4 + CountBase64Url(text, at + 4);
        return length >= GoogleKeyMinLength ? length : 0;
    }
}
