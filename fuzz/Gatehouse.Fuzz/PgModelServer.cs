using System.Buffers.Binary;
using System.Text;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;
using static Gatehouse.Fuzz.PgMessages;

namespace Gatehouse.Fuzz;

/// <summary>
/// A small model of a PostgreSQL backend after login, as far as the policy gate can tell (PostgreSQL docs 55.2.2
/// Simple Query, 55.2.3 Extended Query, 55.7 Message Formats; src/backend/tcop/postgres.c). It reads exactly the
/// messages the gateway sent upstream and answers with real backend messages:
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Prepared statements by name. Parse of the unnamed statement first drops the old one (also when it fails);
/// a Parse of a name that exists fails with 42P05; a text that does not parse fails with 42601, as does a text of
/// more than one command. Named statements survive transactions; Close of a missing name succeeds.</item>
/// <item>Portals by name, gone at the end of each (implicit) transaction. Bind of a missing statement fails with
/// 26000, of a named portal that exists with 42P03; Execute or Describe of a missing portal fails with 34000.
/// A SELECT portal can be executed in steps (PortalSuspended) and again when done (no rows); any other portal
/// only once (55000).</item>
/// <item>After an error in an extended-query message the server discards every message, Query and FunctionCall
/// included, until Sync. Sync ends the implicit transaction (rolled back after an error) and answers
/// ReadyForQuery; so do Query and FunctionCall, which also join the transaction the extended messages opened.
/// Query drops the unnamed statement.</item>
/// <item>standard_conforming_strings: texts are parsed under the value in force when the server reads them. SET
/// changes it at once, a rollback restores it, and a changed value is reported (ParameterStatus) just before
/// ReadyForQuery, as PostgreSQL 14 and later do.</item>
/// </list>
/// Safety oracle: the server never prepares, binds, executes or runs a text the session policy in force when the
/// client sent that message denies, decided on the text with the server's own standard_conforming_strings.
/// </remarks>
internal sealed class PgModelServer(bool standardConformingStrings, Action<byte[], PgModelServer.Upstream> emit, Action<string> trace)
{
    /// <summary>
    /// One message the gateway wrote upstream, with what the harness knew when the gateway decided it: the policy in
    /// force, whether it is a substitute (and the SQLSTATE the client must get for it: 42501, or 57014 for a held
    /// statement the client cancelled; null: either), and the approval request it was forwarded on, if any.
    /// </summary>
    public sealed record Upstream(byte[] Frame, SessionPolicy Policy, bool Substitute, string From, string? ApprovalId = null, string? PolicyErrorCode = "42501")
    {
        public byte Code => Frame[0];

        public ReadOnlySpan<byte> Body => Frame.AsSpan(5);
    }

    private readonly Queue<Upstream> _input = new();
    private readonly Dictionary<string, Prepared> _statements = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Portal> _portals = new(StringComparer.Ordinal);
    private bool _scs = standardConformingStrings;
    private bool _scsAtStart = standardConformingStrings;
    private bool _scsReported = standardConformingStrings;
    private bool _inTransaction;
    private bool _failed;
    private bool _skipTillSync;
    private Upstream? _current;
    private int _errorsForCurrent;

    public int Pending => _input.Count;

    /// <summary>Queries and FunctionCalls discarded while skipping to Sync (they get no ReadyForQuery).</summary>
    public int SkippedRequests { get; private set; }

    /// <summary>Substitutes the server read (not skipped), each answered by an ErrorResponse.</summary>
    public int SubstitutesRejected { get; private set; }

    public int ReadyForQuerySent { get; private set; }

    /// <summary>How many messages forwarded on each approval request the server read (skipped or not).</summary>
    public Dictionary<string, int> ApprovedReceived { get; } = new(StringComparer.Ordinal);

    public void Receive(Upstream message) => _input.Enqueue(message);

    /// <summary>Reads and answers up to <paramref name="count"/> messages.</summary>
    public void Answer(int count)
    {
        for (int i = 0; i < count && _input.Count > 0; i++)
        {
            ProcessOne(_input.Dequeue());
        }
    }

    private void ProcessOne(Upstream message)
    {
        _current = message;
        _errorsForCurrent = 0;
        if (message.ApprovalId is { } approval)
        {
            ApprovedReceived[approval] = ApprovedReceived.GetValueOrDefault(approval) + 1;
        }
        if (_skipTillSync && message.Code != (byte)'S')
        {
            trace($"  server skips {message.From}");
            if (message.Code is (byte)'Q' or (byte)'F')
            {
                SkippedRequests++;
            }

            return;
        }

        var body = message.Body;
        switch ((char)message.Code)
        {
            case 'P':
            {
                string name = CString(body, out int at);
                string text = CString(body[at..], out _);
                Parse(name, text, message.Policy);
                break;
            }

            case 'B':
            {
                string portal = CString(body, out int at);
                string statement = CString(body[at..], out _);
                Bind(portal, statement, message.Policy, message.ApprovalId is not null);
                break;
            }

            case 'D':
                Describe((char)body[0], CString(body[1..], out _));
                break;
            case 'E':
            {
                string portal = CString(body, out int at);
                Execute(portal, BinaryPrimitives.ReadInt32BigEndian(body[at..]));
                break;
            }

            case 'C':
                Close((char)body[0], CString(body[1..], out _));
                break;
            case 'S':
                _skipTillSync = false;
                Ready();
                break;
            case 'H':
                break;
            case 'Q':
                Query(CString(body, out _), message.Policy, message.ApprovalId is not null);
                break;
            case 'F':
                FunctionCall(message.Policy);
                break;
            default:
                throw new FuzzFindingException($"the gateway sent the server an unexpected '{(char)message.Code}'");
        }

        if (message.Substitute)
        {
            if (_errorsForCurrent != 1)
            {
                throw new FuzzFindingException($"the server answered the gateway's substitute for {message.From} with {_errorsForCurrent} errors: it must reject it");
            }

            SubstitutesRejected++;
        }
    }

    // ---- Extended query -----------------------------------------------------------------------------------

    private void Parse(string name, string text, SessionPolicy policy)
    {
        Begin();
        if (name.Length == 0)
        {
            _statements.Remove(name); // exec_parse_message drops the unnamed statement before parsing.
        }

        var view = ServerText.Read(text, _scs);
        if (view.SyntaxError)
        {
            Error("42601", $"syntax error in \"{text}\"");
        }
        else if (view.Statements.Length > 1)
        {
            Error("42601", "cannot insert multiple commands into a prepared statement");
        }
        else if (name.Length > 0 && _statements.ContainsKey(name))
        {
            Error("42P05", $"prepared statement \"{name}\" already exists");
        }
        else
        {
            Safe(policy, text, _scs, "prepared", approved: true); // preparing runs nothing: held at Bind

            _statements[name] = new Prepared(text, _scs, view);
            Emit(ParseComplete());
        }
    }

    private void Bind(string portalName, string statementName, SessionPolicy policy, bool approved)
    {
        Begin();
        if (!_statements.TryGetValue(statementName, out var statement))
        {
            Error("26000", $"prepared statement \"{statementName}\" does not exist");
        }
        else if (portalName.Length > 0 && _portals.ContainsKey(portalName))
        {
            Error("42P03", $"cursor \"{portalName}\" already exists");
        }
        else
        {
            _portals.Remove(portalName);
            if (statement.View.First is { FailsAt: Failure.Plan })
            {
                Error("22012", "division by zero");
                return;
            }

            Safe(policy, statement.Text, statement.Scs, "bound", approved);
            _portals[portalName] = new Portal(statement, policy, approved);
            Emit(BindComplete());
        }
    }

    private void Describe(char kind, string name)
    {
        Begin();
        if (kind == 'S')
        {
            if (!_statements.TryGetValue(name, out var statement))
            {
                Error("26000", $"prepared statement \"{name}\" does not exist");
                return;
            }

            Emit(ParameterDescription());
            Emit(statement.View.First is { Kind: CommandKind.Select } ? Columns() : NoData());
        }
        else
        {
            if (!_portals.TryGetValue(name, out var portal))
            {
                Error("34000", $"portal \"{name}\" does not exist");
                return;
            }

            Emit(portal.Statement.View.First is { Kind: CommandKind.Select } ? Columns() : NoData());
        }
    }

    private void Execute(string name, int maxRows)
    {
        Begin();
        if (!_portals.TryGetValue(name, out var portal))
        {
            Error("34000", $"portal \"{name}\" does not exist");
            return;
        }

        var statement = portal.Statement;
        Safe(portal.Policy, statement.Text, statement.Scs, "executed", portal.Approved);
        if (statement.View.First is not { } command)
        {
            Emit(EmptyQueryResponse());
            return;
        }

        if (command.Kind != CommandKind.Select)
        {
            if (portal.Done)
            {
                Error("55000", $"portal \"{name}\" cannot be run");
                return;
            }

            portal.Done = true;
            RunCommand(command);
            return;
        }

        int count = 0;
        while (portal.NextRow < command.Rows && (maxRows <= 0 || count < maxRows))
        {
            if (command.FailsAt == Failure.Run && portal.NextRow == command.FailAfterRows)
            {
                Error("22012", "division by zero");
                return;
            }

            Emit(DataRow(Text((portal.NextRow + 1).ToString(System.Globalization.CultureInfo.InvariantCulture))));
            portal.NextRow++;
            count++;
        }

        Emit(maxRows > 0 && count == maxRows ? PortalSuspended() : CommandComplete($"SELECT {count}"));
    }

    private void Close(char kind, string name)
    {
        Begin();
        if (kind == 'S')
        {
            _statements.Remove(name);
        }
        else
        {
            _portals.Remove(name);
        }

        Emit(CloseComplete());
    }

    // ---- Simple query and function call -------------------------------------------------------------------

    private void Query(string text, SessionPolicy policy, bool approved)
    {
        Begin();
        _statements.Remove(""); // exec_simple_query drops the unnamed statement.
        var view = ServerText.Read(text, _scs);
        if (view.SyntaxError)
        {
            Error("42601", $"syntax error in \"{text}\"");
        }
        else if (view.Statements.Length == 0)
        {
            Emit(EmptyQueryResponse());
        }
        else
        {
            Safe(policy, text, _scs, "ran", approved);
            foreach (var command in view.Statements)
            {
                if (!RunSimple(command))
                {
                    break;
                }
            }
        }

        Ready();
    }

    private bool RunSimple(Command command)
    {
        if (command.Kind != CommandKind.Select)
        {
            return RunCommand(command);
        }

        if (command.FailsAt == Failure.Plan)
        {
            Error("22012", "division by zero");
            return false;
        }

        Emit(Columns());
        for (int row = 0; row < command.Rows; row++)
        {
            if (command.FailsAt == Failure.Run && row == command.FailAfterRows)
            {
                Error("22012", "division by zero");
                return false;
            }

            Emit(DataRow(Text((row + 1).ToString(System.Globalization.CultureInfo.InvariantCulture))));
        }

        Emit(CommandComplete($"SELECT {command.Rows}"));
        return true;
    }

    private bool RunCommand(Command command)
    {
        switch (command.Kind)
        {
            case CommandKind.SetScs:
                _scs = command.Value;
                Emit(CommandComplete("SET"));
                return true;
            case CommandKind.CloseCursor:
                Error("34000", "cursor does not exist");
                return false;
            default:
                Emit(CommandComplete(command.Tag));
                return true;
        }
    }

    private void FunctionCall(SessionPolicy policy)
    {
        Begin();
        if (!policy.DecideFunctionCall().IsAllowed)
        {
            throw new FuzzFindingException($"SAFETY: the server ran a FunctionCall the policy {policy.Snapshot.Source} denies");
        }

        Emit(FunctionCallResponse(Int32(42)));
        Ready();
    }

    // ---- Transactions -------------------------------------------------------------------------------------

    private void Begin()
    {
        if (!_inTransaction)
        {
            _inTransaction = true;
            _failed = false;
            _scsAtStart = _scs;
        }
    }

    private void Ready()
    {
        if (_inTransaction)
        {
            if (_failed)
            {
                _scs = _scsAtStart;
            }

            _portals.Clear();
            _inTransaction = false;
            _failed = false;
        }

        if (_scs != _scsReported)
        {
            _scsReported = _scs;
            Emit(ParameterStatus("standard_conforming_strings", _scs ? "on" : "off"));
        }

        ReadyForQuerySent++;
        Emit(ReadyForQuery('I'));
    }

    private void Error(string sqlState, string message)
    {
        _errorsForCurrent++;
        _failed = true;
        if (_current!.Code is (byte)'P' or (byte)'B' or (byte)'D' or (byte)'E' or (byte)'C' or (byte)'H')
        {
            _skipTillSync = true;
        }

        Emit(Fields('E', ('S', "ERROR"), ('V', "ERROR"), ('C', sqlState), ('M', message)));
    }

    private void Emit(byte[] frame) => emit(frame, _current!);

    private static byte[] Columns() => RowDescription(Field("n", 0, 0, 23, 4, -1, 0));

    /// <summary>
    /// The safety oracle, at the moment the server would act on the text: allowed, or requiring approval and
    /// <paramref name="approved"/> (forwarded on an approved request, or only prepared).
    /// </summary>
    private void Safe(SessionPolicy policy, string text, bool scs, string what, bool approved)
    {
        var decision = policy.Decide(Encoding.UTF8.GetBytes(text), new SqlLexSettings(scs));
        if (!decision.IsAllowed && !(approved && decision.Action == PolicyAction.RequireApproval))
        {
            throw new FuzzFindingException(
                $"SAFETY: the server {what} \"{text}\" (standard_conforming_strings {(scs ? "on" : "off")}) for {_current!.From}, which the policy "
                + $"{policy.Snapshot.Source} in force when the client sent it denies ({decision.Action}, rule {policy.Rule(decision.Rule).Name})");
        }
    }

    private static string CString(ReadOnlySpan<byte> body, out int next)
    {
        int end = body.IndexOf((byte)0);
        next = end + 1;
        return Encoding.UTF8.GetString(body[..end]);
    }

    private sealed record Prepared(string Text, bool Scs, ServerText View);

    private sealed class Portal(Prepared statement, SessionPolicy policy, bool approved)
    {
        /// <summary>Bound by a Bind forwarded on an approved request.</summary>
        public bool Approved { get; } = approved;

        public Prepared Statement { get; } = statement;

        /// <summary>The policy in force when the client sent the Bind that made this portal.</summary>
        public SessionPolicy Policy { get; } = policy;

        public int NextRow { get; set; }

        public bool Done { get; set; }
    }
}

internal enum CommandKind : byte
{
    Select,
    Other,
    SetScs,
    CloseCursor,
}

internal enum Failure : byte
{
    None,

    /// <summary>Fails when planned: at Bind, or before any row of a simple query.</summary>
    Plan,

    /// <summary>Fails while running, after <see cref="Command.FailAfterRows"/> rows.</summary>
    Run,
}

/// <summary>One command of a text as the server parsed it.</summary>
internal sealed record Command(CommandKind Kind, string Tag = "", int Rows = 0, bool Value = false, Failure FailsAt = Failure.None, int FailAfterRows = 0);

/// <summary>
/// How the server reads one of the conversation's texts: its commands, or a syntax error. Written out by hand
/// for each text and both settings of standard_conforming_strings (not derived from the lexer under test).
/// </summary>
internal sealed record ServerText(bool SyntaxError, Command[] Statements)
{
    private static readonly ServerText Error = new(true, []);

    public Command? First => Statements.Length > 0 ? Statements[0] : null;

    public static ServerText Read(string text, bool scs)
    {
        var select = new Command(CommandKind.Select, Rows: 1);
        var drop = new Command(CommandKind.Other, "DROP TABLE");
        return text switch
        {
            PgConversationTexts.Select1 => Of(select),
            PgConversationTexts.SelectRows => Of(new Command(CommandKind.Select, Rows: 2)),
            PgConversationTexts.DeleteAll => Of(new Command(CommandKind.Other, "DELETE 3")),
            PgConversationTexts.UpdateWhere => Of(new Command(CommandKind.Other, "UPDATE 1")),
            PgConversationTexts.DropTable => Of(drop),
            PgConversationTexts.SyntaxError => Error,

            // 'a\' is a whole string when backslashes are literal; with them escaping, the quote is escaped.
            PgConversationTexts.BackslashHidesDrop => scs ? Of(select, drop) : Of(select),
            PgConversationTexts.BackslashRevealsDrop => scs ? Of(select) : Of(select, drop),
            PgConversationTexts.ScsOff => Of(new Command(CommandKind.SetScs, Value: false)),
            PgConversationTexts.ScsOn => Of(new Command(CommandKind.SetScs, Value: true)),
            PgConversationTexts.FailsAtPlan => Of(new Command(CommandKind.Select, Rows: 1, FailsAt: Failure.Plan)),
            PgConversationTexts.FailsAtRun => Of(new Command(CommandKind.Select, Rows: 3, FailsAt: Failure.Run, FailAfterRows: 1)),
            PgConversationTexts.Empty => new ServerText(false, []),

            // The gate's substitute Query closes a cursor that cannot exist.
            _ when text.StartsWith("CLOSE \"", StringComparison.Ordinal) && text.EndsWith('"') => Of(new Command(CommandKind.CloseCursor)),
            _ => Error,
        };
    }

    private static ServerText Of(params Command[] commands) => new(false, commands);
}

/// <summary>The texts the conversations use (Parse and Query), by index from the fuzz input.</summary>
internal static class PgConversationTexts
{
    public const string Select1 = "SELECT 1";
    public const string SelectRows = "SELECT a FROM t WHERE b = 'x'";
    public const string DeleteAll = "DELETE FROM t";
    public const string UpdateWhere = "UPDATE t SET a = 1 WHERE b = 2";
    public const string DropTable = "DROP TABLE t";
    public const string SyntaxError = "SELECT 1 +";
    public const string BackslashHidesDrop = "SELECT 'a\\'; DROP TABLE t; --'";
    public const string BackslashRevealsDrop = "SELECT 'a\\''; DROP TABLE t; --'";
    public const string ScsOff = "SET standard_conforming_strings = off";
    public const string ScsOn = "SET standard_conforming_strings = on";
    public const string FailsAtPlan = "SELECT 1/0";
    public const string FailsAtRun = "SELECT 1/a FROM t";
    public const string Empty = "";

    public static readonly string[] All =
    [
        Select1, SelectRows, DeleteAll, UpdateWhere, DropTable, SyntaxError, BackslashHidesDrop, BackslashRevealsDrop,
        ScsOff, ScsOn, FailsAtPlan, FailsAtRun, Empty,
    ];
}
