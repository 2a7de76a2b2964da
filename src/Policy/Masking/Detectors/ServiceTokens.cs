using static Gatehouse.Policy.Masking.ByteClass;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// Tokens of common services, found by the distinctive part of their prefix. Every token is matched to the end of
/// its run of token characters (a longer token than the documented minimum is masked whole), and must start at a
/// word boundary.
/// <list type="bullet">
/// <item>The underscore pass: GitHub <c>ghp_</c>, <c>gho_</c>, <c>ghu_</c>, <c>ghs_</c>, <c>ghr_</c> + 36 or more
/// [A-Za-z0-9]; <c>github_pat_</c> + 22 or more [A-Za-z0-9_]; Stripe <c>sk_live_</c>, <c>rk_live_</c>, <c>sk_test_</c>
/// + 16 or more [A-Za-z0-9]; and an AWS secret access key after its label (<c>aws_secret_access_key = ...</c>, any
/// case, <c>=</c> or <c>:</c>, optional quotes): the 40 characters of [A-Za-z0-9/+] only.</item>
/// <item>GitLab <c>glpat-</c> + 20 or more [A-Za-z0-9_-].</item>
/// <item>Slack <c>xoxb-</c>, <c>xoxp-</c>, <c>xoxa-</c>, <c>xoxr-</c>, <c>xoxs-</c> + 10 or more [A-Za-z0-9-].</item>
/// </list>
/// Google API keys (<c>AIza</c>) are found by <see cref="AccessKeys"/>.
/// </summary>
internal static class ServiceTokens
{
    /// <summary>The shortest match of the underscore pass: a Stripe key, 8 + 16.</summary>
    public const int UnderscoreMinLength = 8 + 16;

    /// <summary>The shortest GitLab token: <c>glpat-</c> and 20.</summary>
    public const int GitLabMinLength = 6 + 20;

    /// <summary>The shortest Slack token: <c>xoxb-</c> and 10.</summary>
    public const int SlackMinLength = 5 + 10;

    private const int AwsSecretLength = 40;

    /// <summary>The first GitHub or Stripe token, or labelled AWS secret key, at or after <paramref name="from"/>.</summary>
    public static bool FindNextUnderscore(ReadOnlySpan<byte> text, int from, out Hit hit)
    {
        int i = from;
        while (i < text.Length)
        {
            int next = text[i..].IndexOf((byte)'_');
            if (next < 0)
            {
                break;
            }

            int at = i + next; // the underscore
            int start = 0;
            int length = 0;
            if (at >= 3 && text[at - 3] == 'g' && text[at - 2] == 'h' && text[at - 1] is (byte)'p' or (byte)'o' or (byte)'u' or (byte)'s' or (byte)'r')
            {
                start = at - 3;
                length = Token(text, start, 4, 36);
            }
            else if (at >= 6 && at + 5 <= text.Length && text.Slice(at - 6, 11).SequenceEqual("github_pat_"u8))
            {
                start = at - 6;
                length = TokenWithUnderscore(text, start, 11, 22);
            }
            else if (at >= 2 && text[at - 1] == 'k' && text[at - 2] is (byte)'s' or (byte)'r' && at + 6 < text.Length
                && (text.Slice(at + 1, 5).SequenceEqual("live_"u8) || (text[at - 2] == 's' && text.Slice(at + 1, 5).SequenceEqual("test_"u8))))
            {
                start = at - 2;
                length = Token(text, start, 8, 16);
            }
            else if (at >= 3 && AwsSecret(text, at, out start))
            {
                length = AwsSecretLength;
            }

            if (length > 0 && start >= from)
            {
                hit = new Hit(start, length, DetectorKind.SecretToken);
                return true;
            }

            i = at + 1;
        }

        hit = default;
        return false;
    }

    /// <summary>The first GitLab personal access token at or after <paramref name="from"/>.</summary>
    public static bool FindNextGitLab(ReadOnlySpan<byte> text, int from, out Hit hit)
    {
        int i = from;
        while (i < text.Length)
        {
            int next = text[i..].IndexOf("glpat-"u8);
            if (next < 0)
            {
                break;
            }

            int at = i + next;
            int length = BoundaryBefore(text, at) ? 6 + CountBase64Url(text, at + 6) : 0;
            if (length >= GitLabMinLength)
            {
                hit = new Hit(at, length, DetectorKind.SecretToken);
                return true;
            }

            i = at + 1;
        }

        hit = default;
        return false;
    }

    /// <summary>The first Slack token at or after <paramref name="from"/>.</summary>
    public static bool FindNextSlack(ReadOnlySpan<byte> text, int from, out Hit hit)
    {
        int i = from;
        while (i < text.Length)
        {
            int next = text[i..].IndexOf("xox"u8);
            if (next < 0)
            {
                break;
            }

            int at = i + next;
            if (at + SlackMinLength <= text.Length && text[at + 3] is (byte)'b' or (byte)'p' or (byte)'a' or (byte)'r' or (byte)'s'
                && text[at + 4] == '-' && BoundaryBefore(text, at))
            {
                int end = at + 5;
                while (end < text.Length && (IsAlnum(text[end]) || text[end] == '-'))
                {
                    end++;
                }

                if (end - at >= SlackMinLength)
                {
                    hit = new Hit(at, end - at, DetectorKind.SecretToken);
                    return true;
                }
            }

            i = at + 1;
        }

        hit = default;
        return false;
    }

    /// <summary>A prefix of <paramref name="prefix"/> bytes, then at least <paramref name="min"/> letters and digits, to the end of the run.</summary>
    private static int Token(ReadOnlySpan<byte> text, int start, int prefix, int min)
    {
        if (!BoundaryBefore(text, start))
        {
            return 0;
        }

        int body = CountAlnum(text, start + prefix);
        return body >= min ? prefix + body : 0;
    }

    /// <summary>As <see cref="Token"/>, with underscores in the body (fine-grained GitHub tokens).</summary>
    private static int TokenWithUnderscore(ReadOnlySpan<byte> text, int start, int prefix, int min)
    {
        if (!BoundaryBefore(text, start))
        {
            return 0;
        }

        int end = start + prefix;
        while (end < text.Length && (IsAlnum(text[end]) || text[end] == '_'))
        {
            end++;
        }

        return end - start - prefix >= min ? end - start : 0;
    }

    /// <summary>
    /// <c>aws_secret_access_key</c> (any case; <paramref name="underscore"/> is its first underscore), optional closing
    /// quote and spaces, <c>=</c> or <c>:</c>, optional spaces and opening quote, then 40 characters of
    /// [A-Za-z0-9/+] that are not part of a longer run of them: the key, whose start is returned.
    /// </summary>
    private static bool AwsSecret(ReadOnlySpan<byte> text, int underscore, out int start)
    {
        start = 0;
        int label = underscore - 3;
        ReadOnlySpan<byte> name = "aws_secret_access_key"u8;
        if (label + name.Length > text.Length || (label > 0 && IsAlnum(text[label - 1])))
        {
            return false;
        }

        for (int k = 0; k < name.Length; k++)
        {
            if ((text[label + k] | 0x20) != name[k] && !(name[k] == '_' && text[label + k] == '_'))
            {
                return false;
            }
        }

        int i = label + name.Length;
        i = Skip(text, i, quotes: true);
        if (i >= text.Length || text[i] is not ((byte)'=' or (byte)':'))
        {
            return false;
        }

        i = Skip(text, i + 1, quotes: true);
        if (i + AwsSecretLength > text.Length || (i + AwsSecretLength < text.Length && IsSecretByte(text[i + AwsSecretLength])))
        {
            return false;
        }

        for (int k = i; k < i + AwsSecretLength; k++)
        {
            if (!IsSecretByte(text[k]))
            {
                return false;
            }
        }

        start = i;
        return true;

        static bool IsSecretByte(byte b) => IsAlnum(b) || b is (byte)'/' or (byte)'+';

        static int Skip(ReadOnlySpan<byte> text, int i, bool quotes)
        {
            while (i < text.Length && (text[i] is (byte)' ' or (byte)'\t' || (quotes && text[i] is (byte)'"' or (byte)'\'')))
            {
                i++;
            }

            return i;
        }
    }
}
