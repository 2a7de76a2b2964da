using System.Buffers.Binary;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Gatehouse.Engine.Transport;
using Gatehouse.Policy.Identity;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres.Auth;

/// <summary>The upstream session after a successful login, ready to relay.</summary>
internal sealed class UpstreamLogin(ConnectionTransport transport)
{
    public ConnectionTransport Transport { get; } = transport;

    /// <summary>ParameterStatus and NoticeResponse frames received during login, to pass on to the client as they were.</summary>
    public List<byte[]> FramesForClient { get; } = [];

    public int ProcessId { get; set; }

    public int SecretKey { get; set; }

    public byte TransactionStatus { get; set; } = (byte)'I';

    public bool StandardConformingStrings { get; set; } = true;

    /// <summary>Whether the client_encoding the server reported keeps ASCII bytes ASCII (see PgParameterStatus).</summary>
    public bool ClientEncodingSafe { get; set; } = true;
}

/// <summary>
/// The gateway as a client of the upstream server: TCP, optional TLS, StartupMessage, authentication with the
/// credential the gateway holds (SCRAM-SHA-256, md5 or cleartext), then the server's parameters and keys.
/// </summary>
internal static class UpstreamConnector
{
    private const int MaxLoginMessage = 1024 * 1024;

    public static async Task<UpstreamLogin> ConnectAsync(PgConnectionTarget target, IEnumerable<KeyValuePair<string, string>> clientParameters,
        CancellationToken cancellationToken)
    {
        var transport = await OpenAsync(target, cancellationToken).ConfigureAwait(false);
        try
        {
            var login = new UpstreamLogin(transport);
            var parameters = new List<KeyValuePair<string, string>>
            {
                new("user", target.User),
                new("database", target.Database),
            };
            parameters.AddRange(clientParameters);
            PgWriter.WriteStartup(transport.Output, parameters);
            await transport.Output.FlushAsync(cancellationToken).ConfigureAwait(false);

            await AuthenticateAsync(target, transport, cancellationToken).ConfigureAwait(false);
            await ReadUntilReadyAsync(login, cancellationToken).ConfigureAwait(false);
            return login;
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens TCP and, when configured, TLS (SSLRequest first, as libpq does).</summary>
    public static async Task<ConnectionTransport> OpenAsync(PgConnectionTarget target, CancellationToken cancellationToken)
    {
        ConnectionTransport transport;
        try
        {
            transport = await ConnectionTransport.ConnectAsync(target.Host, target.Port, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException)
        {
            throw new UpstreamException(SqlState.ConnectionFailure, $"cannot reach the upstream server ({ex.GetType().Name})");
        }

        if (target.Tls == UpstreamTlsMode.Disable)
        {
            return transport;
        }

        try
        {
            PgWriter.WriteRequestCode(transport.Output, StartupCodes.SslRequest);
            await transport.Output.FlushAsync(cancellationToken).ConfigureAwait(false);
            byte answer = await PgHandshakeIO.ReadByteAsync(transport.Input, cancellationToken).ConfigureAwait(false);
            if (answer != (byte)'S')
            {
                throw new UpstreamException(SqlState.ConnectionFailure, "the upstream server does not accept TLS, and the connection requires it");
            }

            // The server must not send anything after 'S' before the handshake (CVE-2021-23222).
            if (PgHandshakeIO.HasBufferedBytes(transport.Input))
            {
                throw new UpstreamException(SqlState.ProtocolViolation, "the upstream server sent unencrypted data after accepting TLS");
            }

            await transport.UpgradeToClientTlsAsync(CreateTlsOptions(target), cancellationToken).ConfigureAwait(false);
            return transport;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw new UpstreamException(SqlState.ConnectionFailure, $"TLS with the upstream server failed ({ex.GetType().Name})");
        }
        catch
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static SslClientAuthenticationOptions CreateTlsOptions(PgConnectionTarget target)
    {
        var options = new SslClientAuthenticationOptions { TargetHost = target.Host };
        if (target.Tls == UpstreamTlsMode.Require)
        {
            // libpq's sslmode=require: encryption without verification. verify-full is the recommended mode.
#pragma warning disable CA5359 // Not verifying is what "require" means; verify-full is available and documented.
            options.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
#pragma warning restore CA5359
        }
        else if (target.CaFile is { } caFile)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            options.CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            options.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
        }

        return options;
    }

    private static async Task AuthenticateAsync(PgConnectionTarget target, ConnectionTransport transport, CancellationToken cancellationToken)
    {
        ScramClientExchange? scram = null;
        var hash = new byte[Md5Password.Length];
        while (true)
        {
            var message = await ReadAsync(transport, cancellationToken).ConfigureAwait(false);
            if (message.Code == (byte)BackendCode.ErrorResponse)
            {
                throw UpstreamException.FromErrorResponse(message.Body, "the upstream server refused the gateway's login");
            }

            if (message.Code == (byte)BackendCode.NegotiateProtocolVersion)
            {
                throw new UpstreamException(SqlState.FeatureNotSupported, "the upstream server does not speak protocol 3.0");
            }

            if (message.Code != (byte)BackendCode.Authentication || message.Body.Length < 4)
            {
                throw new UpstreamException(SqlState.ProtocolViolation, "unexpected message from the upstream server during login");
            }

            var code = (AuthenticationCode)BinaryPrimitives.ReadInt32BigEndian(message.Body);
            var payload = message.Body.AsSpan(4);
            switch (code)
            {
                case AuthenticationCode.Ok:
                    if (scram is { IsAuthenticated: false })
                    {
                        // A server that skips SASLFinal has not proven it knows the verifier.
                        throw new UpstreamException(SqlState.InvalidAuthorization, "the upstream server ended SCRAM without proving its identity");
                    }

                    return;
                case AuthenticationCode.CleartextPassword:
                    PgWriter.WritePassword(transport.Output, Encoding.UTF8.GetBytes(Password(target)));
                    break;
                case AuthenticationCode.Md5Password when payload.Length == Md5Password.SaltLength:
                    Md5Password.Compute(Encoding.UTF8.GetBytes(target.User), Encoding.UTF8.GetBytes(Password(target)), payload, hash);
                    PgWriter.WritePassword(transport.Output, hash);
                    break;
                case AuthenticationCode.Sasl:
                    if (!OffersScramSha256(payload))
                    {
                        throw new UpstreamException(SqlState.FeatureNotSupported, "the upstream server offers no SASL mechanism the gateway supports");
                    }

                    scram = new ScramClientExchange(Password(target));
                    PgWriter.WriteSaslInitialResponse(transport.Output, ScramServerExchange.MechanismName, scram.CreateClientFirst());
                    break;
                case AuthenticationCode.SaslContinue when scram is not null:
                    // PBKDF2 with the server's iteration count takes milliseconds: keep it off the socket thread.
                    var serverFirst = payload.ToArray();
                    var exchange = scram;
                    var (ok, clientFinal, scramError) = await Task.Run(() =>
                    {
                        bool handled = exchange.TryHandleServerFirst(serverFirst, out var final, out var error);
                        return (handled, final, error);
                    }, cancellationToken).ConfigureAwait(false);
                    if (!ok)
                    {
                        throw new UpstreamException(SqlState.InvalidAuthorization, $"SCRAM with the upstream server failed: {scramError}");
                    }

                    PgWriter.WriteSaslResponse(transport.Output, clientFinal);
                    break;
                case AuthenticationCode.SaslFinal when scram is not null:
                    if (!scram.VerifyServerFinal(payload, out var finalError))
                    {
                        throw new UpstreamException(SqlState.InvalidAuthorization, $"the upstream server's SCRAM proof is wrong: {finalError}");
                    }

                    continue;
                default:
                    throw new UpstreamException(SqlState.FeatureNotSupported, $"the upstream server asks for an authentication method the gateway does not support ({(int)code})");
            }

            await transport.Output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static string Password(PgConnectionTarget target)
    {
        if (target.Password is null)
        {
            throw new UpstreamException(SqlState.InvalidAuthorization, "the upstream server asks for a password and the connection has none configured");
        }

        try
        {
            return target.Password.Resolve();
        }
        catch (InvalidOperationException ex)
        {
            throw new UpstreamException(SqlState.InvalidAuthorization, $"the upstream password is not available: {ex.Message}");
        }
    }

    private static bool OffersScramSha256(ReadOnlySpan<byte> mechanisms)
    {
        while (!mechanisms.IsEmpty)
        {
            int end = mechanisms.IndexOf((byte)0);
            if (end <= 0)
            {
                return false;
            }

            if (mechanisms[..end].SequenceEqual("SCRAM-SHA-256"u8))
            {
                return true;
            }

            mechanisms = mechanisms[(end + 1)..];
        }

        return false;
    }

    private static async Task ReadUntilReadyAsync(UpstreamLogin login, CancellationToken cancellationToken)
    {
        while (true)
        {
            var message = await ReadAsync(login.Transport, cancellationToken).ConfigureAwait(false);
            switch ((BackendCode)message.Code)
            {
                case BackendCode.ParameterStatus:
                case BackendCode.NoticeResponse:
                    if (!PgMessageValidator.ValidateBackend(message.Code, new(message.Body), out _))
                    {
                        throw new UpstreamException(SqlState.ProtocolViolation, "malformed message from the upstream server during login");
                    }

                    if (message.Code == (byte)BackendCode.ParameterStatus
                        && PgParameterStatus.TryReadStandardConformingStrings(new(message.Body), out bool on))
                    {
                        login.StandardConformingStrings = on;
                    }

                    if (message.Code == (byte)BackendCode.ParameterStatus
                        && PgParameterStatus.TryReadClientEncoding(new(message.Body), out bool safe))
                    {
                        login.ClientEncodingSafe = safe;
                    }

                    login.FramesForClient.Add(Frame(message));
                    break;
                case BackendCode.BackendKeyData when message.Body.Length == 8:
                    login.ProcessId = BinaryPrimitives.ReadInt32BigEndian(message.Body);
                    login.SecretKey = BinaryPrimitives.ReadInt32BigEndian(message.Body.AsSpan(4));
                    break;
                case BackendCode.ReadyForQuery when message.Body.Length == 1:
                    login.TransactionStatus = message.Body[0];
                    return;
                case BackendCode.ErrorResponse:
                    throw UpstreamException.FromErrorResponse(message.Body, "the upstream server refused the session");
                default:
                    throw new UpstreamException(SqlState.ProtocolViolation, "unexpected message from the upstream server during login");
            }
        }
    }

    private static async Task<HandshakeMessage> ReadAsync(ConnectionTransport transport, CancellationToken cancellationToken)
    {
        try
        {
            return await PgHandshakeIO.ReadMessageAsync(transport.Input, MaxLoginMessage, cancellationToken).ConfigureAwait(false)
                   ?? throw new UpstreamException(SqlState.ConnectionFailure, "the upstream server closed the connection during login");
        }
        catch (PgHandshakeException ex)
        {
            throw new UpstreamException(SqlState.ProtocolViolation, $"upstream login: {ex.Message}");
        }
    }

    private static byte[] Frame(HandshakeMessage message)
    {
        var frame = new byte[message.Body.Length + 5];
        frame[0] = message.Code;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), message.Body.Length + 4);
        message.Body.CopyTo(frame.AsSpan(5));
        return frame;
    }
}

/// <summary>The upstream could not be used. The message is safe for the client: it never carries credentials.</summary>
internal sealed class UpstreamException(string sqlState, string message, string? upstreamSqlState = null) : Exception(message)
{
    public string SqlState { get; } = sqlState;

    /// <summary>The SQLSTATE the upstream server itself reported, when it reported one.</summary>
    public string? UpstreamSqlState { get; } = upstreamSqlState;

    /// <summary>
    /// Wraps an upstream ErrorResponse. Only its SQLSTATE is kept: the upstream's text can name the gateway's
    /// own role and database, which the client has no business seeing.
    /// </summary>
    public static UpstreamException FromErrorResponse(byte[] body, string message)
    {
        string? code = null;
        int at = 0;
        while (at < body.Length && body[at] != 0)
        {
            byte field = body[at++];
            int end = Array.IndexOf(body, (byte)0, at);
            if (end < 0)
            {
                break;
            }

            if (field == (byte)'C')
            {
                code = Encoding.ASCII.GetString(body, at, end - at);
            }

            at = end + 1;
        }

        // Overload and shutdown states mean the same to the client as to us; pass them on. Others become a
        // connection rejection with the upstream code in the message.
        string sqlState = code is Wire.SqlState.TooManyConnections or Wire.SqlState.CannotConnectNow or Wire.SqlState.AdminShutdown
            ? code
            : Wire.SqlState.ConnectionRejected;
        return new UpstreamException(sqlState, code is null ? message : $"{message} (SQLSTATE {code})", code);
    }
}
