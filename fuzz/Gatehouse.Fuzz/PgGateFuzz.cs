using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Gatehouse.Engine;
using Gatehouse.Engine.Relay;
using Gatehouse.Engine.Sessions;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;
using Gatehouse.Protocols.Postgres.Policy;
using Gatehouse.Protocols.Postgres.Relay;
using Microsoft.Extensions.Logging.Abstractions;
using static Gatehouse.Fuzz.PgMessages;

namespace Gatehouse.Fuzz;

/// <summary>What one <c>PgPolicyGate</c> conversation did (for the seed checks and campaign reports).</summary>
public sealed record PgGateRunStats(int ClientMessages, int Refused, int PolicyErrors, int ServerMessages, int ReadyForQuery, int SkippedRequests);

/// <summary>
/// The <c>PgPolicyGate</c> target: a client conversation through the real <see cref="FrontendRelayHandler"/> and
/// <see cref="BackendRelayHandler"/> with a real <see cref="Protocols.Postgres.Policy.PgPolicyGate"/>, against
/// <see cref="PgModelServer"/>, which reads exactly what the gateway sent upstream and answers as PostgreSQL does.
/// </summary>
/// <remarks>
/// <para>
/// Input: a control byte (bits 0-1: how client messages are cut into segments, bits 2-3: the same for server
/// messages; bit 4: start under the strict policy; bit 5: the server starts with standard_conforming_strings off),
/// then ops, one byte each (low nibble: the op, high nibble: its arguments), Parse and Query followed by a text
/// byte. Ops: 0 Parse(statement, text), 1 Bind(portal, statement), 2 Describe(S|P, name), 3 Execute(portal, max
/// rows 0|1), 4 Close(S|P, name), 5 Sync, 6 Flush, 7 Query(text), 8 FunctionCall, 9 reload the policy (lenient
/// and strict swap), 10-14 the server answers up to (high nibble + 1) messages, 15 the server answers everything.
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
/// </remarks>
internal sealed class PgGateConversation : IDisposable
{
    public const int MaxOps = 4096;

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
    private readonly Queue<(byte[] Frame, bool PolicyError)> _expected = new();
    private readonly StringBuilder? _trace;
    private readonly int _clientLayout;
    private readonly int _serverLayout;
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
        _store = new PolicyStore(strict ? FuzzPolicies.GateStrict : FuzzPolicies.GateLenient);
        var limits = new GatewayLimits();
        _session = new Session(Interlocked.Increment(ref s_sessions), "fuzz", Loopback.Transport, limits, NullLogger.Instance);
        _state = new PgRelayState(_session, limits.MaxClientMessageSize, limits.MaxServerMessageSize) { StandardConformingStrings = scs };
        _gate = new PgPolicyGate(_store, CurrentPolicy(), FuzzPolicies.Identity, [], FuzzPolicies.Connection, _state);
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
                    Reload();
                    break;
                case 15:
                    Answer(int.MaxValue);
                    break;
                default:
                    Answer(argument + 1);
                    break;
            }
        }

        // The client syncs and waits, then the probe: the gate must still be in step with the server.
        Sync();
        Answer(int.MaxValue);
        int refusedBefore = _refused;
        Query(PgConversationTexts.Select1);
        Expect(_refused == refusedBefore, "the probe Query \"SELECT 1\" was refused");
        Answer(int.MaxValue);

        Expect(_expected.Count == 0, $"{_expected.Count} server messages never reached the client");
        Expect(_readyForQuery == _requests - _server.SkippedRequests,
            $"the client got {_readyForQuery} ReadyForQuery for {_requests} Syncs, Queries and FunctionCalls, of which the server skipped {_server.SkippedRequests}");
        Expect(_state.PendingSyncs == 0,
            $"the relay counts {_state.PendingSyncs} requests pending with nothing in flight (the server skipped {_server.SkippedRequests} Queries and FunctionCalls)");
        Expect(_policyErrors == _server.SubstitutesRejected,
            $"the client got {_policyErrors} policy errors for {_server.SubstitutesRejected} substitutes the server rejected ({_refused} refused)");
        return new PgGateRunStats(_clientMessages, _refused, _policyErrors, _serverMessages, _readyForQuery, _server.SkippedRequests);
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

    private void Parse(string name, string text)
    {
        bool refused = Send(PgMessages.Parse(name, text), $"Parse(\"{name}\", \"{text}\")");
        if (refused)
        {
            Justified(text, "Parse");
        }
    }

    private void Query(string text)
    {
        _requests++;
        bool refused = Send(PgMessages.Query(text), $"Query(\"{text}\")");
        if (refused)
        {
            Justified(text, "Query");
        }
    }

    private void Sync()
    {
        _requests++;
        Send(PgMessages.Sync(), "Sync");
    }

    private void FunctionCall()
    {
        _requests++;
        var policy = CurrentPolicy();
        bool refused = Send(PgMessages.FunctionCall(1598, [], [], 0), "FunctionCall");
        Expect(refused == !policy.DecideFunctionCall().IsAllowed,
            $"a FunctionCall was {(refused ? "refused" : "forwarded")} under the policy {policy.Snapshot.Source}, which {(refused ? "allows" : "denies")} it");
    }

    private void Reload()
    {
        var next = ReferenceEquals(_store.Current, FuzzPolicies.GateStrict) ? FuzzPolicies.GateLenient : FuzzPolicies.GateStrict;
        _store.Swap(next);
        Trace($"reload: policy {next.Source}");
    }

    /// <summary>A refused Parse or Query text must be denied under one reading of standard_conforming_strings.</summary>
    private void Justified(string text, string what)
    {
        var policy = CurrentPolicy();
        var bytes = Encoding.UTF8.GetBytes(text);
        Expect(!policy.Decide(bytes, new SqlLexSettings(true)).IsAllowed || !policy.Decide(bytes, new SqlLexSettings(false)).IsAllowed,
            $"a {what} of \"{text}\" was refused, but the policy {policy.Snapshot.Source} allows it under both readings");
    }

    /// <summary>One client message through the frontend handler; true when the gate refused it (sent a substitute).</summary>
    private bool Send(byte[] frame, string what)
    {
        _clientMessages++;
        var policy = CurrentPolicy();
        var sequence = Layout(frame, _clientLayout);
        var action = _frontend.OnFrame(sequence, _toServer.Writer);
        if (action == FrameAction.Forward)
        {
            FrameRelay.Copy(sequence, _toServer.Writer);
        }

        var upstream = Pipes.Drain(_toServer);
        Expect(action is FrameAction.Forward or FrameAction.Handled,
            $"the client's {what} got {action} ({_session.EndReason}: {_session.EndDetail})");
        bool refused = action == FrameAction.Handled;
        Trace($"C> {what}{(refused ? " REFUSED" : "")}");
        if (refused)
        {
            _refused++;
            var frames = Pipes.Frames(upstream);
            Expect(frames.Count == 1 && !frames[0].AsSpan().SequenceEqual(frame),
                $"the refused {what} was replaced by {frames.Count} messages upstream, not by one substitute");
            _server.Receive(new PgModelServer.Upstream(frames[0], policy, true, what));
        }
        else
        {
            Expect(upstream.AsSpan().SequenceEqual(frame), $"the forwarded {what} did not reach the server byte for byte");
            _server.Receive(new PgModelServer.Upstream(frame, policy, false, what));
        }

        return refused;
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
    private void FromServer(byte[] frame, bool answersSubstitute)
    {
        _serverMessages++;
        bool policyError = answersSubstitute && frame[0] == (byte)'E';
        _expected.Enqueue((frame, policyError));
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
            if (replaced)
            {
                Expect(IsPolicyError(received), $"the server's error for a substitute reached the client as {Show(received)}, not as ERROR 42501");
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

    private static bool IsPolicyError(byte[] frame)
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

        return severity == "ERROR" && code == "42501" && !string.IsNullOrEmpty(message);
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
        Pipes.Complete(_toServer);
        Pipes.Complete(_toClient);
        _session.Dispose();
    }
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
