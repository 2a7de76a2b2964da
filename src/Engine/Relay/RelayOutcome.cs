using Gatehouse.Engine.Sessions;

namespace Gatehouse.Engine.Relay;

/// <summary>Why one direction of the relay stopped.</summary>
public enum PumpStop : byte
{
    /// <summary>The sending peer closed its connection.</summary>
    PeerClosed,
    /// <summary>The sending peer closed in the middle of a frame.</summary>
    PeerClosedMidFrame,
    /// <summary>The handler stopped the direction (goodbye, protocol violation, policy).</summary>
    HandlerStopped,
    /// <summary>A frame exceeded the limit.</summary>
    FrameTooLarge,
    /// <summary>The receiving side is gone: writes can no longer be delivered.</summary>
    OutputClosed,
    /// <summary>The relay was told to stop (the other direction ended, or the session was aborted).</summary>
    Cancelled,
    /// <summary>A socket or TLS error.</summary>
    TransportError,

    /// <summary>
    /// Not an outcome: the handler holds a frame (<see cref="FrameAction.Hold"/>), so frame processing pauses at it.
    /// <see cref="FrameRelay.ProcessFrames"/> returns it to its caller; a pump never ends with it.
    /// </summary>
    Held,
}

/// <summary>How a relay ended: which direction stopped first, and why.</summary>
public readonly record struct RelayOutcome(PeerSide From, PumpStop Stop);
