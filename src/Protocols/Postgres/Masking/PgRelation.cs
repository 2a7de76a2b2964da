namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// One relation of the upstream database as the catalog showed it: name, kind, column names by attribute number
/// and, for views and materialized views, where each column comes from. Immutable; lookups do not allocate.
/// </summary>
internal sealed class PgRelation
{
    private readonly string?[] _columns;
    private readonly PgColumnOrigin[]? _origins;

    /// <param name="oid">pg_class.oid.</param>
    /// <param name="schema">pg_namespace.nspname.</param>
    /// <param name="name">pg_class.relname.</param>
    /// <param name="kind">pg_class.relkind: r, v, m, p or f.</param>
    /// <param name="columns">Column names by attribute number - 1; null where a column was dropped.</param>
    /// <param name="origins">For views and materialized views: each column's resolved origin, by attribute number - 1.</param>
    /// <param name="dependsOn">For views and materialized views: the base table columns the definition references.</param>
    public PgRelation(uint oid, string schema, string name, char kind, string?[] columns, PgColumnOrigin[]? origins = null,
        IReadOnlyList<PgColumnOrigin>? dependsOn = null)
    {
        Oid = oid;
        Schema = schema;
        Name = name;
        Kind = kind;
        _columns = columns;
        _origins = origins;
        DependsOn = dependsOn ?? [];
    }

    public uint Oid { get; }

    public string Schema { get; }

    public string Name { get; }

    /// <summary>pg_class.relkind: 'r' table, 'v' view, 'm' materialized view, 'p' partitioned table, 'f' foreign table.</summary>
    public char Kind { get; }

    /// <summary>True for views and materialized views, whose columns have origins of their own.</summary>
    public bool IsView => Kind is 'v' or 'm';

    /// <summary>The highest attribute number (dropped columns included).</summary>
    public int ColumnCount => _columns.Length;

    /// <summary>
    /// Every base table column the definition references, after following nested views, sorted by OID then
    /// attribute number. Attribute number 0 means the whole table (<c>count(*)</c>, a whole-row reference). A
    /// reference to a computed column of a nested view stands for everything that view depends on, as pg_depend
    /// does not say which columns an expression uses. Contains <see cref="PgColumnOrigin.Unknown"/> when the
    /// dependencies could not be followed to the end (a cycle, or nesting deeper than the resolver follows).
    /// Empty for tables.
    /// </summary>
    public IReadOnlyList<PgColumnOrigin> DependsOn { get; }

    /// <summary>The column's name, or null for a dropped or unknown attribute number.</summary>
    public string? ColumnName(short attnum) => (uint)(attnum - 1) < (uint)_columns.Length ? _columns[attnum - 1] : null;

    /// <summary>
    /// Where the column's values come from. For a view or materialized view: the ultimate base table column when
    /// the view column is a bare column (through nested views, subqueries and CTEs),
    /// <see cref="PgColumnOrigin.Expression"/> when it is computed, <see cref="PgColumnOrigin.Unknown"/> when it
    /// could not be resolved. For a table: the column itself. Unknown for a dropped or unknown attribute number.
    /// </summary>
    public PgColumnOrigin Origin(short attnum)
    {
        if ((uint)(attnum - 1) >= (uint)_columns.Length || _columns[attnum - 1] is null)
        {
            return PgColumnOrigin.Unknown;
        }

        if (_origins is null)
        {
            return IsView ? PgColumnOrigin.Unknown : PgColumnOrigin.Column(Oid, attnum);
        }

        return (uint)(attnum - 1) < (uint)_origins.Length ? _origins[attnum - 1] : PgColumnOrigin.Unknown;
    }

    public override string ToString() => $"{Schema}.{Name} ({Oid}, {Kind})";
}
