using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Gatehouse.Engine;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Policy.Approvals;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;
using Gatehouse.Protocols.Postgres.Policy;
using Gatehouse.Protocols.Postgres.Relay;
using Microsoft.Extensions.Logging.Abstractions;
using static Gatehouse.Fuzz.PgMessages;

namespace Gatehouse.Fuzz;

/// <summary>What one <c>PgPolicyGate</c> conversation did (for the seed checks and campaign reports).</summary>
public sealed record PgGateRunStats(int ClientMessages, int Refused, int PolicyErrors, int ServerMessages, int ReadyForQuery, int SkippedRequests,
    int Held = 0, int Approved = 0);

/// <summary>
/// The <c>PgPolicyGate</c> target: a client conversation through the real <see cref="FrontendRelayHandler"/> and
/// <see cref="BackendRelayHandler"/> with a real <see cref="Protocols.Postgres.Policy.PgPolicyGate"/>, against
/// <see cref="PgModelServer"/>, which reads exactly what the gateway sent upstream and answers as PostgreSQL does.
/// </summary>
/// <remarks>
/// <para>
/// Input: a control byte (bits 0-1: how client messages are cut into segments, bits 2-3: the same for server
/// messages; bit 4: start under the strict policy; bit 5: the server starts with standard_conforming_strings off),
/// bit 6: the non-strict policy is the approval one (writes to t require approval); bit 7: a statement still held
/// at the end is approved, not denied), then ops, one byte each (low nibble: the op, high nibble: its arguments),
/// Parse and Query followed by a text byte. Ops: 0 Parse(statement, text), 1 Bind(portal, statement),
/// 2 Describe(S|P, name), 3 Execute(portal, max rows 0|1), 4 Close(S|P, name), 5 Sync, 6 Flush, 7 Query(text),
/// 8 FunctionCall, 9 reload the policy (argument under 8: strict and non-strict swap; 8 and over: the non-strict
/// one changes between lenient and approval, and comes in force), 10 the server answers up to (high nibble + 1)
/// messages, 11 decide the held (or else the last) approval request (argument bits 0-1: approve, deny, approve as
/// the sender, deny as the sender; bit 2: with a reason), 12 the client cancels (CancelHeld), 13 expire due
/// requests (argument bit 0: after the deadline), 14 wake the client direction (a held frame is offered again),
/// 15 the server answers everything.
/// Statements are "", "s1", "s2"; portals "", "p1"; texts <see cref="PgConversationTexts.All"/>. At the end the
/// client sends Sync and then the probe Query "SELECT 1", each answered in full.
/// </para>
/// <para>
/// Oracles: safety (in <see cref="PgModelServer"/>): nothing the policy in force denies is prepared, bound,
/// executed or run. Exactness: the gate never stops the conversation (no false mismatch, no refused client
/// message); a forwarded message reaches the server byte for byte; the client receives every server message
/// unchanged and in order, except that the server's error for each substitute arrives as one ERROR 42501 in its
/// place; every refused message that the server does not skip yields exactly that one error; the client gets one
/// ReadyForQuery per Sync and per Query or FunctionCall the server did not skip; the probe Query comes through;
/// then the relay counts no request pending (<see cref="PgRelayState.PendingSyncs"/>, what a drain waits for).
/// Precision: a Parse or Query is refused only if the policy denies its text under one of the readings of
/// standard_conforming_strings; a FunctionCall is refused iff the policy denies FunctionCall.
/// </para>
/// <para>
/// Approvals: a frame the gate holds (<see cref="FrameAction.Hold"/>) stays unconsumed with everything after it, and
/// is offered again, as the pump does, on a wake or when the client sends more. Oracles: a held frame writes nothing
/// upstream and nothing behind it is offered until it is decided; the first Hold of a frame submits exactly one
/// request (for the sender, the connection and the rule; an identical statement sent again gets a new one), a
/// re-offer none, and a frame is held again only while its request is pending; a decision, expiry or cancel of the
/// held request wakes the client direction; the sender's own approval is refused (SelfApprovalRefused), a request
/// is decided once, and expiry comes only after the deadline. Under the policy it was held by, an approved frame is
/// forwarded (and read by the server exactly once), a denied or expired one is refused with 42501 and a cancelled
/// one with 57014; the server never binds or runs a text that requires approval unless forwarded on an approved
/// request.
/// </para>
/// </remarks>
internal sealed class PgGateConversation : IDisposable
{
    public const int MaxOps = 4096;

    /// <summary>The start of finding 4's message (PgPolicyGateFindingsTests; fixed, kept so a regression is named).</summary>
    public const string StaleApproval = "STALE-APPROVAL";

    private static readonly TimeSpan ApprovalTimeout = TimeSpan.FromMinutes(15);

    private static readonly string[] StatementNames = ["", "s1", "s2"];
    private static readonly string[] PortalNames = ["", "p1"];
    private static long s_sessions;

    private readonly Session _session;
    private readonly PgRelayState _state;
    private readonly PgPolicyGate _gate;
    private readonly FrontendRelayHandler _frontend;
    private readonly BackendRelayHandler _backend;
    private readonly Pipe _toServer = Pipes.New();
    private readonly Pipe _toClient = Pipes.New();
    private readonly PolicyStore _store;
    private readonly PgModelServer _server;
    // What the client must receive: the server's message, or (a SQLSTATE: "" for 42501 or 57014) the policy error in its place.
    private readonly Queue<(byte[] Frame, string? PolicyError)> _expected = new();
    private readonly StringBuilder? _trace;
    private readonly int _clientLayout;
    private readonly int _serverLayout;
    private readonly bool _approveAtEnd;
    private readonly ManualClock _clock = new();
    private readonly InMemoryApprovalBroker _broker;
    private readonly RelayWaker _waker = new();
    private readonly WakeProbe _wakeProbe = new();
    private readonly Queue<ClientFrame> _unconsumed = new();
    private readonly List<ApprovalRequest> _submitted = [];
    private readonly Dictionary<string, int> _approvedForwarded = new(StringComparer.Ordinal);
    private PolicySnapshot _base;
    private ApprovalRequest? _heldRequest;
    private SessionPolicy? _heldPolicy;
    private int _held;
    private int _cut;
    private int _clientMessages;
    private int _refused;
    private int _policyErrors;
    private int _serverMessages;
    private int _readyForQuery;
    private int _requests;

    private PgGateConversation(byte control, StringBuilder? trace)
    {
        _trace = trace;
        _clientLayout = control & 3;
        _serverLayout = (control >> 2) & 3;
        bool strict = (control & 0x10) != 0;
        bool scs = (control & 0x20) == 0;
        _approveAtEnd = (control & 0x80) != 0;
        _base = (control & 0x40) != 0 ? FuzzPolicies.GateApproval : FuzzPolicies.GateLenient;
        _store = new PolicyStore(strict ? FuzzPolicies.GateStrict : _base);
        _broker = new InMemoryApprovalBroker(_clock);
        _broker.Submitted += request => _submitted.Add(request);
        var limits = new GatewayLimits();
        _session = new Session(Interlocked.Increment(ref s_sessions), "fuzz", Loopback.Transport, limits, NullLogger.Instance);
        _state = new PgRelayState(_session, limits.MaxClientMessageSize, limits.MaxServerMessageSize) { StandardConformingStrings = scs };
        _waker.Attach(_wakeProbe, _wakeProbe, NullPipeWriter.Instance, NullPipeWriter.Instance);
        _gate = new PgPolicyGate(_store, CurrentPolicy(), FuzzPolicies.Identity, [], FuzzPolicies.Connection, _state,
            _broker, _waker, ApprovalTimeout, null);
        _state.Gate = _gate;
        _frontend = new FrontendRelayHandler(_state);
        _backend = new BackendRelayHandler(_state);
        _server = new PgModelServer(scs, FromServer, Trace);
        Trace($"start: policy {_store.Current.Source}, standard_conforming_strings {(scs ? "on" : "off")}, layouts {_clientLayout}/{_serverLayout}");
    }

    public static PgGateRunStats Run(ReadOnlySpan<byte> data, StringBuilder? trace)
    {
        if (data.IsEmpty)
        {
            return new PgGateRunStats(0, 0, 0, 0, 0, 0);
        }

        using var conversation = new PgGateConversation(data[0], trace);
        return conversation.Play(data[1..]);
    }

    private PgGateRunStats Play(ReadOnlySpan<byte> ops)
    {
        int count = 0;
        while (!ops.IsEmpty && count++ < MaxOps)
        {
            byte op = ops[0];
            byte argument = (byte)(op >> 4);
            ops = ops[1..];
            switch (op & 0xF)
            {
                case 0:
                    Parse(StatementNames[argument % 3], NextText(ref ops));
                    break;
                case 1:
                    Send(Bind(PortalNames[argument & 1], StatementNames[(argument >> 1) % 3], [], [], []),
                        $"Bind(\"{PortalNames[argument & 1]}\", \"{StatementNames[(argument >> 1) % 3]}\")");
                    break;
                case 2:
                {
                    (char kind, string name) = Target(argument);
                    Send(Describe(kind, name), $"Describe({kind}, \"{name}\")");
                    break;
                }

                case 3:
                {
                    string portal = PortalNames[argument & 1];
                    int maxRows = (argument >> 1) & 1;
                    Send(Execute(portal, maxRows), $"Execute(\"{portal}\", {maxRows})");
                    break;
                }

                case 4:
                {
                    (char kind, string name) = Target(argument);
                    Send(Close(kind, name), $"Close({kind}, \"{name}\")");
                    break;
                }

                case 5:
                    Sync();
                    break;
                case 6:
                    Send(Flush(), "Flush");
                    break;
                case 7:
                    Query(NextText(ref ops));
                    break;
                case 8:
                    FunctionCall();
                    break;
                case 9:
                    Reload(argument);
                    break;
                case 11:
                    DecideHeld(argument);
                    break;
                case 12:
                    CancelHeld();
                    break;
                case 13:
                    Expire((argument & 1) != 0);
                    break;
                case 14:
                    Wake();
                    break;
                case 15:
                    Answer(int.MaxValue);
                    break;
                default:
                    Answer(argument + 1);
                    break;
            }
        }

        // A statement still held is decided (the client would otherwise wait for good), then the client syncs and
        // waits, then the probe: the gate must still be in step with the server.
        ReleaseHeld();
        Sync();
        Answer(int.MaxValue);
        int refusedBefore = _refused;
        Query(PgConversationTexts.Select1);
        Expect(_refused == refusedBefore, "the probe Query \"SELECT 1\" was refused");
        Answer(int.MaxValue);

        Expect(_unconsumed.Count == 0 && _heldRequest is null, $"{_unconsumed.Count} client messages were never relayed (held: {_heldRequest?.Id})");
        Expect(_expected.Count == 0, $"{_expected.Count} server messages never reached the client");
        foreach (var (id, forwarded) in _approvedForwarded)
        {
            int read = _server.ApprovedReceived.GetValueOrDefault(id);
            Expect(forwarded == 1 && read == 1, $"the statement approved by request {id} was forwarded {forwarded} times and read by the server {read} times, not once");
        }

        Expect(_server.ApprovedReceived.Count == _approvedForwarded.Count, "the server read a message on an approval the harness never saw forwarded");
        Expect(_readyForQuery == _requests - _server.SkippedRequests,
            $"the client got {_readyForQuery} ReadyForQuery for {_requests} Syncs, Queries and FunctionCalls, of which the server skipped {_server.SkippedRequests}");
        Expect(_state.PendingSyncs == 0,
            $"the relay counts {_state.PendingSyncs} requests pending with nothing in flight (the server skipped {_server.SkippedRequests} Queries and FunctionCalls)");
        Expect(_policyErrors == _server.SubstitutesRejected,
            $"the client got {_policyErrors} policy errors for {_server.SubstitutesRejected} substitutes the server rejected ({_refused} refused)");
        return new PgGateRunStats(_clientMessages, _refused, _policyErrors, _serverMessages, _readyForQuery, _server.SkippedRequests,
            _held, _approvedForwarded.Count);
    }

    private static string NextText(ref ReadOnlySpan<byte> ops)
    {
        if (ops.IsEmpty)
        {
            return PgConversationTexts.All[0];
        }

        string text = PgConversationTexts.All[ops[0] % PgConversationTexts.All.Length];
        ops = ops[1..];
        return text;
    }

    private static (char Kind, string Name) Target(byte argument) =>
        (argument & 1) == 0 ? ('S', StatementNames[(argument >> 1) % 3]) : ('P', PortalNames[(argument >> 1) & 1]);

    // ---- Client -------------------------------------------------------------------------------------------

    private const string Approver = "bob";

    private bool _refusedByDecision;

    private void Parse(string name, string text) =>
        Send(PgMessages.Parse(name, text), $"Parse(\"{name}\", \"{text}\")", (refused, policy) =>
        {
            if (refused && !_refusedByDecision)
            {
                Justified(policy, text, "Parse");
            }
        });

    private void Query(string text)
    {
        _requests++;
        Send(PgMessages.Query(text), $"Query(\"{text}\")", (refused, policy) =>
        {
            if (refused && !_refusedByDecision)
            {
                Justified(policy, text, "Query");
            }
        });
    }

    private void Sync()
    {
        _requests++;
        Send(PgMessages.Sync(), "Sync");
    }

    private void FunctionCall()
    {
        _requests++;
        Send(PgMessages.FunctionCall(1598, [], [], 0), "FunctionCall", (refused, policy) =>
            Expect(refused == !policy.DecideFunctionCall().IsAllowed,
                $"a FunctionCall was {(refused ? "refused" : "forwarded")} under the policy {policy.Snapshot.Source}, which {(refused ? "allows" : "denies")} it"));
    }

    private void Reload(byte argument)
    {
        if (argument >= 8)
        {
            _base = ReferenceEquals(_base, FuzzPolicies.GateLenient) ? FuzzPolicies.GateApproval : FuzzPolicies.GateLenient;
        }

        var next = argument < 8 && !ReferenceEquals(_store.Current, FuzzPolicies.GateStrict) ? FuzzPolicies.GateStrict : _base;
        _store.Swap(next);
        Trace($"reload: policy {next.Source}");
    }

    /// <summary>A refused Parse or Query text must be denied under one reading of standard_conforming_strings.</summary>
    private void Justified(SessionPolicy policy, string text, string what)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        Expect(!policy.Decide(bytes, new SqlLexSettings(true)).IsAllowed || !policy.Decide(bytes, new SqlLexSettings(false)).IsAllowed,
            $"a {what} of \"{text}\" was refused, but the policy {policy.Snapshot.Source} allows it under both readings");
    }

    /// <summary>
    /// The client sends one message: it joins the bytes the client direction has not consumed, and the pump offers
    /// what it can (the held frame first, if there is one: more bytes arrived).
    /// </summary>
    private void Send(byte[] frame, string what, Action<bool, SessionPolicy>? after = null)
    {
        _clientMessages++;
        _unconsumed.Enqueue(new ClientFrame(frame, what, after));
        Pump();
    }

    /// <summary>As the pump: offers the unconsumed frames in order, and stops at one the gate holds.</summary>
    private void Pump()
    {
        while (_unconsumed.Count > 0 && Offer(_unconsumed.Peek()))
        {
            _unconsumed.Dequeue();
        }
    }

    /// <summary>One offer of a client frame to the frontend handler; false when the gate held it (it stays unconsumed).</summary>
    private bool Offer(ClientFrame message)
    {
        var (frame, what, after) = message;
        var policy = CurrentPolicy();
        var heldBefore = _heldRequest;
        var stateBefore = heldBefore is null ? ApprovalState.Pending : _broker.Find(heldBefore.Id)!.State;
        int submittedBefore = _submitted.Count;
        var statesBefore = States();

        var sequence = Layout(frame, _clientLayout);
        var action = _frontend.OnFrame(sequence, _toServer.Writer);
        if (action == FrameAction.Forward)
        {
            FrameRelay.Copy(sequence, _toServer.Writer);
        }

        var upstream = Pipes.Drain(_toServer);
        Expect(action is FrameAction.Forward or FrameAction.Handled or FrameAction.Hold,
            $"the client's {what} got {action} ({_session.EndReason}: {_session.EndDetail})");
        // Only one change is allowed: the held frame decided without its request (the policy was reloaded, or the
        // Parse in flight for its Bind came back) withdraws that request, so it cannot stand in for a later statement.
        var statesAfter = States().Take(statesBefore.Length).ToArray();
        int heldIndex = heldBefore is null ? -1 : _submitted.IndexOf(heldBefore);
        for (int i = 0; i < statesBefore.Length; i++)
        {
            bool withdrawnByDecision = i == heldIndex && action != FrameAction.Hold && statesBefore[i] == ApprovalState.Pending
                                       && statesAfter[i] == ApprovalState.Withdrawn;
            Expect(statesAfter[i] == statesBefore[i] || withdrawnByDecision,
                $"offering the client's {what} changed the state of approval request {_submitted[i].Id} from {statesBefore[i]} to {statesAfter[i]}");
        }


        if (action == FrameAction.Hold)
        {
            Expect(upstream.Length == 0, $"the held {what} wrote {upstream.Length} bytes upstream");
            if (heldBefore is null)
            {
                Expect(_submitted.Count == submittedBefore + 1,
                    $"the gate held the client's {what} on {_submitted.Count - submittedBefore} new approval requests, not one"
                    + (_submitted.Count == submittedBefore && submittedBefore > 0 ? $" (an old request, {_submitted[^1].Id}, stands for it)" : ""));
                var request = _submitted[^1];
                Expect(_broker.Find(request.Id)?.State == ApprovalState.Pending, $"the new approval request for {what} is not pending");
                Expect(request.Identity == FuzzPolicies.Identity && request.Connection == FuzzPolicies.Connection && request.SessionId == _session.Id
                       && request.Rule == FuzzPolicies.ApprovalRule && request.ExpiresAt - request.RequestedAt == ApprovalTimeout,
                    $"the approval request for {what} is wrong: {request}");
                // A Query shows its text; a Bind (no parameters here) the text of the last Parse of its name, which is
                // the one the server binds if it binds at all (a failed Parse makes the server skip to Sync).
                Expect(frame[0] == (byte)'Q' ? request.Statement == Encoding.UTF8.GetString(frame.AsSpan(5, frame.Length - 6))
                                             : PgConversationTexts.All.Contains(request.Statement),
                    $"the approval request for {what} shows \"{request.Statement}\"");
                _heldRequest = request;
                _heldPolicy = policy;
                _held++;
                Trace($"C> {what} HELD (request {request.Id})");
            }
            else
            {
                Expect(_submitted.Count == submittedBefore, $"the held {what}, offered again, submitted another approval request");
                Expect(stateBefore == ApprovalState.Pending, $"the held {what} was held again after its request was {stateBefore}");
                Trace($"C> {what} still held");
            }

            return false;
        }

        Expect(_submitted.Count == submittedBefore, $"an approval request was submitted for the client's {what}, which was not held");
        bool refused = action == FrameAction.Handled;
        string? approvalId = null;
        string? errorCode = "42501";
        if (heldBefore is not null)
        {
            // The held frame, decided: the gate must have used its request (and let go of it), and done what the
            // request's state says: forwarded once approved (unless the verdict turned to deny), refused with 42501
            // when denied or expired, with 57014 when cancelled; a request still pending is withdrawn when the
            // frame's verdict no longer requires approval (finding 4, fixed: it used to stand in for a later one).
            bool samePolicy = ReferenceEquals(policy.Snapshot, _heldPolicy!.Snapshot);
            _heldRequest = null;
            _heldPolicy = null;
            Expect(GateHeld(_gate) is null,
                $"{StaleApproval}: the held {what} was {(refused ? "refused" : "forwarded")} ({(samePolicy ? "same policy" : "the policy changed")}) without "
                + $"using its request {heldBefore.Id} ({stateBefore}), which the gate still keeps as its held ticket: the next statement that requires "
                + "approval is decided by that request (no new request; run without approval if it is approved, 57014 if it was cancelled)");
            if (stateBefore == ApprovalState.Pending)
            {
                // Decided by a verdict that no longer requires approval: the request is withdrawn, the policy decides.
                Expect(_broker.Find(heldBefore.Id)!.State == ApprovalState.Withdrawn,
                    $"{StaleApproval}: the held {what} was decided without its request {heldBefore.Id}, which is still pending");
            }
            else
            {
                // Approved is allowed once, unless the verdict turned to deny since (the stricter side wins): a reload,
                // or for a Bind the answer to a Parse in flight (its statement may now be unknown).
                Expect(refused == (stateBefore != ApprovalState.Approved) || (refused && (!samePolicy || frame[0] == (byte)'B')),
                    $"the held {what} was {(refused ? "refused" : "forwarded")}, but its request {heldBefore.Id} is {stateBefore}");
                if (!refused)
                {
                    approvalId = heldBefore.Id;
                    _approvedForwarded[approvalId] = _approvedForwarded.GetValueOrDefault(approvalId) + 1;
                }

                errorCode = stateBefore == ApprovalState.Withdrawn ? "57014" : "42501";
            }
        }
        else
        {
            Expect(GateHeld(_gate) is null, $"{StaleApproval}: the gate keeps a held ticket after deciding the client's {what}, which was not held");
        }

        Trace($"C> {what}{(refused ? " REFUSED" : "")}{(heldBefore is null ? "" : $" (request {heldBefore.Id} {stateBefore})")}");
        if (refused)
        {
            _refused++;
            var frames = Pipes.Frames(upstream);
            Expect(frames.Count == 1 && !frames[0].AsSpan().SequenceEqual(frame),
                $"the refused {what} was replaced by {frames.Count} messages upstream, not by one substitute");
            _server.Receive(new PgModelServer.Upstream(frames[0], policy, true, what, null, errorCode));
        }
        else
        {
            Expect(upstream.AsSpan().SequenceEqual(frame), $"the forwarded {what} did not reach the server byte for byte");
            _server.Receive(new PgModelServer.Upstream(frame, policy, false, what, approvalId));
        }

        // A person's "no" (denied, expired, cancelled) refuses the held frame whatever the policy says by now.
        _refusedByDecision = refused && heldBefore is not null && stateBefore is ApprovalState.Denied or ApprovalState.Expired or ApprovalState.Withdrawn;
        after?.Invoke(refused, policy);
        return true;
    }

    // ---- Approvals ----------------------------------------------------------------------------------------

    [System.Runtime.CompilerServices.UnsafeAccessor(System.Runtime.CompilerServices.UnsafeAccessorKind.Field, Name = "_held")]
    private static extern ref ApprovalTicket? GateHeld(PgPolicyGate gate);

    private ApprovalState[] States() => [.. _submitted.Select(r => _broker.Find(r.Id)!.State)];

    /// <summary>An approver decides the held request (or else the last one): approve, deny, or the sender tries to.</summary>
    private void DecideHeld(byte argument)
    {
        var request = _heldRequest ?? (_submitted.Count > 0 ? _submitted[^1] : null);
        if (request is null)
        {
            return;
        }

        bool approve = (argument & 1) == 0;
        string approver = (argument & 2) == 0 ? Approver : FuzzPolicies.Identity;
        Decide(request, approver, approve, (argument & 4) != 0 ? "fuzz says so" : null);
    }

    private void Decide(ApprovalRequest request, string approver, bool approve, string? reason)
    {
        var before = States();
        var state = _broker.Find(request.Id)!.State;
        _wakeProbe.Woken = false;
        var result = _broker.Decide(request.Id, approver, approve, reason);
        var after = _broker.Find(request.Id)!.State;
        Trace($"{approver} {(approve ? "approves" : "denies")} {request.Id} ({state}): {result}, now {after}");
        var expected = approver == request.Identity ? ApprovalDecisionResult.SelfApprovalRefused
            : state == ApprovalState.Pending ? ApprovalDecisionResult.Done : ApprovalDecisionResult.NotPending;
        Expect(result == expected, $"{approver} deciding request {request.Id} ({state}) got {result}, not {expected}");
        var expectedState = result == ApprovalDecisionResult.Done ? (approve ? ApprovalState.Approved : ApprovalState.Denied) : state;
        Expect(after == expectedState, $"request {request.Id} is {after} after {approver}'s decision ({result}), not {expectedState}");
        Expect(Changed(before, request) , $"{approver}'s decision of {request.Id} changed another request");
        Woken(request, state, after);
    }

    /// <summary>The client cancels (a CancelRequest): the held statement's request is withdrawn, nothing else changes.</summary>
    private void CancelHeld()
    {
        var before = States();
        var state = _heldRequest is null ? ApprovalState.Pending : _broker.Find(_heldRequest.Id)!.State;
        _wakeProbe.Woken = false;
        _gate.CancelHeld();
        Trace($"client cancels{(_heldRequest is null ? " (nothing held)" : $" {_heldRequest.Id} ({state})")}");
        if (_heldRequest is null)
        {
            Expect(States().SequenceEqual(before), "a cancel with no statement held changed an approval request");
            return;
        }

        var after = _broker.Find(_heldRequest.Id)!.State;
        var expected = state == ApprovalState.Pending ? ApprovalState.Withdrawn : state;
        Expect(after == expected, $"the held request {_heldRequest.Id} is {after} after a cancel, not {expected}");
        Expect(Changed(before, _heldRequest), $"the cancel changed a request other than the held {_heldRequest.Id}");
        Woken(_heldRequest, state, after);
    }

    /// <summary>The broker's expiry sweep, now or after the deadline of every request.</summary>
    private void Expire(bool afterDeadline)
    {
        var before = States();
        _wakeProbe.Woken = false;
        _clock.Offset = afterDeadline ? ApprovalTimeout + TimeSpan.FromMinutes(1) : TimeSpan.Zero;
        _broker.ExpireDue();
        _clock.Offset = TimeSpan.Zero;
        var after = States();
        Trace($"expiry sweep {(afterDeadline ? "after" : "before")} the deadline");
        for (int i = 0; i < after.Length; i++)
        {
            var expected = afterDeadline && before[i] == ApprovalState.Pending ? ApprovalState.Expired : before[i];
            Expect(after[i] == expected, $"request {_submitted[i].Id} is {after[i]} after an expiry sweep {(afterDeadline ? "after" : "before")} its deadline, not {expected}");
        }

        if (_heldRequest is not null)
        {
            Woken(_heldRequest, before[_submitted.IndexOf(_heldRequest)], _broker.Find(_heldRequest.Id)!.State);
        }
    }

    /// <summary>At the end: every statement still held is decided (approved iff control bit 7) and offered again.</summary>
    private void ReleaseHeld()
    {
        for (int round = 0; _heldRequest is not null && round <= MaxOps; round++)
        {
            if (_broker.Find(_heldRequest.Id)!.State == ApprovalState.Pending)
            {
                Decide(_heldRequest, Approver, _approveAtEnd, null);
            }

            Wake();
        }
    }

    /// <summary>The client direction is woken (without input): the pump calls OnWake and offers the held frame again.</summary>
    private void Wake()
    {
        Trace("wake");
        var action = _frontend.OnWake(_toServer.Writer);
        Expect(action == FrameAction.Handled, $"OnWake returned {action}");
        Expect(Pipes.Drain(_toServer).Length == 0, "OnWake wrote upstream");
        Pump();
    }

    private bool Changed(ApprovalState[] before, ApprovalRequest only)
    {
        var after = States();
        for (int i = 0; i < after.Length; i++)
        {
            if (after[i] != before[i] && !ReferenceEquals(_submitted[i], only))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A decision of the held statement's request wakes the client direction (which then offers it again).</summary>
    private void Woken(ApprovalRequest request, ApprovalState before, ApprovalState after)
    {
        if (ReferenceEquals(request, _heldRequest) && before == ApprovalState.Pending && after != ApprovalState.Pending)
        {
            Expect(_wakeProbe.Woken, $"the held request {request.Id} became {after}, but the client direction was not woken");
        }
    }

    // ---- Server -------------------------------------------------------------------------------------------

    private void Answer(int count)
    {
        if (_server.Pending > 0)
        {
            Trace($"server answers {(count == int.MaxValue ? "all" : count.ToString(System.Globalization.CultureInfo.InvariantCulture))} of {_server.Pending}");
            _server.Answer(count);
        }
    }

    /// <summary>One server message through the backend handler to the client, checked against what must arrive.</summary>
    private void FromServer(byte[] frame, PgModelServer.Upstream answers)
    {
        _serverMessages++;
        bool policyError = answers.Substitute && frame[0] == (byte)'E';
        _expected.Enqueue((frame, policyError ? answers.PolicyErrorCode ?? "" : null));
        var sequence = Layout(frame, _serverLayout);
        var action = _backend.OnFrame(sequence, _toClient.Writer);
        if (action == FrameAction.Forward)
        {
            FrameRelay.Copy(sequence, _toClient.Writer);
        }

        Trace($"S> {Show(frame)}{(action == FrameAction.Handled ? " (replaced)" : "")}");
        Expect(action is FrameAction.Forward or FrameAction.Handled,
            $"the gate stopped the session at the server's {Show(frame)}: {_session.EndReason} ({_session.EndDetail})");

        foreach (var received in Pipes.Frames(Pipes.Drain(_toClient)))
        {
            Expect(_expected.Count > 0, $"the client got {Show(received)}, which the server did not send");
            var (sent, replaced) = _expected.Dequeue();
            if (replaced is not null)
            {
                Expect(IsPolicyError(received, replaced),
                    $"the server's error for a substitute reached the client as {Show(received)}, not as ERROR {(replaced.Length == 0 ? "42501 or 57014" : replaced)}");
                _policyErrors++;
            }
            else
            {
                Expect(received.AsSpan().SequenceEqual(sent), $"the client got {Show(received)} where the server sent {Show(sent)}");
            }

            if (received[0] == (byte)'Z')
            {
                _readyForQuery++;
            }
        }

        Expect(_expected.Count == 0, $"the server's {Show(frame)} did not reach the client");
    }

    private static bool IsPolicyError(byte[] frame, string sqlState)
    {
        if (frame[0] != (byte)'E')
        {
            return false;
        }

        string? severity = null;
        string? code = null;
        string? message = null;
        var fields = frame.AsSpan(5);
        while (fields.Length > 0 && fields[0] != 0)
        {
            int end = fields[1..].IndexOf((byte)0);
            string value = Encoding.UTF8.GetString(fields.Slice(1, end));
            switch ((char)fields[0])
            {
                case 'V':
                    severity = value;
                    break;
                case 'C':
                    code = value;
                    break;
                case 'M':
                    message = value;
                    break;
            }

            fields = fields[(end + 2)..];
        }

        return severity == "ERROR" && (sqlState.Length == 0 ? code is "42501" or "57014" : code == sqlState) && !string.IsNullOrEmpty(message);
    }

    // ---- Helpers ------------------------------------------------------------------------------------------

    private SessionPolicy CurrentPolicy() => FuzzPolicies.ResolveGate(_store.Current);

    /// <summary>Client and server messages cut as a pipe may hand them out (never with an empty first segment).</summary>
    private ReadOnlySequence<byte> Layout(byte[] frame, int mode) => mode switch
    {
        0 => new ReadOnlySequence<byte>(frame),
        1 => Segments.Layout(frame, 1, 0),
        2 => Segments.Layout(frame, 2, ++_cut),
        _ => Segments.Chunks(frame, 1),
    };

    private static string Show(byte[] frame)
    {
        string name = (char)frame[0] switch
        {
            '1' => "ParseComplete",
            '2' => "BindComplete",
            '3' => "CloseComplete",
            't' => "ParameterDescription",
            'T' => "RowDescription",
            'n' => "NoData",
            'D' => "DataRow",
            'C' => "CommandComplete",
            'I' => "EmptyQueryResponse",
            's' => "PortalSuspended",
            'E' => "ErrorResponse",
            'Z' => "ReadyForQuery",
            'S' => "ParameterStatus",
            'V' => "FunctionCallResponse",
            _ => $"'{(char)frame[0]}'",
        };
        if (frame[0] is (byte)'E' or (byte)'C' or (byte)'S')
        {
            var printable = Encoding.UTF8.GetString(frame.AsSpan(5)).Replace('\0', '|');
            return $"{name}({printable.TrimEnd('|')})";
        }

        return name;
    }

    private void Trace(string line) => _trace?.AppendLine(line);

    private void Expect(bool condition, string finding)
    {
        if (!condition)
        {
            throw new FuzzFindingException(finding);
        }
    }

    public void Dispose()
    {
        _gate.Dispose();
        _broker.Dispose();
        Pipes.Complete(_toServer);
        Pipes.Complete(_toClient);
        _session.Dispose();
    }
}

/// <summary>A client message and the check to run once the gate has decided it (refused, the policy it was decided under).</summary>
internal sealed record ClientFrame(byte[] Frame, string What, Action<bool, SessionPolicy>? After);

/// <summary>The approval broker's clock: the real time plus an offset the harness sets; its expiry timer never fires.</summary>
internal sealed class ManualClock : TimeProvider
{
    public TimeSpan Offset { get; set; }

    public override DateTimeOffset GetUtcNow() => DateTimeOffset.UtcNow + Offset;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) => new Never();

    private sealed class Never : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => true;

        public void Dispose()
        {
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>Stands in for the relay's input pipes so that the harness sees the gate's <see cref="RelayWaker"/> wake the client direction.</summary>
internal sealed class WakeProbe : PipeReader
{
    public bool Woken { get; set; }

    public override void CancelPendingRead() => Woken = true;

    public override void AdvanceTo(SequencePosition consumed)
    {
    }

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
    }

    public override void Complete(Exception? exception = null)
    {
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public override bool TryRead(out ReadResult result) => throw new NotSupportedException();
}

/// <summary>A writer nothing is written to (the waker's outputs, which only a stop touches).</summary>
internal sealed class NullPipeWriter : PipeWriter
{
    public static readonly NullPipeWriter Instance = new();

    public override void Advance(int bytes) => throw new NotSupportedException();

    public override void CancelPendingFlush()
    {
    }

    public override void Complete(Exception? exception = null)
    {
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public override Memory<byte> GetMemory(int sizeHint = 0) => throw new NotSupportedException();

    public override Span<byte> GetSpan(int sizeHint = 0) => throw new NotSupportedException();
}

/// <summary>Runs a conversation; on a finding, runs it again with a trace of every message, for the report.</summary>
internal static class PgGateFuzz
{
    public static void Run(ReadOnlySpan<byte> data)
    {
        try
        {
            PgGateConversation.Run(data, null);
        }
        catch (FuzzFindingException finding)
        {
            var trace = new StringBuilder();
            try
            {
                PgGateConversation.Run(data, trace);
            }
            catch (FuzzFindingException)
            {
            }

            throw new FuzzFindingException($"{finding.Message}{Environment.NewLine}conversation:{Environment.NewLine}{trace}", finding);
        }
    }
}
