namespace Gatehouse.Engine.Sessions;

/// <summary>The lifecycle of a session, in order. A session only moves forward.</summary>
public enum SessionStage : byte
{
    Accepted,
    Handshake,
    Authenticating,
    Authorizing,
    ConnectingUpstream,
    Relaying,
    Ending,
    Ended,
}
