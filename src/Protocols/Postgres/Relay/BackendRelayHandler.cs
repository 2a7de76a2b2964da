using System.Buffers;
using System.IO.Pipelines;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres.Relay;

/// <summary>
/// Server to client: every backend message is validated and forwarded; the state the client direction needs
/// (copy mode, pending requests, transaction status) is tracked here. Masking will rewrite DataRows here.
/// </summary>
internal readonly struct BackendRelayHandler(PgRelayState state) : IRelayHandler
{
    public int HeaderLength => 5;

    public int MaxFrameLength => state.MaxServerMessage;

    public int GetFrameLength(ReadOnlySpan<byte> header) => PgFraming.GetFrameLength(header, state, PeerSide.Server);

    public FrameAction OnFrame(in ReadOnlySequence<byte> frame, PipeWriter output)
    {
        byte code = PgFraming.Code(frame);

        // DataRow dominates result traffic: validate it, mask it when the session masks, and go.
        var masking = state.Masking;
        if (code == (byte)BackendCode.DataRow)
        {
            if (!Validate(code, frame))
            {
                return FrameAction.Stop;
            }

            if (masking?.Rules is null)
            {
                return FrameAction.Forward;
            }

            if (!masking.HasRows)
            {
                state.Gate?.RowsForCurrentRequest();
            }

            return Masked(masking.OnDataRow(frame, output, out string? fault), fault);
        }

        if (!Validate(code, frame))
        {
            return FrameAction.Stop;
        }

        if (masking?.Rules is not null)
        {
            switch ((BackendCode)code)
            {
                case BackendCode.CopyData:
                    return Masked(masking.OnCopyData(frame, output, out string? fault), fault);
                case BackendCode.CopyDone:
                    masking.CopyEnded();
                    break;
                case BackendCode.RowDescription when masking.MustWaitForCatalog(frame):
                    // A table created since the catalog was read: wait for the reload (the relay offers it again).
                    return FrameAction.Hold;
                case BackendCode.NotificationResponse:
                    return masking.OnNotification(frame, output);
                case BackendCode.NoticeResponse:
                    return masking.OnErrorOrNotice(frame, output, state.Gate?.FrontReadsMasked() ?? false);
            }
        }

        if (code == (byte)BackendCode.CopyInResponse)
        {
            // Before the gate looks: a client Sync is then either ignored there or removed by the gate.
            state.CopyInStarted();
        }

        // A FATAL is no answer to a request: the session ends, and the client must see it as it is.
        bool fatal = code == (byte)BackendCode.ErrorResponse && IsFatal(frame);
        if (state.Gate is { } gate && !fatal)
        {
            if (!gate.OnResponse(code, frame, output, out bool replaced))
            {
                state.Session.TrySetEnd(SessionEndReason.ServerProtocolViolation, PeerSide.Server,
                    $"a '{(char)code}' response does not answer the requests in flight");
                return FrameAction.Stop;
            }

            if (replaced)
            {
                // The server's error for a substitute: the gate wrote the policy error instead.
                return FrameAction.Handled;
            }
        }

        switch ((BackendCode)code)
        {
            case BackendCode.ReadyForQuery:
                state.TransactionStatus = frame.Slice(5).FirstSpan[0];
                state.CopyIn = false;
                if (state.ReadyReceived() == 0 && state.Session.IsDraining)
                {
                    // The running work is done: the session ends at this idle point.
                    state.Session.TrySetEnd(SessionEndReason.Drained, PeerSide.Gateway, "gateway shutting down");
                    return FrameAction.ForwardThenStop;
                }

                return FrameAction.Forward;
            case BackendCode.ErrorResponse:
                state.CopyIn = false;
                if (fatal)
                {
                    state.ServerSentFatal = true;
                }

                return masking?.Rules is null ? FrameAction.Forward
                    : masking.OnErrorOrNotice(frame, output, !fatal && state.Gate?.LastErrorReadsMasked == true);
            case BackendCode.ParameterStatus:
                TrackParameter(frame);
                return FrameAction.Forward;
            case BackendCode.CommandComplete when masking is not null && state.Recorder is { } recorder:
                recorder.OnCommandComplete(frame, masking.MaskedValues);
                return FrameAction.Forward;
            default:
                return FrameAction.Forward;
        }
    }

    /// <summary>A masking result: a fault (a row the gateway cannot mask) ends the session, fail closed.</summary>
    private FrameAction Masked(FrameAction action, string? fault)
    {
        if (action == FrameAction.Stop)
        {
            state.Session.TrySetEnd(SessionEndReason.ServerProtocolViolation, PeerSide.Server, "masking: " + fault);
        }

        return action;
    }

    private bool Validate(byte code, in ReadOnlySequence<byte> frame)
    {
        if (PgMessageValidator.ValidateBackend(code, frame.Slice(5), out var error))
        {
            return true;
        }

        state.Violation(PeerSide.Server, error!);
        return false;
    }

    private void TrackParameter(in ReadOnlySequence<byte> frame)
    {
        if (PgParameterStatus.TryReadStandardConformingStrings(frame.Slice(5), out bool on))
        {
            state.StandardConformingStrings = on;
        }
        else if (state.Gate is { } gate && PgParameterStatus.TryReadClientEncoding(frame.Slice(5), out bool safe))
        {
            gate.ClientEncodingSafe = safe;
        }
    }

    /// <summary>Severity field 'V' (or 'S' from pre-9.6 servers) equals FATAL or PANIC.</summary>
    private static bool IsFatal(in ReadOnlySequence<byte> frame)
    {
        var reader = new SequenceReader<byte>(frame.Slice(5));
        while (reader.TryRead(out byte field) && field != 0)
        {
            if (field is (byte)'V' or (byte)'S')
            {
                return reader.IsNext("FATAL\0"u8) || reader.IsNext("PANIC\0"u8);
            }

            reader.TryAdvanceTo(0);
        }

        return false;
    }

    public FrameAction OnWake(PipeWriter output) => FrameAction.Handled;

    public void OnFrameTooLarge(long declaredLength) =>
        state.Session.TrySetEnd(SessionEndReason.MessageTooLarge, PeerSide.Server, "server message over the size limit");
}
