using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Gatehouse.Engine.Recording;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Policy.Identity;
using Gatehouse.Protocols.Postgres.Auth;
using Gatehouse.Protocols.Postgres.Cancel;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres.Masking;
using Gatehouse.Protocols.Postgres.Policy;
using Gatehouse.Protocols.Postgres.Recording;
using Gatehouse.Protocols.Postgres.Relay;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres;

/// <summary>
/// One PostgreSQL session through the gateway: startup (TLS, GSS and cancel requests), authentication of the
/// client's identity, authorization, login upstream with the gateway's credential, relay, and the last word to
/// the client when the gateway ends the session.
/// </summary>
internal sealed class PgSession(PgProtocol protocol, Session session)
{
    private static readonly TimeSpan FinalWriteTimeout = TimeSpan.FromSeconds(2);

    private readonly PgConfigSnapshot _config = protocol.Config;
    private int _cancelProcessId;
    private SessionPolicy? _policy;

    // Set at login. A token's groups (none for static identities) select policy bindings, at login and in the relay.
    private IReadOnlyCollection<string> _groups = [];
    private TokenIdentity? _token;
    private CancelTarget? _cancelTarget;

    // Recording: the writer from authorization on, the recorder (with its taps) once the upstream is connected.
    private RecordingWriter? _recording;
    private PgSessionRecorder? _recorder;
    private PgSessionMasking? _masking;

    /// <summary>Where the client's bytes go: through the recording once it records, else straight out.</summary>
    private PipeWriter ToClient => _recorder?.ToClient ?? session.Client.Output;

    public async Task RunAsync()
    {
        session.Advance(SessionStage.Handshake);
        var ct = session.Aborted;
        try
        {
            var startup = await ReadStartupAsync(ct).ConfigureAwait(false);
            if (startup is null)
            {
                return;
            }

            var target = await AuthenticateAndAuthorizeAsync(startup, ct).ConfigureAwait(false);
            StartRecording(startup, target);

            session.Advance(SessionStage.ConnectingUpstream);
            UpstreamLogin login;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(session.Limits.UpstreamConnectTimeout);
                try
                {
                    login = await UpstreamConnector.ConnectAsync(target, startup.Forwarded, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new UpstreamException(SqlState.ConnectionFailure, "the upstream server did not answer in time");
                }
            }

            session.Upstream = login.Transport;
            if (_recording is not null)
            {
                _recorder = new PgSessionRecorder(_recording, session.Client.Output, login.Transport.Output, protocol.Recording!.OnBackpressure, session);
            }

            var masking = await StartMaskingAsync(target, ct).ConfigureAwait(false);
            _masking = masking;
            await CompleteLoginAsync(target, login, ct).ConfigureAwait(false);
            await RelayAsync(login, masking).ConfigureAwait(false);
        }
        catch (PgHandshakeException ex)
        {
            session.TrySetEnd(ex.Reason, PeerSide.Client, ex.Message);
            if (!ex.PeerClosed)
            {
                await TellClientAsync(ex.SqlState, ex.Message, ex.Detail, ex.Hint).ConfigureAwait(false);
            }
        }
        catch (UpstreamException ex)
        {
            session.TrySetEnd(SessionEndReason.UpstreamUnavailable, PeerSide.Server, ex.Message);
            PgProtocolLog.UpstreamFailed(session.Logger, session.Id, session.ConnectionName, ex.Message);
            await TellClientAsync(ex.SqlState, ex.Message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Aborted by a deadline, a kill or a shutdown cut: the reason is recorded; say it if we can.
            await TellClientAboutEndAsync(null).ConfigureAwait(false);
        }
        catch (Exception ex) when (FrameRelay.IsTransportFault(ex))
        {
            session.TrySetEnd(SessionEndReason.ClientDisconnected, PeerSide.Client, ex.GetType().Name);
        }
        finally
        {
            if (_cancelProcessId != 0)
            {
                protocol.Cancels.Unregister(_cancelProcessId);
            }

            await EndRecordingAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Refuses the client after answering its prelude (SSLRequest, GSSENCRequest) the way a server would, so that
    /// clients in sslmode prefer or require read the real reason rather than a failed TLS negotiation.
    /// </summary>
    public async Task RefuseAsync(SessionEndReason reason)
    {
        var (sqlState, message) = reason == SessionEndReason.ConnectionLimit
            ? (SqlState.TooManyConnections, "sorry, too many clients already (gateway connection limit)")
            : (SqlState.CannotConnectNow, "the gateway is shutting down");
        try
        {
            if (await ReadStartupAsync(session.Aborted).ConfigureAwait(false) is null)
            {
                return;
            }
        }
        catch (PgHandshakeException ex) when (ex.PeerClosed)
        {
            return;
        }
        catch (PgHandshakeException)
        {
            // Whatever else is wrong with the startup, the refusal is the answer that matters.
        }
        catch (OperationCanceledException)
        {
            return;
        }
        catch (Exception ex) when (FrameRelay.IsTransportFault(ex))
        {
            return;
        }

        await TellClientAsync(sqlState, message).ConfigureAwait(false);
    }

    // ---- Startup ----------------------------------------------------------------------------------------

    private sealed record StartupInfo(string User, string Database, List<KeyValuePair<string, string>> Forwarded);

    private async Task<StartupInfo?> ReadStartupAsync(CancellationToken ct)
    {
        var client = session.Client;
        bool sawSsl = false, sawGss = false;
        while (true)
        {
            var packet = await PgHandshakeIO.ReadStartupPacketAsync(client.Input, session.Limits.MaxPreAuthMessageSize, ct).ConfigureAwait(false);
            if (packet is null)
            {
                session.TrySetEnd(SessionEndReason.ClientDisconnected, PeerSide.Client, "closed before the startup message");
                return null;
            }

            var body = packet.Value.Body;
            int code = BinaryPrimitives.ReadInt32BigEndian(body);
            switch (code)
            {
                case StartupCodes.SslRequest:
                    if (sawSsl || client.IsTls || body.Length != 4)
                    {
                        throw new PgHandshakeException(SqlState.ProtocolViolation, "unexpected SSLRequest");
                    }

                    sawSsl = true;
                    await StartTlsAsync(ct).ConfigureAwait(false);
                    continue;
                case StartupCodes.GssEncRequest:
                    if (sawGss || body.Length != 4)
                    {
                        throw new PgHandshakeException(SqlState.ProtocolViolation, "unexpected GSSENCRequest");
                    }

                    // GSSAPI encryption is not offered; libpq then goes on with TLS or plaintext.
                    sawGss = true;
                    await WriteByteAsync((byte)'N', ct).ConfigureAwait(false);
                    continue;
                case StartupCodes.CancelRequest:
                    if (body.Length != 12)
                    {
                        throw new PgHandshakeException(SqlState.ProtocolViolation, "malformed CancelRequest");
                    }

                    await ForwardCancelAsync(BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(4)), BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(8)), ct)
                        .ConfigureAwait(false);
                    session.TrySetEnd(SessionEndReason.OutOfBandRequestServed, PeerSide.Client, "cancel request");
                    return null;
                default:
                    return await ParseStartupAsync(code, body, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task StartTlsAsync(CancellationToken ct)
    {
        var listener = protocol.Listener;
        if (listener.TlsMode == ClientTlsMode.Disabled || listener.Certificate is null)
        {
            await WriteByteAsync((byte)'N', ct).ConfigureAwait(false);
            return;
        }

        // Bytes already sent after the SSLRequest would be plaintext accepted as if it were inside TLS.
        if (PgHandshakeIO.HasBufferedBytes(session.Client.Input))
        {
            throw new PgHandshakeException(SqlState.ProtocolViolation, "data received after SSLRequest before the TLS handshake");
        }

        await WriteByteAsync((byte)'S', ct).ConfigureAwait(false);
        try
        {
            await session.Client.UpgradeToServerTlsAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = listener.Certificate,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                ClientCertificateRequired = false,
            }, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            // Nothing can be said to the client: the TLS layer failed.
            session.TrySetEnd(SessionEndReason.TlsFailure, PeerSide.Client, ex.GetType().Name);
            throw new PgHandshakeException(SqlState.ProtocolViolation, "TLS handshake failed", peerClosed: true);
        }
    }

    private async Task<StartupInfo> ParseStartupAsync(int version, byte[] body, CancellationToken ct)
    {
        if (version >> 16 != 3)
        {
            throw new PgHandshakeException(SqlState.FeatureNotSupported,
                $"unsupported frontend protocol {version >> 16}.{version & 0xFFFF}: the gateway supports 3.0");
        }

        if (protocol.Listener.TlsMode == ClientTlsMode.Required && !session.Client.IsTls)
        {
            throw new PgHandshakeException(SqlState.InvalidAuthorization, "this gateway requires TLS",
                hint: "connect with sslmode=require (or verify-full)", reason: SessionEndReason.TlsFailure);
        }

        var parameters = StartupParameters.Parse(body.AsSpan(4));
        if (parameters.Error is { } error)
        {
            // A refused setting is an authorization decision; a broken packet is a protocol violation.
            var reason = error.SqlState switch
            {
                SqlState.InsufficientPrivilege => SessionEndReason.AuthorizationFailed,
                SqlState.InvalidAuthorization => SessionEndReason.AuthenticationFailed,
                _ => SessionEndReason.ClientProtocolViolation,
            };
            throw new PgHandshakeException(error.SqlState, error.Message, hint: error.Hint, reason: reason);
        }

        // Minor versions above 0 and protocol extensions are declined, as a 3.0 server would (protocol docs 55.2.1).
        if ((version & 0xFFFF) != 0 || parameters.ProtocolOptions.Count > 0)
        {
            PgWriter.WriteNegotiateProtocolVersion(session.Client.Output, 0, parameters.ProtocolOptions);
            await session.Client.Output.FlushAsync(ct).ConfigureAwait(false);
        }

        return new StartupInfo(parameters.User!, parameters.Database ?? parameters.User!, parameters.Forwarded);
    }

    // ---- Authentication and authorization ---------------------------------------------------------------

    private async Task<PgConnectionTarget> AuthenticateAndAuthorizeAsync(StartupInfo startup, CancellationToken ct)
    {
        session.Advance(SessionStage.Authenticating);
        _config.Identities.TryGet(startup.User, out var identity);
        bool authenticated = protocol.Listener.PasswordMethod == PasswordMethod.Cleartext
            ? await AuthenticateCleartextAsync(identity, startup.User, ct).ConfigureAwait(false)
            : await AuthenticateScramAsync(identity, startup.User, ct).ConfigureAwait(false);

        // A token names its identity itself; a static secret needs a configured identity.
        string? name = _token?.Name ?? identity?.Name;
        if (!authenticated || name is null)
        {
            throw AuthenticationFailed(startup.User);
        }

        session.Identity = name;
        if (_token is not null)
        {
            // The session ends when the token does (the registry's heartbeat), with the skew the login was checked with.
            session.SetCredentialExpiry(_token.ExpiresAt, _token.Provider.ClockSkew);
        }

        session.Advance(SessionStage.Authorizing);
        if (!_config.Connections.TryGetValue(startup.Database, out var target))
        {
            throw new PgHandshakeException(SqlState.InvalidCatalogName, $"connection \"{startup.Database}\" is not configured on this gateway",
                hint: "use the name of a configured connection as the database name", reason: SessionEndReason.AuthorizationFailed);
        }

        session.ConnectionName = target.Name;

        // Static identities list their connections; token identities may use their provider's (all by default).
        bool mayUse = _token is not null ? _token.Provider.MayUse(target.Name) : IdentityDirectory.MayUse(identity!, target.Name);
        if (!mayUse)
        {
            throw new PgHandshakeException(SqlState.InvalidAuthorization,
                $"identity \"{name}\" may not use connection \"{target.Name}\"",
                hint: "ask an administrator to grant this identity access to the connection", reason: SessionEndReason.AuthorizationFailed);
        }

        if (_token is not null)
        {
            // Access requests made later (admin API, command line) carry no token: the groups are remembered for them.
            protocol.Policy.GroupMemory?.Remember(name, _groups, _token.ExpiresAt);
        }

        var access = protocol.Policy.ResolveAccess(name, _groups, target.Name);
        _policy = access.Policy;
        if (_policy is null && access.GrantRole is { } role)
        {
            Audit(AuditKinds.LoginRefused, role, "no live grant");
            throw new PgHandshakeException(SqlState.InsufficientPrivilege,
                $"identity \"{name}\" needs a just-in-time grant of role \"{role}\" on connection \"{target.Name}\"",
                hint: $"gatehouse access request --connection {target.Name} --role {role} --for 1h --reason \"...\"",
                reason: SessionEndReason.AuthorizationFailed);
        }

        if (_policy is null)
        {
            Audit(AuditKinds.LoginRefused, null, "no policy binding");
            throw new PgHandshakeException(SqlState.InsufficientPrivilege,
                $"no policy binding gives identity \"{name}\" a role on connection \"{target.Name}\"",
                hint: "ask an administrator to add a binding to the policy", reason: SessionEndReason.AuthorizationFailed);
        }

        return target;
    }

    private void Audit(string kind, string? subject, string? detail) =>
        protocol.Audit.Record(new AuditEvent(DateTimeOffset.UtcNow, kind, session.Identity, session.ConnectionName, session.Id, subject, Detail: detail));

    /// <summary>The one answer to every failed login (28P01), whatever failed; the log has the user and the address.</summary>
    private PgHandshakeException AuthenticationFailed(string user, string? hint = null)
    {
        PgProtocolLog.AuthenticationFailed(session.Logger, session.Id, user, session.Client.RemoteEndPoint);
        return new PgHandshakeException(SqlState.InvalidPassword, $"password authentication failed for user \"{user}\"",
            hint: hint, reason: SessionEndReason.AuthenticationFailed);
    }

    private async Task<bool> AuthenticateCleartextAsync(AgentIdentity? identity, string user, CancellationToken ct)
    {
        var client = session.Client;
        if (!client.IsTls && !(client.IsLoopback && protocol.Listener.AllowCleartextOnLoopback))
        {
            throw new PgHandshakeException(SqlState.InvalidAuthorization, "this gateway accepts secrets only over TLS",
                hint: "connect with sslmode=require", reason: SessionEndReason.AuthenticationFailed);
        }

        PgWriter.WriteAuthentication(client.Output, AuthenticationCode.CleartextPassword);
        await client.Output.FlushAsync(ct).ConfigureAwait(false);
        var body = await ReadPasswordMessageAsync(ct).ConfigureAwait(false);
        int end = Array.IndexOf(body, (byte)0);
        if (end != body.Length - 1)
        {
            throw new PgHandshakeException(SqlState.ProtocolViolation, "malformed password message");
        }

        // A password shaped as a JWT is an access token when providers are configured; it is never also tried as a
        // static secret, so the answer does not depend on which check ran.
        if (_config.IdentityProviders.Count > 0 && JwtFormat.LooksLikeJwt(body.AsSpan(0, end)))
        {
            string token = Encoding.ASCII.GetString(body, 0, end);
            Array.Clear(body);
            return await AuthenticateTokenAsync(token, user, ct).ConfigureAwait(false);
        }

        // Unknown identities cost the same PBKDF2 work, so timing does not reveal which names exist.
        // PBKDF2 takes milliseconds: run it off the socket thread so other sessions' traffic is not held up.
        var verifier = identity?.Secret ?? DummyVerifier.Value;
        bool valid = await Task.Run(() => verifier.VerifyPasswordUtf8(body.AsSpan(0, end)), ct).ConfigureAwait(false);
        Array.Clear(body);
        return valid && identity is not null;
    }

    /// <summary>
    /// Checks an access token against the identity providers. The client learns only that authentication failed;
    /// the log gets the precise reason, never the token or its claims.
    /// </summary>
    private async Task<bool> AuthenticateTokenAsync(string token, string user, CancellationToken ct)
    {
        var check = await _config.IdentityProviders.ValidateAsync(token, ct).ConfigureAwait(false);
        if (check.Identity is not { } identity)
        {
            PgProtocolLog.TokenRefused(session.Logger, session.Id, user, check.ProviderName ?? "-", check.Failure, check.Reason ?? "");
            return false;
        }

        // The token must be for the user the client names: policy, logs and the server see that name.
        if (!string.Equals(identity.Name, user, StringComparison.Ordinal))
        {
            PgProtocolLog.TokenRefused(session.Logger, session.Id, user, identity.Provider.Name, TokenFailure.Invalid,
                "the token is for another identity");
            throw AuthenticationFailed(user,
                $"the token is for another identity: connect with the user name in its \"{identity.Provider.Options.IdentityClaim}\" claim");
        }

        _token = identity;
        _groups = identity.Groups;
        PgProtocolLog.TokenAccepted(session.Logger, session.Id, user, identity.Provider.Name, identity.Groups.Count, identity.ExpiresAt);
        return true;
    }

    private async Task<bool> AuthenticateScramAsync(AgentIdentity? identity, string user, CancellationToken ct)
    {
        var output = session.Client.Output;
        PgWriter.WriteAuthentication(output, AuthenticationCode.Sasl, "SCRAM-SHA-256\0\0"u8);
        await output.FlushAsync(ct).ConfigureAwait(false);

        // SASLInitialResponse: mechanism name, Int32 length (-1 for none), client-first message.
        var initial = await ReadPasswordMessageAsync(ct).ConfigureAwait(false);
        int nameEnd = Array.IndexOf(initial, (byte)0);
        if (nameEnd < 0 || initial.Length < nameEnd + 5)
        {
            throw new PgHandshakeException(SqlState.ProtocolViolation, "malformed SASLInitialResponse");
        }

        if (!initial.AsSpan(0, nameEnd).SequenceEqual("SCRAM-SHA-256"u8))
        {
            throw new PgHandshakeException(SqlState.InvalidAuthorization, "the client chose a SASL mechanism the gateway did not offer",
                reason: SessionEndReason.AuthenticationFailed);
        }

        int length = BinaryPrimitives.ReadInt32BigEndian(initial.AsSpan(nameEnd + 1));
        if (length < 0 || length != initial.Length - nameEnd - 5)
        {
            throw new PgHandshakeException(SqlState.ProtocolViolation, "malformed SASLInitialResponse");
        }

        var exchange = identity is null ? ScramServerExchange.ForUnknownUser(user) : new ScramServerExchange(identity.Secret);
        if (!exchange.TryHandleClientFirst(initial.AsSpan(nameEnd + 5), out var serverFirst, out _))
        {
            return false;
        }

        PgWriter.WriteAuthentication(output, AuthenticationCode.SaslContinue, serverFirst);
        await output.FlushAsync(ct).ConfigureAwait(false);

        var final = await ReadPasswordMessageAsync(ct).ConfigureAwait(false);
        if (!exchange.TryHandleClientFinal(final, out var serverFinal, out _))
        {
            return false;
        }

        PgWriter.WriteAuthentication(output, AuthenticationCode.SaslFinal, serverFinal);
        return identity is not null;
    }

    private async Task<byte[]> ReadPasswordMessageAsync(CancellationToken ct)
    {
        var message = await PgHandshakeIO.ReadMessageAsync(session.Client.Input, session.Limits.MaxPreAuthMessageSize, ct).ConfigureAwait(false)
                      ?? throw new PgHandshakeException(SqlState.ConnectionFailure, "the client closed the connection during authentication", peerClosed: true);
        if (message.Code != (byte)FrontendCode.Password)
        {
            throw new PgHandshakeException(SqlState.ProtocolViolation, "expected a password message");
        }

        return message.Body;
    }

    // ---- Login completion and relay ---------------------------------------------------------------------

    private async Task CompleteLoginAsync(PgConnectionTarget target, UpstreamLogin login, CancellationToken ct)
    {
        _cancelTarget = new CancelTarget(target, login.ProcessId, login.SecretKey);
        var (processId, secretKey) = protocol.Cancels.Register(_cancelTarget);
        _cancelProcessId = processId;

        var output = ToClient;
        PgWriter.WriteAuthentication(output, AuthenticationCode.Ok);
        foreach (var frame in login.FramesForClient)
        {
            output.Write(frame);
        }

        // The client gets the gateway's keys, never the upstream's: cancels come back through us. The key is a
        // secret of the live session: written past the recording.
        PgWriter.WriteBackendKeyData(session.Client.Output, processId, secretKey);
        PgWriter.WriteReadyForQuery(output, login.TransactionStatus);
        await output.FlushAsync(ct).ConfigureAwait(false);
        PgProtocolLog.SessionStarted(session.Logger, session.Id, session.Identity!, target.Name, session.Client.IsTls);
    }

    /// <summary>
    /// The session's masking: the rules that apply to it and, when a rule masks columns, the upstream's catalog,
    /// loaded before the session starts (a session that masks by column never runs without one). Null without a
    /// policy (unrestricted). A catalog that cannot be read refuses the login.
    /// </summary>
    private async Task<PgSessionMasking?> StartMaskingAsync(PgConnectionTarget target, CancellationToken ct)
    {
        if (_policy is not { IsUnrestricted: false } policy)
        {
            return null;
        }

        var rules = policy.Snapshot.Masking.For(session.Identity!, _groups, policy.Role, target.Name);
        var catalog = protocol.Catalogs?.For(target);
        if (rules is { ColumnRules.Count: > 0 })
        {
            if (catalog is null)
            {
                throw new UpstreamException(SqlState.CannotConnectNow, "masking by column is configured, but this gateway keeps no catalog");
            }

            try
            {
                await catalog.GetAsync(ct).WaitAsync(session.Limits.UpstreamConnectTimeout * 3, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is PgCatalogException or TimeoutException)
            {
                throw new UpstreamException(SqlState.CannotConnectNow,
                    "the gateway cannot read the server's catalog, which it masks columns by: " + ex.Message);
            }
        }

        return new PgSessionMasking(rules, catalog);
    }

    private async Task RelayAsync(UpstreamLogin login, PgSessionMasking? masking)
    {
        var state = new PgRelayState(session, session.Limits.MaxClientMessageSize, session.Limits.MaxServerMessageSize)
        {
            TransactionStatus = login.TransactionStatus,
            StandardConformingStrings = login.StandardConformingStrings,
        };
        var waker = new RelayWaker();
        if (masking is not null)
        {
            masking.WakeServer = waker.WakeServerToClient;
            state.Masking = masking;
        }

        if (_policy is { IsUnrestricted: false })
        {
            state.Gate = new PgPolicyGate(protocol.Policy, _policy, session.Identity!, _groups, session.ConnectionName!, state, protocol.Approvals, waker,
                protocol.ApprovalTimeout, protocol.Audit)
            {
                ClientEncodingSafe = login.ClientEncodingSafe,
            };

            // A cancel also withdraws a statement that waits for approval (it is not on the server yet).
            if (_cancelTarget is not null)
            {
                _cancelTarget.Cancelled = state.Gate.CancelHeld;
            }
        }

        state.Recorder = _recorder;
        RelayOutcome outcome;
        try
        {
            outcome = await FrameRelay.RunAsync(session, new FrontendRelayHandler(state), new BackendRelayHandler(state), waker,
                _recorder?.ToClient, _recorder?.ToServer).ConfigureAwait(false);
        }
        finally
        {
            state.Gate?.Dispose();
        }

        // A stop the handlers did not explain is a peer going away.
        var gone = outcome.Stop switch
        {
            PumpStop.OutputClosed => outcome.From == PeerSide.Client ? PeerSide.Server : PeerSide.Client,
            _ => outcome.From,
        };
        session.TrySetEnd(gone == PeerSide.Client ? SessionEndReason.ClientDisconnected : SessionEndReason.ServerDisconnected, gone,
            outcome.Stop == PumpStop.PeerClosedMidFrame ? "closed in the middle of a message" : null);

        await TellClientAboutEndAsync(state).ConfigureAwait(false);
        if (session.EndReason is not (SessionEndReason.ServerDisconnected or SessionEndReason.ServerProtocolViolation or SessionEndReason.ClientTerminated)
            && _recorder?.ToServer.HasUnrecorded != true)
        {
            await SayGoodbyeUpstreamAsync(login).ConfigureAwait(false);
        }
    }

    /// <summary>Tells the client, in a FATAL ErrorResponse, why the gateway ended its session.</summary>
    private async Task TellClientAboutEndAsync(PgRelayState? state)
    {
        var limits = session.Limits;
        var (sqlState, message) = session.EndReason switch
        {
            SessionEndReason.Drained or SessionEndReason.ShutdownAborted =>
                (SqlState.AdminShutdown, "terminating connection because the gateway is shutting down"),
            // The detail says why (a grant revoked or expired, by whom); it never holds a secret.
            SessionEndReason.Killed => (SqlState.AdminShutdown, "terminating connection: the session was ended by the gateway"
                                                               + (session.EndDetail is { Length: > 0 } why ? ": " + why : "")),
            SessionEndReason.IdleTimeout => (SqlState.IdleSessionTimeout, "terminating connection due to the gateway's idle timeout"),
            // 28000 invalid_authorization_specification: PostgreSQL's class for a credential that does not (any longer) authorize
            // the login. Not 28P01 (the password was right) nor 08006/57P01, which clients retry with the same expired token.
            SessionEndReason.CredentialExpired => (SqlState.InvalidAuthorization, $"the access token expired at {session.CredentialExpiresAt:yyyy-MM-dd'T'HH:mm:ss'Z'}; reconnect with a fresh token"),
            SessionEndReason.PreAuthTimeout => (SqlState.ConnectionFailure, "login did not complete in time"),
            SessionEndReason.MessageTooLarge when session.EndSide == PeerSide.Client =>
                (SqlState.ProgramLimitExceeded, $"a message from the client exceeds the gateway's limit of {limits.MaxClientMessageSize} bytes"),
            SessionEndReason.MessageTooLarge =>
                (SqlState.ProgramLimitExceeded, $"a message from the server exceeds the gateway's limit of {limits.MaxServerMessageSize} bytes"),
            SessionEndReason.ClientProtocolViolation => (SqlState.ProtocolViolation, $"invalid message from the client: {session.EndDetail}"),
            SessionEndReason.ServerProtocolViolation => (SqlState.ProtocolViolation, "the upstream server sent an invalid message"),
            SessionEndReason.ServerDisconnected when state is { ServerSentFatal: false } =>
                (SqlState.ConnectionFailure, "the upstream server closed the connection"),
            _ => (null, null),
        };
        if (sqlState is not null)
        {
            await TellClientAsync(sqlState, message!).ConfigureAwait(false);
        }
    }

    /// <summary>Best-effort, bounded write of a FATAL error to the client; the end reason is already recorded.</summary>
    private async Task TellClientAsync(string sqlState, string message, string? detail = null, string? hint = null)
    {
        var output = ToClient;
        try
        {
            PgWriter.WriteFatal(output, sqlState, message, detail, hint);
        }
        catch (InvalidOperationException)
        {
            return; // The client's pipe is already completed: nobody to tell.
        }

        await FrameRelay.FlushAfterStopAsync(output, FinalWriteTimeout).ConfigureAwait(false);
    }

    private static async Task SayGoodbyeUpstreamAsync(UpstreamLogin login)
    {
        try
        {
            PgWriter.WriteTerminate(login.Transport.Output);
        }
        catch (InvalidOperationException)
        {
            return;
        }

        await FrameRelay.FlushAfterStopAsync(login.Transport.Output, FinalWriteTimeout).ConfigureAwait(false);
    }

    // ---- Recording ---------------------------------------------------------------------------------------

    /// <summary>
    /// Opens the session's recording once it is authorized (so it has an identity and a connection), before the
    /// gateway logs in upstream. A recording that cannot be created refuses the login: no session runs unrecorded.
    /// </summary>
    private void StartRecording(StartupInfo startup, PgConnectionTarget target)
    {
        if (protocol.Recording is not { } recording)
        {
            return;
        }

        var info = new RecordingSessionInfo($"{recording.Instance}-{session.Id}", "postgresql")
        {
            Identity = session.Identity,
            Connection = target.Name,
            ClientAddress = session.Client.RemoteEndPoint?.ToString(),
            StartTime = session.StartedAt,
            Attributes = new Dictionary<string, string>
            {
                ["role"] = _policy?.Role ?? "",
                ["database_user"] = startup.User,
                ["listener"] = session.ListenerName,
                ["upstream_user"] = target.User,
                ["instance"] = recording.Instance,
                ["session_number"] = session.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        };
        var writer = recording.Service.Start(info);
        if (writer.State == RecordingWriterState.Faulted)
        {
            PgProtocolLog.RecordingRefused(session.Logger, session.Id, writer.FaultDetail ?? writer.Fault.ToString());
            throw new PgHandshakeException(SqlState.CannotConnectNow, "the gateway cannot record this session, and sessions are only served recorded",
                hint: "an administrator will find the reason in the gateway's log", reason: SessionEndReason.RecordingFailed);
        }

        _recording = writer;
        // A recording that fails while the session is idle ends it now, not at its next message.
        writer.Faulted.Register(static state =>
        {
            var (s, w) = ((Session, RecordingWriter))state!;
            s.Abort(SessionEndReason.RecordingFailed, PeerSide.Gateway, $"the recording failed ({w.Fault})");
        }, (session, writer));
    }

    /// <summary>
    /// Ends the recording with the session's end, and cuts a connection that holds bytes the recording does not
    /// have (a failed or full recording at the end): closing it gracefully would hand them to the peer.
    /// </summary>
    private async Task EndRecordingAsync()
    {
        if (_recording is null)
        {
            return;
        }

        if (_recorder?.ToClient.HasUnrecorded == true)
        {
            await session.Client.DisposeAsync().ConfigureAwait(false);
        }

        if (_recorder?.ToServer.HasUnrecorded == true && session.Upstream is { } upstream)
        {
            await upstream.DisposeAsync().ConfigureAwait(false);
        }

        // Without a recorder (refused before the upstream login) the recording still says who tried and why it ended.
        await PgSessionRecorder.EndAsync(_recording, session, _masking?.MaskedValues ?? 0, FinalWriteTimeout).ConfigureAwait(false);
    }

    // ---- Out-of-band requests ---------------------------------------------------------------------------

    private async Task ForwardCancelAsync(int processId, int secretKey, CancellationToken ct)
    {
        if (!protocol.Cancels.TryResolve(processId, secretKey, out var target))
        {
            // As PostgreSQL does: an unknown key gets no answer, so keys cannot be probed.
            PgProtocolLog.CancelIgnored(session.Logger, session.Id);
            return;
        }

        target!.Cancelled?.Invoke();

        try
        {
            await using var upstream = await UpstreamConnector.OpenAsync(target!.Connection, ct).ConfigureAwait(false);
            PgWriter.WriteCancelRequest(upstream.Output, target.UpstreamProcessId, target.UpstreamSecretKey);
            await upstream.Output.FlushAsync(ct).ConfigureAwait(false);
            await upstream.CloseAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            PgProtocolLog.CancelForwarded(session.Logger, session.Id, target.Connection.Name);
        }
        catch (UpstreamException ex)
        {
            PgProtocolLog.UpstreamFailed(session.Logger, session.Id, target!.Connection.Name, ex.Message);
        }
    }

    private ValueTask<FlushResult> WriteByteAsync(byte value, CancellationToken ct)
    {
        var output = session.Client.Output;
        output.GetSpan(1)[0] = value;
        output.Advance(1);
        return output.FlushAsync(ct);
    }

    /// <summary>A verifier for unknown users, so a failed lookup costs the same as a wrong secret.</summary>
    private static class DummyVerifier
    {
        public static readonly ScramVerifier Value = ScramVerifier.Create(Guid.NewGuid().ToString("N"));
    }
}
