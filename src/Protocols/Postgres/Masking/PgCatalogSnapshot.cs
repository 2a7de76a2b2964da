using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// The upstream database's catalog as one immutable load: relations by OID (with view column origins), and the
/// type OIDs whose values masking can rewrite as characters. Swapped whole by <see cref="PgCatalogCache"/>; the
/// relay reads it without locks, and lookups do not allocate.
/// </summary>
internal sealed class PgCatalogSnapshot
{
    /// <summary>The type <c>unknown</c> (a quoted literal without a type): its wire forms are its characters.</summary>
    public const uint UnknownTypeOid = 705;

    /// <summary>The type <c>json</c>.</summary>
    public const uint JsonTypeOid = 114;

    /// <summary>The type <c>jsonb</c>.</summary>
    public const uint JsonbTypeOid = 3802;

    private readonly FrozenDictionary<uint, PgRelation> _relations;
    private readonly FrozenSet<uint> _textTypes;
    private readonly FrozenSet<uint> _jsonTypes;

    public PgCatalogSnapshot(long version, DateTimeOffset loadedAt, IEnumerable<PgRelation> relations,
        IEnumerable<uint> textTypes, IEnumerable<uint> jsonTypes)
    {
        Version = version;
        LoadedAt = loadedAt;
        _relations = relations.ToFrozenDictionary(r => r.Oid);
        _textTypes = textTypes.ToFrozenSet();
        _jsonTypes = jsonTypes.ToFrozenSet();
    }

    /// <summary>1 for the first load of a cache, one more for each load after it.</summary>
    public long Version { get; }

    /// <summary>When the catalog was read (the start of the load's catalog transaction).</summary>
    public DateTimeOffset LoadedAt { get; }

    /// <summary>The number of views and materialized views.</summary>
    public int ViewCount { get; init; }

    /// <summary>Views whose definition could not be read or described on the catalog connection: their columns are unknown.</summary>
    public int ViewsNotDescribed { get; init; }

    /// <summary>The number of relations (tables, views, materialized views, partitioned and foreign tables).</summary>
    public int RelationCount => _relations.Count;

    /// <summary>Every relation, in no particular order (diagnostics and tests; the relay uses <see cref="TryGetRelation"/>).</summary>
    public IEnumerable<PgRelation> Relations => _relations.Values;

    /// <summary>
    /// Types whose text and binary wire forms are the same characters: the string category (text, varchar, bpchar,
    /// name, citext...), domains over them, and <c>unknown</c>.
    /// </summary>
    public IReadOnlySet<uint> TextTypes => _textTypes;

    /// <summary><c>json</c>, <c>jsonb</c> and domains over them.</summary>
    public IReadOnlySet<uint> JsonTypes => _jsonTypes;

    /// <summary><see cref="TextTypes"/> without the interface call (the relay asks once per column per statement).</summary>
    public bool IsTextType(uint typeOid) => _textTypes.Contains(typeOid);

    /// <summary><see cref="JsonTypes"/> without the interface call.</summary>
    public bool IsJsonType(uint typeOid) => _jsonTypes.Contains(typeOid);

    /// <summary>
    /// The relation with this OID. Only user relations are here: system catalogs (pg_catalog,
    /// information_schema, TOAST) are not.
    /// </summary>
    public bool TryGetRelation(uint oid, [MaybeNullWhen(false)] out PgRelation relation) => _relations.TryGetValue(oid, out relation);
}
