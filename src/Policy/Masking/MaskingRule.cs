using System.Collections.Frozen;
using System.Text;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Policy.Masking;

/// <summary>What a rule does with a query that uses a masked column inside an expression.</summary>
public enum MaskExpressionMode : byte
{
    /// <summary>Every computed column of such a query is masked (its origin cannot be known).</summary>
    Mask,

    /// <summary>The query is refused before it runs.</summary>
    Deny,
}

/// <summary>What a rule does with a masked column requested in binary format (types other than text).</summary>
public enum MaskBinaryMode : byte
{
    /// <summary>The value becomes NULL.</summary>
    Null,

    /// <summary>The statement is refused when it asks for binary results.</summary>
    Deny,
}

/// <summary>What a rule does with <c>COPY ... TO STDOUT</c> of a relation with masked columns.</summary>
public enum MaskCopyMode : byte
{
    /// <summary>Rows are masked (text format of a table's columns); other COPY forms are refused.</summary>
    Mask,

    /// <summary>Refused.</summary>
    Deny,
}

/// <summary>
/// One compiled masking rule (docs/policy.md, masking): which stored columns it masks, which detectors it runs
/// over every text value, the style, and the modes for the paths where masking by origin cannot work. Immutable.
/// </summary>
public sealed class MaskingRule
{
    internal MaskingRule(string name, int index, ColumnPattern[] columns, DetectorSpec[] detectors, MaskStyle style)
    {
        Name = name;
        Index = index;
        Columns = columns;
        Detectors = detectors;
        Style = style;
        ExpressionDenial = Denial("it uses a masked column inside an expression, whose result cannot be masked by origin");
        PredicateDenial = Denial("it uses a masked column in WHERE, JOIN, GROUP BY, ORDER BY or HAVING, where probing could reveal it");
        BinaryDenial = Denial("it asks for binary results of a statement that uses masked columns");
        CopyDenial = Denial("COPY of masked columns to the client is not allowed");
        CopyOutDenial = Denial("COPY of a query, or in a format other than text, cannot be masked; copy the table in text format");
        StoreDenial = Denial("it would copy masked values into a table, a view or another statement, where they could be read unmasked");
        StatisticsDenial = Denial("planner statistics (pg_stats, pg_statistic) show stored values of masked columns");
        OpaqueDenial = Denial("it can read values where its text does not show it (SQL given as text, code, a function called by OID, "
                              + "server files or raw pages, a schema rename, or text the gateway cannot read), so masked columns could be read unmasked");
    }

    /// <summary>The rule's name, unique in the policy.</summary>
    public string Name { get; }

    /// <summary>The rule's position in the policy (the tag its detectors report).</summary>
    public int Index { get; }

    /// <summary>The stored columns the rule masks.</summary>
    public IReadOnlyList<ColumnPattern> Columns { get; }

    /// <summary>The value detectors the rule runs over every text value.</summary>
    public IReadOnlyList<DetectorSpec> Detectors { get; }

    public MaskStyle Style { get; }

    public MaskExpressionMode Expressions { get; init; }

    public MaskBinaryMode Binary { get; init; }

    public MaskCopyMode Copy { get; init; }

    /// <summary>Whether masked columns may not appear in WHERE, JOIN, GROUP BY, ORDER BY or HAVING.</summary>
    public bool DenyPredicates { get; init; }

    /// <summary>To whom the rule applies: null is anyone.</summary>
    internal FrozenSet<string>? Identities { get; init; }

    internal FrozenSet<string>? Groups { get; init; }

    internal FrozenSet<string>? Roles { get; init; }

    internal FrozenSet<string>? Connections { get; init; }

    public PolicyRuleInfo ExpressionDenial { get; }

    public PolicyRuleInfo PredicateDenial { get; }

    public PolicyRuleInfo BinaryDenial { get; }

    public PolicyRuleInfo CopyDenial { get; }

    public PolicyRuleInfo CopyOutDenial { get; }

    public PolicyRuleInfo StoreDenial { get; }

    public PolicyRuleInfo StatisticsDenial { get; }

    /// <summary>A statement masking cannot see into (SQL as text, code, FunctionCall, server files, unreadable text).</summary>
    public PolicyRuleInfo OpaqueDenial { get; }

    /// <summary>
    /// Whether the rule applies to a session: every stated criterion must match (identities, or groups when
    /// stated together: either names the person; roles; connections).
    /// </summary>
    public bool AppliesTo(string identity, IReadOnlyCollection<string> groups, string role, string connection)
    {
        if (Identities is not null || Groups is not null)
        {
            bool who = Identities?.Contains(identity) == true;
            if (!who && Groups is not null)
            {
                foreach (string group in groups)
                {
                    if (Groups.Contains(group))
                    {
                        who = true;
                        break;
                    }
                }
            }

            if (!who)
            {
                return false;
            }
        }

        return (Roles is null || Roles.Contains(role)) && (Connections is null || Connections.Contains(connection));
    }

    private PolicyRuleInfo Denial(string reason) =>
        new(Name, reason, Encoding.UTF8.GetBytes($"statement denied by masking rule \"{Name}\": {reason}"));

    public override string ToString() => Name;
}
