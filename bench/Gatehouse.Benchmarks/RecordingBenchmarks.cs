using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Gatehouse.Engine.Recording;

namespace Gatehouse.Benchmarks;

/// <summary>
/// Session recording, per event, with 1000 server messages per invocation. <c>rows</c> are bench/pg.sh's big_rows
/// DataRows (217 bytes on average, compressible like real result sets); <c>random</c> are as many random bytes (LZ4
/// gains nothing: the worst case for the writer).
/// <list type="bullet">
/// <item><see cref="Append"/>: the relay's side alone (copy into the session buffer); the buffer is dropped after each
/// invocation as if written. The target is 0 B per event.</item>
/// <item><see cref="TapRelay"/>: what the relay does per server message with recording on: the message copied into
/// the client's pipe through the <see cref="RecordingTap"/>, which records contiguous writes as one chunk at the
/// flush, then the flush (the benchmark reads the pipe dry). The target is 0 B per message.</item>
/// <item><see cref="EndToEndOneCore"/>: everything on one thread: the appends, then the writer thread's work (SHA-256
/// chain, HMAC seal, LZ4 frame, write to a null stream). Event bytes / time = MB/s per core; the target is 500.</item>
/// <item><see cref="FileRecording"/>: a whole 17 MB recording through the real writer thread into a file, appends
/// pausing on <see cref="RecordingStatus.Full"/>, sealed at the end (two threads, wall clock).</item>
/// </list>
/// Measured on the 2-core VM (short job, session 5, frames written around K4os's block compressor at acceleration 3):
/// Append 62 ns, TapRelay 36 ns, both 0 B; EndToEndOneCore 357 ns (random, 608 MB/s) / 275 ns (rows, 790 MB/s);
/// FileRecording 709 ns (random, 306 MB/s) / 350 ns (rows, 620 MB/s). With K4os's frame encoder (session 4):
/// EndToEndOneCore 497 / 285 ns, FileRecording 1330 / 410 ns.
/// </summary>
[MemoryDiagnoser]
public class RecordingBenchmarks : IDisposable
{
    public const int Events = 1000;

    /// <summary>Invocations of the 1000 events per <see cref="FileRecording"/>: about 17 MB of events.</summary>
    private const int FileBatches = 80;

    private static readonly RecordingKey Key = new("bench", Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());

    private byte[][] _payloads = [];
    private RecordingService? _manual;
    private RecordingWriter? _appendWriter;
    private RecordingWriter? _endToEndWriter;
    private RecordingWriter? _tapWriter;
    private RecordingTap? _tap;
    private Pipe? _tapPipe;
    private string _directory = "";

    [Params("rows", "random")]
    public string Payload { get; set; } = "rows";

    /// <summary>Payload bytes per invocation of <see cref="Append"/> and <see cref="EndToEndOneCore"/> (for MB/s).</summary>
    public long BytesPerInvocation => _payloads.Sum(p => (long)p.Length);

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(11);
        _payloads = [.. Enumerable.Range(1, Events).Select(i =>
        {
            byte[] row = PgMaskingBenchmarks.DataRow(i);
            if (Payload == "random")
            {
                random.NextBytes(row);
            }

            return row;
        })];
        // No writer thread: the benchmark itself drains, so that one thread does all the work.
        _manual = new RecordingService(new RecordingOptions { Key = Key, GatewayVersion = "bench" }, null, null, startThread: false);
        _appendWriter = _manual.Start(new RecordingSessionInfo("append", "postgresql"), Stream.Null);
        _endToEndWriter = _manual.Start(new RecordingSessionInfo("end-to-end", "postgresql"), Stream.Null);
        _tapWriter = _manual.Start(new RecordingSessionInfo("tap", "postgresql"), Stream.Null);
        _tapPipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
        _tap = new RecordingTap(_tapPipe.Writer, _tapWriter, RecordKind.ServerMessage, RecordDirection.ServerToClient, RecordingBackpressure.Pause,
            reason => throw new InvalidOperationException(reason), CancellationToken.None);
        _directory = Path.Combine(Path.GetTempPath(), "gatehouse-recording-bench-" + Environment.ProcessId);
        Directory.CreateDirectory(_directory);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _manual?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _manual = null;
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    public void Dispose()
    {
        Cleanup();
        GC.SuppressFinalize(this);
    }

    [Benchmark(OperationsPerInvoke = Events)]
    public int Append()
    {
        var writer = _appendWriter!;
        int recorded = 0;
        foreach (byte[] payload in _payloads)
        {
            recorded += writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, payload) == RecordingStatus.Recorded ? 1 : 0;
        }

        writer.DiscardBuffered();
        return recorded;
    }

    [Benchmark(OperationsPerInvoke = Events)]
    public long TapRelay()
    {
        var tap = _tap!;
        foreach (byte[] payload in _payloads)
        {
            tap.Write(payload);
        }

        var flush = tap.FlushAsync();
        if (!flush.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException("the tap's flush did not complete at once");
        }

        var reader = _tapPipe!.Reader;
        reader.TryRead(out var result);
        long length = result.Buffer.Length;
        reader.AdvanceTo(result.Buffer.End);
        _tapWriter!.DiscardBuffered();
        return length;
    }

    [Benchmark(OperationsPerInvoke = Events)]
    public int EndToEndOneCore()
    {
        var writer = _endToEndWriter!;
        int recorded = 0;
        foreach (byte[] payload in _payloads)
        {
            recorded += writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, payload) == RecordingStatus.Recorded ? 1 : 0;
        }

        _manual!.DrainPass(tick: true);
        return recorded;
    }

    [Benchmark(OperationsPerInvoke = FileBatches * Events)]
    public async Task<long> FileRecording()
    {
        await using var service = new RecordingService(new RecordingOptions { Directory = _directory, Key = Key, GatewayVersion = "bench" });
        var writer = service.Start(new RecordingSessionInfo(Guid.NewGuid().ToString("N"), "postgresql"));
        long written = 0;
        for (int batch = 0; batch < FileBatches; batch++)
        {
            foreach (byte[] payload in _payloads)
            {
                RecordingStatus status;
                while ((status = writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, payload)) == RecordingStatus.Full)
                {
                    await writer.WaitForRoomAsync();
                }

                if (status != RecordingStatus.Recorded)
                {
                    throw new InvalidOperationException($"recording failed: {status} {writer.FaultDetail}");
                }

                written += payload.Length;
            }
        }

        await writer.DisposeAsync();
        File.Delete(writer.Path!);
        return written;
    }
}
