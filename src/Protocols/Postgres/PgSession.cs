using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Security;
using System.Security.Authentication;
using System.Text;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Policy.Identity;
using Gatehouse.Protocols.Postgres.Auth;
using Gatehouse.Protocols.Postgres.Cancel;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres.Policy;
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
            await CompleteLoginAsync(target, login, ct).ConfigureAwait(false);
            await RelayAsync(login).ConfigureAwait(false);
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
            ? await AuthenticateCleartextAsync(identity, ct).ConfigureAwait(false)
            : await AuthenticateScramAsync(identity, startup.User, ct).ConfigureAwait(false);
        if (!authenticated || identity is null)
        {
            PgProtocolLog.AuthenticationFailed(session.Logger, session.Id, startup.User, session.Client.RemoteEndPoint);
            throw new PgHandshakeException(SqlState.InvalidPassword, $"password authentication failed for user \"{startup.User}\"",
                reason: SessionEndReason.AuthenticationFailed);
        }

        session.Identity = identity.Name;
        session.Advance(SessionStage.Authorizing);
        if (!_config.Connections.TryGetValue(startup.Database, out var target))
        {
            throw new PgHandshakeException(SqlState.InvalidCatalogName, $"connection \"{startup.Database}\" is not configured on this gateway",
                hint: "use the name of a configured connection as the database name", reason: SessionEndReason.AuthorizationFailed);
        }

        session.ConnectionName = target.Name;
        if (!IdentityDirectory.MayUse(identity, target.Name))
        {
            throw new PgHandshakeException(SqlState.InvalidAuthorization,
                $"identity \"{identity.Name}\" may not use connection \"{target.Name}\"",
                hint: "ask an administrator to grant this identity access to the connection", reason: SessionEndReason.AuthorizationFailed);
        }

        _policy = protocol.Policy.Current.Resolve(identity.Name, [], target.Name);
        if (_policy is null)
        {
            throw new PgHandshakeException(SqlState.InsufficientPrivilege,
                $"no policy binding gives identity \"{identity.Name}\" a role on connection \"{target.Name}\"",
                hint: "ask an administrator to add a binding to the policy", reason: SessionEndReason.AuthorizationFailed);
        }

        return target;
    }

    private async Task<bool> AuthenticateCleartextAsync(AgentIdentity? identity, CancellationToken ct)
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

        // Unknown identities cost the same PBKDF2 work, so timing does not reveal which names exist.
        // PBKDF2 takes milliseconds: run it off the socket thread so other sessions' traffic is not held up.
        var verifier = identity?.Secret ?? DummyVerifier.Value;
        bool valid = await Task.Run(() => verifier.VerifyPasswordUtf8(body.AsSpan(0, end)), ct).ConfigureAwait(false);
        Array.Clear(body);
        return valid && identity is not null;
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
        var (processId, secretKey) = protocol.Cancels.Register(new CancelTarget(target, login.ProcessId, login.SecretKey));
        _cancelProcessId = processId;

        var output = session.Client.Output;
        PgWriter.WriteAuthentication(output, AuthenticationCode.Ok);
        foreach (var frame in login.FramesForClient)
        {
            output.Write(frame);
        }

        // The client gets the gateway's keys, never the upstream's: cancels come back through us.
        PgWriter.WriteBackendKeyData(output, processId, secretKey);
        PgWriter.WriteReadyForQuery(output, login.TransactionStatus);
        await output.FlushAsync(ct).ConfigureAwait(false);
        PgProtocolLog.SessionStarted(session.Logger, session.Id, session.Identity!, target.Name, session.Client.IsTls);
    }

    private async Task RelayAsync(UpstreamLogin login)
    {
        var state = new PgRelayState(session, session.Limits.MaxClientMessageSize, session.Limits.MaxServerMessageSize)
        {
            TransactionStatus = login.TransactionStatus,
            StandardConformingStrings = login.StandardConformingStrings,
        };
        if (_policy is { IsUnrestricted: false })
        {
            state.Gate = new PgPolicyGate(protocol.Policy, _policy, session.Identity!, [], session.ConnectionName!, state)
            {
                ClientEncodingSafe = login.ClientEncodingSafe,
            };
        }

        var waker = new RelayWaker();
        RelayOutcome outcome;
        try
        {
            outcome = await FrameRelay.RunAsync(session, new FrontendRelayHandler(state), new BackendRelayHandler(state), waker)
                .ConfigureAwait(false);
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
        if (session.EndReason is not (SessionEndReason.ServerDisconnected or SessionEndReason.ServerProtocolViolation or SessionEndReason.ClientTerminated))
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
            SessionEndReason.Killed => (SqlState.AdminShutdown, "terminating connection: the session was ended by the gateway"),
            SessionEndReason.IdleTimeout => (SqlState.IdleSessionTimeout, "terminating connection due to the gateway's idle timeout"),
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
        try
        {
            PgWriter.WriteFatal(session.Client.Output, sqlState, message, detail, hint);
        }
        catch (InvalidOperationException)
        {
            return; // The client's pipe is already completed: nobody to tell.
        }

        await FrameRelay.FlushAfterStopAsync(session.Client.Output, FinalWriteTimeout).ConfigureAwait(false);
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

    // ---- Out-of-band requests ---------------------------------------------------------------------------

    private async Task ForwardCancelAsync(int processId, int secretKey, CancellationToken ct)
    {
        if (!protocol.Cancels.TryResolve(processId, secretKey, out var target))
        {
            // As PostgreSQL does: an unknown key gets no answer, so keys cannot be probed.
            PgProtocolLog.CancelIgnored(session.Logger, session.Id);
            return;
        }

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
