using System.Buffers;
using System.Security.Cryptography;
using System.Text.Unicode;

namespace Gatehouse.Policy.Identity;

/// <summary>Constant-time comparison of static secrets (tokens, shared keys) held as text.</summary>
public static class SecretComparer
{
    private const int StackLimit = 256;

    /// <summary>
    /// Whether <paramref name="a"/> and <paramref name="b"/> have the same UTF-8 bytes, in time that depends
    /// only on their lengths. Both are hashed with SHA-256 first, so even the comparison itself does not stop
    /// early on a length difference. Text that is not valid UTF-16 (a lone surrogate) never matches: encoding
    /// it with U+FFFD would make distinct secrets equal.
    /// </summary>
    public static bool FixedTimeEquals(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        Span<byte> hashA = stackalloc byte[SHA256.HashSizeInBytes];
        Span<byte> hashB = stackalloc byte[SHA256.HashSizeInBytes];
        bool validA = TryHash(a, hashA);
        bool validB = TryHash(b, hashB);

        // Non-short-circuit '&': the digest comparison runs whatever the validity.
        return CryptographicOperations.FixedTimeEquals(hashA, hashB) & validA & validB;
    }

    private static bool TryHash(ReadOnlySpan<char> text, Span<byte> hash)
    {
        int max = checked((text.Length + 1) * 3);
        byte[]? rented = null;
        Span<byte> utf8 = max <= StackLimit
            ? stackalloc byte[StackLimit]
            : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            OperationStatus status = Utf8.FromUtf16(text, utf8, out _, out int written, replaceInvalidSequences: false);
            SHA256.HashData(utf8[..written], hash);
            return status == OperationStatus.Done;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(utf8);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
