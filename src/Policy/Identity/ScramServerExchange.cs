using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.Policy.Identity;

/// <summary>
/// The server side of one SCRAM-SHA-256 exchange (RFC 5802, RFC 7677) as PostgreSQL speaks it: the gateway
/// checks a client's proof against a stored <see cref="ScramVerifier"/>. Channel binding
/// (SCRAM-SHA-256-PLUS) is not offered. One instance serves one login attempt; it is not thread-safe.
/// </summary>
/// <remarks>
/// Call <see cref="TryHandleClientFirst"/> with the SASLInitialResponse data, then
/// <see cref="TryHandleClientFinal"/> with the SASLResponse data. The first failure ends the exchange.
/// Error texts are short, fixed and safe to log; they never contain message contents.
/// </remarks>
public sealed class ScramServerExchange
{
    /// <summary>The SASL mechanism name to offer in AuthenticationSASL.</summary>
    public const string MechanismName = "SCRAM-SHA-256";

    // Per-process secret for unknown-user salts, so the salt of a user that does not exist is stable across
    // attempts (as a real user's is) yet unpredictable: PostgreSQL derives its mock salt the same way from
    // a per-cluster nonce (scram_mock_salt).
    private static readonly byte[] s_unknownUserSecret = RandomNumberGenerator.GetBytes(ScramPrimitives.KeyLength);
    private static readonly byte[] s_unknownUserStoredKey = RandomNumberGenerator.GetBytes(ScramPrimitives.KeyLength);
    private static readonly byte[] s_unknownUserServerKey = RandomNumberGenerator.GetBytes(ScramPrimitives.KeyLength);

    private readonly ScramVerifier _verifier;
    private readonly bool _unknownUser;
    private readonly byte[]? _fixedServerNonce;
    private State _state;

    // gs2-cbind-flag of client-first ('n' or 'y'); c= of client-final must repeat the whole gs2 header.
    private byte _channelBindingFlag;

    // client-first-message-bare followed by server-first-message: the first two parts of AuthMessage.
    private byte[]? _exchanged;
    private int _clientFirstBareLength;
    private int _nonceLength;

    /// <summary>Starts an exchange for a user with a stored verifier.</summary>
    public ScramServerExchange(ScramVerifier verifier)
        : this(verifier, unknownUser: false, fixedServerNonce: null)
    {
    }

    /// <summary>Test hook: a fixed server nonce part, to reproduce the RFC 7677 section 3 vector.</summary>
    internal ScramServerExchange(ScramVerifier verifier, string serverNonce)
        : this(verifier, unknownUser: false, fixedServerNonce: Encoding.UTF8.GetBytes(serverNonce))
    {
    }

    private ScramServerExchange(ScramVerifier verifier, bool unknownUser, byte[]? fixedServerNonce)
    {
        ArgumentNullException.ThrowIfNull(verifier);
        _verifier = verifier;
        _unknownUser = unknownUser;
        _fixedServerNonce = fixedServerNonce;
    }

    private enum State : byte
    {
        AwaitingClientFirst,
        AwaitingClientFinal,
        Succeeded,
        Failed,
    }

    /// <summary>True once the client's proof has been verified and server-final produced.</summary>
    public bool IsAuthenticated => _state == State.Succeeded;

    /// <summary>
    /// An exchange for a user that does not exist (or has no SCRAM verifier). It answers exactly like a real
    /// one, with the same salt for every unknown user, and always fails at the final step after the same work.
    /// Prefer <see cref="ForUnknownUser(ReadOnlySpan{char}, int)"/>, whose salt also differs per user name
    /// like real users' salts do.
    /// </summary>
    public static ScramServerExchange ForUnknownUser() => ForUnknownUser([], ScramVerifier.DefaultIterations);

    /// <summary>
    /// An exchange for a user that does not exist, as PostgreSQL's mock authentication (auth-scram.c): the
    /// salt is derived from the user name and a per-process secret, so repeated attempts see a stable salt;
    /// <paramref name="iterations"/> should be the count real verifiers use. It always fails at the final step.
    /// </summary>
    public static ScramServerExchange ForUnknownUser(ReadOnlySpan<char> userName, int iterations = ScramVerifier.DefaultIterations)
    {
        Span<byte> digest = stackalloc byte[ScramPrimitives.KeyLength];

        // The name's UTF-16 code units are hashed as they are: only stability matters, not a canonical encoding.
        HMACSHA256.HashData(s_unknownUserSecret, MemoryMarshal.AsBytes(userName), digest);
        var verifier = new ScramVerifier(
            iterations,
            digest[..ScramVerifier.DefaultSaltLength],
            s_unknownUserStoredKey,
            s_unknownUserServerKey);
        return new ScramServerExchange(verifier, unknownUser: true, fixedServerNonce: null);
    }

    /// <summary>
    /// Reads client-first-message (RFC 5802 section 7) and produces server-first-message
    /// <c>r=&lt;client nonce&gt;&lt;server nonce&gt;,s=&lt;salt&gt;,i=&lt;iterations&gt;</c>.
    /// </summary>
    public bool TryHandleClientFirst(ReadOnlySpan<byte> clientFirstMessage, out byte[] serverFirstMessage, out string? error)
    {
        serverFirstMessage = [];
        if (_state != State.AwaitingClientFirst)
        {
            return Fail("unexpected SCRAM message", out error);
        }

        if (ScramPrimitives.ContainsNul(clientFirstMessage) || clientFirstMessage.Length < 3)
        {
            return Fail("malformed SCRAM message", out error);
        }

        // gs2-header = gs2-cbind-flag "," [ authzid ] "," (RFC 5802 section 7).
        ReadOnlySpan<byte> input = clientFirstMessage;
        byte flag = input[0];
        if (flag == 'p')
        {
            // p= asks for channel binding, which we did not offer (no SCRAM-SHA-256-PLUS).
            return Fail("SCRAM channel binding is not supported", out error);
        }

        // 'y': the client supports channel binding but thinks we do not. That is true (we never offer -PLUS),
        // so it is accepted; libpq sends it over TLS. Were -PLUS ever offered, 'y' would signal a downgrade
        // and must be refused (RFC 5802 section 6).
        if (flag is not ((byte)'n' or (byte)'y') || input[1] != ',')
        {
            return Fail("malformed SCRAM message", out error);
        }

        if (input[2] == 'a')
        {
            // PostgreSQL logs in as the startup packet's user only; an authzid could name someone else.
            return Fail("SCRAM authorization identity is not supported", out error);
        }

        if (input[2] != ',')
        {
            return Fail("malformed SCRAM message", out error);
        }

        ReadOnlySpan<byte> bare = input[3..];
        input = bare;

        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        if (input.Length >= 2 && input[0] == 'm' && input[1] == '=')
        {
            return Fail("unsupported SCRAM extension", out error);
        }

        // The username attribute is ignored: PostgreSQL (and so libpq) uses the startup packet's user and
        // sends n= empty. Only the attribute's shape is checked.
        if (!ScramPrimitives.TryReadAttribute(ref input, (byte)'n', out _)
            || !ScramPrimitives.TryReadAttribute(ref input, (byte)'r', out ReadOnlySpan<byte> clientNonce))
        {
            return Fail("malformed SCRAM message", out error);
        }

        if (clientNonce.IsEmpty || !ScramPrimitives.IsPrintable(clientNonce))
        {
            return Fail("invalid SCRAM nonce", out error);
        }

        if (!ScramPrimitives.TrySkipExtensions(ref input, stopAt: 0))
        {
            return Fail("malformed SCRAM message", out error);
        }

        byte[] serverNonce = _fixedServerNonce ?? ScramPrimitives.CreateNonce();
        ReadOnlySpan<byte> salt = _verifier.Salt;
        Span<byte> digits = stackalloc byte[16];
        int digitCount = ScramPrimitives.WriteInt(_verifier.Iterations, digits);

        // server-first-message = nonce "," salt "," iteration-count
        int serverFirstLength = 2 + clientNonce.Length + serverNonce.Length
            + 3 + Base64.GetMaxEncodedToUtf8Length(salt.Length)
            + 3 + digitCount;
        byte[] exchanged = new byte[bare.Length + serverFirstLength];
        bare.CopyTo(exchanged);
        Span<byte> output = exchanged.AsSpan(bare.Length);
        int at = 0;
        at += Append(output[at..], "r="u8);
        at += Append(output[at..], clientNonce);
        at += Append(output[at..], serverNonce);
        at += Append(output[at..], ",s="u8);
        at += ScramPrimitives.WriteBase64(salt, output[at..]);
        at += Append(output[at..], ",i="u8);
        at += Append(output[at..], digits[..digitCount]);

        _channelBindingFlag = flag;
        _exchanged = exchanged;
        _clientFirstBareLength = bare.Length;
        _nonceLength = clientNonce.Length + serverNonce.Length;
        _state = State.AwaitingClientFinal;

        // A copy, so that whatever the caller does with its array cannot change our AuthMessage.
        serverFirstMessage = output[..at].ToArray();
        error = null;
        return true;
    }

    /// <summary>
    /// Reads client-final-message <c>c=&lt;gs2 header&gt;,r=&lt;nonce&gt;,p=&lt;proof&gt;</c>, verifies the proof
    /// (RFC 5802 section 3) and produces server-final-message <c>v=&lt;ServerSignature&gt;</c>.
    /// </summary>
    public bool TryHandleClientFinal(ReadOnlySpan<byte> clientFinalMessage, out byte[] serverFinalMessage, out string? error)
    {
        serverFinalMessage = [];
        if (_state != State.AwaitingClientFinal || _exchanged is null)
        {
            return Fail("unexpected SCRAM message", out error);
        }

        if (ScramPrimitives.ContainsNul(clientFinalMessage))
        {
            return Fail("malformed SCRAM message", out error);
        }

        // client-final-message-without-proof = channel-binding "," nonce ["," extensions]
        ReadOnlySpan<byte> input = clientFinalMessage;
        if (!ScramPrimitives.TryReadAttribute(ref input, (byte)'c', out ReadOnlySpan<byte> channelBinding)
            || !ScramPrimitives.TryReadAttribute(ref input, (byte)'r', out ReadOnlySpan<byte> nonce))
        {
            return Fail("malformed SCRAM message", out error);
        }

        // Without channel binding, c= is base64 of the gs2 header alone (RFC 5802 section 7, cbind-input).
        // Checking it catches a tampered gs2 header, e.g. an attacker turning 'y' into 'n'.
        Span<byte> header = stackalloc byte[3];
        if (channelBinding.Length != 4
            || !ScramPrimitives.TryDecodeBase64(channelBinding, header, out int headerLength)
            || headerLength != 3
            || header[0] != _channelBindingFlag
            || header[1] != ','
            || header[2] != ',')
        {
            return Fail("SCRAM channel binding mismatch", out error);
        }

        ReadOnlySpan<byte> serverFirst = _exchanged.AsSpan(_clientFirstBareLength);
        if (!nonce.SequenceEqual(serverFirst.Slice(2, _nonceLength)))
        {
            return Fail("SCRAM nonce mismatch", out error);
        }

        if (!ScramPrimitives.TrySkipExtensions(ref input, stopAt: (byte)'p') || input.IsEmpty)
        {
            return Fail("malformed SCRAM message", out error);
        }

        // The proof is the last attribute; everything before its ',' is signed.
        ReadOnlySpan<byte> withoutProof = clientFinalMessage[..(clientFinalMessage.Length - input.Length - 1)];
        if (!ScramPrimitives.TryReadAttribute(ref input, (byte)'p', out ReadOnlySpan<byte> proofText) || !input.IsEmpty)
        {
            return Fail("malformed SCRAM message", out error);
        }

        Span<byte> proof = stackalloc byte[ScramPrimitives.KeyLength];
        if (proofText.Length != ScramPrimitives.KeyBase64Length
            || !ScramPrimitives.TryDecodeBase64(proofText, proof, out int proofLength)
            || proofLength != ScramPrimitives.KeyLength)
        {
            return Fail("invalid SCRAM proof", out error);
        }

        ReadOnlySpan<byte> clientFirstBare = _exchanged.AsSpan(0, _clientFirstBareLength);
        Span<byte> signature = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> clientKey = stackalloc byte[ScramPrimitives.KeyLength];
        Span<byte> storedKey = stackalloc byte[ScramPrimitives.KeyLength];
        bool proofValid;
        try
        {
            // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof is right iff H(ClientKey)
            // is StoredKey (RFC 5802 section 3).
            ScramPrimitives.SignAuthMessage(_verifier.StoredKey, clientFirstBare, serverFirst, withoutProof, signature);
            ScramPrimitives.Xor(proof, signature, clientKey);
            SHA256.HashData(clientKey, storedKey);
            proofValid = CryptographicOperations.FixedTimeEquals(storedKey, _verifier.StoredKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(clientKey);
            CryptographicOperations.ZeroMemory(signature);
        }

        // An unknown user fails here, after the same work and with the same error as a wrong password.
        if (!proofValid || _unknownUser)
        {
            return Fail("SCRAM authentication failed", out error);
        }

        // ServerSignature = HMAC(ServerKey, AuthMessage); server-final-message = "v=" base64 (RFC 5802 section 7).
        ScramPrimitives.SignAuthMessage(_verifier.ServerKey, clientFirstBare, serverFirst, withoutProof, signature);
        byte[] serverFinal = new byte[2 + ScramPrimitives.KeyBase64Length];
        "v="u8.CopyTo(serverFinal);
        ScramPrimitives.WriteBase64(signature, serverFinal.AsSpan(2));

        _exchanged = null;
        _state = State.Succeeded;
        serverFinalMessage = serverFinal;
        error = null;
        return true;
    }

    private static int Append(Span<byte> destination, ReadOnlySpan<byte> value)
    {
        value.CopyTo(destination);
        return value.Length;
    }

    private bool Fail(string message, out string? error)
    {
        _state = State.Failed;
        _exchanged = null;
        error = message;
        return false;
    }
}
