namespace Gatehouse.Engine.Recording;

/// <summary>What a session does when its recording cannot keep up (the disk is slower than the session) or fails.</summary>
public enum RecordingBackpressure : byte
{
    /// <summary>The session waits until the recording has room again; it never runs ahead of its recording.</summary>
    Pause,

    /// <summary>The session ends at once.</summary>
    EndSession,
}
