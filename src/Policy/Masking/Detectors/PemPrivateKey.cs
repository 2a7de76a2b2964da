namespace Gatehouse.Policy.Masking;

/// <summary>
/// PEM private keys (RFC 7468): <c>-----BEGIN </c> a label that ends with <c>PRIVATE KEY</c> (<c>RSA</c>, <c>EC</c>,
/// <c>DSA</c>, <c>OPENSSH</c>, <c>ENCRYPTED</c> or none; <c>PGP PRIVATE KEY BLOCK</c> too) <c>-----</c>, to the end of
/// the matching <c>-----END</c> line. Without a matching END line the match runs to the end of the value: a truncated
/// key is still a key (fail closed). Certificates, public keys and other PEM blocks are not matched.
/// </summary>
internal static class PemPrivateKey
{
    /// <summary>The shortest match: <c>-----BEGIN PRIVATE KEY-----</c>.</summary>
    public const int MinLength = 27;

    /// <summary>RFC 7468 labels are short; a longer run of label characters is not a PEM header.</summary>
    private const int MaxLabel = 64;

    public static bool FindNext(ReadOnlySpan<byte> text, int from, out Hit hit)
    {
        ReadOnlySpan<byte> begin = "-----BEGIN "u8;
        int i = from;
        while (i < text.Length)
        {
            int next = text[i..].IndexOf(begin);
            if (next < 0)
            {
                break;
            }

            int at = i + next;
            int labelStart = at + begin.Length;
            int labelEnd = labelStart;
            while (labelEnd < text.Length && labelEnd - labelStart < MaxLabel && IsLabelByte(text[labelEnd]))
            {
                labelEnd++;
            }

            var label = text[labelStart..labelEnd];
            if (text[labelEnd..].StartsWith("-----"u8) && (label.EndsWith("PRIVATE KEY"u8) || label.EndsWith("PRIVATE KEY BLOCK"u8)))
            {
                hit = new Hit(at, End(text, labelEnd + 5, label) - at, DetectorKind.PemPrivateKey);
                return true;
            }

            i = labelStart;
        }

        hit = default;
        return false;
    }

    /// <summary>The end of <c>-----END label-----</c> after <paramref name="from"/>, or the end of the text.</summary>
    private static int End(ReadOnlySpan<byte> text, int from, ReadOnlySpan<byte> label)
    {
        ReadOnlySpan<byte> end = "-----END "u8;
        int i = from;
        while (i < text.Length)
        {
            int next = text[i..].IndexOf(end);
            if (next < 0)
            {
                break;
            }

            int at = i + next + end.Length;
            if (text[at..].StartsWith(label) && text[(at + label.Length)..].StartsWith("-----"u8))
            {
                return at + label.Length + 5;
            }

            i = at;
        }

        return text.Length;
    }

    private static bool IsLabelByte(byte b) => ByteClass.IsUpper(b) || ByteClass.IsDigit(b) || b == ' ';
}
