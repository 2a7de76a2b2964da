using Microsoft.Extensions.Logging;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>Catalog cache log lines (2100-2119). Connection names, counts and reasons; never row data or view definitions.</summary>
internal static partial class PgCatalogLog
{
    [LoggerMessage(2100, LogLevel.Information, "Catalog of {Connection} loaded: version {Version}, {Relations} relations, {Views} views ({ViewsNotDescribed} not described) in {ElapsedMs} ms")]
    public static partial void Loaded(ILogger logger, string connection, long version, int relations, int views, int viewsNotDescribed, long elapsedMs);

    [LoggerMessage(2101, LogLevel.Warning, "Catalog of {Connection} could not be loaded ({Trigger}): {Reason}")]
    public static partial void LoadFailed(ILogger logger, string connection, string trigger, string reason);

    [LoggerMessage(2102, LogLevel.Debug, "Catalog of {Connection} invalidated")]
    public static partial void Invalidated(ILogger logger, string connection);

    [LoggerMessage(2103, LogLevel.Warning, "Catalog of {Connection}: a Refreshed handler failed: {Reason}")]
    public static partial void RefreshedHandlerFailed(ILogger logger, string connection, string reason);

    [LoggerMessage(2104, LogLevel.Debug, "Catalog of {Connection} closed")]
    public static partial void Closed(ILogger logger, string connection);
}
