using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Tests.Support;

namespace Gatehouse.Tests.Engine;

/// <summary>
/// <see cref="FrameAction.Hold"/> through the engine's real pump: a held frame and everything behind it stay
/// unconsumed and unforwarded until the handler lets it go after a wake, then go out once, in order.
/// </summary>
public sealed class FrameRelayHoldTests
{
    [Fact]
    public async Task A_held_frame_and_the_frames_behind_it_wait_for_a_wake_then_go_out_once_in_order()
    {
        var handler = new HoldingHandler(holdTag: (byte)'B');
        var (input, output, pump) = Start(handler);

        await input.Writer.WriteAsync(Concat(Frame('A', 10), Frame('B', 10), Frame('C', 10)));
        Assert.Equal("A", await ReadTagsAsync(output, expected: 1));
        await Task.Delay(100);

        // More bytes while held: the held frame is offered again and held again; nothing passes it.
        await input.Writer.WriteAsync(Frame('D', 10));
        await WaitForAsync(() => handler.Offers('B') >= 2);
        Assert.False(output.Reader.TryRead(out var early) && !early.Buffer.IsEmpty);

        handler.Release();
        input.Reader.CancelPendingRead(); // the wake

        Assert.Equal("BCD", await ReadTagsAsync(output, expected: 3));
        await input.Writer.CompleteAsync();
        Assert.Equal(PumpStop.PeerClosed, (await pump).Stop);
        Assert.Equal(1, handler.Forwarded('B'));
    }

    [Fact]
    public async Task A_held_frame_larger_than_the_assembly_threshold_is_kept_whole_and_forwarded_once()
    {
        var handler = new HoldingHandler(holdTag: (byte)'B');
        var (input, output, pump) = Start(handler);
        var big = Frame('B', 300 * 1024);

        await input.Writer.WriteAsync(Concat(Frame('A', 10), big.AsMemory(0, 100 * 1024).ToArray()));
        Assert.Equal("A", await ReadTagsAsync(output, expected: 1));
        await input.Writer.WriteAsync(Concat(big.AsMemory(100 * 1024).ToArray(), Frame('C', 10)));
        await WaitForAsync(() => handler.Offers('B') >= 1);
        await Task.Delay(100);

        handler.Release();
        input.Reader.CancelPendingRead();

        var received = await ReadBytesAsync(output, big.Length + 10);
        Assert.Equal(big, received.AsSpan(0, big.Length).ToArray());
        Assert.Equal((byte)'C', received[big.Length]);
        await input.Writer.CompleteAsync();
        Assert.Equal(PumpStop.PeerClosed, (await pump).Stop);
        Assert.Equal(1, handler.Forwarded('B'));
    }

    [Fact]
    public async Task A_client_that_leaves_while_held_closed_normally()
    {
        var handler = new HoldingHandler(holdTag: (byte)'B');
        var (input, output, pump) = Start(handler);

        await input.Writer.WriteAsync(Concat(Frame('A', 10), Frame('B', 10)));
        Assert.Equal("A", await ReadTagsAsync(output, expected: 1));
        await input.Writer.CompleteAsync();

        Assert.Equal(PumpStop.PeerClosed, (await pump).Stop);
        Assert.Equal(0, handler.Forwarded('B'));
    }

    private static (Pipe Input, Pipe Output, Task<RelayOutcome> Pump) Start(HoldingHandler handler)
    {
        var session = TestSessions.Create();
        var input = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        var output = new Pipe(new PipeOptions(pauseWriterThreshold: 0));
        var pump = Task.Run(() => FrameRelay.PumpAsync(input.Reader, output.Writer, handler, new FrameRelay.PumpState(session, new RelayWaker()), PeerSide.Client));
        return (input, output, pump);
    }

    /// <summary>A frame: tag byte, Int32 length of the whole frame, then filler.</summary>
    private static byte[] Frame(char tag, int length)
    {
        var frame = new byte[length];
        frame[0] = (byte)tag;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), length);
        for (int i = 5; i < length; i++)
        {
            frame[i] = (byte)(i * 31);
        }

        return frame;
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    private static async Task<string> ReadTagsAsync(Pipe output, int expected)
    {
        var tags = new List<char>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (tags.Count < expected)
        {
            var read = await output.Reader.ReadAsync(cts.Token);
            var buffer = read.Buffer;
            while (buffer.Length >= 5)
            {
                var header = buffer.Slice(0, 5).ToArray();
                int length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
                if (buffer.Length < length)
                {
                    break;
                }

                tags.Add((char)header[0]);
                buffer = buffer.Slice(length);
            }

            output.Reader.AdvanceTo(buffer.Start, read.Buffer.End);
        }

        return new string([.. tags]);
    }

    private static async Task<byte[]> ReadBytesAsync(Pipe output, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var read = await output.Reader.ReadAsync(cts.Token);
            if (read.Buffer.Length >= count)
            {
                var bytes = read.Buffer.Slice(0, count).ToArray();
                output.Reader.AdvanceTo(read.Buffer.GetPosition(count));
                return bytes;
            }

            output.Reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(10);
        }
    }

    /// <summary>Forwards every frame, except that the frame with the hold tag is held until released.</summary>
    private sealed class HoldingHandlerState(byte holdTag)
    {
        public readonly byte HoldTag = holdTag;
        public readonly Dictionary<char, int> Offered = [];
        public readonly Dictionary<char, int> ForwardedCount = [];
        public volatile bool Released;
    }

    private readonly struct HoldingHandler(byte holdTag) : IRelayHandler
    {
        private readonly HoldingHandlerState _state = new(holdTag);

        public int HeaderLength => 5;

        public int MaxFrameLength => 1 << 20;

        public int GetFrameLength(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadInt32BigEndian(header[1..]);

        public FrameAction OnFrame(in ReadOnlySequence<byte> frame, PipeWriter output)
        {
            char tag = (char)frame.FirstSpan[0];
            lock (_state)
            {
                _state.Offered[tag] = _state.Offered.GetValueOrDefault(tag) + 1;
                if (frame.FirstSpan[0] == _state.HoldTag && !_state.Released)
                {
                    return FrameAction.Hold;
                }

                _state.ForwardedCount[tag] = _state.ForwardedCount.GetValueOrDefault(tag) + 1;
                return FrameAction.Forward;
            }
        }

        public FrameAction OnWake(PipeWriter output) => FrameAction.Handled;

        public void OnFrameTooLarge(long declaredLength)
        {
        }

        public void Release() => _state.Released = true;

        public int Offers(char tag)
        {
            lock (_state)
            {
                return _state.Offered.GetValueOrDefault(tag);
            }
        }

        public int Forwarded(char tag)
        {
            lock (_state)
            {
                return _state.ForwardedCount.GetValueOrDefault(tag);
            }
        }
    }
}
