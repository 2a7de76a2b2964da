using System.IO.Pipelines;
using System.Buffers;
using System.Runtime.InteropServices;

namespace Gatehouse.Engine.Recording;

/// <summary>
/// A <see cref="PipeWriter"/> in front of one connection's output that lets nothing reach the peer before it is
/// recorded. Bytes written through it are (optionally) recorded as they are committed, coalesced while they are
/// contiguous in the pipe's memory, and records the protocol makes (<see cref="Record"/>) go in between in order.
/// Every flush first hands what is pending to the <see cref="RecordingWriter"/>; when the recording's buffer is full,
/// the flush waits for room (<see cref="RecordingBackpressure.Pause"/>: the direction stalls, as it would behind a
/// slow peer) or fails (<see cref="RecordingBackpressure.EndSession"/>). A failed tap never flushes again: the bytes
/// it holds were not recorded, so the connection must be cut, not closed (<see cref="HasUnrecorded"/>).
/// </summary>
/// <remarks>
/// Holding committed bytes until the flush is safe because a pipe's reader sees nothing before
/// <see cref="PipeWriter.FlushAsync"/> (both <see cref="Pipe"/> and stream-backed writers keep their segments until
/// then). One pump uses a tap; it is not thread-safe.
/// </remarks>
public sealed class RecordingTap : PipeWriter
{
    /// <summary>The largest byte record: far below the recording's record limit, and a few LZ4 blocks.</summary>
    internal const int MaxChunk = 256 * 1024;

    private readonly PipeWriter _inner;
    private readonly RecordingWriter _recording;
    private readonly RecordKind _bytesKind;
    private readonly RecordDirection _bytesDirection;
    private readonly bool _recordBytes;
    private readonly RecordingBackpressure _mode;
    private readonly CancellationToken _aborted;
    private readonly Action<string> _onFailure;
    private Memory<byte> _memory;

    // Committed bytes not yet recorded: one contiguous range of the pipe's memory.
    private byte[]? _pendingArray;
    private int _pendingStart;
    private int _pendingLength;

    // Records the recording refused as full, in order; they go first at the next flush. Null until the first.
    private Queue<Deferred>? _deferred;
    private CancellationTokenSource? _cancelWait;
    private string? _failure;

    /// <param name="inner">The connection's output.</param>
    /// <param name="recording">The session's recording.</param>
    /// <param name="bytesKind">The kind bytes written through the tap are recorded as; <c>0</c> records none (the protocol records structured events instead).</param>
    /// <param name="bytesDirection">Their direction.</param>
    /// <param name="mode">What a flush does when the recording is full.</param>
    /// <param name="onFailure">Called once, with the reason, when the tap fails: the session must end.</param>
    /// <param name="aborted">Ends a wait for room (the session's abort).</param>
    public RecordingTap(PipeWriter inner, RecordingWriter recording, RecordKind bytesKind, RecordDirection bytesDirection, RecordingBackpressure mode,
        Action<string> onFailure, CancellationToken aborted)
    {
        _inner = inner;
        _recording = recording;
        _bytesKind = bytesKind;
        _bytesDirection = bytesDirection;
        _recordBytes = bytesKind != 0;
        _mode = mode;
        _aborted = aborted;
        _onFailure = onFailure;
    }

    /// <summary>Why the tap failed (nothing more is recorded or flushed); null while it has not.</summary>
    public string? Failure => _failure;

    /// <summary>
    /// Whether bytes were committed to the connection that are not (or not yet) recorded: then the connection must be
    /// cut, never completed (completing a pipe hands its unflushed bytes to the peer).
    /// </summary>
    public bool HasUnrecorded => _failure is not null || _pendingLength > 0 || _deferred is { Count: > 0 };

    /// <summary>Records a protocol event, after every byte written before it.</summary>
    public void Record(RecordKind kind, RecordDirection direction, ReadOnlySpan<byte> payload)
    {
        if (_failure is not null)
        {
            return;
        }

        EmitPending();
        Append(kind, direction, payload);
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) => _memory = _inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public override void Advance(int bytes)
    {
        if (_recordBytes && bytes > 0 && _failure is null)
        {
            Capture(_memory[..bytes]);
        }

        _memory = default;
        _inner.Advance(bytes);
    }

    public override bool CanGetUnflushedBytes => _inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => _inner.UnflushedBytes;

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        if (_failure is not null)
        {
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: true));
        }

        EmitPending();
        if (_failure is not null)
        {
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: true));
        }

        return _deferred is { Count: > 0 } ? DrainThenFlushAsync(cancellationToken) : _inner.FlushAsync(cancellationToken);
    }

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        this.Write(source.Span);
        return FlushAsync(cancellationToken);
    }

    public override void CancelPendingFlush()
    {
        CancelWait();
        _inner.CancelPendingFlush();
    }

    /// <summary>Completes the connection's output; with unrecorded bytes held, it is left to be cut instead.</summary>
    public override void Complete(Exception? exception = null)
    {
        if (_failure is null)
        {
            EmitPending();
        }

        if (!HasUnrecorded)
        {
            _inner.Complete(exception);
        }
    }

    /// <summary>Ends the tap as failed (the session ends; its connection is cut).</summary>
    public void Fail(string reason)
    {
        if (_failure is not null)
        {
            return;
        }

        _failure = reason;
        _pendingLength = 0;
        _pendingArray = null;
        if (_deferred is not null)
        {
            while (_deferred.TryDequeue(out var deferred))
            {
                ArrayPool<byte>.Shared.Return(deferred.Bytes);
            }
        }

        CancelWait();
        _onFailure(reason);
    }

    private void Capture(Memory<byte> written)
    {
        if (MemoryMarshal.TryGetArray<byte>(written, out var segment))
        {
            if (ReferenceEquals(segment.Array, _pendingArray) && segment.Offset == _pendingStart + _pendingLength
                && _pendingLength + segment.Count <= MaxChunk)
            {
                _pendingLength += segment.Count;
                return;
            }

            EmitPending();
            _pendingArray = segment.Array;
            _pendingStart = segment.Offset;
            _pendingLength = segment.Count;
            return;
        }

        EmitPending();
        AppendBytes(written.Span);
    }

    private void EmitPending()
    {
        if (_pendingLength == 0)
        {
            return;
        }

        var bytes = _pendingArray.AsSpan(_pendingStart, _pendingLength);
        _pendingLength = 0;
        _pendingArray = null;
        AppendBytes(bytes);
    }

    private void AppendBytes(ReadOnlySpan<byte> bytes)
    {
        while (bytes.Length > 0 && _failure is null)
        {
            int take = Math.Min(bytes.Length, MaxChunk);
            Append(_bytesKind, _bytesDirection, bytes[..take]);
            bytes = bytes[take..];
        }
    }

    private void Append(RecordKind kind, RecordDirection direction, ReadOnlySpan<byte> payload)
    {
        if (_deferred is { Count: > 0 })
        {
            Defer(kind, direction, payload);
            return;
        }

        switch (_recording.Append(kind, direction, payload))
        {
            case RecordingStatus.Recorded:
                return;
            case RecordingStatus.Full:
                Defer(kind, direction, payload);
                return;
            case RecordingStatus.TooLarge:
                Fail($"an event of {payload.Length} bytes is larger than the recording buffer allows");
                return;
            default:
                Fail(FailureOf(_recording));
                return;
        }
    }

    private void Defer(RecordKind kind, RecordDirection direction, ReadOnlySpan<byte> payload)
    {
        var bytes = ArrayPool<byte>.Shared.Rent(payload.Length);
        payload.CopyTo(bytes);
        (_deferred ??= new Queue<Deferred>()).Enqueue(new Deferred(kind, direction, bytes, payload.Length));
    }

    private async ValueTask<FlushResult> DrainThenFlushAsync(CancellationToken cancellationToken)
    {
        var deferred = _deferred!;
        while (deferred.TryPeek(out var next))
        {
            var status = _recording.Append(next.Kind, next.Direction, next.Bytes.AsSpan(0, next.Length));
            if (status == RecordingStatus.Recorded)
            {
                deferred.Dequeue();
                ArrayPool<byte>.Shared.Return(next.Bytes);
                continue;
            }

            if (status != RecordingStatus.Full)
            {
                Fail(status == RecordingStatus.TooLarge ? "an event is larger than the recording buffer allows" : FailureOf(_recording));
                return new FlushResult(isCanceled: false, isCompleted: true);
            }

            if (_mode == RecordingBackpressure.EndSession)
            {
                Fail("the recording could not keep up with the session (on_backpressure: end_session)");
                return new FlushResult(isCanceled: false, isCompleted: true);
            }

            // Pause: this direction waits, as behind a slow peer, until the writer has drained half the buffer.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(_aborted, cancellationToken);
            _cancelWait = wait;
            try
            {
                await _recording.WaitForRoomAsync(wait.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return _failure is not null ? new FlushResult(isCanceled: false, isCompleted: true) : new FlushResult(isCanceled: true, isCompleted: false);
            }
            finally
            {
                _cancelWait = null;
            }
        }

        return await _inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private void CancelWait()
    {
        try
        {
            _cancelWait?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The wait ended meanwhile.
        }
    }

    private static string FailureOf(RecordingWriter recording) => recording.State switch
    {
        RecordingWriterState.Faulted => $"the recording failed ({recording.Fault}: {recording.FaultDetail})",
        _ => "the recording was closed",
    };

    private readonly record struct Deferred(RecordKind Kind, RecordDirection Direction, byte[] Bytes, int Length);
}
