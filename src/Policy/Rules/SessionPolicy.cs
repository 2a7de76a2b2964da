using System.Numerics;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Policy.Rules;

/// <summary>
/// The compiled rules that apply to one session (one role on one connection): what the relay asks for every
/// statement. Deciding is lexing, classifying and a few mask tests; it allocates nothing.
/// </summary>
/// <remarks>
/// Order of a decision, per statement: the role's allowed classes (a class outside them denies, by the built-in
/// rule <c>role:NAME</c>; the class <c>unknown</c> outside them takes <c>unknown_statements</c>), then the global
/// rules, then the role's rules. The strictest action wins; on a tie, the first in that order. Over a
/// multi-statement text, the strictest statement wins; on a tie, the first statement.
/// </remarks>
public sealed class SessionPolicy
{
    /// <summary>Objects extracted per statement; a statement naming more matches every object criterion.</summary>
    internal const int MaxObjects = 32;

    // The rule table's fixed head; policy rules follow in evaluation order.
    internal const ushort AllowedRule = 0;
    internal const ushort FirstClassRule = 1;
    internal const ushort UnknownRule = FirstClassRule + ClassBits;
    internal const ushort FunctionCallRule = UnknownRule + 1;
    internal const ushort FirstPolicyRule = FunctionCallRule + 1;

    /// <summary>Class flags below Unknown: read ... session, one built-in <c>role:NAME</c> entry each.</summary>
    internal const int ClassBits = 10;

    // When several classes are outside the role, the client is told about the most dangerous one.
    private static readonly StatementClass[] s_severity =
    [
        StatementClass.Privilege, StatementClass.FileAccess, StatementClass.OpaqueCode, StatementClass.Admin, StatementClass.Ddl,
        StatementClass.Write, StatementClass.Copy, StatementClass.Session, StatementClass.Transaction, StatementClass.Read,
    ];

    private readonly PolicyRuleInfo[] _infos;
    private readonly CompiledRule[] _rules;
    private readonly StatementClass _allowed;
    private readonly PolicyDecision _unknown;
    private readonly PolicyDecision _functionCall;
    private readonly bool _unrestricted;
    private readonly bool _needsObjects;

    internal SessionPolicy(PolicySnapshot snapshot, string role, StatementClass allowed, PolicyAction unknownStatements,
        CompiledRule[] rules, PolicyRuleInfo[] infos, bool unrestricted = false)
    {
        Snapshot = snapshot;
        Role = role;
        _allowed = allowed;
        _rules = rules;
        _infos = infos;
        _unrestricted = unrestricted;
        _unknown = unknownStatements == PolicyAction.Allow ? PolicyDecision.Allowed : new PolicyDecision(unknownStatements, UnknownRule);
        foreach (CompiledRule rule in rules)
        {
            _needsObjects |= rule.HasObjects;
        }

        // The FunctionCall message names a function by OID: a call of opaque code whose name no rule can see, so
        // it matches every rule about opaque code and every object criterion (fail closed).
        _functionCall = unrestricted ? PolicyDecision.Allowed
            : (allowed & StatementClass.OpaqueCode) == 0 ? new PolicyDecision(PolicyAction.Deny, FunctionCallRule)
            : ApplyRules(PolicyDecision.Allowed, StatementClass.OpaqueCode, StatementShape.None, CopyDetail.None, [], default, [],
                relationsKnown: false, functionsKnown: false);
    }

    public PolicySnapshot Snapshot { get; }

    /// <summary>The role the session's binding gave it.</summary>
    public string Role { get; }

    /// <summary>Whether every statement is allowed without looking at it (<c>policy: unrestricted</c>).</summary>
    public bool IsUnrestricted => _unrestricted;

    /// <summary>The statement classes the role allows.</summary>
    public StatementClass AllowedClasses => _allowed;

    /// <summary>Whether any rule of this session names tables or functions (then statements' objects are extracted).</summary>
    public bool UsesObjects => _needsObjects;

    /// <summary>The number of entries of the rule table (<see cref="Rule"/>), built-in ones included.</summary>
    public int RuleCount => _infos.Length;

    internal static SessionPolicy AllowEverything(PolicySnapshot snapshot) =>
        new(snapshot, "unrestricted", (StatementClass)ushort.MaxValue, PolicyAction.Allow, [],
            [new PolicyRuleInfo("allowed", "allowed: policy unrestricted", [])], unrestricted: true);

    /// <summary>
    /// Decides a whole statement text (a simple Query, which may hold several statements, or the text of a
    /// Parse): the strictest decision over its statements. An empty text (or only comments) is allowed.
    /// </summary>
    public PolicyDecision Decide(ReadOnlySpan<byte> sql, SqlLexSettings settings)
    {
        if (_unrestricted)
        {
            return PolicyDecision.Allowed;
        }

        // Objects are extracted only when a rule can use them: the common point select pays nothing for it.
        Span<SqlObjectRef> objects = _needsObjects ? stackalloc SqlObjectRef[MaxObjects] : default;
        PolicyDecision result = PolicyDecision.Allowed;
        foreach (SqlStatementRange range in new SqlSplitter<PostgresDialect>(sql, settings))
        {
            // A lexer error ends the split: the rest of the text is one statement the server will not parse as we did.
            result = PolicyDecision.Strictest(result, DecideOne(sql.Slice(range.Start, range.Length), range.HasError, settings, objects));
            if (result.Action == PolicyAction.Deny)
            {
                break;
            }
        }

        return result;
    }

    /// <summary>
    /// Decides one statement without splitting (the text of a Parse message, which the server refuses to hold
    /// more than one command): a ";" followed by more text makes it Unknown.
    /// </summary>
    public PolicyDecision DecideStatement(ReadOnlySpan<byte> statement, SqlLexSettings settings)
    {
        if (_unrestricted)
        {
            return PolicyDecision.Allowed;
        }

        Span<SqlObjectRef> objects = _needsObjects ? stackalloc SqlObjectRef[MaxObjects] : default;
        return DecideOne(statement, false, settings, objects);
    }

    /// <summary>
    /// The fast-path FunctionCall message ('F'): calls a function by OID, invisible to SQL rules. Denied unless the
    /// role allows class <c>opaque_code</c>; then every rule about opaque code or objects applies.
    /// </summary>
    public PolicyDecision DecideFunctionCall() => _functionCall;

    /// <summary>The rule a decision names.</summary>
    public PolicyRuleInfo Rule(ushort index) => _infos[index < _infos.Length ? index : 0];

    private PolicyDecision DecideOne(ReadOnlySpan<byte> statement, bool lexError, SqlLexSettings settings, Span<SqlObjectRef> objects)
    {
        SqlStatementInfo info = SqlClassifier.Classify(statement, settings, objects);
        StatementClass cls = info.Class | (lexError ? StatementClass.Unknown : StatementClass.None);
        if (cls == StatementClass.None)
        {
            return PolicyDecision.Allowed; // an empty statement
        }

        StatementClass outside = cls & ~_allowed;
        if ((outside & ~StatementClass.Unknown) != 0)
        {
            return new PolicyDecision(PolicyAction.Deny, ClassRule(outside));
        }

        PolicyDecision decision = outside != 0 ? _unknown : PolicyDecision.Allowed;
        if (_rules.Length == 0)
        {
            return decision;
        }

        // Where the classifier cannot have listed every name, object criteria match (fail closed): a statement it
        // did not understand, code it cannot see into, more names than the span holds; and for relations, DDL,
        // privilege and admin statements in which it listed none (DROP VIEW v, GRANT ... ON t, VACUUM t).
        ReadOnlySpan<SqlObjectRef> names = objects[..info.ObjectCount];
        bool functionsKnown = !info.ObjectsTruncated && (cls & (StatementClass.Unknown | StatementClass.OpaqueCode)) == 0;
        bool relationsKnown = functionsKnown
            && ((cls & (StatementClass.Ddl | StatementClass.Privilege | StatementClass.Admin)) == 0 || HasRelation(names));
        return ApplyRules(decision, cls, info.Shape, info.Copy, statement, settings, names, relationsKnown, functionsKnown);
    }

    private static bool HasRelation(ReadOnlySpan<SqlObjectRef> objects)
    {
        foreach (SqlObjectRef o in objects)
        {
            if (o.Kind == SqlObjectKind.Relation)
            {
                return true;
            }
        }

        return false;
    }

    private static ushort ClassRule(StatementClass outside)
    {
        foreach (StatementClass flag in s_severity)
        {
            if ((outside & flag) != 0)
            {
                return (ushort)(FirstClassRule + BitOperations.TrailingZeroCount((uint)flag));
            }
        }

        return FirstClassRule;
    }

    private PolicyDecision ApplyRules(PolicyDecision decision, StatementClass cls, StatementShape shape, CopyDetail copy,
        ReadOnlySpan<byte> statement, SqlLexSettings settings, ReadOnlySpan<SqlObjectRef> objects, bool relationsKnown, bool functionsKnown)
    {
        CompiledRule[] rules = _rules;
        for (int i = 0; i < rules.Length; i++)
        {
            ref readonly CompiledRule rule = ref rules[i];
            if (rule.Action <= decision.Action || !rule.MatchesStatement(cls, shape, copy))
            {
                continue;
            }

            if ((rule.Tables is not null && relationsKnown) || (rule.Functions is not null && functionsKnown))
            {
                // From here on, rule order needs the object matches: finish on the slow path.
                return ApplyObjectRules(decision, i, cls, shape, copy, statement, settings, objects, relationsKnown, functionsKnown);
            }

            decision = new PolicyDecision(rule.Action, rule.Index);
            if (decision.Action == PolicyAction.Deny)
            {
                return decision;
            }
        }

        return decision;
    }

    private const byte NeedTables = 1;
    private const byte NeedFunctions = 2;
    private const byte Candidate = 4;

    // Rules from `first` on, with their object criteria: each referenced name is normalized once and tested
    // against every candidate rule that still waits for a name of its kind.
    private PolicyDecision ApplyObjectRules(PolicyDecision decision, int first, StatementClass cls, StatementShape shape, CopyDetail copy,
        ReadOnlySpan<byte> statement, SqlLexSettings settings, ReadOnlySpan<SqlObjectRef> objects, bool relationsKnown, bool functionsKnown)
    {
        CompiledRule[] rules = _rules;
        Span<byte> state = stackalloc byte[rules.Length - first];
        byte waiting = 0;
        for (int i = first; i < rules.Length; i++)
        {
            ref readonly CompiledRule rule = ref rules[i];
            if (rule.HasObjects && rule.MatchesStatement(cls, shape, copy))
            {
                // A criterion whose names are not known counts as matched already.
                byte needs = (byte)((rule.Tables is not null && relationsKnown ? NeedTables : 0)
                                    | (rule.Functions is not null && functionsKnown ? NeedFunctions : 0));
                state[i - first] = (byte)(Candidate | needs);
                waiting |= needs;
            }
        }

        Span<byte> schema = stackalloc byte[SqlNames.PartBuffer];
        Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
        foreach (SqlObjectRef o in objects)
        {
            byte kind = o.Kind == SqlObjectKind.Relation ? NeedTables : NeedFunctions;
            if ((waiting & kind) == 0)
            {
                continue;
            }

            bool parsed = SqlNames.TryNormalize(statement.Slice(o.Start, o.Length), settings, schema, out int schemaLength, name, out int nameLength);
            waiting = 0;
            for (int j = 0; j < state.Length; j++)
            {
                if ((state[j] & kind) != 0
                    && (!parsed || AnyMatches(kind == NeedTables ? rules[first + j].Tables! : rules[first + j].Functions!,
                        schemaLength >= 0, schema[..Math.Max(schemaLength, 0)], name[..nameLength])))
                {
                    state[j] &= (byte)~kind;
                }

                waiting |= (byte)(state[j] & (NeedTables | NeedFunctions));
            }
        }

        for (int i = first; i < rules.Length; i++)
        {
            ref readonly CompiledRule rule = ref rules[i];
            bool matched = rule.HasObjects ? state[i - first] == Candidate : rule.MatchesStatement(cls, shape, copy);
            if (matched && rule.Action > decision.Action)
            {
                decision = new PolicyDecision(rule.Action, rule.Index);
            }
        }

        return decision;
    }

    private static bool AnyMatches(ObjectPattern[] patterns, bool qualified, ReadOnlySpan<byte> schema, ReadOnlySpan<byte> name)
    {
        foreach (ObjectPattern pattern in patterns)
        {
            if (pattern.Matches(qualified, schema, name))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>One rule, compiled: masks for the criteria (0 = not stated) and patterns for the objects.</summary>
internal readonly struct CompiledRule(StatementClass classes, StatementShape shapes, CopyDetail copy,
    ObjectPattern[]? tables, ObjectPattern[]? functions, PolicyAction action, ushort index)
{
    public readonly StatementClass Classes = classes;
    public readonly StatementShape Shapes = shapes;
    public readonly CopyDetail Copy = copy;
    public readonly ObjectPattern[]? Tables = tables;
    public readonly ObjectPattern[]? Functions = functions;
    public readonly PolicyAction Action = action;
    public readonly ushort Index = index;

    public bool HasObjects => Tables is not null || Functions is not null;

    public bool MatchesStatement(StatementClass cls, StatementShape shape, CopyDetail copy) =>
        (Classes == 0 || (cls & Classes) != 0)
        && (Shapes == 0 || (shape & Shapes) != 0)
        && (Copy == 0 || (copy & Copy) != 0);
}
