using Gatehouse.Engine.Sessions;

namespace Gatehouse.Engine;

/// <summary>
/// A wire protocol as the engine sees it: something that drives one session from handshake to end. The engine
/// owns accept, limits, deadlines, drain and clean-up; the protocol owns every byte's meaning.
/// </summary>
public interface ISessionProtocol
{
    /// <summary>The protocol's name in logs and config ("postgres").</summary>
    string Name { get; }

    /// <summary>
    /// Runs the session to its end: handshake, authentication, authorization, upstream connect, relay. Records the
    /// end reason on the session. Exceptions are bugs: the engine logs them and ends the session.
    /// </summary>
    Task RunAsync(Session session);

    /// <summary>
    /// Tells a client, in the protocol's own terms, that it cannot be served now (limit, shutdown). The session is
    /// not counted against the limit and is aborted after a short deadline; the protocol may need to speak its
    /// prelude first (PostgreSQL clients expect their SSLRequest answered before any error).
    /// </summary>
    Task RefuseAsync(Session session, SessionEndReason reason);
}
