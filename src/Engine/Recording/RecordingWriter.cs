using System.Buffers;
using System.Runtime.CompilerServices;

namespace Gatehouse.Engine.Recording;

/// <summary>
/// A payload that writes itself into the recording buffer, so that a structured event needs no intermediate copy.
/// Ref structs are allowed: the append path is generic over the payload, so the calls are direct.
/// </summary>
public interface IRecordPayload
{
    /// <summary>Exact number of bytes <see cref="WriteTo"/> writes.</summary>
    int Length { get; }

    /// <summary>Writes exactly <see cref="Length"/> bytes.</summary>
    void WriteTo(Span<byte> destination);
}

/// <summary>
/// The recording of one session. <see cref="Append(RecordKind, RecordDirection, ReadOnlySpan{byte})"/> copies an event into
/// the session's buffer (pooled block-sized segments) and returns: no allocation, no I/O, one short lock (the two
/// relay directions append concurrently, and the order of their appends is the order of the recording). The
/// <see cref="RecordingService"/>'s writer thread seals, compresses and writes full blocks as they fill, and partial ones
/// every flush interval. A full buffer or a failed disk is reported by the return value, never by blocking.
/// <see cref="DisposeAsync"/> writes what is left and the final seal.
/// </summary>
public sealed class RecordingWriter : IAsyncDisposable
{
    private readonly RecordingService _service;
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private readonly long _startTimestamp;
    private readonly ulong _startOffsetMicros;
    private readonly int _blockSize;
    private readonly int _blockContentLimit;
    private readonly long _maxBuffered;
    private readonly long _lowWater;
    private readonly int _maxRecord;
    private readonly PendingBlock[] _ready;
    private readonly byte[]?[] _free = new byte[2][];
    private readonly CancellationTokenSource _faulted = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Guarded by _lock.
    private byte[]? _current;
    private int _currentCount;
    private int _readyHead;
    private int _readyCount;
    private int _freeCount;
    private long _bufferedBytes;
    private long _fullCount;
    private bool _appendedSinceTick;
    private RecordingWriterState _state;
    private RecordingFault _fault;
    private string? _faultDetail;
    private TaskCompletionSource? _roomWaiter;
    private TaskCompletionSource? _flushWaiter;
    private bool _flushRequested;
    private bool _closeRequested;

    // Owned by the service's writer thread.
    internal Stream? Output;
    internal bool LeaveOpen;
    internal readonly RecordingChain Chain = new();
    internal int InReadyList;
    internal RecordingWriter? NextReady;

    internal RecordingWriter(RecordingService service, RecordingOptions options, TimeProvider time, string sessionId, string? path, DateTimeOffset start)
    {
        _service = service;
        _time = time;
        _startTimestamp = time.GetTimestamp();
        // Event times count from the session's start (the header's), which may be a little before the writer's.
        _startOffsetMicros = (ulong)Math.Max(0, (time.GetUtcNow() - start).Ticks / TimeSpan.TicksPerMicrosecond);
        _blockSize = options.BlockSize;
        _blockContentLimit = options.BlockSize - RecordingFormat.SealReserve;
        _maxBuffered = options.MaxBufferedBytes;
        _lowWater = options.MaxBufferedBytes / 2;
        _maxRecord = options.MaxBufferedBytes / 2;
        // Enough slots for a buffer of full blocks, and as many again for blocks cut short by a record of their own.
        _ready = new PendingBlock[2 * (options.MaxBufferedBytes / options.BlockSize) + 8];
        SessionId = sessionId;
        Path = path;
    }

    /// <summary>The session this recording is of.</summary>
    public string SessionId { get; }

    /// <summary>The recording file, when the service created one (null for a caller's stream).</summary>
    public string? Path { get; }

    /// <summary>Where the writer is in its life.</summary>
    public RecordingWriterState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Why the writer faulted (<see cref="RecordingFault.None"/> while it has not).</summary>
    public RecordingFault Fault
    {
        get
        {
            lock (_lock)
            {
                return _fault;
            }
        }
    }

    /// <summary>What failed, in words (the exception's type and message), or null.</summary>
    public string? FaultDetail
    {
        get
        {
            lock (_lock)
            {
                return _faultDetail;
            }
        }
    }

    /// <summary>Cancelled when the writer faults, so that an idle session can be ended without waiting for its next event.</summary>
    public CancellationToken Faulted => _faulted.Token;

    /// <summary>Appends refused with <see cref="RecordingStatus.Full"/>.</summary>
    public long FullCount => Volatile.Read(ref _fullCount);

    /// <summary>Bytes waiting to be written.</summary>
    public long BufferedBytes
    {
        get
        {
            lock (_lock)
            {
                return _bufferedBytes;
            }
        }
    }

    /// <summary>Records an event. Never blocks on I/O and allocates nothing; see <see cref="RecordingStatus"/> for refusals.</summary>
    /// <param name="kind">An event kind (<see cref="RecordKind.SessionStart"/> or above; framing kinds are the writer's).</param>
    /// <param name="direction">Which way the bytes went.</param>
    /// <param name="payload">The event's bytes, copied before the call returns.</param>
    public RecordingStatus Append(RecordKind kind, RecordDirection direction, ReadOnlySpan<byte> payload)
        => Append(kind, direction, new SpanPayload(payload));

    /// <summary>Records an event whose bytes are in several segments (a frame split across pipe buffers).</summary>
    public RecordingStatus Append(RecordKind kind, RecordDirection direction, in ReadOnlySequence<byte> payload)
        => payload.IsSingleSegment
            ? Append(kind, direction, new SpanPayload(payload.FirstSpan))
            : Append(kind, direction, new SequencePayload(payload));

    /// <summary>Records an event that writes itself into the buffer (structured events, without a copy).</summary>
    public RecordingStatus Append<TPayload>(RecordKind kind, RecordDirection direction, scoped in TPayload payload)
        where TPayload : IRecordPayload, allows ref struct
    {
        if ((byte)kind < RecordingFormat.FirstEventKind)
        {
            ThrowFramingKind(kind);
        }

        return AppendCore(kind, direction, payload);
    }

    internal RecordingStatus AppendCore<TPayload>(RecordKind kind, RecordDirection direction, scoped in TPayload payload)
        where TPayload : IRecordPayload, allows ref struct
    {
        bool signal = false;
        RecordingStatus status;
        lock (_lock)
        {
            status = AppendLocked(kind, direction, payload, ref signal);
        }

        if (signal)
        {
            _service.Signal(this);
        }

        return status;
    }

    private RecordingStatus AppendLocked<TPayload>(RecordKind kind, RecordDirection direction, scoped in TPayload payload, ref bool signal)
        where TPayload : IRecordPayload, allows ref struct
    {
        if (_state != RecordingWriterState.Open)
        {
            return _state == RecordingWriterState.Faulted ? RecordingStatus.Faulted : RecordingStatus.Closed;
        }

        int payloadLength = payload.Length;
        ulong time = ElapsedMicros();
        int headerLength = RecordingFormat.RecordHeaderLength(time, payloadLength);
        if (payloadLength > _maxRecord - headerLength)
        {
            return RecordingStatus.TooLarge;
        }

        int total = headerLength + payloadLength;
        if (_bufferedBytes + total > _maxBuffered)
        {
            _fullCount++;
            return RecordingStatus.Full;
        }

        if (_current is not null && _currentCount > 0 && _currentCount + total > _blockContentLimit)
        {
            // The block is full: hand it to the writer thread and start another.
            if (_readyCount == _ready.Length)
            {
                _fullCount++;
                return RecordingStatus.Full;
            }

            EnqueueReady(_current, _currentCount);
            _current = null;
            _currentCount = 0;
            signal = true;
        }

        if (total > _blockContentLimit)
        {
            // Larger than a block: a block of its own, in a buffer of its size.
            if (_readyCount == _ready.Length)
            {
                _fullCount++;
                return RecordingStatus.Full;
            }

            byte[] large = ArrayPool<byte>.Shared.Rent(total + RecordingFormat.SealReserve);
            WriteRecord(large.AsSpan(0, total), kind, direction, time, headerLength, payload);
            EnqueueReady(large, total);
            signal = true;
        }
        else
        {
            _current ??= RentSegment();
            WriteRecord(_current.AsSpan(_currentCount, total), kind, direction, time, headerLength, payload);
            _currentCount += total;
        }

        _bufferedBytes += total;
        _appendedSinceTick = true;
        return RecordingStatus.Recorded;
    }

    private static void WriteRecord<TPayload>(Span<byte> destination, RecordKind kind, RecordDirection direction, ulong time, int headerLength,
        scoped in TPayload payload)
        where TPayload : IRecordPayload, allows ref struct
    {
        RecordingFormat.WriteRecordHeader(destination, kind, direction, time, destination.Length - headerLength);
        payload.WriteTo(destination[headerLength..]);
    }

    /// <summary>
    /// Completes when the buffer has drained to half (after <see cref="RecordingStatus.Full"/>), or at once when it has,
    /// or when the writer closed or faulted (the next append then says which).
    /// </summary>
    public ValueTask WaitForRoomAsync(CancellationToken cancellationToken = default)
    {
        Task wait;
        lock (_lock)
        {
            if (_state != RecordingWriterState.Open || HasRoomLocked())
            {
                return ValueTask.CompletedTask;
            }

            _roomWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wait = _roomWaiter.Task;
        }

        return new ValueTask(wait.WaitAsync(cancellationToken));
    }

    /// <summary>Completes when every event appended before the call has been sealed and written to the file.</summary>
    public Task FlushAsync(CancellationToken cancellationToken = default)
    {
        Task wait;
        lock (_lock)
        {
            if (_state != RecordingWriterState.Open)
            {
                return _closed.Task.WaitAsync(cancellationToken);
            }

            _flushRequested = true;
            _flushWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wait = _flushWaiter.Task;
        }

        _service.Signal(this);
        return wait.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Writes what is buffered and the final seal, then closes the file. Never throws for I/O: a failure leaves the
    /// writer <see cref="RecordingWriterState.Faulted"/> (the file stays unsealed, for <see cref="RecordingRecovery"/>).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        bool request = false;
        lock (_lock)
        {
            if (_state == RecordingWriterState.Open)
            {
                _state = RecordingWriterState.Closing;
                _closeRequested = true;
                request = true;
            }
        }

        if (request)
        {
            _service.Signal(this);
        }

        await _closed.Task.ConfigureAwait(false);
    }

    internal ulong ElapsedMicros() => _startOffsetMicros + (ulong)(_time.GetElapsedTime(_startTimestamp).Ticks / TimeSpan.TicksPerMicrosecond);

    private bool HasRoomLocked() => _bufferedBytes <= _lowWater && _readyCount <= _ready.Length / 2;

    private byte[] RentSegment() => _freeCount > 0 ? _free[--_freeCount]! : ArrayPool<byte>.Shared.Rent(_blockSize);

    private void ReturnSegment(byte[] buffer)
    {
        if (buffer.Length == _blockSize && _freeCount < _free.Length)
        {
            _free[_freeCount++] = buffer;
        }
        else
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void EnqueueReady(byte[] buffer, int count)
    {
        _ready[(_readyHead + _readyCount) % _ready.Length] = new PendingBlock(buffer, count);
        _readyCount++;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFramingKind(RecordKind kind)
        => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Framing records (below SessionStart) are written by the recording itself.");

    // ---------------------------------------------------------------- the writer thread's side

    /// <summary>What the writer thread must do for this writer on this pass.</summary>
    internal readonly record struct DrainWork(bool Close, TaskCompletionSource? Flushed);

    /// <summary>
    /// Moves the blocks to write into <paramref name="blocks"/>: the full ones, and the partial one when the interval
    /// elapsed (<paramref name="tick"/>), a flush was asked or the writer closes.
    /// </summary>
    internal DrainWork TakeBlocks(List<PendingBlock> blocks, bool tick)
    {
        lock (_lock)
        {
            while (_readyCount > 0)
            {
                blocks.Add(_ready[_readyHead]);
                _ready[_readyHead] = default;
                _readyHead = (_readyHead + 1) % _ready.Length;
                _readyCount--;
            }

            bool close = _closeRequested && _state == RecordingWriterState.Closing;
            bool flush = _flushRequested;
            if ((tick || flush || close) && _current is not null && _currentCount > 0)
            {
                blocks.Add(new PendingBlock(_current, _currentCount));
                _current = null;
                _currentCount = 0;
            }

            if (tick && !_appendedSinceTick && blocks.Count == 0)
            {
                // Idle: give the spare segments back, so that idle sessions hold no buffers.
                ReleaseSpareLocked();
            }

            if (tick)
            {
                _appendedSinceTick = false;
            }

            TaskCompletionSource? flushed = null;
            if (flush)
            {
                _flushRequested = false;
                flushed = _flushWaiter;
                _flushWaiter = null;
            }

            return new DrainWork(close, flushed);
        }
    }

    /// <summary>Gives written blocks back and wakes a caller waiting for room.</summary>
    internal void ReleaseBlocks(List<PendingBlock> blocks)
    {
        TaskCompletionSource? room = null;
        lock (_lock)
        {
            foreach (var block in blocks)
            {
                _bufferedBytes -= block.Count;
                ReturnSegment(block.Buffer);
            }

            if (_state == RecordingWriterState.Faulted)
            {
                _bufferedBytes = 0;
            }

            if (_roomWaiter is not null && (HasRoomLocked() || _state != RecordingWriterState.Open))
            {
                room = _roomWaiter;
                _roomWaiter = null;
            }
        }

        room?.TrySetResult();
    }

    /// <summary>Stops recording for good: nothing more is taken, buffered events are dropped, waiters wake.</summary>
    internal void Fail(RecordingFault fault, string detail)
    {
        TaskCompletionSource? room;
        TaskCompletionSource? flush;
        lock (_lock)
        {
            if (_state is RecordingWriterState.Faulted or RecordingWriterState.Closed)
            {
                return;
            }

            _state = RecordingWriterState.Faulted;
            _fault = fault;
            _faultDetail = detail;
            DropBufferedLocked();
            room = _roomWaiter;
            flush = _flushWaiter;
            _roomWaiter = null;
            _flushWaiter = null;
        }

        room?.TrySetResult();
        flush?.TrySetException(new IOException($"The recording of session {SessionId} failed: {detail}"));
        _ = _faulted.CancelAsync();
    }

    /// <summary>Marks the writer closed (after the final seal, or after a fault) and releases everything.</summary>
    internal void Complete()
    {
        TaskCompletionSource? room;
        lock (_lock)
        {
            if (_state != RecordingWriterState.Faulted)
            {
                _state = RecordingWriterState.Closed;
            }

            DropBufferedLocked();
            ReleaseSpareLocked();
            room = _roomWaiter;
            _roomWaiter = null;
        }

        room?.TrySetResult();
        _closed.TrySetResult();
    }

    /// <summary>For the benchmarks: drops what is buffered, as if it had been written, keeping the segments.</summary>
    internal void DiscardBuffered()
    {
        lock (_lock)
        {
            while (_readyCount > 0)
            {
                ReturnSegment(_ready[_readyHead].Buffer);
                _ready[_readyHead] = default;
                _readyHead = (_readyHead + 1) % _ready.Length;
                _readyCount--;
            }

            _currentCount = 0;
            _bufferedBytes = 0;
        }
    }

    private void DropBufferedLocked()
    {
        while (_readyCount > 0)
        {
            ArrayPool<byte>.Shared.Return(_ready[_readyHead].Buffer);
            _ready[_readyHead] = default;
            _readyHead = (_readyHead + 1) % _ready.Length;
            _readyCount--;
        }

        if (_current is not null)
        {
            ArrayPool<byte>.Shared.Return(_current);
            _current = null;
            _currentCount = 0;
        }
    }

    private void ReleaseSpareLocked()
    {
        while (_freeCount > 0)
        {
            ArrayPool<byte>.Shared.Return(_free[--_freeCount]!);
            _free[_freeCount] = null;
        }
    }

    /// <summary>The writer's header record and SessionStart event, written into the first block at creation.</summary>
    internal void WriteStart(ReadOnlySpan<byte> headerPayload, ReadOnlySpan<byte> sessionStart)
    {
        lock (_lock)
        {
            _current = RentSegment();
            int n = RecordingFormat.WriteRecordHeader(_current, RecordKind.Header, RecordDirection.None, 0, headerPayload.Length);
            headerPayload.CopyTo(_current.AsSpan(n));
            _currentCount = n + headerPayload.Length;
            _bufferedBytes = _currentCount;
        }

        if (AppendCore(RecordKind.SessionStart, RecordDirection.None, new SpanPayload(sessionStart)) != RecordingStatus.Recorded)
        {
            // Only a SessionStart larger than half the buffer gets here (attributes beyond reason).
            Fail(RecordingFault.Internal, "the SessionStart record does not fit the buffer");
        }
    }
}

/// <summary>A block waiting for the writer thread: a pooled buffer and how many bytes of records it holds.</summary>
internal readonly record struct PendingBlock(byte[] Buffer, int Count);

/// <summary>A payload that is a span of bytes.</summary>
internal readonly ref struct SpanPayload(ReadOnlySpan<byte> bytes) : IRecordPayload
{
    private readonly ReadOnlySpan<byte> _bytes = bytes;

    public int Length => _bytes.Length;

    public void WriteTo(Span<byte> destination) => _bytes.CopyTo(destination);
}

/// <summary>A payload in several segments.</summary>
internal readonly struct SequencePayload(ReadOnlySequence<byte> bytes) : IRecordPayload
{
    private readonly ReadOnlySequence<byte> _bytes = bytes;

    public int Length => checked((int)_bytes.Length);

    public void WriteTo(Span<byte> destination) => _bytes.CopyTo(destination);
}
