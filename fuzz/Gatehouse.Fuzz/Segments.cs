using System.Buffers;

namespace Gatehouse.Fuzz;

/// <summary>
/// Multi-segment sequences over one array, as a pipe hands them out after reads that ended mid-message. Parsers
/// that only ever see one segment in tests hide their slow-path bugs until production.
/// </summary>
internal sealed class Segments : ReadOnlySequenceSegment<byte>
{
    private Segments(ReadOnlyMemory<byte> memory, Segments? previous)
    {
        Memory = memory;
        if (previous is not null)
        {
            RunningIndex = previous.RunningIndex + previous.Memory.Length;
            previous.Next = this;
        }
    }

    /// <summary>Splits <paramref name="data"/> after each of the (ascending, in-range) cut offsets.</summary>
    public static ReadOnlySequence<byte> Split(ReadOnlyMemory<byte> data, ReadOnlySpan<int> cuts)
    {
        if (cuts.IsEmpty)
        {
            return new ReadOnlySequence<byte>(data);
        }

        var first = new Segments(data[..cuts[0]], null);
        var last = first;
        for (int i = 1; i < cuts.Length; i++)
        {
            last = new Segments(data[cuts[i - 1]..cuts[i]], last);
        }

        last = new Segments(data[cuts[^1]..], last);
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Chunks of <paramref name="size"/> bytes (the last one shorter).</summary>
    public static ReadOnlySequence<byte> Chunks(ReadOnlyMemory<byte> data, int size)
    {
        var cuts = new List<int>();
        for (int at = size; at < data.Length; at += size)
        {
            cuts.Add(at);
        }

        return Split(data, [.. cuts]);
    }

    /// <summary>
    /// A layout chosen by <paramref name="mode"/>: 0 one segment, 1 two halves, 2 chunks of 1 to 8 bytes,
    /// 3 an empty first segment then chunks of 3 (a pipe whose read head sits at the end of a consumed block).
    /// </summary>
    public static ReadOnlySequence<byte> Layout(ReadOnlyMemory<byte> data, int mode, int seed)
    {
        switch (mode & 3)
        {
            case 0:
                return new ReadOnlySequence<byte>(data);
            case 1:
                return data.Length < 2 ? new ReadOnlySequence<byte>(data) : Split(data, [data.Length / 2]);
            case 2:
            {
                var cuts = new List<int>();
                uint state = (uint)seed | 1;
                for (int at = 0; ;)
                {
                    state = (state * 1103515245) + 12345;
                    at += 1 + (int)((state >> 16) % 8);
                    if (at >= data.Length)
                    {
                        break;
                    }

                    cuts.Add(at);
                }

                return Split(data, [.. cuts]);
            }

            default:
            {
                var cuts = new List<int> { 0 };
                for (int at = 3; at < data.Length; at += 3)
                {
                    cuts.Add(at);
                }

                return Split(data, [.. cuts]);
            }
        }
    }
}
