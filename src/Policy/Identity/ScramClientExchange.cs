using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Policy.Identity;

/// <summary>
/// The client side of one SCRAM-SHA-256 exchange (RFC 5802, RFC 7677), for the gateway logging into an
/// upstream PostgreSQL server, without channel binding. It sends what libpq sends: gs2 header <c>n,,</c>
/// and an empty user name (PostgreSQL takes the user from the startup packet). One instance per login
/// attempt; not thread-safe.
/// </summary>
/// <remarks>
/// <see cref="CreateClientFirst"/> gives the SASLInitialResponse data; <see cref="TryHandleServerFirst"/>
/// takes AuthenticationSASLContinue data and gives the SASLResponse data; <see cref="VerifyServerFinal"/>
/// takes AuthenticationSASLFinal data. The server is authenticated only if that last call succeeds.
/// </remarks>
public sealed class ScramClientExchange
{
    /// <summary>
    /// Highest iteration count accepted from a server. RFC 7677 sets no maximum, but each iteration is an HMAC
    /// we compute: without a cap a hostile or misconfigured upstream could pin a CPU per login.
    /// 10,000,000 is some seconds of work, far above any deployed setting.
    /// </summary>
    public const int MaxIterations = 10_000_000;

    private const int MaxServerErrorLength = 64;

    // "n,," (no channel binding, no authzid): its base64 "biws" is the c= value of client-final.
    private static ReadOnlySpan<byte> Gs2Header => "n,,"u8;

    private static ReadOnlySpan<byte> ChannelBindingAttribute => "c=biws,r="u8;

    // client-first-message-bare: "n=" saslname ",r=" nonce.
    private readonly byte[] _clientFirstBare;
    private readonly int _nonceOffset;
    private readonly int _nonceLength;

    // The password as UTF-8, kept only until server-first supplies salt and iterations, then zeroed.
    private byte[]? _password;
    private byte[]? _expectedServerSignature;
    private State _state;

    /// <summary>Starts an exchange that will log in with <paramref name="password"/>.</summary>
    /// <exception cref="ArgumentException">The password is not valid UTF-16 (a lone surrogate).</exception>
    public ScramClientExchange(ReadOnlySpan<char> password)
        : this(password, userName: string.Empty, clientNonce: null)
    {
    }

    /// <summary>Test hook: a user name and a fixed client nonce, to reproduce the RFC 7677 section 3 vector.</summary>
    internal ScramClientExchange(ReadOnlySpan<char> password, string userName, string? clientNonce)
    {
        _password = EncodePassword(password);

        // saslname escapes ',' and '=' (RFC 5802 section 5.1).
        byte[] name = Encoding.UTF8.GetBytes(userName.Replace("=", "=3D", StringComparison.Ordinal).Replace(",", "=2C", StringComparison.Ordinal));
        byte[] nonce = clientNonce is null ? ScramPrimitives.CreateNonce() : Encoding.UTF8.GetBytes(clientNonce);
        if (nonce.Length == 0 || !ScramPrimitives.IsPrintable(nonce))
        {
            throw new ArgumentException("The nonce must be printable ASCII without ','.", nameof(clientNonce));
        }

        _clientFirstBare = new byte[2 + name.Length + 3 + nonce.Length];
        "n="u8.CopyTo(_clientFirstBare);
        name.CopyTo(_clientFirstBare, 2);
        ",r="u8.CopyTo(_clientFirstBare.AsSpan(2 + name.Length));
        _nonceOffset = 2 + name.Length + 3;
        _nonceLength = nonce.Length;
        nonce.CopyTo(_clientFirstBare, _nonceOffset);
    }

    private enum State : byte
    {
        Initial,
        AwaitingServerFirst,
        AwaitingServerFinal,
        Succeeded,
        Failed,
    }

    /// <summary>True once the server has proven it knows the verifier (server-final checked).</summary>
    public bool IsAuthenticated => _state == State.Succeeded;

    /// <summary>client-first-message: <c>n,,n=,r=&lt;nonce&gt;</c>.</summary>
    /// <exception cref="InvalidOperationException">Called more than once.</exception>
    public byte[] CreateClientFirst()
    {
        if (_state != State.Initial)
        {
            throw new InvalidOperationException("client-first has already been created for this exchange.");
        }

        byte[] message = new byte[Gs2Header.Length + _clientFirstBare.Length];
        Gs2Header.CopyTo(message);
        _clientFirstBare.CopyTo(message, Gs2Header.Length);
        _state = State.AwaitingServerFirst;
        return message;
    }

    /// <summary>
    /// Reads server-first-message <c>r=&lt;nonce&gt;,s=&lt;salt&gt;,i=&lt;iterations&gt;</c> and produces
    /// client-final-message <c>c=biws,r=&lt;nonce&gt;,p=&lt;ClientProof&gt;</c> (RFC 5802 section 7).
    /// </summary>
    public bool TryHandleServerFirst(ReadOnlySpan<byte> serverFirst, out byte[] clientFinal, out string? error)
    {
        clientFinal = [];
        if (_state != State.AwaitingServerFirst || _password is null)
        {
            return Fail("unexpected SCRAM message", out error);
        }

        if (ScramPrimitives.ContainsNul(serverFirst))
        {
            return Fail("malformed SCRAM message", out error);
        }

        // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
        ReadOnlySpan<byte> input = serverFirst;
        if (input.Length >= 2 && input[0] == 'm' && input[1] == '=')
        {
            return Fail("unsupported SCRAM extension", out error);
        }

        if (!ScramPrimitives.TryReadAttribute(ref input, (byte)'r', out ReadOnlySpan<byte> nonce)
            || !ScramPrimitives.TryReadAttribute(ref input, (byte)'s', out ReadOnlySpan<byte> saltText)
            || !ScramPrimitives.TryReadAttribute(ref input, (byte)'i', out ReadOnlySpan<byte> iterationsText)
            || !ScramPrimitives.TrySkipExtensions(ref input, stopAt: 0))
        {
            return Fail("malformed SCRAM message", out error);
        }

        // The server must extend our nonce (RFC 5802 section 5.1, r=): a reply to another exchange, or one
        // that leaves the server's part empty, is refused.
        ReadOnlySpan<byte> clientNonce = _clientFirstBare.AsSpan(_nonceOffset, _nonceLength);
        if (nonce.Length <= clientNonce.Length || !nonce.StartsWith(clientNonce) || !ScramPrimitives.IsPrintable(nonce))
        {
            return Fail("SCRAM nonce mismatch", out error);
        }

        if (!ScramPrimitives.TryParsePositiveInt(iterationsText, out int iterations) || iterations > MaxIterations)
        {
            return Fail("invalid SCRAM iteration count", out error);
        }

        byte[]? rentedSalt = null;
        int saltCapacity = saltText.Length / 4 * 3;
        Span<byte> salt = saltCapacity <= ScramPrimitives.StackLimit
            ? stackalloc byte[ScramPrimitives.StackLimit]
            : (rentedSalt = ArrayPool<byte>.Shared.Rent(saltCapacity));
        Span<byte> clientKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> storedKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> serverKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> signature = stackalloc byte[ScramPrimitives.KeyLength];
        try
        {
            if (saltText.IsEmpty
                || !ScramPrimitives.TryDecodeBase64(saltText, salt, out int saltLength)
                || saltLength == 0)
            {
                return Fail("invalid SCRAM salt", out error);
            }

            ScramPrimitives.DeriveKeys(_password, salt[..saltLength], iterations, clientKey, storedKey, serverKey);
            CryptographicOperations.ZeroMemory(_password);
            _password = null;

            // client-final-message = "c=biws,r=" nonce ",p=" base64(ClientProof)
            int withoutProofLength = ChannelBindingAttribute.Length + nonce.Length;
            byte[] message = new byte[withoutProofLength + 3 + ScramPrimitives.KeyBase64Length];
            ChannelBindingAttribute.CopyTo(message);
            nonce.CopyTo(message.AsSpan(ChannelBindingAttribute.Length));
            ReadOnlySpan<byte> withoutProof = message.AsSpan(0, withoutProofLength);

            // ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage) (RFC 5802 section 3). clientKey
            // becomes the proof in place.
            ScramPrimitives.SignAuthMessage(storedKey, _clientFirstBare, serverFirst, withoutProof, signature);
            ScramPrimitives.Xor(clientKey, signature, clientKey);
            ",p="u8.CopyTo(message.AsSpan(withoutProofLength));
            ScramPrimitives.WriteBase64(clientKey, message.AsSpan(withoutProofLength + 3));

            // What the server must answer: HMAC(ServerKey, AuthMessage).
            ScramPrimitives.SignAuthMessage(serverKey, _clientFirstBare, serverFirst, withoutProof, signature);
            _expectedServerSignature = signature.ToArray();

            _state = State.AwaitingServerFinal;
            clientFinal = message;
            error = null;
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(clientKey);
            CryptographicOperations.ZeroMemory(storedKey);
            CryptographicOperations.ZeroMemory(serverKey);
            if (rentedSalt is not null)
            {
                ArrayPool<byte>.Shared.Return(rentedSalt);
            }
        }
    }

    /// <summary>
    /// Checks server-final-message <c>v=&lt;ServerSignature&gt;</c> in fixed time. A server-final with
    /// <c>e=</c> fails with the server's error value in <paramref name="error"/>.
    /// </summary>
    public bool VerifyServerFinal(ReadOnlySpan<byte> serverFinal, out string? error)
    {
        if (_state != State.AwaitingServerFinal || _expectedServerSignature is null)
        {
            return Fail("unexpected SCRAM message", out error);
        }

        if (ScramPrimitives.ContainsNul(serverFinal))
        {
            return Fail("malformed SCRAM message", out error);
        }

        // server-final-message = (server-error / verifier) ["," extensions]
        ReadOnlySpan<byte> input = serverFinal;
        if (!ScramPrimitives.TryReadAttribute(ref input, out byte name, out ReadOnlySpan<byte> value))
        {
            return Fail("malformed SCRAM message", out error);
        }

        if (name == 'e')
        {
            return Fail(DescribeServerError(value), out error);
        }

        if (name != 'v' || !ScramPrimitives.TrySkipExtensions(ref input, stopAt: 0))
        {
            return Fail("malformed SCRAM message", out error);
        }

        Span<byte> signature = stackalloc byte[ScramPrimitives.KeyLength];
        if (value.Length != ScramPrimitives.KeyBase64Length
            || !ScramPrimitives.TryDecodeBase64(value, signature, out int written)
            || written != ScramPrimitives.KeyLength)
        {
            return Fail("invalid SCRAM server signature", out error);
        }

        if (!CryptographicOperations.FixedTimeEquals(signature, _expectedServerSignature))
        {
            return Fail("SCRAM server signature mismatch", out error);
        }

        _expectedServerSignature = null;
        _state = State.Succeeded;
        error = null;
        return true;
    }

    private static byte[] EncodePassword(ReadOnlySpan<char> password)
    {
        int max = ScramPrimitives.MaxUtf8Length(password.Length);
        byte[]? rented = null;
        Span<byte> buffer = max <= ScramPrimitives.StackLimit
            ? stackalloc byte[ScramPrimitives.StackLimit]
            : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            int length = ScramPrimitives.GetPasswordBytes(password, buffer);
            if (length < 0)
            {
                throw new ArgumentException("The password is not valid UTF-16.", nameof(password));
            }

            return buffer[..length].ToArray();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// RFC 5802 server-error-value is a short token such as <c>invalid-proof</c>. It is peer text, so only
    /// short visible ASCII is passed on; anything else becomes a generic message.
    /// </summary>
    private static string DescribeServerError(ReadOnlySpan<byte> value)
    {
        const string Generic = "SCRAM server error";
        if (value.IsEmpty || value.Length > MaxServerErrorLength)
        {
            return Generic;
        }

        foreach (byte b in value)
        {
            if (b is < 0x21 or > 0x7E)
            {
                return Generic;
            }
        }

        return Generic + ": " + Encoding.ASCII.GetString(value);
    }

    private bool Fail(string message, out string? error)
    {
        if (_password is not null)
        {
            CryptographicOperations.ZeroMemory(_password);
            _password = null;
        }

        _expectedServerSignature = null;
        _state = State.Failed;
        error = message;
        return false;
    }
}
