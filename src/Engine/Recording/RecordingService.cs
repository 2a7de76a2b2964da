using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Engine.Recording;

/// <summary>
/// Creates session recordings and writes them: one background thread for all sessions seals, compresses and writes
/// the blocks the sessions' <see cref="RecordingWriter"/>s fill. A writer whose block fills puts itself on a lock-free
/// ready list and wakes the thread; every flush interval the thread also writes the partial blocks of every session,
/// so a killed process loses at most about one interval. Disk I/O happens only on this thread (a dedicated one:
/// file writes block, and the relay's thread pool must never wait on them).
/// </summary>
public sealed class RecordingService : IAsyncDisposable
{
    /// <summary>Frames are written together up to this many bytes: one system call for several blocks.</summary>
    private const int WriteBatchBytes = 1024 * 1024;

    private readonly RecordingOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _registryLock = new();
    private readonly List<RecordingWriter> _writers = [];
    private readonly HashSet<string> _openPaths = new(StringComparer.Ordinal);
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly BlockSealer _sealer;
    private readonly List<PendingBlock> _taken = [];
    private readonly byte[] _emptyBlock = new byte[RecordingFormat.SealReserve];
    private readonly Thread? _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private RecordingWriter[] _snapshot = [];
    private bool _snapshotStale;
    private RecordingWriter? _readyHead;
    private volatile bool _stopping;
    private bool _disposed;

    /// <summary>Starts the writer thread.</summary>
    public RecordingService(RecordingOptions options, ILogger? logger = null, TimeProvider? timeProvider = null)
        : this(options, logger, timeProvider, startThread: true)
    {
    }

    /// <param name="startThread">False for the benchmarks: the caller drives <see cref="DrainPass"/> itself.</param>
    internal RecordingService(RecordingOptions options, ILogger? logger, TimeProvider? timeProvider, bool startThread)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _logger = logger ?? NullLogger.Instance;
        _time = timeProvider ?? TimeProvider.System;
        _sealer = new BlockSealer(options.Key, options.BlockSize, options.CompressionAcceleration);
        if (startThread)
        {
            _thread = new Thread(Run) { IsBackground = true, Name = "Gatehouse recording writer" };
            _thread.Start();
        }
    }

    /// <summary>The settings in force.</summary>
    public RecordingOptions Options => _options;

    /// <summary>Recordings open for writing.</summary>
    public int OpenRecordings
    {
        get
        {
            lock (_registryLock)
            {
                return _writers.Count;
            }
        }
    }

    /// <summary>Whether <paramref name="path"/> is a recording this service is writing (retention must leave it alone).</summary>
    public bool IsOpen(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        lock (_registryLock)
        {
            return _openPaths.Contains(full);
        }
    }

    /// <summary>
    /// Starts recording a session into a new file in <see cref="RecordingOptions.Directory"/>, named by start time and
    /// session id. Creating the file is the only I/O on the caller's thread (once, at session set-up). A failure
    /// does not throw: the writer comes back <see cref="RecordingWriterState.Faulted"/> with the reason, and the caller
    /// refuses the session.
    /// </summary>
    public RecordingWriter Start(RecordingSessionInfo session)
    {
        ArgumentNullException.ThrowIfNull(session);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (string.IsNullOrEmpty(_options.Directory))
        {
            throw new InvalidOperationException("RecordingOptions.Directory is not set.");
        }

        DateTimeOffset start = session.StartTime ?? _time.GetUtcNow();
        string path = System.IO.Path.GetFullPath(System.IO.Path.Combine(_options.Directory, FileName(start, session.SessionId)));
        var writer = new RecordingWriter(this, _options, _time, session.SessionId, path, start);
        FileStream file;
        try
        {
            // CreateNew: a recording is never overwritten. FileShare.Read takes a shared lock, so retention and
            // recovery (which open with FileShare.None) leave the file alone while it is written, in any process.
            file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            string detail = $"cannot create {path}: {ex.GetType().Name}: {ex.Message}";
            writer.Fail(RecordingFault.CreateFailed, detail);
            writer.Complete();
            RecordingLog.WriterFaulted(_logger, session.SessionId, RecordingFault.CreateFailed, detail);
            return writer;
        }

        Register(writer, file, leaveOpen: false, session, start);
        return writer;
    }

    /// <summary>Starts recording a session into a stream the caller owns (tests, benchmarks, other storage).</summary>
    public RecordingWriter Start(RecordingSessionInfo session, Stream destination, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(destination);
        ObjectDisposedException.ThrowIf(_disposed, this);
        DateTimeOffset start = session.StartTime ?? _time.GetUtcNow();
        var writer = new RecordingWriter(this, _options, _time, session.SessionId, path: null, start);
        Register(writer, destination, leaveOpen, session, start);
        return writer;
    }

    /// <summary>How recording files end (docs/recording-format.md, "File name").</summary>
    public const string FileExtension = RecordingFormat.FileExtension;

    /// <summary>The start time at the head of a file name: <c>yyyyMMddTHHmmssZ</c>, then <c>_</c> and the session id.</summary>
    private const string FileNameTime = "yyyyMMdd'T'HHmmss'Z'";

    /// <summary>The file name of a recording: UTC start time, then the session id with anything unusual replaced.</summary>
    public static string FileName(DateTimeOffset start, string sessionId)
    {
        var name = new StringBuilder(sessionId.Length + 32);
        name.Append(start.UtcDateTime.ToString(FileNameTime, System.Globalization.CultureInfo.InvariantCulture)).Append('_');
        foreach (char c in sessionId.AsSpan(0, Math.Min(sessionId.Length, 100)))
        {
            name.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '_');
        }

        return name.Append(RecordingFormat.FileExtension).ToString();
    }

    /// <summary>The start time a recording's file name says (see <see cref="FileName"/>), when it says one.</summary>
    public static DateTimeOffset? StartFromFileName(string path)
    {
        string name = System.IO.Path.GetFileName(path);
        return name.Length >= FileNameTime.Length - 4 && DateTimeOffset.TryParseExact(name[..(FileNameTime.Length - 4)], FileNameTime,
            System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal,
            out var start)
            ? start
            : null;
    }

    /// <summary>
    /// The session id part of a recording's file name (see <see cref="FileName"/>: the id with unusual characters
    /// replaced, at most 100 characters); the whole name, less the extension, when it does not start with a time.
    /// </summary>
    public static string SessionIdFromFileName(string path)
    {
        string name = System.IO.Path.GetFileName(path);
        if (name.EndsWith(FileExtension, StringComparison.Ordinal))
        {
            name = name[..^FileExtension.Length];
        }

        int timeLength = FileNameTime.Length - 4; // the format's four quote characters are not in the name
        return name.Length > timeLength + 1 && name[timeLength] == '_' && StartFromFileName(path) is not null ? name[(timeLength + 1)..] : name;
    }

    private void Register(RecordingWriter writer, Stream output, bool leaveOpen, RecordingSessionInfo session, DateTimeOffset start)
    {
        writer.Output = output;
        writer.LeaveOpen = leaveOpen;
        byte[] header = BuildHeader(session.SessionId, _options.Key.Id, start);
        BlockSealer.ComputeChainSeed(header, writer.Chain.Value);
        writer.WriteStart(header, BuildSessionStart(session, start, _options.GatewayVersion));
        lock (_registryLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _writers.Add(writer);
            if (writer.Path is not null)
            {
                _openPaths.Add(writer.Path);
            }

            _snapshotStale = true;
        }

        RecordingLog.RecordingStarted(_logger, session.SessionId, writer.Path ?? "(stream)");
    }

    /// <summary>The header payload: magic, version, hash id, nonce, start time, session id, key id.</summary>
    internal static byte[] BuildHeader(string sessionId, string keyId, DateTimeOffset start)
    {
        // A session id longer than 255 bytes is cut at a character boundary here; the SessionStart JSON has it whole.
        string headerSessionId = TruncateUtf8(sessionId, 255);
        int sessionLength = Encoding.UTF8.GetByteCount(headerSessionId);
        int keyLength = Encoding.UTF8.GetByteCount(keyId);
        var header = new byte[RecordingFormat.HeaderFixedLength + 1 + sessionLength + 1 + keyLength];
        Span<byte> span = header;
        RecordingFormat.Magic.CopyTo(span);
        span[4] = RecordingFormat.FormatVersion;
        span[5] = RecordingFormat.HashSha256;
        RandomNumberGenerator.Fill(span.Slice(6, RecordingFormat.NonceLength));
        RecordingFormat.WriteUInt64(span[22..], (ulong)((start.UtcTicks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerMicrosecond));
        int offset = RecordingFormat.HeaderFixedLength;
        span[offset++] = (byte)sessionLength;
        offset += Encoding.UTF8.GetBytes(headerSessionId, span[offset..]);
        span[offset++] = (byte)keyLength;
        Encoding.UTF8.GetBytes(keyId, span[offset..]);
        return header;
    }

    private static string TruncateUtf8(string value, int maxBytes)
    {
        int chars = value.Length;
        while (Encoding.UTF8.GetByteCount(value.AsSpan(0, chars)) > maxBytes)
        {
            chars--;
            if (chars > 0 && char.IsHighSurrogate(value[chars - 1]))
            {
                chars--;
            }
        }

        return chars == value.Length ? value : value[..chars];
    }

    /// <summary>The SessionStart event: a JSON object (docs/recording-format.md, "SessionStart").</summary>
    internal static byte[] BuildSessionStart(RecordingSessionInfo session, DateTimeOffset start, string gatewayVersion)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("session_id", session.SessionId);
            json.WriteString("protocol", session.Protocol);
            WriteOptional(json, "identity", session.Identity);
            WriteOptional(json, "connection", session.Connection);
            WriteOptional(json, "client_address", session.ClientAddress);
            json.WriteString("gateway_version", gatewayVersion);
            json.WriteString("start_time", start.ToUniversalTime().ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            if (session.Attributes is { Count: > 0 } attributes)
            {
                json.WriteStartObject("attributes");
                foreach (var (name, value) in attributes)
                {
                    json.WriteString(name, value);
                }

                json.WriteEndObject();
            }

            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteOptional(Utf8JsonWriter json, string name, string? value)
    {
        if (value is not null)
        {
            json.WriteString(name, value);
        }
    }

    /// <summary>Puts a writer on the ready list (once) and wakes the writer thread. Lock-free and allocation-free.</summary>
    internal void Signal(RecordingWriter writer)
    {
        if (Interlocked.Exchange(ref writer.InReadyList, 1) == 0)
        {
            RecordingWriter? head;
            do
            {
                head = Volatile.Read(ref _readyHead);
                writer.NextReady = head;
            }
            while (Interlocked.CompareExchange(ref _readyHead, writer, head) != head);
        }

        _wake.Set();
    }

    private void Run()
    {
        long interval = Math.Max(1, (long)_options.FlushInterval.TotalMilliseconds);
        long nextTick = Environment.TickCount64 + interval;
        try
        {
            while (true)
            {
                long wait = nextTick - Environment.TickCount64;
                if (wait > 0)
                {
                    _wake.Wait((int)Math.Min(wait, int.MaxValue));
                }

                _wake.Reset();
                bool tick = Environment.TickCount64 >= nextTick;
                DrainPass(tick);
                if (tick)
                {
                    nextTick = Environment.TickCount64 + interval;
                }

                if (_stopping && OpenRecordings == 0)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            // Not reached unless DrainPass has a bug: every writer still open is faulted, so no session goes on unrecorded.
            RecordingLog.WriterThreadFailed(_logger, ex);
            foreach (var writer in Snapshot())
            {
                FailWriter(writer, RecordingFault.Internal, $"the recording thread failed: {ex.GetType().Name}");
            }
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    /// <summary>
    /// One pass of the writer thread: the writers on the ready list (full blocks, flushes, closes), then on a tick
    /// every writer's partial block. Single-threaded: only the writer thread (or a benchmark without it) calls it.
    /// </summary>
    internal void DrainPass(bool tick)
    {
        RecordingWriter? ready = Interlocked.Exchange(ref _readyHead, null);
        while (ready is not null)
        {
            RecordingWriter? next = ready.NextReady;
            ready.NextReady = null;
            Volatile.Write(ref ready.InReadyList, 0);
            Drain(ready, tick: false);
            ready = next;
        }

        if (tick)
        {
            foreach (var writer in Snapshot())
            {
                Drain(writer, tick: true);
            }
        }
    }

    private RecordingWriter[] Snapshot()
    {
        lock (_registryLock)
        {
            if (_snapshotStale)
            {
                _snapshot = [.. _writers];
                _snapshotStale = false;
            }

            return _snapshot;
        }
    }

    private void Drain(RecordingWriter writer, bool tick)
    {
        if (writer.Output is null)
        {
            return; // closed already (a stale entry of the ready list or the snapshot)
        }

        var work = writer.TakeBlocks(_taken, tick);
        Exception? failure = null;
        try
        {
            Stream output = writer.Output;
            for (int i = 0; i < _taken.Count; i++)
            {
                bool last = i == _taken.Count - 1;
                var block = _taken[i];
                _sealer.SealBlock(block.Buffer, block.Count, writer.Chain, work.Close && last ? SealFlags.Final : SealFlags.None, writer.ElapsedMicros());
                if (_sealer.PendingBytes >= WriteBatchBytes)
                {
                    _sealer.WritePending(output);
                }
            }

            if (work.Close && _taken.Count == 0)
            {
                // Nothing left to write: the final seal closes an empty block.
                _sealer.SealBlock(_emptyBlock, 0, writer.Chain, SealFlags.Final, writer.ElapsedMicros());
            }

            // The frames of one pass go out in one write (a few, for a pass larger than WriteBatchBytes).
            _sealer.WritePending(output);
            if (_taken.Count > 0 || work.Close)
            {
                output.Flush();
                if ((work.Close || _options.FlushToDisk) && output is FileStream file)
                {
                    file.Flush(flushToDisk: true);
                }
            }
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        finally
        {
            writer.ReleaseBlocks(_taken);
            _taken.Clear();
        }

        if (failure is not null)
        {
            FailWriter(writer, RecordingFault.WriteFailed, $"{failure.GetType().Name}: {failure.Message}");
            work.Flushed?.TrySetException(new IOException($"The recording of session {writer.SessionId} failed.", failure));
            return;
        }

        work.Flushed?.TrySetResult();
        if (work.Close)
        {
            CloseWriter(writer);
            RecordingLog.RecordingSealed(_logger, writer.SessionId, writer.Chain.NextIndex, writer.Chain.FileOffset);
        }
    }

    private void FailWriter(RecordingWriter writer, RecordingFault fault, string detail)
    {
        writer.Fail(fault, detail);
        RecordingLog.WriterFaulted(_logger, writer.SessionId, fault, detail);
        CloseWriter(writer);
    }

    private void CloseWriter(RecordingWriter writer)
    {
        Stream? output = writer.Output;
        writer.Output = null;
        if (output is not null && !writer.LeaveOpen)
        {
            try
            {
                output.Dispose();
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                // The data was flushed or the writer faulted already; nothing is left to lose.
            }
        }

        lock (_registryLock)
        {
            _writers.Remove(writer);
            if (writer.Path is not null)
            {
                _openPaths.Remove(writer.Path);
            }

            _snapshotStale = true;
        }

        writer.Complete();
    }

    /// <summary>Seals and closes every open recording (each writer's final seal), then stops the writer thread.</summary>
    public async ValueTask DisposeAsync()
    {
        RecordingWriter[] open;
        lock (_registryLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            open = [.. _writers];
        }

        if (_thread is not null)
        {
            await Task.WhenAll(open.Select(w => w.DisposeAsync().AsTask())).ConfigureAwait(false);
            _stopping = true;
            _wake.Set();
            await _stopped.Task.ConfigureAwait(false);
        }
        else
        {
            // No thread (benchmarks): close on the caller's thread.
            Task[] closing = [.. open.Select(w => w.DisposeAsync().AsTask())];
            DrainPass(tick: true);
            await Task.WhenAll(closing).ConfigureAwait(false);
        }

        _sealer.Dispose();
        _wake.Dispose();
    }
}
