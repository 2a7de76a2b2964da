namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>How each upstream's catalog cache loads and refreshes. The defaults suit a catalog of tens of thousands of tables.</summary>
internal sealed record PgCatalogOptions
{
    /// <summary>
    /// How often the catalog is reloaded when no session has reported DDL: 5 minutes. Sessions invalidate the
    /// cache when they see DDL; the refresh catches changes made by clients that do not go through the gateway.
    /// </summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The longest a whole load may take, connecting included: 60 s. A catalog of a million columns loads in
    /// seconds; a load that takes longer is stuck, and sessions waiting on it should hear so.
    /// </summary>
    public TimeSpan LoadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The most columns (over all relations, dropped ones included) a load accepts: 1,000,000, a few hundred MB
    /// at most. A larger catalog is refused with a clear error instead of exhausting the gateway's memory.
    /// </summary>
    public int MaxColumns { get; init; } = 1_000_000;

    /// <summary>
    /// The upstream's lock_timeout for the catalog connection: 1 s. Reading a view's definition and describing
    /// it take share locks, which wait behind DDL in an open transaction; such a view is reported unknown rather
    /// than stalling the load.
    /// </summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The largest message accepted from the upstream on the catalog connection (a view definition is one): 64 MiB.</summary>
    public int MaxMessageBytes { get; init; } = 64 * 1024 * 1024;
}
