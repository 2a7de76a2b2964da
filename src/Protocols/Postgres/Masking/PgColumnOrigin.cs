namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>What a <see cref="PgColumnOrigin"/> says about a result column.</summary>
internal enum PgOriginKind : byte
{
    /// <summary>Could not be resolved (the view's definition did not describe, a cycle, a view we do not describe).</summary>
    Unknown,
    /// <summary>A bare column of a base relation: <see cref="PgColumnOrigin.Oid"/> and <see cref="PgColumnOrigin.Attnum"/>.</summary>
    Column,
    /// <summary>Computed: a function, operator, cast, aggregate, literal, set operation or whole-row value.</summary>
    Expression,
}

/// <summary>
/// Where a column's values come from: a base relation column (table OID and attribute number, as PostgreSQL's
/// RowDescription and pg_attribute number them), a computed expression, or unknown. The default value is
/// <see cref="Unknown"/>, so an array that was never filled in says "unknown" rather than something false.
/// In <see cref="PgRelation.DependsOn"/> an attribute number of 0 stands for the whole table (pg_depend's
/// refobjsubid 0: <c>count(*)</c>, a whole-row reference).
/// </summary>
internal readonly record struct PgColumnOrigin
{
    private PgColumnOrigin(PgOriginKind kind, uint oid, short attnum)
    {
        Kind = kind;
        Oid = oid;
        Attnum = attnum;
    }

    /// <summary>The column could not be resolved.</summary>
    public static PgColumnOrigin Unknown => default;

    /// <summary>The column is computed.</summary>
    public static PgColumnOrigin Expression => new(PgOriginKind.Expression, 0, 0);

    public PgOriginKind Kind { get; }

    /// <summary>The base relation's OID; 0 unless <see cref="Kind"/> is <see cref="PgOriginKind.Column"/>.</summary>
    public uint Oid { get; }

    /// <summary>The base column's attribute number (0: the whole table, negative: a system column such as ctid).</summary>
    public short Attnum { get; }

    public bool IsColumn => Kind == PgOriginKind.Column;

    public bool IsExpression => Kind == PgOriginKind.Expression;

    public bool IsUnknown => Kind == PgOriginKind.Unknown;

    /// <summary>A column of relation <paramref name="oid"/> (0 for <paramref name="attnum"/>: the whole relation).</summary>
    public static PgColumnOrigin Column(uint oid, short attnum) => new(PgOriginKind.Column, oid, attnum);

    /// <summary>
    /// What a RowDescription field says about its origin: table OID 0 is an expression; a whole-row reference
    /// (attnum 0 with a table) is computed from every column, so it is an expression too.
    /// </summary>
    public static PgColumnOrigin FromRowDescription(uint tableOid, short attnum) =>
        tableOid == 0 || attnum == 0 ? Expression : Column(tableOid, attnum);

    public override string ToString() => Kind switch
    {
        PgOriginKind.Column => $"{Oid}.{Attnum}",
        PgOriginKind.Expression => "expression",
        _ => "unknown",
    };
}
