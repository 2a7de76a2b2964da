namespace Gatehouse.Engine.Sessions;

/// <summary>Why a session ended. Every session records exactly one; it is logged, counted and (later) recorded.</summary>
public enum SessionEndReason : byte
{
    /// <summary>The session has not ended yet.</summary>
    None = 0,
    /// <summary>The client said goodbye in its protocol (Terminate, COM_QUIT, channel close).</summary>
    ClientTerminated,
    /// <summary>The client closed its connection without saying goodbye.</summary>
    ClientDisconnected,
    /// <summary>The upstream server closed its connection.</summary>
    ServerDisconnected,
    /// <summary>The pre-authentication deadline passed.</summary>
    PreAuthTimeout,
    /// <summary>No traffic in either direction for the idle timeout.</summary>
    IdleTimeout,
    /// <summary>The client failed to authenticate.</summary>
    AuthenticationFailed,
    /// <summary>The identity is not allowed to use the requested connection.</summary>
    AuthorizationFailed,
    /// <summary>The gateway could not reach or log into the upstream server.</summary>
    UpstreamUnavailable,
    /// <summary>The client broke the protocol: bad length, unknown code, message out of state.</summary>
    ClientProtocolViolation,
    /// <summary>The server broke the protocol.</summary>
    ServerProtocolViolation,
    /// <summary>A message was larger than the configured limit.</summary>
    MessageTooLarge,
    /// <summary>TLS failed (handshake, or TLS required and refused).</summary>
    TlsFailure,
    /// <summary>The gateway is shutting down and drained the session.</summary>
    Drained,
    /// <summary>The drain deadline passed and the session was cut.</summary>
    ShutdownAborted,
    /// <summary>The session was refused because the gateway is at its connection limit.</summary>
    ConnectionLimit,
    /// <summary>The connection was a one-shot request (a cancel request) and was served.</summary>
    OutOfBandRequestServed,
    /// <summary>An operator or a policy change ended the session.</summary>
    Killed,
    /// <summary>A bug: an exception escaped the protocol code. Logged with its stack trace.</summary>
    InternalError,
    /// <summary>The credential the session logged in with (an access token) expired while the session was open.</summary>
    CredentialExpired,
    /// <summary>The session's recording failed or could not keep up (with on_backpressure: end_session): a session never runs unrecorded.</summary>
    RecordingFailed,
}

/// <summary>Which side of a session a fault came from: errors are data and name the failing side.</summary>
public enum PeerSide : byte
{
    Client,
    Server,
    Gateway,
}
