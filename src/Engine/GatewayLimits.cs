namespace Gatehouse.Engine;

/// <summary>
/// Every limit the engine enforces, with the reason for its default. Sizes are checked from a message header,
/// before anything of the message is buffered.
/// </summary>
public sealed record GatewayLimits
{
    /// <summary>
    /// Open sessions across all listeners. A connection over the limit is answered with the protocol's
    /// "too many connections" error and closed. 1000 fits the default memory budget of a sidecar (a quiet session
    /// holds a few KiB; a busy one up to two pipe windows per side).
    /// </summary>
    public int MaxConnections { get; init; } = 1000;

    /// <summary>
    /// Time from accept to a successful login. PostgreSQL's own authentication_timeout is 60 s; clients that
    /// need longer are either broken or attacking the pre-auth surface, so we are stricter.
    /// </summary>
    public TimeSpan PreAuthTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// A session with no traffic in either direction for this long is closed. Zero disables it.
    /// One hour keeps interactive sessions alive over lunch but not over night.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Largest message accepted from a client. Messages are inspected whole, so this bounds the memory a single
    /// client message can take. 64 MiB admits large bound parameters (bytea, json) without letting one session
    /// take the host's memory; PostgreSQL itself allows up to 1 GiB.
    /// </summary>
    public int MaxClientMessageSize { get; init; } = 64 * 1024 * 1024;

    /// <summary>
    /// Largest message accepted from a server (a data row, an error). 256 MiB: rows are the one place where
    /// real applications store big values; beyond this the gateway ends the session with a clear error rather
    /// than grow without bound.
    /// </summary>
    public int MaxServerMessageSize { get; init; } = 256 * 1024 * 1024;

    /// <summary>
    /// Largest pre-authentication message (a startup packet, a password, a SASL message). PostgreSQL uses
    /// 10000 bytes for the startup packet; nothing legitimate before login is larger.
    /// </summary>
    public int MaxPreAuthMessageSize { get; init; } = 10_000;

    /// <summary>On SIGTERM, how long running statements may take to finish before their sessions are cut.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait for the upstream TCP connect and login.</summary>
    public TimeSpan UpstreamConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
