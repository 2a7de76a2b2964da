using System.Buffers;
using System.IO.Pipelines;
using Gatehouse.Engine.Relay;

namespace Gatehouse.Benchmarks;

/// <summary>The relay pump's synchronous step, as the relay benchmarks measure it.</summary>
internal static class RelayStep
{
    /// <summary>
    /// FrameRelay.ProcessFrames over one read's worth of frames, then one flush (as the pump does), then the bytes
    /// are taken back out so the pipe starts empty for the next invocation. Returns the bytes relayed.
    /// </summary>
    public static int Run<THandler>(ref THandler handler, ReadOnlySequence<byte> buffer, Pipe pipe)
        where THandler : struct, IRelayHandler
    {
        var output = pipe.Writer;
        long before = buffer.Length;
        bool wrote = false;
        var stop = FrameRelay.ProcessFrames(ref handler, ref buffer, output, ref wrote, out int incomplete);
        if (stop is not null || incomplete != 0 || !buffer.IsEmpty)
        {
            throw new InvalidOperationException("a benchmark frame was refused or incomplete");
        }

        var flush = output.FlushAsync();
        if (!flush.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException("the output pipe applied backpressure");
        }

        _ = flush.Result;
        if (pipe.Reader.TryRead(out var result))
        {
            pipe.Reader.AdvanceTo(result.Buffer.End);
        }

        return (int)before;
    }
}
