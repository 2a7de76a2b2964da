using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Protocols.Postgres.Policy;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres.Relay;

/// <summary>
/// Client to server: every frontend message is framed, validated against its format and the session state, and
/// forwarded. With a policy, every Query, Parse, Bind and FunctionCall is decided by the session's
/// <see cref="PgPolicyGate"/>, which also tracks every request so that its response can be matched.
/// </summary>
internal readonly struct FrontendRelayHandler(PgRelayState state) : IRelayHandler
{
    public int HeaderLength => 5;

    public int MaxFrameLength => state.MaxClientMessage;

    public int GetFrameLength(ReadOnlySpan<byte> header) => PgFraming.GetFrameLength(header, state, PeerSide.Client);

    public FrameAction OnFrame(in ReadOnlySequence<byte> frame, PipeWriter output)
    {
        byte code = PgFraming.Code(frame);
        var body = frame.Slice(5);
        if (!PgMessageValidator.ValidateFrontend(code, body, out var error))
        {
            state.Violation(PeerSide.Client, error!);
            return FrameAction.Stop;
        }

        var gate = state.Gate;
        if (state.Recorder is { } recorder && gate?.IsHolding != true)
        {
            // Recorded before it is decided or forwarded (a held frame offered again was recorded the first time).
            recorder.OnClientMessage(code, frame, state.StandardConformingStrings, decidedByPolicy: gate is not null);
        }

        switch ((FrontendCode)code)
        {
            case FrontendCode.Sync when gate is not null:
                if (gate.OnSync())
                {
                    state.SyncSent();
                }

                return FrameAction.Forward;
            case FrontendCode.Sync when state.CopyIn:
                // The server ignores Sync during COPY IN; it gets no ReadyForQuery of its own.
                return FrameAction.Forward;
            case FrontendCode.Sync:
                state.SyncSent();
                return FrameAction.Forward;
            case FrontendCode.Query when gate is not null:
                // The gate counts the request, unless the server will skip it.
                state.ExecuteSent();
                return gate.OnQuery(body, output);
            case FrontendCode.Query:
                state.ExecuteSent();
                state.RequestSent();
                return FrameAction.Forward;
            case FrontendCode.Parse:
                return gate?.OnParse(body, output) ?? FrameAction.Forward;
            case FrontendCode.Bind:
                return gate?.OnBind(body, output) ?? FrameAction.Forward;
            case FrontendCode.Describe:
                gate?.OnDescribe(body);
                return FrameAction.Forward;
            case FrontendCode.Close:
                gate?.OnClose(body);
                return FrameAction.Forward;
            case FrontendCode.Execute:
                state.ExecuteSent();
                gate?.OnExecute(body, output);
                return FrameAction.Forward;
            case FrontendCode.FunctionCall when gate is not null:
                return gate.OnFunctionCall(output);
            case FrontendCode.FunctionCall:
                state.RequestSent();
                return FrameAction.Forward;
            case FrontendCode.Terminate:
                state.Session.TrySetEnd(SessionEndReason.ClientTerminated, PeerSide.Client);
                return FrameAction.ForwardThenStop;
            case FrontendCode.CopyData:
                // Outside COPY IN the server ignores copy messages (a COPY that failed while the client was still
                // sending); dropping them here does the same without spending upstream bandwidth.
                return state.CopyIn ? FrameAction.Forward : FrameAction.Handled;
            case FrontendCode.CopyDone:
            case FrontendCode.CopyFail:
                if (!state.CopyIn)
                {
                    return FrameAction.Handled;
                }

                state.CopyIn = false;
                return FrameAction.Forward;
            default:
                return FrameAction.Forward;
        }
    }

    public FrameAction OnWake(PipeWriter output)
    {
        // Woken by a drain: end now if nothing is running; otherwise the server direction ends the session
        // at the ReadyForQuery that finishes the running work.
        if (state.Session.IsDraining && state.PendingSyncs == 0)
        {
            state.Session.TrySetEnd(SessionEndReason.Drained, PeerSide.Gateway, "gateway shutting down");
            return FrameAction.Stop;
        }

        return FrameAction.Handled;
    }

    public void OnFrameTooLarge(long declaredLength) =>
        state.Session.TrySetEnd(SessionEndReason.MessageTooLarge, PeerSide.Client, "client message over the size limit");
}

/// <summary>Framing shared by both directions: Byte1 code, Int32 length counting itself (PostgreSQL docs 55.7).</summary>
internal static class PgFraming
{
    public static int GetFrameLength(ReadOnlySpan<byte> header, PgRelayState state, PeerSide side)
    {
        int length = BinaryPrimitives.ReadInt32BigEndian(header[1..]);
        if (length < 4)
        {
            state.Violation(side, "message length below 4");
            return -1;
        }

        // Report an oversized frame through MaxFrameLength, without overflowing.
        return length == int.MaxValue ? int.MaxValue : length + 1;
    }

    public static byte Code(in ReadOnlySequence<byte> frame) => frame.FirstSpan[0];
}
