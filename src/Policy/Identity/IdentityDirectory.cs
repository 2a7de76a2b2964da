using System.Collections.Frozen;

namespace Gatehouse.Policy.Identity;

/// <summary>An agent or person known to the gateway by a static secret, and the connections it may use.</summary>
/// <param name="Name">The identity name the client presents as its user name.</param>
/// <param name="Secret">The SCRAM-SHA-256 verifier of its secret; the secret itself is never stored.</param>
/// <param name="Connections">The configured connections it may open.</param>
public sealed record AgentIdentity(string Name, ScramVerifier Secret, FrozenSet<string> Connections);

/// <summary>
/// The identities of one configuration snapshot, immutable. Lookups are ordinal: identity names are
/// case-sensitive, as PostgreSQL role names are.
/// </summary>
public sealed class IdentityDirectory
{
    private readonly FrozenDictionary<string, AgentIdentity> _identities;

    public IdentityDirectory(IEnumerable<AgentIdentity> identities)
    {
        AgentIdentity[] all = [.. identities];
        _identities = all.ToFrozenDictionary(i => i.Name, StringComparer.Ordinal);
        Names = [.. all.Select(i => i.Name).Distinct(StringComparer.Ordinal)];
    }

    public int Count => _identities.Count;

    /// <summary>Every identity's name, in the order they were given (the config's).</summary>
    public IReadOnlyList<string> Names { get; }

    public bool TryGet(string name, out AgentIdentity? identity) => _identities.TryGetValue(name, out identity);

    /// <summary>Whether the identity may open the connection. Later: grants and policy bindings decide.</summary>
    public static bool MayUse(AgentIdentity identity, string connection) => identity.Connections.Contains(connection);
}
