using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Gatehouse.Engine.Sessions;
using Gatehouse.Engine.Transport;
using Pipelines.Sockets.Unofficial;

namespace Gatehouse.Engine.Relay;

/// <summary>
/// The relay: two pumps (client to server, server to client). Each reads what its pipe has, slices every
/// complete frame, hands it to the protocol's handler, copies or replaces it, and flushes once per read (not per
/// frame). A partial frame is never consumed; a frame larger than the pipe window is assembled in a pooled
/// buffer so that the pipe's backpressure cannot deadlock on it.
/// </summary>
public static class FrameRelay
{
    /// <summary>
    /// Runs both directions until one stops, then stops the other and returns the first outcome. The session's
    /// <see cref="Session.Aborted"/> token stops both. <paramref name="toClient"/> and <paramref name="toServer"/> stand in
    /// for the connections' outputs when given (a <see cref="Recording.RecordingTap"/> that records what goes out).
    /// </summary>
    public static async Task<RelayOutcome> RunAsync<TClientToServer, TServerToClient>(
        Session session, TClientToServer clientToServer, TServerToClient serverToClient, RelayWaker waker,
        PipeWriter? toClient = null, PipeWriter? toServer = null)
        where TClientToServer : struct, IRelayHandler
        where TServerToClient : struct, IRelayHandler
    {
        var upstream = session.Upstream ?? throw new InvalidOperationException("The upstream connection is not open.");
        var client = session.Client;
        session.Advance(SessionStage.Relaying);
        session.MarkActivity();

        var state = new PumpState(session, waker);
        var clientOutput = toClient ?? client.Output;
        var upstreamOutput = toServer ?? upstream.Output;
        waker.Attach(client.Input, upstream.Input, clientOutput, upstreamOutput);
        using var abortRegistration = session.Aborted.Register(static s => ((PumpState)s!).StopAll(), state);

        // Registered after Attach: a drain requested earlier (during login) fires now and still finds the pipes.
        using var drainRegistration = session.DrainRequested.Register(static w => ((RelayWaker)w!).WakeClientToServer(), waker);

        var up = PumpAsync(client.Input, upstreamOutput, clientToServer, state, PeerSide.Client);
        var down = PumpAsync(upstream.Input, clientOutput, serverToClient, state, PeerSide.Server);

        var first = await Task.WhenAny(up, down).ConfigureAwait(false);
        state.StopAll();
        var outcome = await first.ConfigureAwait(false);
        try
        {
            await Task.WhenAll(up, down).ConfigureAwait(false);
        }
        catch (Exception) when (first.IsCompletedSuccessfully)
        {
            // The second direction's failure is a consequence of the first's stop.
        }

        return outcome;
    }

    internal static async Task<RelayOutcome> PumpAsync<THandler>(
        PipeReader input, PipeWriter output, THandler handler, PumpState state, PeerSide from)
        where THandler : struct, IRelayHandler
    {
        var session = state.Session;
        byte[]? assembly = null;
        int assemblyLength = 0, assembled = 0;
        bool holding = false;
        try
        {
            while (true)
            {
                ReadResult result;
                try
                {
                    result = await input.ReadAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (IsTransportFault(ex))
                {
                    return new RelayOutcome(from, PumpStop.TransportError);
                }

                if (result.IsCanceled)
                {
                    if (state.Stopping)
                    {
                        return new RelayOutcome(from, PumpStop.Cancelled);
                    }

                    // A wake-up: a drain request, a message to inject, or a held frame's decision.
                    var wake = handler.OnWake(output);
                    if (wake == FrameAction.Stop)
                    {
                        input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                        return new RelayOutcome(from, PumpStop.HandlerStopped);
                    }

                    if (!holding)
                    {
                        input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                        if (!await FlushAsync(output).ConfigureAwait(false))
                        {
                            return new RelayOutcome(from, PumpStop.OutputClosed);
                        }

                        continue;
                    }

                    // Offer the held frame again, with what the wake wrote flushed ahead of it below.
                }

                holding = false;

                var buffer = result.Buffer;
                long received = buffer.Length;
                PumpStop? stop = null;
                bool wrote = false;

                try
                {
                    // Finish a frame being assembled outside the pipe.
                    if (assembly is not null)
                    {
                        int take = (int)Math.Min(assemblyLength - assembled, buffer.Length);
                        buffer.Slice(0, take).CopyTo(assembly.AsSpan(assembled));
                        assembled += take;
                        buffer = buffer.Slice(take);
                        if (assembled == assemblyLength)
                        {
                            var frame = new ReadOnlySequence<byte>(assembly, 0, assemblyLength);
                            stop = Dispatch(ref handler, frame, output, ref wrote);
                            if (stop != PumpStop.Held)
                            {
                                ArrayPool<byte>.Shared.Return(assembly);
                                assembly = null;
                            }
                        }
                    }

                    if (stop is null && assembly is null)
                    {
                        stop = ProcessFrames(ref handler, ref buffer, output, ref wrote, out int incomplete);
                        if (stop is null && incomplete > TransportOptions.AssemblyThreshold)
                        {
                            // Sizes were checked from the header, before this buffer is taken.
                            assembly = ArrayPool<byte>.Shared.Rent(incomplete);
                            assemblyLength = incomplete;
                            assembled = (int)buffer.Length;
                            buffer.CopyTo(assembly);
                            buffer = buffer.Slice(buffer.End);
                        }
                    }
                }
                catch (InvalidOperationException) when (state.Stopping)
                {
                    // The output pipe was completed under us by the stop: nothing more to write.
                    return new RelayOutcome(from, PumpStop.Cancelled);
                }
                finally
                {
                    // Consume whole frames only; everything was examined, so the next read waits for more bytes.
                    input.AdvanceTo(buffer.Start, result.Buffer.End);
                }

                if (from == PeerSide.Client)
                {
                    session.BytesFromClient += received - buffer.Length;
                }
                else
                {
                    session.BytesFromServer += received - buffer.Length;
                }

                session.MarkActivity();

                if (stop == PumpStop.Held)
                {
                    // Wait for a wake or more bytes; the held frame (in the pipe, or assembled) is offered again then.
                    holding = true;
                    stop = null;
                }

                if (wrote && !await FlushAsync(output).ConfigureAwait(false))
                {
                    return new RelayOutcome(from, stop ?? PumpStop.OutputClosed);
                }

                if (stop is { } s)
                {
                    return new RelayOutcome(from, s);
                }

                if (result.IsCompleted)
                {
                    // A client that leaves while a frame of it is held did not leave mid-frame: it gave up waiting.
                    return new RelayOutcome(from, (buffer.IsEmpty && assembly is null) || holding ? PumpStop.PeerClosed : PumpStop.PeerClosedMidFrame);
                }
            }
        }
        finally
        {
            if (assembly is not null)
            {
                ArrayPool<byte>.Shared.Return(assembly);
            }
        }
    }

    /// <summary>
    /// The synchronous heart of a pump: slices every complete frame at the start of <paramref name="buffer"/>,
    /// checks its declared length against the limit before anything else, and dispatches it. Advances
    /// <paramref name="buffer"/> past what it consumed. Returns <see cref="PumpStop.Held"/> with the held frame left at
    /// the start of <paramref name="buffer"/>, or why the direction must stop, or null when the
    /// buffer holds no further complete frame; <paramref name="incompleteLength"/> is then the declared length of
    /// the incomplete frame at its start (0 when not even its header is there).
    /// </summary>
    internal static PumpStop? ProcessFrames<THandler>(ref THandler handler, ref ReadOnlySequence<byte> buffer, PipeWriter output,
        ref bool wrote, out int incompleteLength)
        where THandler : struct, IRelayHandler
    {
        incompleteLength = 0;
        int headerLength = handler.HeaderLength;
        while (buffer.Length >= headerLength)
        {
            int length = ReadLength(ref handler, buffer, headerLength);
            if (length < 0)
            {
                return PumpStop.HandlerStopped;
            }

            if (length > handler.MaxFrameLength)
            {
                handler.OnFrameTooLarge(length);
                return PumpStop.FrameTooLarge;
            }

            if (buffer.Length < length)
            {
                incompleteLength = length;
                return null;
            }

            var stop = Dispatch(ref handler, buffer.Slice(0, length), output, ref wrote);
            if (stop == PumpStop.Held)
            {
                return stop; // the held frame stays at the start of the buffer
            }

            buffer = buffer.Slice(length);
            if (stop is not null)
            {
                return stop;
            }
        }

        return null;
    }

    internal static PumpStop? Dispatch<THandler>(ref THandler handler, in ReadOnlySequence<byte> frame, PipeWriter output, ref bool wrote)
        where THandler : struct, IRelayHandler
    {
        switch (handler.OnFrame(frame, output))
        {
            case FrameAction.Forward:
                Copy(frame, output);
                wrote = true;
                return null;
            case FrameAction.Handled:
                wrote = true;
                return null;
            case FrameAction.ForwardThenStop:
                Copy(frame, output);
                wrote = true;
                return PumpStop.HandlerStopped;
            case FrameAction.Hold:
                return PumpStop.Held;
            default:
                return PumpStop.HandlerStopped;
        }
    }

    /// <summary>Reads a frame's length from its header: from the first segment, or copied to the stack when split.</summary>
    internal static int ReadLength<THandler>(ref THandler handler, in ReadOnlySequence<byte> buffer, int headerLength)
        where THandler : struct, IRelayHandler
    {
        var first = buffer.FirstSpan;
        if (first.Length >= headerLength)
        {
            return handler.GetFrameLength(first[..headerLength]);
        }

        // The header straddles two segments: copy it to the stack.
        Span<byte> header = stackalloc byte[16];
        header = header[..headerLength];
        buffer.Slice(0, headerLength).CopyTo(header);
        return handler.GetFrameLength(header);
    }

    /// <summary>Copies a frame into the output pipe without allocating.</summary>
    public static void Copy(in ReadOnlySequence<byte> frame, PipeWriter output)
    {
        if (frame.IsSingleSegment)
        {
            output.Write(frame.FirstSpan);
            return;
        }

        foreach (var segment in frame)
        {
            output.Write(segment.Span);
        }
    }

    private static async ValueTask<bool> FlushAsync(PipeWriter output)
    {
        try
        {
            var flush = await output.FlushAsync().ConfigureAwait(false);
            return !flush.IsCompleted && !flush.IsCanceled;
        }
        catch (Exception ex) when (IsTransportFault(ex) || ex is InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// Flushes what a protocol writes after the relay stopped (a final error, a goodbye), bounded by
    /// <paramref name="timeout"/>. The stop cancels pending flushes, and a cancellation requested while no flush was
    /// pending applies to the next one: that one is retried once, since the bytes are already committed.
    /// Returns false when the peer is gone or did not read in time.
    /// </summary>
    public static async Task<bool> FlushAfterStopAsync(PipeWriter output, TimeSpan timeout)
    {
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            var flush = await output.FlushAsync(cts.Token).ConfigureAwait(false);
            if (flush.IsCanceled)
            {
                flush = await output.FlushAsync(cts.Token).ConfigureAwait(false);
            }

            return !flush.IsCanceled && !flush.IsCompleted;
        }
        catch (Exception ex) when (IsTransportFault(ex) || ex is InvalidOperationException)
        {
            return false;
        }
    }

    internal static bool IsTransportFault(Exception ex) =>
        ex is IOException or SocketException or ObjectDisposedException or ConnectionResetException
            or ConnectionAbortedException or OperationCanceledException;

    /// <summary>What both pumps share: the session, and the stop signal.</summary>
    internal sealed class PumpState(Session session, RelayWaker waker)
    {
        private int _stopping;

        public Session Session { get; } = session;

        public bool Stopping => Volatile.Read(ref _stopping) != 0;

        public void StopAll()
        {
            if (Interlocked.Exchange(ref _stopping, 1) != 0)
            {
                return;
            }

            waker.CancelAll();
        }
    }
}
