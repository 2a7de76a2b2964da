using System.Reflection;

namespace Gatehouse.Engine.Recording;

/// <summary>Settings of a <see cref="RecordingService"/>. Each default says why it was chosen.</summary>
public sealed class RecordingOptions
{
    /// <summary>Where <see cref="RecordingService.Start(RecordingSessionInfo)"/> creates one file per session.</summary>
    public string? Directory { get; init; }

    /// <summary>Signs every block's seal; its id is written in every header.</summary>
    public required RecordingKey Key { get; init; }

    /// <summary>
    /// Largest block, seal included (a record larger than a block gets a block of its own). 64 KiB: a block is one
    /// LZ4 block of the smallest LZ4 size class, compresses in about 0.1 ms, and bounds what a reader holds at once.
    /// </summary>
    public int BlockSize { get; init; } = 64 * 1024;

    /// <summary>
    /// A block is written at least this often while events arrive, so a killed process loses at most about this much
    /// of a session. 100 ms: small next to any human action, large enough that idle sessions cost nothing.
    /// </summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Bytes of events a session may have waiting for the writer; beyond it <see cref="RecordingWriter.Append(RecordKind, RecordDirection, ReadOnlySpan{byte})"/>
    /// answers <see cref="RecordingStatus.Full"/>. 8 MiB: more than a second of a fast session at disk speed, and a
    /// record may be up to half of it (the relay's largest frame must fit).
    /// </summary>
    public int MaxBufferedBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>
    /// Also fsync after every write pass, not only when a recording is closed. Off by default: a killed process loses
    /// nothing the OS has; this only matters for power loss, at the price of one fsync per session every interval.
    /// </summary>
    public bool FlushToDisk { get; init; }

    /// <summary>
    /// LZ4's acceleration: 1 is LZ4's default fast mode; each step up skips more of the match search, faster and a
    /// little larger. 3: on a recording of bench/pg.sh's big_rows (masked result rows, 83 MB) it compresses 1.5 times
    /// as fast as 1 at the same ratio (3.07 against 3.01); from 8 on the ratio falls (2.81 at 8, 2.51 at 12).
    /// </summary>
    public int CompressionAcceleration { get; init; } = DefaultAcceleration;

    /// <summary>The default <see cref="CompressionAcceleration"/>.</summary>
    public const int DefaultAcceleration = 3;

    /// <summary>Written into every SessionStart record.</summary>
    public string GatewayVersion { get; init; } =
        typeof(RecordingOptions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Key);
        if (BlockSize < 4096 || BlockSize > 4 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(BlockSize), BlockSize, "A block is 4 KiB to 4 MiB.");
        }

        if (MaxBufferedBytes < 4L * BlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBufferedBytes), MaxBufferedBytes, "The buffer must hold at least four blocks.");
        }

        if (CompressionAcceleration < 1 || CompressionAcceleration > 65537)
        {
            throw new ArgumentOutOfRangeException(nameof(CompressionAcceleration), CompressionAcceleration, "LZ4's acceleration is 1 to 65537.");
        }

        if (FlushInterval <= TimeSpan.Zero || FlushInterval > TimeSpan.FromMinutes(1))
        {
            throw new ArgumentOutOfRangeException(nameof(FlushInterval), FlushInterval, "The flush interval is between 0 and 1 minute.");
        }
    }
}

/// <summary>What a recording's SessionStart record says about the session (written as JSON; docs/recording-format.md).</summary>
/// <param name="SessionId">Unique id of the session; also names the file and seeds the hash chain.</param>
/// <param name="Protocol">Wire protocol, e.g. <c>postgresql</c>.</param>
public sealed record RecordingSessionInfo(string SessionId, string Protocol)
{
    /// <summary>The authenticated identity, when known.</summary>
    public string? Identity { get; init; }

    /// <summary>The connection (upstream target) name.</summary>
    public string? Connection { get; init; }

    /// <summary>The client's address, e.g. <c>192.0.2.7:51234</c>.</summary>
    public string? ClientAddress { get; init; }

    /// <summary>Wall-clock start of the session; the writer's creation time when not given. Event times are offsets from it.</summary>
    public DateTimeOffset? StartTime { get; init; }

    /// <summary>More string fields for the SessionStart object (listener, database user, ...).</summary>
    public IReadOnlyDictionary<string, string>? Attributes { get; init; }
}
