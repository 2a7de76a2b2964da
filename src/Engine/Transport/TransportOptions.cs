using System.IO.Pipelines;
using Pipelines.Sockets.Unofficial;

namespace Gatehouse.Engine.Transport;

/// <summary>Pipe sizing for every socket the gateway owns, client or upstream.</summary>
internal static class TransportOptions
{
    /// <summary>
    /// A reader that falls this far behind stops the socket from reading more (backpressure). 1 MiB lets a result
    /// stream at full speed on loopback and 10 GbE links while bounding what one slow client can make us hold.
    /// </summary>
    public const int PauseWriterThreshold = 1024 * 1024;

    /// <summary>Half the pause threshold: resume without thrashing between paused and running.</summary>
    public const int ResumeWriterThreshold = PauseWriterThreshold / 2;

    /// <summary>
    /// A message larger than this that is not yet complete is assembled in a pooled buffer outside the pipe, so
    /// that a message larger than the pipe window never deadlocks the pipe. Kept well under the pause threshold.
    /// </summary>
    public const int AssemblyThreshold = PauseWriterThreshold / 4;

    /// <summary>
    /// No zero-length reads. They let an idle connection hold no receive buffer, but cost an ioctl and an extra
    /// wake-up per read: strace counted 10 syscalls per pgbench -S query with them and 8 without (2 of those are
    /// the try-first receive that returns EAGAIN). The price is one 16 KiB segment per idle socket.
    /// </summary>
    public static readonly SocketConnectionOptions SocketOptions = SocketConnectionOptions.None;

    /// <summary>
    /// Every pipe the transport owns, in both directions (socket and TLS). Continuations run inline on the
    /// socket's completion: a relay step is short and never blocks, and an extra thread-pool hop per read costs
    /// more than the work itself (measured in bench/pg.sh).
    /// </summary>
    public static readonly PipeOptions Pipes = new(
        pool: null,
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: PauseWriterThreshold,
        resumeWriterThreshold: ResumeWriterThreshold,
        minimumSegmentSize: 16 * 1024,
        useSynchronizationContext: false);
}
