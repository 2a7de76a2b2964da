using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Transport;
using Gatehouse.Protocols.Postgres.Relay;

namespace Gatehouse.Benchmarks;

/// <summary>
/// The relay's per-frame work, as <see cref="FrameRelay"/>'s pump does it for one read: read each frame's length
/// with the handler, let the handler validate and track the frame, copy it into the output pipe; then one flush,
/// and the pipe is emptied for the next invocation. The socket side (reads, flush to the kernel) is left out.
/// <see cref="Segmented"/> splits the read across two segments, in the middle of a frame header, as a read that
/// ended there would deliver it: the header is copied to the stack and one frame straddles the segments.
/// </summary>
[MemoryDiagnoser]
public class PgRelayBenchmarks
{
    /// <summary>RowDescription, 100 DataRows, CommandComplete, ReadyForQuery: a 100-row SELECT.</summary>
    public const int SelectMessages = 103;

    /// <summary>pgbench -S with prepared statements: Bind, Execute, Sync, 32 times.</summary>
    public const int ExtendedMessages = 96;

    /// <summary>32 simple Query messages.</summary>
    public const int SimpleMessages = 32;

    private LoopbackSession? _loopback;
    private PgRelayState? _state;
    private Pipe? _pipe;
    private BackendRelayHandler _backend;
    private FrontendRelayHandler _frontend;
    private ReadOnlySequence<byte> _select;
    private ReadOnlySequence<byte> _extended;
    private ReadOnlySequence<byte> _simple;

    [Params(false, true)]
    public bool Segmented { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _loopback = LoopbackSession.Open();
        var limits = LoopbackSession.Limits;
        _state = new PgRelayState(_loopback.Session, limits.MaxClientMessageSize, limits.MaxServerMessageSize);
        _backend = new BackendRelayHandler(_state);
        _frontend = new FrontendRelayHandler(_state);
        _pipe = new Pipe(TransportOptions.Pipes);

        var rows = Enumerable.Range(1, 100).Select(PgWire.DataRow);
        _select = Prepare(Gatehouse.Fuzz.PgMessages.Concat([PgWire.RowDescription(), .. rows, PgWire.CommandComplete(100), PgWire.ReadyForQuery()]), SelectMessages);
        _extended = Prepare(PgWire.Repeat(32, PgWire.Bind(), PgWire.Execute(), PgWire.Sync()), ExtendedMessages);
        _simple = Prepare(PgWire.Repeat(32, PgWire.Query()), SimpleMessages);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pipe?.Writer.Complete();
        _pipe?.Reader.Complete();
        _loopback?.Dispose();
    }

    [Benchmark(OperationsPerInvoke = SelectMessages)]
    public int BackendSelect100Rows() => Relay(ref _backend, _select);

    [Benchmark(OperationsPerInvoke = ExtendedMessages)]
    public int FrontendPgbenchExtended() => Relay(ref _frontend, _extended);

    [Benchmark(OperationsPerInvoke = SimpleMessages)]
    public int FrontendSimpleQuery() => Relay(ref _frontend, _simple);

    private int Relay<THandler>(ref THandler handler, ReadOnlySequence<byte> buffer)
        where THandler : struct, IRelayHandler => RelayStep.Run(ref handler, buffer, _pipe!);

    /// <summary>The mix as one segment, or split two bytes into the header of the frame nearest the middle.</summary>
    private ReadOnlySequence<byte> Prepare(byte[] bytes, int messages)
    {
        int split = 0;
        for (int at = 0, n = 0; at < bytes.Length; n++)
        {
            if (n == messages / 2)
            {
                split = at + 2;
                break;
            }

            at += 1 + BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at + 1));
        }

        var sequence = PgWire.Sequence(bytes, Segmented ? split : null);
        var copy = sequence;
        int frames = 0;
        Span<byte> header = stackalloc byte[5];
        while (!copy.IsEmpty)
        {
            copy.Slice(0, 5).CopyTo(header);
            copy = copy.Slice(1 + BinaryPrimitives.ReadInt32BigEndian(header[1..]));
            frames++;
        }

        if (frames != messages)
        {
            throw new InvalidOperationException($"the mix holds {frames} messages, not {messages}");
        }

        return sequence;
    }
}
