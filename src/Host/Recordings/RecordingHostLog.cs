using Gatehouse.Engine.Recording;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.Recordings;

/// <summary>The host's recording events (1130-1139; the library's are 1100-1129).</summary>
internal static partial class RecordingHostLog
{
    [LoggerMessage(1130, LogLevel.Information, "Recording every session into {Directory} (key {KeyId}, on backpressure: {Mode}); {Checked} recordings checked for recovery")]
    public static partial void Started(ILogger logger, string directory, string keyId, RecordingBackpressure mode, int @checked);

    [LoggerMessage(1131, LogLevel.Warning, "Recording is off (recording: off): sessions run unrecorded")]
    public static partial void Off(ILogger logger);

    [LoggerMessage(1132, LogLevel.Warning, "Recording retention failed: {Detail}")]
    public static partial void RetentionFailed(ILogger logger, string detail);
}
