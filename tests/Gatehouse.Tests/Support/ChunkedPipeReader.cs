using System.Buffers;
using System.IO.Pipelines;

namespace Gatehouse.Tests.Support;

/// <summary>
/// A PipeReader that delivers the given chunks one read at a time, keeping what the reader did not consume as a
/// separate segment in front of the next chunk. Reads therefore see exactly the splits a test chooses, and
/// multi-segment buffers, as a socket can produce them.
/// </summary>
internal sealed class ChunkedPipeReader(IReadOnlyList<byte[]> chunks) : PipeReader
{
    private byte[] _unconsumed = [];
    private int _next;
    private ReadOnlySequence<byte> _last;
    private bool _cancel;

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (_cancel)
        {
            _cancel = false;
            _last = new ReadOnlySequence<byte>(_unconsumed);
            return new(new ReadResult(_last, isCanceled: true, isCompleted: false));
        }

        byte[]? chunk = _next < chunks.Count ? chunks[_next++] : null;
        _last = Build(_unconsumed, chunk);
        return new(new ReadResult(_last, isCanceled: false, isCompleted: chunk is null));
    }

    public override bool TryRead(out ReadResult result)
    {
        result = default;
        return false;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => _unconsumed = _last.Slice(consumed).ToArray();

    public override void CancelPendingRead() => _cancel = true;

    public override void Complete(Exception? exception = null)
    {
    }

    private static ReadOnlySequence<byte> Build(byte[] first, byte[]? second)
    {
        if (second is null || second.Length == 0)
        {
            return new ReadOnlySequence<byte>(first);
        }

        if (first.Length == 0)
        {
            return new ReadOnlySequence<byte>(second);
        }

        var a = new Segment(first, 0);
        var b = a.Append(second);
        return new ReadOnlySequence<byte>(a, 0, b, second.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
