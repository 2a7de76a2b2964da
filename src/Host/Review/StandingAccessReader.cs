using Gatehouse.Host.Config;

namespace Gatehouse.Host.Review;

/// <summary>
/// Standing access for the review: for every static identity of the config (<c>identities[].name</c>) and every
/// connection it may open, the role the first standing binding of the current policy gives it (no groups: static
/// identities have none). Token identities are not listed anywhere, so their standing access is not known.
/// </summary>
public static class StandingAccessReader
{
    /// <summary>The standing access of every static identity, and the set of identities it covers.</summary>
    /// <param name="config">The loaded config (its identity directory and policy).</param>
    public static (IReadOnlyList<StandingAccess> Access, IReadOnlySet<string> Known) Read(GatehouseConfig config)
    {
        var directory = config.Postgres.Identities;
        var access = new List<StandingAccess>();
        foreach (var name in directory.Names)
        {
            directory.TryGet(name, out var identity);
            foreach (var connection in identity!.Connections.Order(StringComparer.Ordinal))
            {
                if (config.Policy.Resolve(name, [], connection) is { } policy)
                {
                    access.Add(new StandingAccess(name, connection, policy.Role));
                }
            }
        }

        var known = directory.Names.ToHashSet(StringComparer.Ordinal);
        return (access, known);
    }
}
