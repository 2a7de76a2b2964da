using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gatehouse.Engine;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Protocols.Postgres;
using Gatehouse.Protocols.Postgres.Relay;
using Gatehouse.Protocols.Postgres.Wire;
using Microsoft.Extensions.Logging.Abstractions;
using SharpFuzz;

namespace Gatehouse.Fuzz;

/// <summary>
/// The fuzz targets. Each takes any bytes and must return normally: an exception is a finding, either from the code
/// under test or from one of the target's oracles (<see cref="FuzzFindingException"/>: a wrong verdict). The unit
/// tests run the same methods over the seed corpus and mutations of it (tests/Gatehouse.Tests/Fuzz).
/// </summary>
public static class FuzzTargets
{
    // No static state of this class may touch the instrumented assemblies (Gatehouse.Engine, Gatehouse.Protocols,
    // Gatehouse.Policy): under libFuzzer, instrumented code that runs before Fuzzer.LibFuzzer.Run has mapped the
    // coverage memory crashes the process. What the targets share is made on first use, inside a run (see Shared,
    // FuzzPolicies).
    private static long _nextSessionId;

    /// <summary>Every target by name (the name is also the corpus folder: fuzz/corpus/&lt;name&gt;).</summary>
    public static IReadOnlyList<(string Name, ReadOnlySpanAction Run)> All { get; } =
    [
        (nameof(PgFrontendMessages), PgFrontendMessages),
        (nameof(PgBackendMessages), PgBackendMessages),
        (nameof(PgStartupPacket), PgStartupPacket),
        (nameof(PgRelay), PgRelay),
        (nameof(SqlText), SqlText),
        (nameof(PgPolicyGate), PgPolicyGate),
        (nameof(MaskingDetectors), MaskingDetectors),
    ];

    public static ReadOnlySpanAction? Find(string name)
    {
        foreach (var (targetName, run) in All)
        {
            if (string.Equals(targetName, name, StringComparison.OrdinalIgnoreCase))
            {
                return run;
            }
        }

        return null;
    }

    /// <summary>
    /// A stream of frontend messages (Byte1 code, Int32 length, body), each validated with
    /// <see cref="PgMessageValidator.ValidateFrontend"/>. Oracles: the same body split into segments gets the same
    /// verdict and error, the verdict agrees with <see cref="PgReference"/>, and an error is given iff invalid.
    /// A length under 4 ends the stream (the relay refuses that header). A last message whose length runs past the
    /// input is validated with what there is, so that mutations which change a body's size still reach the validator.
    /// </summary>
    public static void PgFrontendMessages(ReadOnlySpan<byte> data) => Messages(data, PeerSide.Client);

    /// <summary>As <see cref="PgFrontendMessages"/>, for backend messages and <see cref="PgMessageValidator.ValidateBackend"/>.</summary>
    public static void PgBackendMessages(ReadOnlySpan<byte> data) => Messages(data, PeerSide.Server);

    /// <summary>
    /// A startup packet as sent on the wire (Int32 length, Int32 protocol version, name/value pairs, NUL); the
    /// handshake reader frames and bounds it, so the length and version are not looked at here and the pairs go to
    /// <see cref="StartupParameters.Parse"/>. Oracles: a refusal carries a SQLSTATE and a message; an acceptance
    /// has a user, and forwards none of the parameters that must never reach the server.
    /// </summary>
    public static void PgStartupPacket(ReadOnlySpan<byte> data)
    {
        if (data.Length < 8)
        {
            return;
        }

        var parameters = StartupParameters.Parse(data[8..]);
        if (parameters.Error is { } error)
        {
            Expect(error.SqlState.Length == 5 && !string.IsNullOrEmpty(error.Message), "a startup refusal without a SQLSTATE or a message");
            return;
        }

        Expect(!string.IsNullOrEmpty(parameters.User), "a startup packet accepted without a user");
        Expect(parameters.Database is null or { Length: > 0 }, "an empty database name was kept");
        foreach (var (name, _) in parameters.Forwarded)
        {
            Expect(!MustNotForward(name), $"the startup parameter \"{name}\" would be forwarded upstream");
        }
    }

    /// <summary>
    /// Frames through the real relay handlers, step by step as <see cref="FrameRelay"/>'s pump does: the header
    /// length from <see cref="IRelayHandler.GetFrameLength"/>, the size limit, <see cref="IRelayHandler.OnFrame"/>,
    /// and <see cref="FrameRelay.Copy"/> into a pipe. Input: a control byte (its two low bits choose how the buffer
    /// is split into segments, see <see cref="Segments.Layout"/>), then records of a direction byte (even: from the
    /// client, odd: from the server) and one frame. Both directions share one <see cref="PgRelayState"/>, so
    /// COPY and request accounting interleave as in a session. Nothing is caught. Oracles: every stop is recorded
    /// on the session with the right reason and side; a frame is stopped iff the validator refuses it; the
    /// handlers' state follows the messages (transaction status, COPY IN, pending requests, FATAL); a forwarded
    /// frame reaches the output byte for byte.
    /// </summary>
    public static void PgRelay(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        var buffer = Segments.Layout(data[1..].ToArray(), data[0], data[0] >> 2);
        var limits = Shared.Limits;
        using var session = new Session(Interlocked.Increment(ref _nextSessionId), "fuzz", Loopback.Transport, limits, NullLogger.Instance);
        var state = new PgRelayState(session, limits.MaxClientMessageSize, limits.MaxServerMessageSize);
        var run = new RelayRun(session, state);
        var frontend = new FrontendRelayHandler(state);
        var backend = new BackendRelayHandler(state);
        try
        {
            while (!buffer.IsEmpty)
            {
                bool fromClient = (FirstByte(buffer) & 1) == 0;
                buffer = buffer.Slice(1);
                bool goOn = fromClient
                    ? run.Step(ref frontend, ref buffer, PeerSide.Client)
                    : run.Step(ref backend, ref buffer, PeerSide.Server);
                if (!goOn)
                {
                    break;
                }
            }
        }
        finally
        {
            run.Complete();
        }
    }

    /// <summary>
    /// A settings byte (bit 0 set: standard_conforming_strings off), then SQL text (up to 64 KiB): the lexer,
    /// splitter, classifier and policy decision, with structural, determinism, metamorphic (comments are
    /// whitespace) and policy oracles. See <see cref="SqlTextFuzz"/>.
    /// </summary>
    public static void SqlText(ReadOnlySpan<byte> data) => SqlTextFuzz.Run(data);

    /// <summary>
    /// A control byte, then client ops and server lag: an extended-query conversation through the relay handlers
    /// and a real policy gate against a model PostgreSQL backend, with safety, exactness and precision oracles.
    /// See <see cref="PgGateConversation"/>.
    /// </summary>
    public static void PgPolicyGate(ReadOnlySpan<byte> data) => PgGateFuzz.Run(data);

    /// <summary>
    /// A control byte, a byte choosing the built-in detector kinds, then a text value: <c>ValueScanner.Scan</c> with
    /// structural, determinism, room, per-kind and reference (no vector prefilter) oracles. See <see cref="DetectorFuzz"/>.
    /// </summary>
    public static void MaskingDetectors(ReadOnlySpan<byte> data) => DetectorFuzz.Run(data);

    /// <summary>How many matches every built-in detector together finds in <paramref name="text"/> (a plain value, no control bytes).</summary>
    public static int MaskingDetectorsMatches(ReadOnlySpan<byte> text) => DetectorFuzz.CountAll(text);

    /// <summary>How PgPolicyGate finding 4 (a held statement's request left pending; fixed) starts its message.</summary>
    public const string PgPolicyGateStaleApproval = PgGateConversation.StaleApproval;

    /// <summary>Runs one <see cref="PgPolicyGate"/> conversation and tells what it did (oracles as in the target).</summary>
    public static PgGateRunStats PgPolicyGateStats(ReadOnlySpan<byte> data) => PgGateConversation.Run(data, null);

    /// <summary>As <see cref="PgPolicyGateStats"/>, writing every message of the conversation to <paramref name="trace"/>.</summary>
    public static PgGateRunStats PgPolicyGateTrace(ReadOnlySpan<byte> data, System.Text.StringBuilder trace) => PgGateConversation.Run(data, trace);

    // ---- Messages -------------------------------------------------------------------------------------------

    private static void Messages(ReadOnlySpan<byte> data, PeerSide from)
    {
        while (data.Length >= 5)
        {
            byte code = data[0];
            int declared = BinaryPrimitives.ReadInt32BigEndian(data[1..]);
            if (declared < 4)
            {
                return;
            }

            int bodyLength = (int)Math.Min(declared - 4L, data.Length - 5L);
            CheckMessage(from, code, data.Slice(5, bodyLength));
            data = data[(5 + bodyLength)..];
        }
    }

    private static void CheckMessage(PeerSide from, byte code, ReadOnlySpan<byte> body)
    {
        var bytes = body.ToArray();
        bool verdict = Validate(from, code, new ReadOnlySequence<byte>(bytes), out string? error);
        Expect(verdict == (error is null), $"{Name(from, code)}: verdict {verdict} with error \"{error}\"", body);

        // The same bytes as a pipe may deliver them: the validator's slow path must agree with its fast path.
        SameVerdict(Segments.Chunks(bytes, bytes.Length <= 4096 ? 1 : 97), "in 1-byte segments");
        SameVerdict(Segments.Layout(bytes, 1, 0), "split in two");
        SameVerdict(Segments.Layout(bytes, 3, 0), "after an empty segment");

        bool reference = from == PeerSide.Client ? PgReference.Frontend(code, body) : PgReference.Backend(code, body);
        Expect(reference == verdict,
            $"{Name(from, code)}: the validator says {(verdict ? "valid" : "invalid")}, the reference reading of the protocol says {(reference ? "valid" : "invalid")}",
            body);

        void SameVerdict(ReadOnlySequence<byte> segmented, string layout)
        {
            bool again = Validate(from, code, segmented, out string? againError);
            Expect(again == verdict && ReferenceEquals(againError, error),
                $"{Name(from, code)}: {(verdict ? "valid" : $"invalid ({error})")} in one segment, {(again ? "valid" : $"invalid ({againError})")} {layout}",
                bytes);
        }
    }

    private static bool Validate(PeerSide from, byte code, in ReadOnlySequence<byte> body, out string? error) =>
        from == PeerSide.Client
            ? PgMessageValidator.ValidateFrontend(code, body, out error)
            : PgMessageValidator.ValidateBackend(code, body, out error);

    private static string Name(PeerSide from, byte code) =>
        $"{(from == PeerSide.Client ? "frontend" : "backend")} message '{(char)code}' (0x{code:X2})";

    // ---- Startup --------------------------------------------------------------------------------------------

    /// <summary>Names PostgreSQL treats specially (exact match, as the server compares) and settings that change who we are.</summary>
    private static bool MustNotForward(string name) =>
        name is "user" or "database" or "options" or "replication"
        || name.StartsWith("_pq_.", StringComparison.Ordinal)
        || name.Equals("role", StringComparison.OrdinalIgnoreCase)
        || name.Equals("session_authorization", StringComparison.OrdinalIgnoreCase)
        || name.Equals("options", StringComparison.OrdinalIgnoreCase)
        || name.Equals("replication", StringComparison.OrdinalIgnoreCase);

    // ---- Relay ----------------------------------------------------------------------------------------------

    private sealed class RelayRun(Session session, PgRelayState state)
    {
        private readonly Pipe _toServer = Pipes.New();
        private readonly Pipe _toClient = Pipes.New();

        /// <summary>One frame from one side; false when that direction (and so the relay) stops.</summary>
        public bool Step<THandler>(ref THandler handler, ref ReadOnlySequence<byte> buffer, PeerSide from)
            where THandler : struct, IRelayHandler
        {
            int headerLength = handler.HeaderLength;
            if (buffer.Length < headerLength)
            {
                return false; // The peer closed in the middle of a header.
            }

            int length = FrameRelay.ReadLength(ref handler, buffer, headerLength);
            if (length < 0)
            {
                Expect(session.EndReason == Violation(from) && session.EndSide == from && session.EndDetail is not null,
                    $"a refused {from} header left the session end at {session.EndReason}/{session.EndSide}");
                return false;
            }

            Expect(length >= headerLength, $"a {from} frame length of {length} (under the header's {headerLength}) would never advance the pump");
            if (length > handler.MaxFrameLength)
            {
                handler.OnFrameTooLarge(length);
                Expect(session.EndReason == SessionEndReason.MessageTooLarge && session.EndSide == from,
                    $"an oversized {from} frame left the session end at {session.EndReason}/{session.EndSide}");
                return false;
            }

            if (buffer.Length < length)
            {
                return false; // The peer closed in the middle of a frame.
            }

            var frame = buffer.Slice(0, length);
            buffer = buffer.Slice(length);
            var bytes = frame.ToArray();
            byte code = bytes[0];
            var body = bytes.AsSpan(5);
            bool valid = Validate(from, code, frame.Slice(5), out _);

            bool copyIn = state.CopyIn;
            int pending = state.PendingSyncs;
            var output = from == PeerSide.Client ? _toServer : _toClient;
            var action = handler.OnFrame(frame, output.Writer);
            if (action is FrameAction.Forward or FrameAction.ForwardThenStop)
            {
                FrameRelay.Copy(frame, output.Writer);
                Expect(Pipes.Drain(output).AsSpan().SequenceEqual(bytes), $"a forwarded {Name(from, code)} was not copied byte for byte", bytes);
            }
            else
            {
                Pipes.Drain(output);
            }

            if (!valid)
            {
                Expect(action == FrameAction.Stop, $"an invalid {Name(from, code)} got {action}", bytes);
                Expect(session.EndReason == Violation(from) && session.EndSide == from && session.EndDetail is not null,
                    $"an invalid {Name(from, code)} was stopped without recording why ({session.EndReason})", bytes);
                return false;
            }

            if (from == PeerSide.Client)
            {
                CheckFrontend(code, action, copyIn, pending, bytes);
            }
            else
            {
                CheckBackend(code, body, action, pending, bytes);
            }

            Expect(state.PendingSyncs >= 0, $"pending requests went negative ({state.PendingSyncs})", bytes);
            return action is FrameAction.Forward or FrameAction.Handled;
        }

        public void Complete()
        {
            Pipes.Complete(_toServer);
            Pipes.Complete(_toClient);
        }

        private void CheckFrontend(byte code, FrameAction action, bool copyIn, int pending, byte[] frame)
        {
            var expected = (FrontendCode)code switch
            {
                FrontendCode.Terminate => FrameAction.ForwardThenStop,
                FrontendCode.CopyData or FrontendCode.CopyDone or FrontendCode.CopyFail => copyIn ? FrameAction.Forward : FrameAction.Handled,
                _ => FrameAction.Forward,
            };
            Expect(action == expected, $"{Name(PeerSide.Client, code)} got {action}, expected {expected} (COPY IN {copyIn})", frame);

            bool request = (FrontendCode)code is FrontendCode.Query or FrontendCode.FunctionCall
                           || ((FrontendCode)code == FrontendCode.Sync && !copyIn);
            Expect(state.PendingSyncs == pending + (request ? 1 : 0),
                $"{Name(PeerSide.Client, code)} moved pending requests from {pending} to {state.PendingSyncs}", frame);

            if ((FrontendCode)code is FrontendCode.CopyDone or FrontendCode.CopyFail)
            {
                Expect(!state.CopyIn, "COPY IN still on after CopyDone/CopyFail", frame);
            }

            if ((FrontendCode)code == FrontendCode.Terminate)
            {
                Expect(session.EndReason == SessionEndReason.ClientTerminated && session.EndSide == PeerSide.Client,
                    $"Terminate left the session end at {session.EndReason}", frame);
            }
        }

        private void CheckBackend(byte code, ReadOnlySpan<byte> body, FrameAction action, int pending, byte[] frame)
        {
            // No drain is requested here, so every valid server message is forwarded.
            Expect(action == FrameAction.Forward, $"{Name(PeerSide.Server, code)} got {action}", frame);
            switch ((BackendCode)code)
            {
                case BackendCode.ReadyForQuery:
                    Expect(state.TransactionStatus == body[0] && !state.CopyIn && state.PendingSyncs == Math.Max(pending - 1, 0),
                        "ReadyForQuery did not update the transaction status, COPY IN or the pending requests", frame);
                    break;
                case BackendCode.CopyInResponse:
                    Expect(state.CopyIn, "CopyInResponse did not turn COPY IN on", frame);
                    break;
                case BackendCode.ErrorResponse:
                    Expect(!state.CopyIn, "ErrorResponse did not end COPY IN", frame);
                    Expect(!IsFatal(body) || state.ServerSentFatal, "a FATAL ErrorResponse was not noticed", frame);
                    break;
            }
        }

        /// <summary>The first severity field ('S' or 'V') is FATAL or PANIC.</summary>
        private static bool IsFatal(ReadOnlySpan<byte> fields)
        {
            while (fields.Length > 0 && fields[0] != 0)
            {
                byte field = fields[0];
                int end = fields[1..].IndexOf((byte)0);
                var value = fields.Slice(1, end);
                if (field is (byte)'S' or (byte)'V')
                {
                    return value.SequenceEqual("FATAL"u8) || value.SequenceEqual("PANIC"u8);
                }

                fields = fields[(end + 2)..];
            }

            return false;
        }

        private static SessionEndReason Violation(PeerSide from) =>
            from == PeerSide.Client ? SessionEndReason.ClientProtocolViolation : SessionEndReason.ServerProtocolViolation;
    }

    private static byte FirstByte(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> one = stackalloc byte[1];
        buffer.Slice(0, 1).CopyTo(one);
        return one[0];
    }

    /// <summary>Made on the first run, after the fuzzer is set up.</summary>
    private static class Shared
    {
        public static readonly GatewayLimits Limits = new();
    }

    // ---- Oracles --------------------------------------------------------------------------------------------

    private static void Expect(bool condition, string finding)
    {
        if (!condition)
        {
            throw new FuzzFindingException(finding);
        }
    }

    private static void Expect(bool condition, string finding, ReadOnlySpan<byte> bytes)
    {
        if (!condition)
        {
            const int Shown = 256;
            string hex = Convert.ToHexString(bytes[..Math.Min(bytes.Length, Shown)]);
            throw new FuzzFindingException($"{finding}; bytes ({bytes.Length}): {hex}{(bytes.Length > Shown ? "..." : "")}");
        }
    }
}
