using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;

namespace Gatehouse.Fuzz;

/// <summary>Unbounded inline pipes standing in for the relay's sockets, read back at once.</summary>
internal static class Pipes
{
    public static Pipe New() => new(new PipeOptions(
        readerScheduler: PipeScheduler.Inline,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0,
        resumeWriterThreshold: 0,
        useSynchronizationContext: false));

    /// <summary>Flushes the writer and takes everything written so far.</summary>
    public static byte[] Drain(Pipe pipe)
    {
        var flush = pipe.Writer.FlushAsync();
        if (!flush.IsCompletedSuccessfully)
        {
            throw new FuzzFindingException("a flush into an unbounded pipe did not complete at once");
        }

        _ = flush.Result;
        if (!pipe.Reader.TryRead(out var result))
        {
            return [];
        }

        var written = result.Buffer.ToArray();
        pipe.Reader.AdvanceTo(result.Buffer.End);
        return written;
    }

    public static void Complete(Pipe pipe)
    {
        pipe.Writer.Complete();
        pipe.Reader.Complete();
    }

    /// <summary>Whole protocol messages (Byte1 code, Int32 length, body) in order; a torn tail is an error.</summary>
    public static List<byte[]> Frames(byte[] bytes)
    {
        var frames = new List<byte[]>();
        int at = 0;
        while (at < bytes.Length)
        {
            if (bytes.Length - at < 5)
            {
                throw new FuzzFindingException($"a torn message header in the pipe: {Convert.ToHexString(bytes.AsSpan(at))}");
            }

            int length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at + 1));
            if (length < 4 || length > bytes.Length - at - 1)
            {
                throw new FuzzFindingException($"a torn message in the pipe (length {length}, {bytes.Length - at - 1} bytes left)");
            }

            frames.Add(bytes.AsSpan(at, 1 + length).ToArray());
            at += 1 + length;
        }

        return frames;
    }
}
