using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Engine.Relay;
using Gatehouse.Policy.Access;
using Gatehouse.Engine.Recording;
using Gatehouse.Policy.Approvals;
using Gatehouse.Policy.Masking;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;
using Gatehouse.Protocols.Postgres.Masking;
using Gatehouse.Protocols.Postgres.Relay;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres.Policy;

/// <summary>
/// Statement policy on one PostgreSQL session. The client direction decides every Query, Parse, Bind and
/// FunctionCall; the server direction matches every response to the request it answers.
/// </summary>
/// <remarks>
/// <para>
/// A refused message is never dropped: it is replaced by a substitute the server is certain to reject (a Parse of
/// invalid text, a Bind of a statement that does not exist, a CLOSE of a cursor that does not exist), with a name
/// no client can guess. The server then does exactly what it does for any failing statement: it aborts the
/// transaction, discards the rest of the pipeline until Sync (so nothing before it in the pipeline is committed),
/// and answers every Sync with ReadyForQuery. The server direction replaces the server's error for the substitute
/// with the policy error (SQLSTATE 42501, naming the rule). Ordering and transaction state come from the server.
/// </para>
/// <para>
/// Statements are decided where the server binds them: at Parse (so a refused statement is never prepared) and
/// again at every Bind, for the text the server holds under that name. The server's answers (ParseComplete,
/// CloseComplete, errors and the messages an error makes it skip) keep the table of names exact; while a Parse is
/// in flight, a Bind is decided for every text the name may hold, strictest first.
/// </para>
/// <para>
/// The lexer depends on standard_conforming_strings and on an ASCII-safe client_encoding, both tracked from
/// ParameterStatus, which the server sends only just before ReadyForQuery. Until the session is idle again after a
/// request, a text whose meaning depends on them is decided under both readings.
/// </para>
/// One lock guards the state; it is taken per request and response message, never per DataRow.
/// </remarks>
internal sealed class PgPolicyGate
{
    /// <summary>Named statements a session may hold at once.</summary>
    public const int MaxNamedStatements = 16_384;

    /// <summary>Bytes of prepared statement text a session may hold at once.</summary>
    public const long MaxStatementBytes = 64L * 1024 * 1024;

    private static readonly PolicyRuleInfo NoBinding = Builtin("no-binding",
        "the policy no longer gives this identity access to this connection");

    private static readonly PolicyRuleInfo UnsafeEncoding = Builtin("client-encoding",
        "the text has multi-byte characters in a client_encoding the gateway cannot read safely; use UTF8");

    private static readonly PolicyRuleInfo UnknownStatement = Builtin("unknown-statement",
        "the prepared statement was not prepared through this gateway's protocol");

    /// <summary>The client cancelled a statement while it waited for approval (answered with 57014, not 42501).</summary>
    private static readonly PolicyRuleInfo CancelledWhileHeld = new("cancelled", "the client cancelled the statement while it waited for approval",
        "canceling statement due to user request (it was waiting for approval and did not run)"u8.ToArray());

    private static readonly PolicyRuleInfo MaskingCatalogMissing = Builtin("masking-catalog",
        "the gateway has not yet read the server's catalog, which it masks columns by; try again shortly");

    /// <summary>Portals the client direction remembers (named ones until it has seen this many).</summary>
    private const int MaxClientPortals = 4096;

    private static readonly PolicyRuleInfo TooManyStatements = Builtin("statement-limit",
        $"the session holds too many prepared statements (at most {MaxNamedStatements}, {MaxStatementBytes / (1024 * 1024)} MiB)");

    private readonly Lock _lock = new();
    private readonly PolicyStore _store;
    private readonly string _identity;
    private readonly IReadOnlyCollection<string> _groups;
    private readonly string _connection;
    private readonly PgRelayState _state;
    private readonly PgRequestQueue _inFlight = new();
    private readonly PgPreparedStatements _statements = new();
    private readonly Stack<PgStatementText> _freeTexts = new();
    private readonly byte[] _deniedQuery;
    private readonly byte[] _deniedParse;
    private readonly byte[] _deniedParseUnnamed;
    private readonly byte[] _deniedBind;
    private SessionPolicy? _policy;
    private long _storedBytes;
    private bool _frontRewritten;

    // The server skips every message up to the client's next Sync: an extended-query message failed and that Sync
    // has not been sent yet. Messages sent meanwhile get no response, so they are not queued.
    private bool _serverSkipping;

    // Nothing is in flight and the server's last word was ReadyForQuery. Settings a statement changed are reported
    // (ParameterStatus) only just before ReadyForQuery, so only then are the tracked lexing settings certain.
    // Written under the lock; read without it by the client direction, which is the only one that clears it.
    private volatile bool _idle = true;

    private readonly IApprovalBroker? _approvals;
    private readonly RelayWaker? _waker;
    private readonly TimeSpan _approvalTimeout;

    // The statement waiting for approval (its frame stays unconsumed in the client pipe), or null.
    private ApprovalTicket? _held;

    private readonly IAuditSink _audit;

    // Client direction, under the lock: what each portal the client bound reads (for the masking of its results),
    // and whether its columns were described since it was bound.
    private readonly List<ClientPortal> _clientPortals = [];

    // A DECLARE or PREPARE read masked names: from then on, every result's computed columns are masked.
    private int _maskAll = -1;

    // Server direction: DDL completed; the catalog is reloaded when the transaction ends.
    private bool _catalogChanged;

    public PgPolicyGate(PolicyStore store, SessionPolicy policy, string identity, IReadOnlyCollection<string> groups, string connection, PgRelayState state,
        IApprovalBroker? approvals = null, RelayWaker? waker = null, TimeSpan? approvalTimeout = null, IAuditSink? audit = null)
    {
        _audit = audit ?? NullAuditSink.Instance;
        _approvals = approvals;
        _waker = waker;
        _approvalTimeout = approvalTimeout ?? TimeSpan.FromMinutes(15);
        _store = store;
        _policy = policy;
        _identity = identity;
        _groups = groups;
        _connection = connection;
        _state = state;

        // A name no client can guess, so the substitutes always fail (PostgreSQL identifiers keep 63 bytes).
        string name = "gatehouse.denied." + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        _deniedQuery = Message((byte)'Q', Encoding.ASCII.GetBytes($"CLOSE \"{name}\"\0"));
        _deniedParse = Message((byte)'P', Encoding.ASCII.GetBytes($"{name}\0gatehouse denied\0\0\0"));

        // A refused Parse of the unnamed statement still replaces it, as a failing Parse does on the server.
        _deniedParseUnnamed = Message((byte)'P', Encoding.ASCII.GetBytes("\0gatehouse denied\0\0\0"));
        _deniedBind = Message((byte)'B', Encoding.ASCII.GetBytes($"\0{name}\0\0\0\0\0\0\0"));
    }

    /// <summary>Whether the client_encoding the server reported is ASCII-safe (server direction writes).</summary>
    public bool ClientEncodingSafe { get; set; } = true;

    // ---- Client direction ------------------------------------------------------------------------------------

    /// <summary>Query: the whole text is decided before any of it runs.</summary>
    public FrameAction OnQuery(in ReadOnlySequence<byte> body, PipeWriter toServer)
    {
        using var text = CString(body, 0);
        var verdict = DecideText(text, out _, out var masks);
        if ((verdict.Action == PolicyAction.RequireApproval || _held is not null)
            && Hold(ref verdict, _held is null ? Encoding.UTF8.GetString(text.Span) : "", default) is { } hold)
        {
            return hold;
        }

        lock (_lock)
        {
            return Send(PgRequestKind.Query, verdict, _deniedQuery, toServer, MaskRuleOf(masks), masks.Copy, ReadsMasked(masks));
        }
    }

    /// <summary>FunctionCall: a function called by OID, which SQL rules cannot see.</summary>
    public FrameAction OnFunctionCall(PipeWriter toServer)
    {
        var policy = CurrentPolicy();
        var verdict = policy is null ? new PgVerdict(PolicyAction.Deny, NoBinding) : From(policy, policy.DecideFunctionCall());
        if (verdict.Action != PolicyAction.Deny && _state.Masking?.Rules is { ColumnRules: [var rule, ..] })
        {
            // A function called by OID with arguments the gateway cannot read as SQL (query_to_xml's query, a
            // relation's OID): its result cannot be masked by origin.
            verdict = new PgVerdict(PolicyAction.Deny, rule.OpaqueDenial);
        }

        if ((verdict.Action == PolicyAction.RequireApproval || _held is not null)
            && Hold(ref verdict, "(a FunctionCall message: a function called by OID)", default) is { } hold)
        {
            return hold;
        }

        lock (_lock)
        {
            // The substitute is a Query: like a FunctionCall it is answered by an ErrorResponse and ReadyForQuery.
            return Send(PgRequestKind.FunctionCall, verdict, _deniedQuery, toServer);
        }
    }

    public FrameAction OnParse(in ReadOnlySequence<byte> body, PipeWriter toServer)
    {
        using var name = CString(body, 0);
        using var text = CString(body, name.Length + 1);
        var verdict = DecideText(text, out var mode, out var masks);
        var decided = verdict;
        if (verdict.Action == PolicyAction.RequireApproval && _approvals is not null)
        {
            // Preparing runs nothing: the statement is held where it would run, at Bind, with its parameters.
            verdict = PgVerdict.Allowed;
        }

        lock (_lock)
        {
            var statement = verdict.IsAllowed ? _statements.Find(name.Span) : null;
            if (verdict.IsAllowed && statement is null
                && (_statements.NamedCount >= MaxNamedStatements || _storedBytes + text.Length > MaxStatementBytes))
            {
                verdict = new PgVerdict(PolicyAction.Deny, TooManyStatements);
            }

            if (!verdict.IsAllowed || _serverSkipping)
            {
                return Send(PgRequestKind.Parse, verdict, name.Length == 0 ? _deniedParseUnnamed : _deniedParse, toServer);
            }

            statement ??= _statements.GetOrAdd(name.Span);
            statement.PendingParses++;
            var stored = RentText();
            stored.Set(text.Span, mode);
            stored.Verdict = decided; // the Bind holds it if it requires approval
            stored.Masks = masks;
            stored.PolicyVersion = _policy!.Snapshot.Version;
            _storedBytes += text.Length;
            Enqueue(new PgRequest { Kind = PgRequestKind.Parse, Statement = statement, Text = stored });
            _state.Recorder?.Decision(RecordedDecision.Allowed);
            return FrameAction.Forward;
        }
    }

    /// <summary>Bind: decided for every text the server may hold under the statement's name.</summary>
    public FrameAction OnBind(in ReadOnlySequence<byte> body, PipeWriter toServer)
    {
        using var portal = CString(body, 0);
        using var name = CString(body, portal.Length + 1);
        var policy = CurrentPolicy();
        string? heldText = null;
        PgVerdict verdict;
        PgStatementText? latest = null;
        lock (_lock)
        {
            var statement = _statements.Find(name.Span);
            if (policy is null)
            {
                verdict = new PgVerdict(PolicyAction.Deny, NoBinding);
            }
            else if (statement is null || statement.IsUnused)
            {
                verdict = new PgVerdict(PolicyAction.Deny, UnknownStatement);
            }
            else
            {
                verdict = statement.Confirmed is { } confirmed ? Decide(policy, confirmed) : PgVerdict.Allowed;
                latest = statement.Confirmed;
                var masks = statement.Confirmed?.Masks ?? MaskAnalysis.None;
                PgStatementText? lastParse = null;
                bool syncSinceParse = false;
                for (int i = 0; statement.PendingParses > 0 && i < _inFlight.Count; i++)
                {
                    ref var request = ref _inFlight[i];
                    syncSinceParse |= request.Kind == PgRequestKind.Sync;
                    if (request.Kind == PgRequestKind.Parse && request.Statement == statement)
                    {
                        var pending = Decide(policy, request.Text!);
                        if (pending.Action >= verdict.Action)
                        {
                            latest = request.Text; // the approver sees the text that needs approval
                        }

                        verdict = PgVerdict.Strictest(verdict, pending);
                        masks = Merge(masks, request.Text!.Masks);
                        lastParse = request.Text;
                        syncSinceParse = false;
                    }
                }

                if (lastParse is not null && !syncSinceParse)
                {
                    // No Sync since the last Parse of the name: if that Parse fails, the server skips this Bind; if it
                    // succeeds, this Bind binds its text. Its results are masked by that text alone.
                    masks = lastParse.Masks;
                }

                int reads = masks.Reads >= 0 ? masks.Reads : _maskAll;
                if (_state.Masking?.Rules is { } rules && reads >= 0 && rules.RuleOfTag(reads).Binary == MaskBinaryMode.Deny
                    && AsksBinaryResults(body))
                {
                    verdict = PgVerdict.Strictest(verdict, new PgVerdict(PolicyAction.Deny, rules.RuleOfTag(reads).BinaryDenial));
                }

                if (portal.Length > 0 && masks.Reads >= 0 && _maskAll < 0)
                {
                    // A named portal can be read by name (FETCH, cursor_to_xml, code): like a DECLARE, it masks every
                    // computed column from now on.
                    _maskAll = masks.Referenced >= 0 ? masks.Referenced : masks.Reads;
                }

                var entry = Portal(portal.Span);
                entry.MaskRule = MaskRuleOf(masks);
                entry.MaskReads = ReadsMasked(masks);
                entry.Copy = masks.Copy;
                entry.Described = false;
            }

            if (verdict.Action != PolicyAction.RequireApproval && _held is null)
            {
                return Send(PgRequestKind.Bind, verdict, _deniedBind, toServer);
            }

            // Copied under the lock: the server direction may return the text's buffer to the pool.
            heldText = _held is null && latest is not null ? Encoding.UTF8.GetString(latest.Span) : "";
        }

        // Outside the lock: submitting announces the request (log, store, webhook).
        if (Hold(ref verdict, heldText, body) is { } hold)
        {
            return hold;
        }

        lock (_lock)
        {
            return Send(PgRequestKind.Bind, verdict, _deniedBind, toServer);
        }
    }

    /// <summary>
    /// A statement that requires approval: the first time, submits it and holds the frame. When the held frame is
    /// offered again (its verdict decided anew: a policy reload, or the answer to a Parse in flight, may change it),
    /// its request settles it: while pending, it stays held, unless it no longer requires approval (the request is
    /// then withdrawn and the verdict decides); approved, it is allowed once (the frame is forwarded, exactly once)
    /// unless the policy now denies it; denied, expired or withdrawn (cancelled), it is refused, whatever the policy
    /// now says. Null means "go on with <paramref name="verdict"/>". Without approvals configured the statement is
    /// refused as it is.
    /// </summary>
    private FrameAction? Hold(ref PgVerdict verdict, string statement, in ReadOnlySequence<byte> bind)
    {
        if (_approvals is null || _waker is null)
        {
            return null;
        }

        var ticket = _held;
        if (ticket is not null && ticket.State == ApprovalState.Pending && verdict.Action != PolicyAction.RequireApproval)
        {
            _held = null;
            ticket.Withdraw();
            _state.Recorder?.Decision(RecordedDecision.Expired, ticket.Request.Rule, "withdrawn: the policy no longer requires approval",
                ticket: ticket.Request.Id);
            return null;
        }

        if (ticket is null)
        {
            var policy = _policy!;
            var now = DateTimeOffset.UtcNow;
            var request = new ApprovalRequest(
                "ap_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(5)), _identity, _connection, _state.Session.Id, policy.Role,
                verdict.Rule!.Name, Describe(statement, bind), now, now + _approvalTimeout);
            ticket = _approvals.Submit(request);
            _held = ticket;
            PgProtocolLog.StatementHeld(_state.Session.Logger, _state.Session.Id, _identity, _connection, request.Id, request.Rule);
            _audit.Record(new AuditEvent(now, AuditKinds.StatementHeld, _identity, _connection, _state.Session.Id, request.Id, Detail: "rule " + request.Rule));
            ticket.OnDecided(_waker.WakeClientToServer);
            _state.Recorder?.Decision(RecordedDecision.Held, request.Rule, verdict.Rule.Description, ticket: request.Id);
        }

        switch (ticket.State)
        {
            case ApprovalState.Pending:
                return FrameAction.Hold;
            case ApprovalState.Approved:
                _held = null;
                _state.Recorder?.Decision(RecordedDecision.Approved, ticket.Request.Rule, ticket.Reason, ticket.DecidedBy, ticket.Request.Id);
                if (verdict.Action != PolicyAction.Deny)
                {
                    verdict = PgVerdict.Allowed;
                }

                return null;
            default:
                _held = null;
                _state.Recorder?.Decision(ticket.State == ApprovalState.Denied ? RecordedDecision.Rejected : RecordedDecision.Expired, ticket.Request.Rule,
                    ticket.State == ApprovalState.Withdrawn ? "withdrawn: the client cancelled the statement" : ticket.Reason, ticket.DecidedBy,
                    ticket.Request.Id);
                string rule = verdict.Rule?.Name ?? ticket.Request.Rule;
                verdict = new PgVerdict(PolicyAction.Deny, ticket.State switch
                {
                    ApprovalState.Withdrawn => CancelledWhileHeld,
                    ApprovalState.Expired => Builtin(rule, $"no one approved the statement in time (request {ticket.Request.Id})"),
                    _ => Builtin(rule, $"{ticket.DecidedBy ?? "an approver"} denied the statement (request {ticket.Request.Id})"
                                                   + (ticket.Reason is { Length: > 0 } reason ? ": " + reason : "")),
                });
                return null;
        }
    }

    /// <summary>A statement waits for approval: the frame the client direction is offered is that held frame again.</summary>
    public bool IsHolding => _held is not null;

    /// <summary>The client cancelled (CancelRequest): a statement waiting for approval is withdrawn and answered 57014.</summary>
    public void CancelHeld() => _held?.Withdraw();

    /// <summary>What the approver sees: the statement text and, for a Bind, its parameter values.</summary>
    private static string Describe(string statement, in ReadOnlySequence<byte> bind)
    {
        var text = new StringBuilder(statement);
        if (bind.IsEmpty)
        {
            return text.ToString();
        }

        var reader = new PgBindReader(bind);
        for (int i = 1; reader.TryReadParameter(out short format, out bool isNull, out var value); i++)
        {
            text.Append(i == 1 ? "\n-- parameters: " : ", ").Append('$').Append(i).Append(" = ");
            text.Append(isNull ? "NULL"
                : format == 0 ? "'" + Encoding.UTF8.GetString(value).Replace("'", "''", StringComparison.Ordinal) + "'"
                : "(binary) " + Convert.ToHexString(value.ToArray()));
        }

        return text.ToString();
    }

    /// <summary>Close: a statement leaves the table only when the server confirms it closed.</summary>
    public void OnClose(in ReadOnlySequence<byte> body)
    {
        bool isStatement = body.FirstSpan[0] == (byte)'S';
        using var name = CString(body, 1);
        lock (_lock)
        {
            if (!_serverSkipping)
            {
                Enqueue(new PgRequest { Kind = PgRequestKind.Close, Statement = isStatement ? _statements.Find(name.Span) : null });
            }
        }
    }

    /// <summary>Describe: tracked so that its response can be matched; a portal's description also plans its masking.</summary>
    public void OnDescribe(in ReadOnlySequence<byte> body)
    {
        bool isPortal = body.FirstSpan[0] == (byte)'P';
        using var name = CString(body, 1);
        lock (_lock)
        {
            if (_serverSkipping)
            {
                return;
            }

            var request = PgRequest.Of(PgRequestKind.Describe);
            if (isPortal)
            {
                var entry = Portal(name.Span);
                entry.Described = true;
                request.Portal = entry.Name;
                request.MaskRule = entry.MaskRule;
            }

            Enqueue(request);
        }
    }

    /// <summary>
    /// Execute: tracked so that its response can be matched. With masking, the rows can only be masked by a plan of
    /// the portal's columns: when the client did not describe the portal since binding it, the gateway describes it
    /// itself, right before the Execute, and keeps the answer to itself.
    /// </summary>
    public void OnExecute(in ReadOnlySequence<byte> body, PipeWriter toServer)
    {
        using var name = CString(body, 0);
        lock (_lock)
        {
            if (_serverSkipping)
            {
                return;
            }

            var request = PgRequest.Of(PgRequestKind.Execute);
            if (_state.Masking?.Rules is not null)
            {
                var entry = Portal(name.Span);
                if (!entry.Described)
                {
                    PgWriter.WriteDescribe(toServer, (byte)'P', entry.Name);
                    Enqueue(new PgRequest { Kind = PgRequestKind.Describe, Portal = entry.Name, MaskRule = entry.MaskRule, Injected = true });
                    entry.Described = true;
                }

                request.Portal = entry.Name;
                request.MaskRule = entry.MaskRule;
                request.MaskReads = entry.MaskReads;
                request.MaskCopy = entry.Copy;
            }

            Enqueue(request);
        }
    }

    /// <summary>Server direction: DataRows arrived for the request in front (an Execute): its portal's plan applies.</summary>
    public void RowsForCurrentRequest()
    {
        lock (_lock)
        {
            if (_inFlight.Count > 0 && _inFlight.Front is { Kind: PgRequestKind.Execute, Portal: { } portal } && _state.Masking is { } masking)
            {
                masking.UseRows(masking.PortalPlan(portal));
            }
        }
    }

    /// <summary>The client's portal of that name (remembered from now on); its name array is interned.</summary>
    private ClientPortal Portal(ReadOnlySpan<byte> name)
    {
        foreach (var entry in _clientPortals)
        {
            if (name.SequenceEqual(entry.Name))
            {
                return entry;
            }
        }

        if (_clientPortals.Count >= MaxClientPortals)
        {
            // Forgotten portals are described again when executed, and read as masked-everything.
            _clientPortals.RemoveRange(0, _clientPortals.Count / 2);
        }

        var created = new ClientPortal(name.IsEmpty ? [] : name.ToArray()) { MaskRule = _state.Masking?.Rules?.ColumnRules is [var first, ..] ? first.Index : -1 };
        _clientPortals.Add(created);
        return created;
    }

    /// <summary>Whether a Bind asks for any result column in binary format.</summary>
    private static bool AsksBinaryResults(in ReadOnlySequence<byte> bind) => new PgBindReader(bind).AsksBinaryResults();

    private sealed class ClientPortal(byte[] name)
    {
        public byte[] Name { get; } = name;

        public int MaskRule { get; set; } = -1;

        /// <summary>Its statement reads masked columns (errors and notices may echo their values).</summary>
        public bool MaskReads { get; set; } = true;

        public MaskCopyTarget? Copy { get; set; }

        public bool Described { get; set; }
    }

    /// <summary>
    /// Sync: returns false when the server is in COPY IN, where it ignores Sync (no ReadyForQuery). Checked under
    /// the lock the server direction takes when COPY IN starts, so a Sync is either seen as ignored here or
    /// removed there.
    /// </summary>
    public bool OnSync()
    {
        lock (_lock)
        {
            if (_state.CopyIn)
            {
                return false;
            }

            _serverSkipping = false;
            Enqueue(PgRequest.Of(PgRequestKind.Sync));
            return true;
        }
    }

    /// <summary>
    /// Forwards an allowed request, or writes the substitute of a refused one, and queues it for its response. While
    /// the server skips to the next Sync nothing is queued (the server answers nothing), and a refused request is
    /// still never forwarded.
    /// </summary>
    private FrameAction Send(PgRequestKind kind, PgVerdict verdict, byte[] substitute, PipeWriter toServer, int maskRule = -1,
        MaskCopyTarget? maskCopy = null, bool maskReads = false)
    {
        // The held frame is being decided without its approval (a policy reload or a Parse's answer changed its
        // verdict): its request must not outlive it, or it would stand in for the next statement that needs one.
        if (_held is { } stale)
        {
            _held = null;
            stale.Withdraw();
        }

        _state.Recorder?.Decision(verdict.IsAllowed ? RecordedDecision.Allowed : RecordedDecision.Denied, verdict.Rule?.Name,
            verdict.IsAllowed ? null : verdict.Rule!.Description);
        if (!_serverSkipping)
        {
            Enqueue(new PgRequest { Kind = kind, Denial = verdict.Rule, MaskRule = maskRule, MaskCopy = maskCopy, MaskReads = maskReads });
            if (kind is PgRequestKind.Query or PgRequestKind.FunctionCall)
            {
                _state.RequestSent();
            }
        }

        if (verdict.IsAllowed)
        {
            return FrameAction.Forward;
        }

        PgProtocolLog.StatementRefused(_state.Session.Logger, _state.Session.Id, _identity, _connection, kind.ToString(),
            verdict.Rule!.Name, verdict.Action == PolicyAction.Deny ? "deny" : "require_approval");
        _audit.Record(new AuditEvent(DateTimeOffset.UtcNow, AuditKinds.StatementDenied, _identity, _connection, _state.Session.Id, verdict.Rule.Name,
            Detail: kind + " refused: " + verdict.Rule.Description));
        toServer.Write(substitute);
        return FrameAction.Handled;
    }

    private void Enqueue(in PgRequest request)
    {
        _idle = false;
        _inFlight.Enqueue(request);
    }

    // ---- Server direction ------------------------------------------------------------------------------------

    /// <summary>
    /// Matches one response to the request it answers. Returns false when it cannot (the gateway and the server
    /// no longer agree on what is in flight): the session must end, since decisions may no longer be exact.
    /// Sets <paramref name="handled"/> when the response was replaced (the policy error written instead).
    /// </summary>
    public bool OnResponse(byte code, in ReadOnlySequence<byte> frame, PipeWriter toClient, out bool handled)
    {
        handled = false;
        if (!AnswersRequest(code))
        {
            // Notices, notifications, ParameterStatus, COPY data: nothing to match, and no lock per CopyData row.
            return true;
        }

        lock (_lock)
        {
            switch ((BackendCode)code)
            {
                case BackendCode.ParseComplete:
                    if (!Expect(PgRequestKind.Parse))
                    {
                        return false;
                    }

                    Confirm(_inFlight.Dequeue());
                    return true;
                case BackendCode.BindComplete:
                    return Complete(PgRequestKind.Bind);
                case BackendCode.CloseComplete:
                    if (!Expect(PgRequestKind.Close))
                    {
                        return false;
                    }

                    Closed(_inFlight.Dequeue().Statement);
                    return true;
                case BackendCode.ParameterDescription:
                    return Expect(PgRequestKind.Describe);
                case BackendCode.RowDescription:
                    if (InQuery())
                    {
                        _state.Masking?.QueryRows(frame, _inFlight.Front.MaskRule);
                        return true;
                    }

                    return Described(frame, ref handled);
                case BackendCode.NoData:
                    return Described(ReadOnlySequence<byte>.Empty, ref handled);
                case BackendCode.CommandComplete:
                    _state.Masking?.EndRows();
                    // DDL: the catalog is read again once its transaction ended (a load before would not see it).
                    _catalogChanged |= _state.Masking is not null && ChangesCatalog(frame);

                    return InQuery() || Complete(PgRequestKind.Execute);
                case BackendCode.EmptyQueryResponse:
                    _state.Masking?.EndRows();
                    return InQuery() || Complete(PgRequestKind.Execute);
                case BackendCode.PortalSuspended:
                    _state.Masking?.EndRows();
                    return Complete(PgRequestKind.Execute);
                case BackendCode.FunctionCallResponse:
                    return Expect(PgRequestKind.FunctionCall);
                case BackendCode.CopyInResponse:
                    return CopyInStarted();
                case BackendCode.CopyOutResponse:
                    if (!InQuery() && !Expect(PgRequestKind.Execute))
                    {
                        return false;
                    }

                    _state.Masking?.CopyOut(_inFlight.Front.MaskCopy, binary: frame.Slice(5).FirstSpan[0] != 0);
                    return true;
                case BackendCode.ErrorResponse:
                    LastErrorReadsMasked = _inFlight.Count > 0 && _inFlight.Front.MaskReads;
                    return Failed(toClient, ref handled);
                case BackendCode.ReadyForQuery:
                    return Ready(frame.Slice(5).FirstSpan[0]);
                default:
                    return true;
            }
        }
    }

    /// <summary>Server direction: the request the last ErrorResponse answered reads masked columns (set by <see cref="OnResponse"/>).</summary>
    public bool LastErrorReadsMasked { get; private set; }

    /// <summary>Server direction: the request being answered reads masked columns (for a NoticeResponse).</summary>
    public bool FrontReadsMasked()
    {
        lock (_lock)
        {
            return _inFlight.Count > 0 && _inFlight.Front.MaskReads;
        }
    }

    /// <summary>The response codes <see cref="OnResponse"/> matches to requests.</summary>
    private static bool AnswersRequest(byte code) => (BackendCode)code is BackendCode.ParseComplete or BackendCode.BindComplete
        or BackendCode.CloseComplete or BackendCode.ParameterDescription or BackendCode.RowDescription or BackendCode.NoData
        or BackendCode.CommandComplete or BackendCode.EmptyQueryResponse or BackendCode.PortalSuspended or BackendCode.FunctionCallResponse
        or BackendCode.CopyInResponse or BackendCode.CopyOutResponse or BackendCode.ErrorResponse or BackendCode.ReadyForQuery;

    /// <summary>
    /// RowDescription or NoData (<paramref name="rowDescription"/> empty) answering a Describe: a portal's plans its
    /// masking; the answer to a Describe the gateway sent itself is not forwarded.
    /// </summary>
    private bool Described(in ReadOnlySequence<byte> rowDescription, ref bool handled)
    {
        if (!Expect(PgRequestKind.Describe))
        {
            return false;
        }

        var request = _inFlight.Dequeue();
        if (request.Portal is { } portal)
        {
            _state.Masking?.PortalRows(portal, rowDescription, request.MaskRule);
        }

        handled = request.Injected;
        return true;
    }

    /// <summary>A command tag of DDL (CREATE, ALTER, DROP, COMMENT, SELECT INTO's SELECT aside): the catalog changed.</summary>
    private static bool ChangesCatalog(in ReadOnlySequence<byte> frame)
    {
        var tag = frame.Slice(5);
        Span<byte> head = stackalloc byte[7];
        int length = (int)Math.Min(tag.Length, head.Length);
        tag.Slice(0, length).CopyTo(head);
        head = head[..length];
        return head.StartsWith("CREATE "u8) || head.StartsWith("ALTER "u8) || head.StartsWith("DROP "u8) || head.StartsWith("COMMENT"u8);
    }

    private bool Expect(PgRequestKind kind) => _inFlight.Count > 0 && _inFlight.Front.Kind == kind && _inFlight.Front.Denial is null;

    private bool InQuery() => _inFlight.Count > 0 && _inFlight.Front.Kind is PgRequestKind.Query && _inFlight.Front.Denial is null;

    private bool Complete(PgRequestKind kind)
    {
        if (!Expect(kind))
        {
            return false;
        }

        _inFlight.Dequeue();
        return true;
    }

    /// <summary>COPY IN began: Syncs the client pipelined right behind the request reach a server in COPY IN, which ignores them.</summary>
    private bool CopyInStarted()
    {
        if (_inFlight.Count == 0 || _inFlight.Front.Kind is not (PgRequestKind.Execute or PgRequestKind.Query) || _inFlight.Front.Denial is not null)
        {
            return false;
        }

        while (_inFlight.Count > 1 && _inFlight[1].Kind == PgRequestKind.Sync)
        {
            _inFlight.RemoveAt(1);
        }

        return true;
    }

    private bool Failed(PipeWriter toClient, ref bool handled)
    {
        _state.Masking?.EndRows();
        _state.Masking?.CopyEnded();
        if (_inFlight.Count == 0)
        {
            return true; // Not an answer to a request (a FATAL at shutdown): passed on as it is.
        }

        ref var front = ref _inFlight.Front;
        if (front.Denial is { } rule)
        {
            WritePolicyError(toClient, rule);
            handled = true;
        }

        switch (front.Kind)
        {
            case PgRequestKind.Query:
            case PgRequestKind.FunctionCall:
                // Answered by ReadyForQuery next; remember the substitute failed as it had to.
                _frontRewritten |= handled;
                return true;
            case PgRequestKind.Sync:
                return true; // The implicit transaction failed to commit at Sync; ReadyForQuery follows.
            default:
                // An extended-query message failed: the server skips everything up to the next Sync, also a Query or
                // FunctionCall (which then gets no ReadyForQuery). If the client has not sent that Sync yet, what it
                // sends until then is skipped too.
                Skipped(_inFlight.Dequeue());
                while (_inFlight.Count > 0 && _inFlight.Front.Kind != PgRequestKind.Sync)
                {
                    Skipped(_inFlight.Dequeue());
                }

                _serverSkipping = _inFlight.Count == 0;
                return true;
        }
    }

    private bool Ready(byte transactionStatus)
    {
        if (_inFlight.Count == 0)
        {
            return false;
        }

        var front = _inFlight.Dequeue();
        _idle = _inFlight.Count == 0;
        if (_state.Masking is { } masking)
        {
            masking.EndRows();
            if (transactionStatus == (byte)'I')
            {
                masking.TransactionEnded();
                if (_catalogChanged)
                {
                    _catalogChanged = false;
                    masking.CatalogChanged();
                }
            }
        }

        bool wasRewritten = _frontRewritten;
        _frontRewritten = false;
        return front.Kind switch
        {
            PgRequestKind.Sync => true,
            PgRequestKind.Query or PgRequestKind.FunctionCall => front.Denial is null || wasRewritten,
            _ => false,
        };
    }

    private void Confirm(in PgRequest parse)
    {
        var statement = parse.Statement!;
        statement.PendingParses--;
        if (statement.Confirmed is { } previous)
        {
            ReturnText(previous);
        }

        statement.Confirmed = parse.Text;
    }

    private void Closed(PgPreparedStatement? statement)
    {
        if (statement?.Confirmed is { } text)
        {
            statement.Confirmed = null;
            ReturnText(text);
            _statements.RemoveIfUnused(statement);
        }
    }

    /// <summary>A request the server rejected or skipped: a Parse created nothing, a Close removed nothing.</summary>
    private void Skipped(in PgRequest request)
    {
        if (request.Kind is PgRequestKind.Query or PgRequestKind.FunctionCall)
        {
            _state.RequestSkipped();
        }

        if (request is { Kind: PgRequestKind.Parse, Statement: { } statement })
        {
            statement.PendingParses--;
            ReturnText(request.Text!);
            _statements.RemoveIfUnused(statement);
        }
    }

    private static void WritePolicyError(PipeWriter toClient, PolicyRuleInfo rule) =>
        PgWriter.WriteError(toClient, "ERROR"u8, ReferenceEquals(rule, CancelledWhileHeld) ? "57014"u8 : "42501"u8, rule.Message);

    // ---- Deciding --------------------------------------------------------------------------------------------

    /// <summary>The session's policy under the current snapshot; null when the new policy gives no access.</summary>
    private SessionPolicy? CurrentPolicy()
    {
        var policy = _policy;
        var snapshot = _store.Current;
        if (policy is null || !ReferenceEquals(policy.Snapshot, snapshot))
        {
            // Grant bindings count only while the grant is live (the host also ends the session when it ends).
            policy = snapshot.ResolveAccess(_identity, _groups, _connection, _store.Grants, DateTimeOffset.UtcNow).Policy;
            _policy = policy;
            _state.Masking?.Update(policy is null ? null : snapshot.Masking.For(_identity, _groups, policy.Role, _connection));
        }

        return policy;
    }

    private PgVerdict DecideText(in PooledText text, out PgLexMode mode, out MaskAnalysis masks)
    {
        masks = MaskAnalysis.None;
        var span = text.Span;
        bool uncertain = !_idle;

        bool backslash = uncertain && span.Contains((byte)'\\');
        mode = backslash ? PgLexMode.Either
            : _state.StandardConformingStrings ? PgLexMode.Standard : PgLexMode.Backslash;
        var policy = CurrentPolicy();
        if (policy is null)
        {
            return new PgVerdict(PolicyAction.Deny, NoBinding);
        }

        // Pure ASCII reads the same in every encoding; only texts with multi-byte characters are in doubt.
        if ((!ClientEncodingSafe && span.IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0) || (backslash && HasHighByteBeforeBackslash(span)))
        {
            return new PgVerdict(PolicyAction.Deny, UnsafeEncoding);
        }

        var verdict = DecideSpan(policy, span, mode);
        return verdict.Action == PolicyAction.Deny ? verdict : PgVerdict.Strictest(verdict, DecideMasking(span, mode, out masks));
    }

    private PgVerdict Decide(SessionPolicy policy, PgStatementText text)
    {
        if (text.PolicyVersion != policy.Snapshot.Version)
        {
            var verdict = DecideSpan(policy, text.Span, text.Mode);
            text.Verdict = PgVerdict.Strictest(verdict, DecideMasking(text.Span, text.Mode, out var masks));
            text.Masks = masks;
            text.PolicyVersion = policy.Snapshot.Version;
        }

        return text.Verdict;
    }

    /// <summary>
    /// What masking says of a statement: refused when its results could not be masked (a masked column inside an
    /// expression or a predicate under a rule that denies it, masked values stored elsewhere, an unmaskable COPY,
    /// planner statistics); else allowed, with <paramref name="masks"/> saying how its results are masked.
    /// </summary>
    private PgVerdict DecideMasking(ReadOnlySpan<byte> text, PgLexMode mode, out MaskAnalysis masks)
    {
        masks = MaskAnalysis.None;
        if (_state.Masking is not { Rules: { } rules } masking)
        {
            return PgVerdict.Allowed;
        }

        masks = masking.Analyze(text, mode != PgLexMode.Backslash);
        if (mode == PgLexMode.Either)
        {
            masks = Merge(masks, masking.Analyze(text, standardConformingStrings: false));
        }

        if (masks.Defined >= 0)
        {
            _maskAll = _maskAll >= 0 ? _maskAll : masks.Defined;
        }

        var first = rules.ColumnRules.Count > 0 ? rules.ColumnRules[0] : null;
        int reads = masks.Reads >= 0 ? masks.Reads : _maskAll;
        PolicyRuleInfo? denial = masks.Unavailable ? MaskingCatalogMissing
            : masks.Statistics && first is not null ? first.StatisticsDenial
            : masks.Stored >= 0 ? rules.RuleOfTag(masks.Stored).StoreDenial
            : (masks.Opaque || masks.Unreadable || (masks.Code && _maskAll >= 0)) && first is not null ? first.OpaqueDenial
            : masks.BinaryCursor && reads >= 0 && rules.RuleOfTag(reads).Binary == MaskBinaryMode.Deny ? rules.RuleOfTag(reads).BinaryDenial
            : masks.InExpression >= 0 && rules.RuleOfTag(masks.InExpression).Expressions == MaskExpressionMode.Deny
                ? rules.RuleOfTag(masks.InExpression).ExpressionDenial
            : masks.InPredicate >= 0 && rules.RuleOfTag(masks.InPredicate).DenyPredicates ? rules.RuleOfTag(masks.InPredicate).PredicateDenial
            : masks.CopyUnmaskable >= 0
                ? rules.RuleOfTag(masks.CopyUnmaskable).Copy == MaskCopyMode.Deny ? rules.RuleOfTag(masks.CopyUnmaskable).CopyDenial
                    : rules.RuleOfTag(masks.CopyUnmaskable).CopyOutDenial
            : masks.CopyRule >= 0 && rules.RuleOfTag(masks.CopyRule).Copy == MaskCopyMode.Deny ? rules.RuleOfTag(masks.CopyRule).CopyDenial
            : null;
        return denial is null ? PgVerdict.Allowed : new PgVerdict(PolicyAction.Deny, denial);
    }

    /// <summary>Whether a statement reads masked columns, itself or through a cursor, prepared statement or portal read before.</summary>
    private bool ReadsMasked(in MaskAnalysis masks) => masks.Reads >= 0 || masks.Referenced >= 0 || _maskAll >= 0;

    /// <summary>The rule masking a request's computed result columns: the statement's own, or the session's after a DECLARE/PREPARE.</summary>
    private int MaskRuleOf(in MaskAnalysis masks) => masks.Referenced >= 0 ? masks.Referenced : _maskAll;

    /// <summary>Both readings of a text: the first rule each use found.</summary>
    private static MaskAnalysis Merge(MaskAnalysis a, MaskAnalysis b) => new()
    {
        Referenced = a.Referenced >= 0 ? a.Referenced : b.Referenced,
        InExpression = a.InExpression >= 0 ? a.InExpression : b.InExpression,
        InPredicate = a.InPredicate >= 0 ? a.InPredicate : b.InPredicate,
        Stored = a.Stored >= 0 ? a.Stored : b.Stored,
        Defined = a.Defined >= 0 ? a.Defined : b.Defined,
        Reads = a.Reads >= 0 ? a.Reads : b.Reads,
        CopyRule = a.CopyRule >= 0 ? a.CopyRule : b.CopyRule,
        CopyUnmaskable = a.CopyUnmaskable >= 0 ? a.CopyUnmaskable : b.CopyUnmaskable,
        Copy = a.Copy ?? b.Copy,
        Statistics = a.Statistics || b.Statistics,
        Opaque = a.Opaque || b.Opaque,
        Code = a.Code || b.Code,
        BinaryCursor = a.BinaryCursor || b.BinaryCursor,
        Unreadable = a.Unreadable || b.Unreadable,
        Unavailable = a.Unavailable || b.Unavailable,
    };

    private static PgVerdict DecideSpan(SessionPolicy policy, ReadOnlySpan<byte> text, PgLexMode mode)
    {
        var decision = policy.Decide(text, new SqlLexSettings(mode != PgLexMode.Backslash));
        if (mode == PgLexMode.Either)
        {
            decision = PolicyDecision.Strictest(decision, policy.Decide(text, new SqlLexSettings(false)));
        }

        return From(policy, decision);
    }

    private static PgVerdict From(SessionPolicy policy, PolicyDecision decision) =>
        decision.IsAllowed ? PgVerdict.Allowed : new PgVerdict(decision.Action, policy.Rule(decision.Rule));

    /// <summary>
    /// A byte of a multi-byte character followed by a backslash: in SJIS, BIG5, GBK, GB18030 and JOHAB such a pair
    /// is one character, so if a request in flight switches client_encoding to one of them the server reads the
    /// text differently (an escaped quote in our reading can be the end of a string in its). The other bytes the
    /// lexer cares about (quotes, <c>$</c>) are below 0x30 and never the second byte of a character there.
    /// </summary>
    private static bool HasHighByteBeforeBackslash(ReadOnlySpan<byte> text)
    {
        for (int i = 1; i < text.Length; i++)
        {
            if (text[i] == (byte)'\\' && text[i - 1] >= 0x80)
            {
                return true;
            }
        }

        return false;
    }

    private PgStatementText RentText() => _freeTexts.TryPop(out var text) ? text : new PgStatementText();

    private void ReturnText(PgStatementText text)
    {
        _storedBytes -= text.Length;
        if (_freeTexts.Count < 64)
        {
            text.Set([], PgLexMode.Standard);
            _freeTexts.Push(text);
        }
        else
        {
            text.Release();
        }
    }

    /// <summary>Returns every pooled buffer; the session is over.</summary>
    public void Dispose()
    {
        _held?.Withdraw();
        lock (_lock)
        {
            while (_inFlight.Count > 0)
            {
                _inFlight.Dequeue().Text?.Release();
            }

            foreach (var statement in _statements.All)
            {
                statement.Confirmed?.Release();
                statement.Confirmed = null;
            }

            while (_freeTexts.TryPop(out var text))
            {
                text.Release();
            }
        }
    }

    // ---- Helpers ---------------------------------------------------------------------------------------------

    private static PolicyRuleInfo Builtin(string name, string description) =>
        new(name, description, Encoding.UTF8.GetBytes($"statement denied by the gateway (\"{name}\"): {description}"));

    private static byte[] Message(byte code, byte[] body)
    {
        var message = new byte[5 + body.Length];
        message[0] = code;
        BinaryPrimitives.WriteInt32BigEndian(message.AsSpan(1), 4 + body.Length);
        body.CopyTo(message, 5);
        return message;
    }

    /// <summary>The NUL-terminated string at <paramref name="offset"/> of a validated body, as one span.</summary>
    private static PooledText CString(in ReadOnlySequence<byte> body, int offset)
    {
        var rest = body.Slice(offset);
        if (rest.FirstSpan.IndexOf((byte)0) is int end and >= 0)
        {
            return new PooledText(rest.FirstSpan[..end], null);
        }

        var position = rest.PositionOf((byte)0)!.Value;
        var slice = rest.Slice(0, position);
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)slice.Length);
        slice.CopyTo(buffer);
        return new PooledText(buffer.AsSpan(0, (int)slice.Length), buffer);
    }

    /// <summary>A string from a message: a slice of the frame, or a pooled copy when it crossed segments.</summary>
    private readonly ref struct PooledText(ReadOnlySpan<byte> span, byte[]? rented)
    {
        public ReadOnlySpan<byte> Span { get; } = span;

        public int Length => Span.Length;

        public void Dispose()
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
