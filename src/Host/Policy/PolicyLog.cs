using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.Policy;

/// <summary>The statement policy's log lines, source-generated, with stable event ids (4xxx).</summary>
internal static partial class PolicyLog
{
    [LoggerMessage(4000, LogLevel.Warning, "Policy is unrestricted (policy: unrestricted): every statement is relayed unchecked")]
    public static partial void Unrestricted(ILogger logger);

    [LoggerMessage(4001, LogLevel.Information, "Policy loaded from {Path} (version {Version}): {Roles} role(s), {Bindings} binding(s)")]
    public static partial void Loaded(ILogger logger, string path, long version, int roles, int bindings);

    [LoggerMessage(4002, LogLevel.Information, "Policy reloaded from {Path} (version {Version})")]
    public static partial void Reloaded(ILogger logger, string path, long version);

    [LoggerMessage(4003, LogLevel.Error, "Policy reload from {Path} refused with {Count} error(s); keeping version {Version}")]
    public static partial void ReloadRefused(ILogger logger, string path, int count, long version);

    [LoggerMessage(4004, LogLevel.Error, "Policy error: {Error}")]
    public static partial void Error(ILogger logger, string error);

    [LoggerMessage(4005, LogLevel.Warning, "Policy warning: {Warning}")]
    public static partial void Warning(ILogger logger, string warning);

    [LoggerMessage(4006, LogLevel.Debug, "Policy file {Path} changed ({Trigger})")]
    public static partial void Changed(ILogger logger, string path, string trigger);

    [LoggerMessage(4007, LogLevel.Warning, "Policy file watcher for {Path} failed; polling every {Interval} continues")]
    public static partial void WatcherFailed(ILogger logger, string path, TimeSpan interval, Exception exception);

    [LoggerMessage(4008, LogLevel.Error, "Policy reload from {Path} failed unexpectedly; keeping version {Version}")]
    public static partial void ReloadCrashed(ILogger logger, string path, long version, Exception exception);
}
