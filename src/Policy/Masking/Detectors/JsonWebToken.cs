using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// JSON Web Tokens in compact serialization (RFC 7515 section 7.1): <c>eyJ</c> (a JSON header, base64url of
/// <c>{"</c>) and at least 8 more base64url characters, a dot, a payload of at least 8, a dot, and a signature of any
/// length (empty for an unsecured JWS). Up to two more dot-separated parts are included (a JWE has five), so a
/// token is masked whole. The token must not continue a longer base64url run.
/// </summary>
internal static class JsonWebToken
{
    /// <summary>The shortest match: <c>eyJ</c> + 8, a dot, 8, a dot.</summary>
    public const int MinLength = 3 + 8 + 1 + 8 + 1;

    private const int MinPart = 8;

    public static bool FindNext(ReadOnlySpan<byte> text, int from, out Hit hit)
    {
        int i = from;
        while (i < text.Length)
        {
            int next = text[i..].IndexOf("eyJ"u8);
            if (next < 0)
            {
                break;
            }

            int at = i + next;
            int length = Match(text, at);
            if (length > 0)
            {
                hit = new Hit(at, length, DetectorKind.Jwt);
                return true;
            }

            i = at + 1;
        }

        hit = default;
        return false;
    }

    private static int Match(ReadOnlySpan<byte> text, int at)
    {
        if (at + MinLength > text.Length || (at > 0 && IsBase64Url(text[at - 1])))
        {
            return 0;
        }

        int header = 3 + CountBase64Url(text, at + 3);
        int i = at + header;
        if (header < 3 + MinPart || !At(text, i, (byte)'.'))
        {
            return 0;
        }

        int payload = CountBase64Url(text, i + 1);
        i += 1 + payload;
        if (payload < MinPart || !At(text, i, (byte)'.'))
        {
            return 0;
        }

        i += 1 + CountBase64Url(text, i + 1);
        for (int more = 0; more < 2 && At(text, i, (byte)'.') && i + 1 < text.Length && IsBase64Url(text[i + 1]); more++)
        {
            i += 1 + CountBase64Url(text, i + 1);
        }

        return i - at;
    }

    private static bool At(ReadOnlySpan<byte> text, int i, byte b) => i < text.Length && text[i] == b;
}
