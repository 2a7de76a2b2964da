namespace Gatehouse.Engine.Recording;

/// <summary>What <see cref="RecordingWriter.Append(RecordKind, RecordDirection, ReadOnlySpan{byte})"/> did with an event.</summary>
public enum RecordingStatus : byte
{
    /// <summary>Buffered; it will be written within the flush interval.</summary>
    Recorded = 0,

    /// <summary>
    /// Not recorded: the session's buffer is full (the disk is slower than the session). The caller pauses the
    /// session (<see cref="RecordingWriter.WaitForRoomAsync"/>) and appends again, or ends it: a session never
    /// continues unrecorded.
    /// </summary>
    Full = 1,

    /// <summary>Not recorded: the event is larger than half the buffer (<see cref="RecordingOptions.MaxBufferedBytes"/>).</summary>
    TooLarge = 2,

    /// <summary>Not recorded: the writer was closed.</summary>
    Closed = 3,

    /// <summary>Not recorded: writing failed (<see cref="RecordingWriter.Fault"/> says why); the session must end.</summary>
    Faulted = 4,
}

/// <summary>Where a <see cref="RecordingWriter"/> is in its life.</summary>
public enum RecordingWriterState
{
    /// <summary>Taking events.</summary>
    Open,

    /// <summary>Disposal started: the last blocks and the final seal are being written.</summary>
    Closing,

    /// <summary>Sealed and closed.</summary>
    Closed,

    /// <summary>Writing failed; nothing more is recorded. See <see cref="RecordingWriter.Fault"/>.</summary>
    Faulted,
}

/// <summary>Why a writer faulted.</summary>
public enum RecordingFault
{
    /// <summary>Not faulted.</summary>
    None,

    /// <summary>The recording file could not be created (missing or read-only directory, file exists, no space).</summary>
    CreateFailed,

    /// <summary>Writing or flushing the file failed (disk full, I/O error, stream closed).</summary>
    WriteFailed,

    /// <summary>The recording service was stopped before the writer was closed, and could not seal it.</summary>
    ServiceStopped,

    /// <summary>A bug in the writer; the detail has the exception type.</summary>
    Internal,
}
