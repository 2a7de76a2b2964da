using System.Buffers;
using System.IO.Pipelines;

namespace Gatehouse.Engine.Relay;

/// <summary>What the relay does with a frame after the protocol has looked at it.</summary>
public enum FrameAction : byte
{
    /// <summary>Copy the frame, unchanged, to the other side.</summary>
    Forward,
    /// <summary>The handler wrote what should go out instead (or nothing): do not copy the frame.</summary>
    Handled,
    /// <summary>Copy the frame, then stop this direction (a goodbye message).</summary>
    ForwardThenStop,
    /// <summary>Stop this direction now; the handler has recorded why on the session.</summary>
    Stop,

    /// <summary>
    /// Leave this frame, and everything after it, unconsumed: the direction waits (what was written before it is
    /// flushed) until it is woken (<see cref="RelayWaker"/>) or more bytes arrive, then offers the same frame
    /// again. A statement waiting for approval is held this way; messages pipelined behind it stay behind it.
    /// </summary>
    Hold,
}

/// <summary>
/// The protocol's side of one relay direction. The relay is generic over a struct implementing this, so every
/// call is direct (no interface dispatch) on the per-frame path, as Kestrel's parser is over its handler.
/// </summary>
public interface IRelayHandler
{
    /// <summary>How many bytes of a frame's start are needed to know its length.</summary>
    int HeaderLength { get; }

    /// <summary>The largest frame accepted in this direction; checked before anything is buffered.</summary>
    int MaxFrameLength { get; }

    /// <summary>
    /// Reads a frame header and returns the whole frame's length in bytes, header included; or -1 when the
    /// header is invalid (the handler records the fault on the session).
    /// </summary>
    int GetFrameLength(ReadOnlySpan<byte> header);

    /// <summary>Inspects one complete frame and says what to do with it; may write to <paramref name="output"/>.</summary>
    FrameAction OnFrame(in ReadOnlySequence<byte> frame, PipeWriter output);

    /// <summary>
    /// Called when the relay was woken without input (a drain, an injected message, a held frame's decision);
    /// returns <see cref="FrameAction.Handled"/> to go on (a held frame is then offered again) or
    /// <see cref="FrameAction.Stop"/> to end.
    /// </summary>
    FrameAction OnWake(PipeWriter output);

    /// <summary>The frame was larger than <see cref="MaxFrameLength"/> (declared length given).</summary>
    void OnFrameTooLarge(long declaredLength);
}
