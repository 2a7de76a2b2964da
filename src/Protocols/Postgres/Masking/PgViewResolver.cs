namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// Follows view columns to the base table columns they return, and view dependencies to the base table columns
/// they reference. Pure functions over what the loader read, so they are tested without a server.
/// </summary>
/// <remarks>
/// A view's definition, described by the server, names for each output column the relation and column it is a
/// bare reference to (RowDescription's table OID and attribute number), or 0 when it is computed. When that
/// relation is itself a view, its own mapping is followed, up to <see cref="MaxDepth"/> views deep; a cycle
/// (PostgreSQL forbids them, but a catalog read while views are being replaced can look like one) ends there too,
/// as unknown.
/// </remarks>
internal static class PgViewResolver
{
    /// <summary>How many nested views are followed before a column is declared unknown.</summary>
    public const int MaxDepth = 32;

    /// <summary>
    /// Resolves every described view column to its ultimate origin.
    /// </summary>
    /// <param name="described">Each described view's columns as its definition's RowDescription gave them (by
    /// attribute number - 1), with <see cref="PgColumnOrigin.Unknown"/> for a definition that did not describe.</param>
    /// <param name="views">Every view and materialized view of the database, described or not: a column that
    /// refers to a view without a description is unknown.</param>
    public static Dictionary<uint, PgColumnOrigin[]> ResolveOrigins(IReadOnlyDictionary<uint, PgColumnOrigin[]> described, IReadOnlySet<uint> views)
    {
        var resolved = new Dictionary<uint, PgColumnOrigin[]>(described.Count);
        foreach (var (view, columns) in described)
        {
            var origins = new PgColumnOrigin[columns.Length];
            for (int i = 0; i < columns.Length; i++)
            {
                origins[i] = Follow(columns[i], described, views);
            }

            resolved.Add(view, origins);
        }

        return resolved;
    }

    /// <summary>
    /// Resolves every view's dependencies to base table columns.
    /// </summary>
    /// <param name="dependencies">Each view's references from pg_depend (its _RETURN rule's refobjid and
    /// refobjsubid), the view itself excluded.</param>
    /// <param name="resolved">The output of <see cref="ResolveOrigins"/>: a reference to a view column that is a
    /// bare base column becomes that column.</param>
    /// <param name="views">Every view and materialized view: a reference to one of them is followed; anything else
    /// is a base table.</param>
    /// <returns>For each view in <paramref name="dependencies"/>: distinct, sorted by kind, OID, attribute number.</returns>
    public static Dictionary<uint, PgColumnOrigin[]> ResolveDependencies(IReadOnlyDictionary<uint, IReadOnlyList<PgColumnOrigin>> dependencies,
        IReadOnlyDictionary<uint, PgColumnOrigin[]> resolved, IReadOnlySet<uint> views)
    {
        var walk = new DependencyWalk(dependencies, resolved, views);
        foreach (var view in dependencies.Keys)
        {
            walk.Expand(view, 0);
        }

        return walk.Result;
    }

    private static PgColumnOrigin Follow(PgColumnOrigin origin, IReadOnlyDictionary<uint, PgColumnOrigin[]> described, IReadOnlySet<uint> views)
    {
        for (int depth = 0; ; depth++)
        {
            if (!origin.IsColumn || !(views.Contains(origin.Oid) || described.ContainsKey(origin.Oid)))
            {
                // A base table column, an expression, or already unknown.
                return origin;
            }

            if (depth == MaxDepth
                || !described.TryGetValue(origin.Oid, out var columns)
                || (uint)(origin.Attnum - 1) >= (uint)columns.Length)
            {
                return PgColumnOrigin.Unknown;
            }

            origin = columns[origin.Attnum - 1];
        }
    }

    private sealed class DependencyWalk(IReadOnlyDictionary<uint, IReadOnlyList<PgColumnOrigin>> dependencies,
        IReadOnlyDictionary<uint, PgColumnOrigin[]> resolved, IReadOnlySet<uint> views)
    {
        private static readonly PgColumnOrigin[] Incomplete = [PgColumnOrigin.Unknown];

        private readonly HashSet<uint> _inProgress = [];

        public Dictionary<uint, PgColumnOrigin[]> Result { get; } = [];

        public PgColumnOrigin[] Expand(uint view, int depth)
        {
            if (Result.TryGetValue(view, out var done))
            {
                return done;
            }

            if (depth > MaxDepth || !_inProgress.Add(view))
            {
                return Incomplete;
            }

            var columns = new HashSet<PgColumnOrigin>();
            if (dependencies.TryGetValue(view, out var direct))
            {
                foreach (var dependency in direct)
                {
                    if (!dependency.IsColumn || !IsView(dependency.Oid))
                    {
                        columns.Add(dependency);
                    }
                    else if (dependency.Attnum > 0
                             && resolved.TryGetValue(dependency.Oid, out var origins)
                             && dependency.Attnum <= origins.Length
                             && origins[dependency.Attnum - 1].IsColumn)
                    {
                        // A bare column of the nested view: exactly the base column it returns.
                        columns.Add(origins[dependency.Attnum - 1]);
                    }
                    else
                    {
                        // The whole nested view, or a computed column of it: pg_depend does not say which of the
                        // nested view's references the expression uses, so it stands for all of them.
                        columns.UnionWith(Expand(dependency.Oid, depth + 1));
                    }
                }
            }

            _inProgress.Remove(view);
            var sorted = columns.ToArray();
            Array.Sort(sorted, static (a, b) => a.Kind != b.Kind ? a.Kind.CompareTo(b.Kind)
                : a.Oid != b.Oid ? a.Oid.CompareTo(b.Oid)
                : a.Attnum.CompareTo(b.Attnum));
            Result[view] = sorted;
            return sorted;
        }

        private bool IsView(uint oid) => views.Contains(oid) || resolved.ContainsKey(oid);
    }
}
