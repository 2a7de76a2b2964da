using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Unicode;

namespace Gatehouse.Policy.Identity;

/// <summary>
/// A SCRAM-SHA-256 password verifier as PostgreSQL stores it in <c>pg_authid.rolpassword</c>:
/// <c>SCRAM-SHA-256$&lt;iterations&gt;:&lt;salt&gt;$&lt;StoredKey&gt;:&lt;ServerKey&gt;</c> (base64 fields).
/// It holds no password: StoredKey = H(ClientKey) and ServerKey let a server check a proof and prove itself
/// (RFC 5802 section 3), but neither lets anyone log in as the user.
/// </summary>
public sealed class ScramVerifier
{
    /// <summary>PostgreSQL's default <c>scram_iterations</c> (and the RFC 7677 section 4 minimum).</summary>
    public const int DefaultIterations = 4096;

    /// <summary>Salt length PostgreSQL uses for new verifiers (SCRAM_DEFAULT_SALT_LEN).</summary>
    public const int DefaultSaltLength = 16;

    private const string Prefix = "SCRAM-SHA-256$";

    private readonly byte[] _salt;
    private readonly byte[] _storedKey;
    private readonly byte[] _serverKey;

    /// <summary>Builds a verifier from its parts. The keys must be 32 bytes (SHA-256); the salt must not be empty.</summary>
    public ScramVerifier(int iterations, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> storedKey, ReadOnlySpan<byte> serverKey)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(iterations);
        if (salt.IsEmpty)
        {
            throw new ArgumentException("The salt must not be empty.", nameof(salt));
        }

        if (storedKey.Length != ScramPrimitives.KeyLength)
        {
            throw new ArgumentException("StoredKey must be 32 bytes.", nameof(storedKey));
        }

        if (serverKey.Length != ScramPrimitives.KeyLength)
        {
            throw new ArgumentException("ServerKey must be 32 bytes.", nameof(serverKey));
        }

        Iterations = iterations;
        _salt = salt.ToArray();
        _storedKey = storedKey.ToArray();
        _serverKey = serverKey.ToArray();
    }

    /// <summary>PBKDF2 iteration count (the <c>i=</c> attribute of server-first).</summary>
    public int Iterations { get; }

    /// <summary>The salt (the <c>s=</c> attribute of server-first, decoded).</summary>
    public ReadOnlySpan<byte> Salt => _salt;

    /// <summary>H(HMAC(SaltedPassword, "Client Key")), RFC 5802 section 3.</summary>
    public ReadOnlySpan<byte> StoredKey => _storedKey;

    /// <summary>HMAC(SaltedPassword, "Server Key"), RFC 5802 section 3.</summary>
    public ReadOnlySpan<byte> ServerKey => _serverKey;

    /// <summary>
    /// Parses PostgreSQL's verifier format. Stricter than PostgreSQL in two ways that no real verifier trips:
    /// the iteration count must be a plain positive decimal, and base64 must not contain whitespace.
    /// </summary>
    /// <param name="text">The stored verifier.</param>
    /// <param name="verifier">The parsed verifier, or null.</param>
    /// <param name="error">Why the text was refused, or null. Never contains the text itself.</param>
    public static bool TryParse(string? text, out ScramVerifier? verifier, out string? error)
    {
        verifier = null;
        if (text is null || !text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = "not a SCRAM-SHA-256 verifier";
            return false;
        }

        // <iterations>:<salt>$<StoredKey>:<ServerKey>; no field may contain a separator.
        ReadOnlySpan<char> rest = text.AsSpan(Prefix.Length);
        int dollar = rest.IndexOf('$');
        if (dollar < 0)
        {
            error = "malformed SCRAM verifier";
            return false;
        }

        ReadOnlySpan<char> head = rest[..dollar];
        ReadOnlySpan<char> keys = rest[(dollar + 1)..];
        int headColon = head.IndexOf(':');
        int keysColon = keys.IndexOf(':');
        if (headColon < 0 || keysColon < 0)
        {
            error = "malformed SCRAM verifier";
            return false;
        }

        ReadOnlySpan<char> iterationsText = head[..headColon];
        ReadOnlySpan<char> saltText = head[(headColon + 1)..];
        ReadOnlySpan<char> storedText = keys[..keysColon];
        ReadOnlySpan<char> serverText = keys[(keysColon + 1)..];

        if (!ScramPrimitives.TryParsePositiveInt(iterationsText, out int iterations))
        {
            error = "invalid SCRAM iteration count";
            return false;
        }

        if (!ScramPrimitives.IsStrictBase64(saltText) || saltText.IsEmpty)
        {
            error = "invalid SCRAM salt";
            return false;
        }

        int saltCapacity = saltText.Length / 4 * 3;
        Span<byte> salt = saltCapacity <= ScramPrimitives.StackLimit
            ? stackalloc byte[ScramPrimitives.StackLimit]
            : new byte[saltCapacity];
        if (!Convert.TryFromBase64Chars(saltText, salt, out int saltLength) || saltLength == 0)
        {
            error = "invalid SCRAM salt";
            return false;
        }

        Span<byte> storedKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> serverKey = stackalloc byte[ScramPrimitives.KeyLength];
        if (!TryDecodeKey(storedText, storedKey) || !TryDecodeKey(serverText, serverKey))
        {
            error = "invalid SCRAM key";
            return false;
        }

        verifier = new ScramVerifier(iterations, salt[..saltLength], storedKey, serverKey);
        error = null;
        return true;
    }

    /// <summary>
    /// Makes a verifier for a password with a fresh random 16-byte salt, as PostgreSQL's
    /// <c>scram_build_secret</c> does.
    /// </summary>
    /// <exception cref="ArgumentException">The password is not valid UTF-16 (a lone surrogate).</exception>
    public static ScramVerifier Create(ReadOnlySpan<char> password, int iterations = DefaultIterations)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(iterations);
        Span<byte> salt = stackalloc byte[DefaultSaltLength];
        RandomNumberGenerator.Fill(salt);
        return Create(password, salt, iterations);
    }

    /// <summary>Makes a verifier with a given salt; for reproducible tests and test vectors.</summary>
    internal static ScramVerifier Create(ReadOnlySpan<char> password, ReadOnlySpan<byte> salt, int iterations)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(iterations);
        byte[]? rented = null;
        int max = ScramPrimitives.MaxUtf8Length(password.Length);
        Span<byte> utf8 = max <= ScramPrimitives.StackLimit
            ? stackalloc byte[ScramPrimitives.StackLimit]
            : (rented = ArrayPool<byte>.Shared.Rent(max));
        Span<byte> clientKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> storedKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> serverKey = stackalloc byte[ScramPrimitives.KeyLength];
        try
        {
            int length = ScramPrimitives.GetPasswordBytes(password, utf8);
            if (length < 0)
            {
                throw new ArgumentException("The password is not valid UTF-16.", nameof(password));
            }

            ScramPrimitives.DeriveKeys(utf8[..length], salt, iterations, clientKey, storedKey, serverKey);
            return new ScramVerifier(iterations, salt, storedKey, serverKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(utf8);
            CryptographicOperations.ZeroMemory(clientKey);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Formats the verifier as PostgreSQL stores it; <see cref="TryParse"/> reads it back.</summary>
    public override string ToString() =>
        string.Create(
            CultureInfo.InvariantCulture,
            $"{Prefix}{Iterations}:{Convert.ToBase64String(_salt)}${Convert.ToBase64String(_storedKey)}:{Convert.ToBase64String(_serverKey)}");

    /// <summary>
    /// Checks a cleartext password (from a PasswordMessage) against the verifier, as PostgreSQL's
    /// <c>scram_verify_plain_password</c> does. A password that is not valid UTF-16 never matches.
    /// </summary>
    public bool VerifyPassword(ReadOnlySpan<char> password)
    {
        byte[]? rented = null;
        int max = ScramPrimitives.MaxUtf8Length(password.Length);
        Span<byte> utf8 = max <= ScramPrimitives.StackLimit
            ? stackalloc byte[ScramPrimitives.StackLimit]
            : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            int length = ScramPrimitives.GetPasswordBytes(password, utf8);
            return length >= 0 && VerifyPasswordUtf8(utf8[..length]);
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

    /// <summary>
    /// Checks a cleartext password given as the bytes the client sent. PostgreSQL hashes the bytes as they are
    /// when they are not valid UTF-8, so this overload does too.
    /// </summary>
    public bool VerifyPasswordUtf8(ReadOnlySpan<byte> password)
    {
        Span<byte> clientKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> storedKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> serverKey = stackalloc byte[ScramPrimitives.KeyLength];
        try
        {
            ScramPrimitives.DeriveKeys(password, _salt, Iterations, clientKey, storedKey, serverKey);
            return CryptographicOperations.FixedTimeEquals(storedKey, _storedKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(clientKey);
            CryptographicOperations.ZeroMemory(serverKey);
        }
    }

    private static bool TryDecodeKey(ReadOnlySpan<char> text, Span<byte> destination) =>
        ScramPrimitives.IsStrictBase64(text)
        && text.Length == 44 // base64 of exactly 32 bytes
        && Convert.TryFromBase64Chars(text, destination, out int written)
        && written == ScramPrimitives.KeyLength;
}

/// <summary>SCRAM-SHA-256 pieces shared by the verifier and both sides of the exchange (RFC 5802, RFC 7677).</summary>
internal static class ScramPrimitives
{
    /// <summary>SHA-256 output length: the size of every SCRAM-SHA-256 key, signature and proof.</summary>
    public const int KeyLength = 32;

    /// <summary>Raw nonce bytes before base64, as PostgreSQL and libpq use (SCRAM_RAW_NONCE_LEN).</summary>
    public const int RawNonceLength = 18;

    /// <summary>Buffers up to this size live on the stack; larger ones come from the array pool.</summary>
    public const int StackLimit = 256;

    /// <summary>Length of base64(32 bytes): proofs and signatures.</summary>
    public const int KeyBase64Length = 44;

    public static ReadOnlySpan<byte> ClientKeyLabel => "Client Key"u8;

    public static ReadOnlySpan<byte> ServerKeyLabel => "Server Key"u8;

    public static int MaxUtf8Length(int charCount) => checked((charCount + 1) * 3);

    /// <summary>
    /// The bytes SCRAM hashes for a password. RFC 5802 section 2.2 wants Normalize() = SASLprep (RFC 4013);
    /// we use the UTF-8 bytes as they are. That equals SASLprep for ASCII (PostgreSQL's pg_saslprep returns
    /// ASCII unchanged) and for passwords SASLprep refuses (PostgreSQL then also uses the raw bytes); only
    /// non-ASCII passwords that NFKC or the RFC 4013 mappings would change hash differently from PostgreSQL.
    /// Returns -1 for invalid UTF-16 rather than substituting U+FFFD, so two distinct passwords never
    /// collapse to the same bytes.
    /// </summary>
    public static int GetPasswordBytes(ReadOnlySpan<char> password, Span<byte> destination)
    {
        OperationStatus status = Utf8.FromUtf16(password, destination, out _, out int written, replaceInvalidSequences: false);
        return status == OperationStatus.Done ? written : -1;
    }

    /// <summary>SaltedPassword, ClientKey, StoredKey, ServerKey (RFC 5802 section 3).</summary>
    public static void DeriveKeys(
        ReadOnlySpan<byte> password,
        ReadOnlySpan<byte> salt,
        int iterations,
        Span<byte> clientKey,
        Span<byte> storedKey,
        Span<byte> serverKey)
    {
        Span<byte> saltedPassword = stackalloc byte[KeyLength];
        try
        {
            // Hi() of RFC 5802 section 2.2 is PBKDF2 with HMAC as the PRF and dkLen = output length.
            Rfc2898DeriveBytes.Pbkdf2(password, salt, saltedPassword, iterations, HashAlgorithmName.SHA256);
            HMACSHA256.HashData(saltedPassword, ClientKeyLabel, clientKey);
            SHA256.HashData(clientKey, storedKey);
            HMACSHA256.HashData(saltedPassword, ServerKeyLabel, serverKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(saltedPassword);
        }
    }

    /// <summary>HMAC(key, AuthMessage), AuthMessage = client-first-message-bare "," server-first-message ","
    /// client-final-message-without-proof (RFC 5802 section 3).</summary>
    public static void SignAuthMessage(
        ReadOnlySpan<byte> key,
        ReadOnlySpan<byte> clientFirstBare,
        ReadOnlySpan<byte> serverFirst,
        ReadOnlySpan<byte> clientFinalWithoutProof,
        Span<byte> destination)
    {
        // One contiguous buffer (stack or pool) rather than an IncrementalHash object per signature.
        int length = clientFirstBare.Length + 1 + serverFirst.Length + 1 + clientFinalWithoutProof.Length;
        byte[]? rented = null;
        Span<byte> message = length <= StackLimit * 2
            ? stackalloc byte[StackLimit * 2]
            : (rented = ArrayPool<byte>.Shared.Rent(length));
        int at = clientFirstBare.Length;
        clientFirstBare.CopyTo(message);
        message[at++] = (byte)',';
        serverFirst.CopyTo(message[at..]);
        at += serverFirst.Length;
        message[at++] = (byte)',';
        clientFinalWithoutProof.CopyTo(message[at..]);
        HMACSHA256.HashData(key, message[..length], destination);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public static void Xor(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, Span<byte> destination)
    {
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = (byte)(a[i] ^ b[i]);
        }
    }

    /// <summary>RFC 5802 section 7 <c>printable</c>: %x21-2B / %x2D-7E, i.e. visible ASCII except ','.</summary>
    public static bool IsPrintable(ReadOnlySpan<byte> value)
    {
        foreach (byte b in value)
        {
            if (b is < 0x21 or > 0x7E or (byte)',')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Canonical padded base64 with no whitespace. .NET's decoders skip whitespace, which a SCRAM peer must
    /// not send (RFC 5802 section 7 <c>base64</c>), so the alphabet is checked first.
    /// </summary>
    public static bool IsStrictBase64(ReadOnlySpan<byte> text)
    {
        if (text.Length % 4 != 0)
        {
            return false;
        }

        int padding = text.Length > 0 && text[^1] == '=' ? (text.Length > 1 && text[^2] == '=' ? 2 : 1) : 0;
        foreach (byte c in text[..^padding])
        {
            if (!IsBase64Char(c))
            {
                return false;
            }
        }

        return true;
    }

    public static bool IsStrictBase64(ReadOnlySpan<char> text)
    {
        if (text.Length % 4 != 0)
        {
            return false;
        }

        int padding = text.Length > 0 && text[^1] == '=' ? (text.Length > 1 && text[^2] == '=' ? 2 : 1) : 0;
        foreach (char c in text[..^padding])
        {
            if (c > 0x7F || !IsBase64Char((byte)c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Decodes strict base64 into <paramref name="destination"/>; false if invalid or too long.</summary>
    public static bool TryDecodeBase64(ReadOnlySpan<byte> text, Span<byte> destination, out int written)
    {
        written = 0;
        return IsStrictBase64(text)
            && Base64.DecodeFromUtf8(text, destination, out int consumed, out written) == OperationStatus.Done
            && consumed == text.Length;
    }

    /// <summary>Parses 1*DIGIT into a positive int (RFC 5802 <c>posit-number</c>): no sign, no spaces, no overflow.</summary>
    public static bool TryParsePositiveInt(ReadOnlySpan<char> text, out int value)
    {
        value = 0;
        if (text.IsEmpty || text[0] == '0')
        {
            return false;
        }

        foreach (char c in text)
        {
            if (c is < '0' or > '9' || value > (int.MaxValue - (c - '0')) / 10)
            {
                value = 0;
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        return true;
    }

    public static bool TryParsePositiveInt(ReadOnlySpan<byte> text, out int value)
    {
        value = 0;
        if (text.IsEmpty || text[0] == '0')
        {
            return false;
        }

        foreach (byte c in text)
        {
            if (c is < (byte)'0' or > (byte)'9' || value > (int.MaxValue - (c - '0')) / 10)
            {
                value = 0;
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        return true;
    }

    /// <summary>
    /// Reads the next <c>attr=value</c> of a SCRAM message (RFC 5802 section 5.1) and advances past it and
    /// its ','. Values may be empty here; callers that need a value check. False for a malformed attribute.
    /// </summary>
    public static bool TryReadAttribute(ref ReadOnlySpan<byte> input, out byte name, out ReadOnlySpan<byte> value)
    {
        name = 0;
        value = default;
        if (input.Length < 2 || !IsAsciiLetter(input[0]) || input[1] != '=')
        {
            return false;
        }

        name = input[0];
        ReadOnlySpan<byte> rest = input[2..];
        int comma = rest.IndexOf((byte)',');
        if (comma < 0)
        {
            value = rest;
            input = default;
            return true;
        }

        value = rest[..comma];
        input = rest[(comma + 1)..];

        // A trailing ',' would leave an empty attribute: "a=b," is not a valid message.
        return !input.IsEmpty;
    }

    /// <summary>Reads an attribute that must have the given name.</summary>
    public static bool TryReadAttribute(ref ReadOnlySpan<byte> input, byte expectedName, out ReadOnlySpan<byte> value) =>
        TryReadAttribute(ref input, out byte name, out value) && name == expectedName;

    /// <summary>
    /// Skips optional extensions (RFC 5802 section 5.1: unknown attributes are ignored) up to the end or up to
    /// an attribute named <paramref name="stopAt"/>. False for a malformed attribute or a mandatory
    /// extension <c>m=</c>, which a party that does not understand it must refuse.
    /// </summary>
    public static bool TrySkipExtensions(ref ReadOnlySpan<byte> input, byte stopAt)
    {
        while (!input.IsEmpty)
        {
            if (input[0] == stopAt && input.Length >= 2 && input[1] == '=')
            {
                return true;
            }

            if (!TryReadAttribute(ref input, out byte name, out _) || name == 'm')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether the message contains a NUL: PostgreSQL reads SCRAM messages as C strings and refuses them.</summary>
    public static bool ContainsNul(ReadOnlySpan<byte> message) => message.Contains((byte)0);

    /// <summary>Writes base64 of <paramref name="data"/> and returns the number of bytes written.</summary>
    public static int WriteBase64(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        Base64.EncodeToUtf8(data, destination, out _, out int written);
        return written;
    }

    /// <summary>A fresh nonce: 18 random bytes in base64 (24 printable characters without ',').</summary>
    public static byte[] CreateNonce()
    {
        Span<byte> raw = stackalloc byte[RawNonceLength];
        RandomNumberGenerator.Fill(raw);
        byte[] nonce = new byte[Base64.GetMaxEncodedToUtf8Length(RawNonceLength)];
        WriteBase64(raw, nonce);
        return nonce;
    }

    /// <summary>Writes the decimal digits of a positive int.</summary>
    public static int WriteInt(int value, Span<byte> destination)
    {
        value.TryFormat(destination, out int written, default, CultureInfo.InvariantCulture);
        return written;
    }

    private static bool IsAsciiLetter(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    private static bool IsBase64Char(byte c) =>
        IsAsciiLetter(c) || (uint)(c - '0') <= 9 || c == '+' || c == '/';
}
