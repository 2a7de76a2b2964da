using System.Net;
using Gatehouse.Engine.Sessions;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Engine.Logging;

/// <summary>The engine's log lines, source-generated, with stable event ids (1xxx). No secret is ever a parameter.</summary>
internal static partial class EngineLog
{
    [LoggerMessage(1000, LogLevel.Information, "Listener {Listener} ({Protocol}) listening on {EndPoint}")]
    public static partial void ListenerStarted(ILogger logger, string listener, string protocol, EndPoint endPoint);

    [LoggerMessage(1001, LogLevel.Information, "Listener {Listener} stopped")]
    public static partial void ListenerStopped(ILogger logger, string listener);

    [LoggerMessage(1002, LogLevel.Error, "Listener {Listener} accept loop failed")]
    public static partial void AcceptFailed(ILogger logger, string listener, Exception exception);

    [LoggerMessage(1010, LogLevel.Debug, "Session {SessionId} accepted on {Listener} from {Remote}")]
    public static partial void SessionAccepted(ILogger logger, long sessionId, string listener, EndPoint? remote);

    [LoggerMessage(1011, LogLevel.Information, "Session {SessionId} ended: {Reason} ({Side}) {Detail}; identity={Identity} connection={Connection} duration_ms={DurationMs} bytes_in={BytesIn} bytes_out={BytesOut}")]
    public static partial void SessionEnded(ILogger logger, long sessionId, SessionEndReason reason, PeerSide side, string? detail,
        string? identity, string? connection, long durationMs, long bytesIn, long bytesOut);

    [LoggerMessage(1012, LogLevel.Warning, "Session {SessionId} refused: {Reason}")]
    public static partial void SessionRefused(ILogger logger, long sessionId, SessionEndReason reason);

    [LoggerMessage(1013, LogLevel.Error, "Session {SessionId} failed with an internal error")]
    public static partial void SessionCrashed(ILogger logger, long sessionId, Exception exception);

    [LoggerMessage(1020, LogLevel.Information, "Draining {Count} sessions (up to {Timeout})")]
    public static partial void Draining(ILogger logger, int count, TimeSpan timeout);

    [LoggerMessage(1021, LogLevel.Warning, "Drain deadline passed: cutting {Count} sessions")]
    public static partial void DrainCut(ILogger logger, int count);

    [LoggerMessage(1022, LogLevel.Information, "Gateway stopped")]
    public static partial void Stopped(ILogger logger);
}
