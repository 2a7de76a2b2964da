using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Policy.Identity;

/// <summary>
/// PostgreSQL's legacy <c>md5</c> password response (AuthenticationMD5Password):
/// <c>"md5" + hex(md5(hex(md5(password + user)) + salt))</c>, lower-case hex, 35 ASCII bytes.
/// MD5 is broken as a password hash; this exists only for servers and clients that still require it.
/// </summary>
public static class Md5Password
{
    /// <summary>Length of the response: "md5" and 32 hex digits.</summary>
    public const int Length = 35;

    /// <summary>Length of the salt PostgreSQL sends with AuthenticationMD5Password.</summary>
    public const int SaltLength = 4;

    private const int HexLength = 32;
    private const int StackLimit = 256;

    private static ReadOnlySpan<byte> HexDigits => "0123456789abcdef"u8;

    /// <summary>Writes the 35-byte response for <paramref name="user"/> and <paramref name="password"/> (both as sent on the wire).</summary>
    /// <exception cref="ArgumentException">The salt is not 4 bytes, or the destination is shorter than 35 bytes.</exception>
    [SuppressMessage("Security", "CA5351:Do Not Use Broken Cryptographic Algorithms", Justification = "PostgreSQL's md5 authentication is defined with MD5; interoperability only.")]
    public static void Compute(ReadOnlySpan<byte> user, ReadOnlySpan<byte> password, ReadOnlySpan<byte> salt4, Span<byte> destination35)
    {
        if (salt4.Length != SaltLength)
        {
            throw new ArgumentException("The salt must be 4 bytes.", nameof(salt4));
        }

        if (destination35.Length < Length)
        {
            throw new ArgumentException("The destination must hold 35 bytes.", nameof(destination35));
        }

        // Inner hash: md5(password || user), what pg_authid stores after "md5" (pg_md5_encrypt).
        int innerLength = password.Length + user.Length;
        byte[]? rented = null;
        Span<byte> inner = innerLength <= StackLimit
            ? stackalloc byte[StackLimit]
            : (rented = ArrayPool<byte>.Shared.Rent(innerLength));
        Span<byte> digest = stackalloc byte[MD5.HashSizeInBytes];
        Span<byte> outer = stackalloc byte[HexLength + SaltLength];
        try
        {
            password.CopyTo(inner);
            user.CopyTo(inner[password.Length..]);
            MD5.HashData(inner[..innerLength], digest);

            // Outer hash: md5(hex(inner) || salt); the salt keeps a captured response from being replayed.
            WriteHex(digest, outer);
            salt4.CopyTo(outer[HexLength..]);
            MD5.HashData(outer, digest);

            "md5"u8.CopyTo(destination35);
            WriteHex(digest, destination35[3..]);
        }
        finally
        {
            // The inner hash is password-equivalent for md5 authentication; clear every copy.
            CryptographicOperations.ZeroMemory(inner);
            CryptographicOperations.ZeroMemory(digest);
            CryptographicOperations.ZeroMemory(outer);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>The response as a string, with user and password encoded as UTF-8.</summary>
    /// <exception cref="ArgumentException">The salt is not 4 bytes.</exception>
    public static string Compute(ReadOnlySpan<char> user, ReadOnlySpan<char> password, ReadOnlySpan<byte> salt4)
    {
        int userMax = Encoding.UTF8.GetMaxByteCount(user.Length);
        int passwordMax = Encoding.UTF8.GetMaxByteCount(password.Length);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(userMax + passwordMax);
        Span<byte> response = stackalloc byte[Length];
        try
        {
            int userLength = Encoding.UTF8.GetBytes(user, buffer);
            int passwordLength = Encoding.UTF8.GetBytes(password, buffer.AsSpan(userLength));
            Compute(buffer.AsSpan(0, userLength), buffer.AsSpan(userLength, passwordLength), salt4, response);
            return Encoding.ASCII.GetString(response);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void WriteHex(ReadOnlySpan<byte> bytes, Span<byte> destination)
    {
        for (int i = 0; i < bytes.Length; i++)
        {
            destination[2 * i] = HexDigits[bytes[i] >> 4];
            destination[(2 * i) + 1] = HexDigits[bytes[i] & 0xF];
        }
    }
}
