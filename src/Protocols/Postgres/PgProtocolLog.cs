using System.Net;
using Gatehouse.Policy.Identity;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Protocols.Postgres;

/// <summary>PostgreSQL protocol log lines (2xxx). Identity and connection names only; never a secret.</summary>
internal static partial class PgProtocolLog
{
    [LoggerMessage(2000, LogLevel.Information, "Session {SessionId}: {Identity} connected to {Connection} (tls={Tls})")]
    public static partial void SessionStarted(ILogger logger, long sessionId, string identity, string connection, bool tls);

    [LoggerMessage(2001, LogLevel.Warning, "Session {SessionId}: authentication failed for {User} from {Remote}")]
    public static partial void AuthenticationFailed(ILogger logger, long sessionId, string user, EndPoint? remote);

    [LoggerMessage(2002, LogLevel.Warning, "Session {SessionId}: upstream {Connection} unavailable: {Reason}")]
    public static partial void UpstreamFailed(ILogger logger, long sessionId, string? connection, string reason);

    [LoggerMessage(2003, LogLevel.Information, "Session {SessionId}: cancel request forwarded to {Connection}")]
    public static partial void CancelForwarded(ILogger logger, long sessionId, string connection);

    [LoggerMessage(2004, LogLevel.Warning, "Session {SessionId}: cancel request with unknown keys ignored")]
    public static partial void CancelIgnored(ILogger logger, long sessionId);

    /// <summary>The reason is the validator's own wording; the token and its claims are never logged.</summary>
    [LoggerMessage(2020, LogLevel.Warning, "Session {SessionId}: access token for {User} refused (provider {Provider}, {Failure}): {Reason}")]
    public static partial void TokenRefused(ILogger logger, long sessionId, string user, string provider, TokenFailure failure, string reason);

    [LoggerMessage(2021, LogLevel.Information, "Session {SessionId}: {User} authenticated by an access token from {Provider} ({GroupCount} groups, expires {ExpiresAt:u})")]
    public static partial void TokenAccepted(ILogger logger, long sessionId, string user, string provider, int groupCount, DateTimeOffset expiresAt);

    /// <summary>The statement text is not logged: it may carry values the recording will mask.</summary>
    [LoggerMessage(2010, LogLevel.Warning, "Session {SessionId}: {Identity} on {Connection}: {Message} refused by policy rule {Rule} ({Action})")]
    public static partial void StatementRefused(ILogger logger, long sessionId, string identity, string connection, string message, string rule, string action);

    [LoggerMessage(2011, LogLevel.Warning, "Session {SessionId}: {Identity} on {Connection}: statement held for approval as {RequestId} (rule {Rule})")]
    public static partial void StatementHeld(ILogger logger, long sessionId, string identity, string connection, string requestId, string rule);

    [LoggerMessage(2030, LogLevel.Error, "Session {SessionId}: refused: its recording cannot be written: {Detail}")]
    public static partial void RecordingRefused(ILogger logger, long sessionId, string detail);
}
