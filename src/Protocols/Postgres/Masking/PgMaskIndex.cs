using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Gatehouse.Policy.Masking;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// The masked columns of one catalog under one rule set (<see cref="SessionMasking"/>): which (table OID,
/// attribute number) pairs a RowDescription may name that must be masked, and by which rule, with view columns
/// resolved to their base columns; plus the names statements can use to reach them (<see cref="MaskedNames"/>).
/// Built once per catalog load and rule set, shared by every session with those rules; lookups allocate nothing.
/// </summary>
internal sealed class PgMaskIndex
{
    /// <summary>OIDs below this are the system's own objects (FirstNormalObjectId): never user data.</summary>
    public const uint FirstNormalObjectId = 16384;

    private static readonly ConditionalWeakTable<PgCatalogSnapshot, ConcurrentDictionary<string, PgMaskIndex>> s_indexes = new();

    private readonly Dictionary<long, MaskingRule> _columns;

    private PgMaskIndex(PgCatalogSnapshot catalog, SessionMasking rules, Dictionary<long, MaskingRule> columns, MaskedNames names)
    {
        Catalog = catalog;
        Rules = rules;
        _columns = columns;
        Names = names;
    }

    public PgCatalogSnapshot Catalog { get; }

    /// <summary>The rule set the index was built for.</summary>
    public SessionMasking Rules { get; }

    /// <summary>The names of masked columns and of the relations that hold them.</summary>
    public MaskedNames Names { get; }

    /// <summary>The index of a catalog under a rule set: built on first use, then shared.</summary>
    public static PgMaskIndex For(PgCatalogSnapshot catalog, SessionMasking masking) =>
        s_indexes.GetOrCreateValue(catalog).GetOrAdd(masking.Id, static (_, state) => Build(state.catalog, state.masking), (catalog, masking));

    /// <summary>
    /// The rule masking a result column by its origin; null when it is not masked. Attribute number 0 (a whole-row
    /// value of the relation) gives the rule of the relation's masked columns.
    /// </summary>
    public MaskingRule? Column(uint tableOid, short attnum) =>
        _columns.Count > 0 && _columns.TryGetValue(Key(tableOid, attnum), out var rule) ? rule : null;

    /// <summary>Whether a RowDescription's table OID is one this catalog knows (or a system object).</summary>
    public bool Knows(uint tableOid) => tableOid < FirstNormalObjectId || Catalog.TryGetRelation(tableOid, out _);

    private static long Key(uint oid, short attnum) => ((long)oid << 16) | (ushort)attnum;

    private static PgMaskIndex Build(PgCatalogSnapshot catalog, SessionMasking masking)
    {
        var columns = new Dictionary<long, MaskingRule>();
        var columnNames = new List<(byte[], int)>();
        var relationNames = new List<(byte[], int)>();
        if (masking.ColumnRules.Count == 0)
        {
            return new PgMaskIndex(catalog, masking, columns, MaskedNames.Empty);
        }

        // Tables first: a stored column is masked when a rule's pattern names it.
        var wholeTables = new Dictionary<uint, MaskingRule>();
        foreach (var relation in catalog.Relations)
        {
            if (relation.IsView)
            {
                continue;
            }

            byte[] schema = Encoding.UTF8.GetBytes(relation.Schema);
            byte[] table = Encoding.UTF8.GetBytes(relation.Name);
            for (short attnum = 1; attnum <= relation.ColumnCount; attnum++)
            {
                if (relation.ColumnName(attnum) is not { } name)
                {
                    continue;
                }

                byte[] column = Encoding.UTF8.GetBytes(name);
                if (masking.RuleFor(schema, table, column) is { } rule)
                {
                    columns[Key(relation.Oid, attnum)] = rule;
                    columnNames.Add((column, rule.Index));
                    wholeTables.TryAdd(relation.Oid, rule);
                }
            }

            if (wholeTables.TryGetValue(relation.Oid, out var tableRule))
            {
                relationNames.Add((table, tableRule.Index));
                columns[Key(relation.Oid, 0)] = tableRule;
            }
        }

        // Views: a column that returns a masked base column is masked by its rule; a computed (or unresolved) column
        // of a view that reads any masked column, or a whole masked table, is masked by that rule.
        foreach (var relation in catalog.Relations)
        {
            if (!relation.IsView)
            {
                continue;
            }

            MaskingRule? taint = null;
            foreach (var dependency in relation.DependsOn)
            {
                taint = dependency.IsUnknown ? null
                    : dependency.Attnum == 0 ? wholeTables.GetValueOrDefault(dependency.Oid)
                    : columns.GetValueOrDefault(Key(dependency.Oid, dependency.Attnum));
                if (taint is not null)
                {
                    break;
                }
            }

            bool any = false;
            for (short attnum = 1; attnum <= relation.ColumnCount; attnum++)
            {
                if (relation.ColumnName(attnum) is not { } name)
                {
                    continue;
                }

                var origin = relation.Origin(attnum);
                MaskingRule? rule = origin.IsColumn ? columns.GetValueOrDefault(Key(origin.Oid, origin.Attnum)) : taint;
                if (rule is null)
                {
                    continue;
                }

                columns[Key(relation.Oid, attnum)] = rule;
                columnNames.Add((Encoding.UTF8.GetBytes(name), rule.Index));
                any = true;
            }

            if (any || taint is not null)
            {
                var viewRule = taint ?? columns.First(c => (c.Key >> 16) == relation.Oid).Value;
                relationNames.Add((Encoding.UTF8.GetBytes(relation.Name), viewRule.Index));
                columns[Key(relation.Oid, 0)] = viewRule;
            }
        }

        return new PgMaskIndex(catalog, masking, columns, new MaskedNames(Strictest(columnNames, masking), Strictest(relationNames, masking)));
    }

    /// <summary>
    /// One entry per name: when columns (or relations) of the same name are masked by different rules, a statement that
    /// names it is held to the strictest of them (most denied modes; the first in policy order among equals), since the
    /// analysis cannot tell which one it means.
    /// </summary>
    private static List<(byte[] Name, int Rule)> Strictest(List<(byte[] Name, int Rule)> entries, SessionMasking masking)
    {
        var chosen = new Dictionary<string, (byte[] Name, int Rule)>(StringComparer.Ordinal);
        foreach (var (name, rule) in entries)
        {
            string key = Convert.ToHexString(name);
            if (!chosen.TryGetValue(key, out var existing) || Stricter(masking.RuleOfTag(rule), masking.RuleOfTag(existing.Rule)))
            {
                chosen[key] = (name, rule);
            }
        }

        return [.. chosen.Values];
    }

    private static bool Stricter(MaskingRule candidate, MaskingRule current)
    {
        int a = Strictness(candidate);
        int b = Strictness(current);
        return a > b || (a == b && candidate.Index < current.Index);
    }

    private static int Strictness(MaskingRule rule) =>
        (rule.Expressions == MaskExpressionMode.Deny ? 8 : 0) + (rule.DenyPredicates ? 4 : 0) + (rule.Binary == MaskBinaryMode.Deny ? 2 : 0)
        + (rule.Copy == MaskCopyMode.Deny ? 1 : 0);
}
