using Microsoft.Extensions.Logging;

namespace Gatehouse.Engine.Recording;

/// <summary>Log lines of the recording library, source-generated, with stable event ids (11xx). No key is ever a parameter.</summary>
internal static partial class RecordingLog
{
    [LoggerMessage(1100, LogLevel.Debug, "Recording of session {SessionId} started: {Path}")]
    public static partial void RecordingStarted(ILogger logger, string sessionId, string path);

    [LoggerMessage(1101, LogLevel.Debug, "Recording of session {SessionId} sealed: {Blocks} blocks, {Bytes} bytes")]
    public static partial void RecordingSealed(ILogger logger, string sessionId, long blocks, long bytes);

    [LoggerMessage(1102, LogLevel.Error, "Recording of session {SessionId} failed ({Fault}): {Detail}")]
    public static partial void WriterFaulted(ILogger logger, string sessionId, RecordingFault fault, string detail);

    [LoggerMessage(1103, LogLevel.Critical, "The recording writer thread failed; every open recording is faulted")]
    public static partial void WriterThreadFailed(ILogger logger, Exception exception);

    [LoggerMessage(1110, LogLevel.Information, "Retention deleted recording {Path} ({Bytes} bytes, last written {LastWrite:o})")]
    public static partial void RetentionDeleted(ILogger logger, string path, long bytes, DateTime lastWrite);

    [LoggerMessage(1111, LogLevel.Warning, "Retention could not delete recording {Path}: {Detail}")]
    public static partial void RetentionFailed(ILogger logger, string path, string detail);

    [LoggerMessage(1120, LogLevel.Warning, "Recording {Path} was left unsealed; recovery sealed it after block {Block} ({Discarded} bytes of a partial block discarded)")]
    public static partial void RecoverySealed(ILogger logger, string path, long block, long discarded);

    [LoggerMessage(1121, LogLevel.Error, "Recording {Path} was left unsealed and cannot be sealed: {Detail}")]
    public static partial void RecoveryRefused(ILogger logger, string path, string detail);
}
