using System.Collections.Frozen;

namespace Gatehouse.Policy.Rules;

/// <summary>
/// A compiled policy: roles, bindings and rules turned into lookup structures, immutable. Produced by the
/// policy compiler (or <see cref="Unrestricted"/>); held by a <see cref="PolicyStore"/>.
/// </summary>
public sealed class PolicySnapshot
{
    private static long s_versions;

    private SessionPolicy? _everything;
    private CompiledBinding[] _bindings = [];
    private FrozenDictionary<string, CompiledBinding[]> _byIdentity = FrozenDictionary<string, CompiledBinding[]>.Empty;
    private CompiledBinding[] _anyIdentity = [];

    private PolicySnapshot(string source)
    {
        Version = Interlocked.Increment(ref s_versions);
        Source = source;
    }

    /// <summary>Increases with every snapshot made in this process.</summary>
    public long Version { get; }

    /// <summary>Where the policy came from (a file path, or "unrestricted").</summary>
    public string Source { get; }

    /// <summary>Whether this is <see cref="Unrestricted"/>.</summary>
    public bool IsUnrestricted => _everything is not null;

    /// <summary>The compiled role policies by role name (empty for <see cref="Unrestricted"/>).</summary>
    public FrozenDictionary<string, SessionPolicy> Roles { get; private set; } = FrozenDictionary<string, SessionPolicy>.Empty;

    /// <summary>The number of bindings.</summary>
    public int BindingCount => _bindings.Length;

    /// <summary>
    /// Every statement allowed, for deployments that configure <c>policy: unrestricted</c> explicitly (and tests of
    /// other features). Never the default.
    /// </summary>
    public static PolicySnapshot Unrestricted { get; } = CreateUnrestricted();

    /// <summary>
    /// The policy of one session: the role the bindings give <paramref name="identity"/> (or one of its
    /// <paramref name="groups"/>) on <paramref name="connection"/>; null when no binding matches (no access).
    /// Bindings are tried in order and the first match wins. Without groups this allocates nothing.
    /// </summary>
    public SessionPolicy? Resolve(string identity, IReadOnlyCollection<string> groups, string connection)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(connection);
        if (_everything is not null)
        {
            return _everything;
        }

        if (groups.Count == 0)
        {
            // Only the bindings that name this identity, or anyone, can match: precomputed per identity, in order.
            CompiledBinding[] candidates = _byIdentity.TryGetValue(identity, out var named) ? named : _anyIdentity;
            foreach (CompiledBinding binding in candidates)
            {
                if (binding.MatchesConnection(connection))
                {
                    return binding.Policy;
                }
            }

            return null;
        }

        foreach (CompiledBinding binding in _bindings)
        {
            if (binding.MatchesConnection(connection) && binding.MatchesIdentity(identity, groups))
            {
                return binding.Policy;
            }
        }

        return null;
    }

    /// <summary>A snapshot whose bindings the compiler fills in once (the role policies point back at it).</summary>
    internal static PolicySnapshot CreateEmpty(string source) => new(source);

    /// <summary>Called once by the compiler before the snapshot is published.</summary>
    internal void Initialize(FrozenDictionary<string, SessionPolicy> roles, CompiledBinding[] bindings)
    {
        Roles = roles;
        _bindings = bindings;
        var named = new Dictionary<string, List<CompiledBinding>>(StringComparer.Ordinal);
        foreach (CompiledBinding binding in bindings)
        {
            foreach (string identity in binding.Identities ?? [])
            {
                if (!named.ContainsKey(identity))
                {
                    named[identity] = [];
                }
            }
        }

        foreach (CompiledBinding binding in bindings)
        {
            foreach (var (identity, list) in named)
            {
                if (binding.AnyIdentity || (binding.Identities?.Contains(identity) ?? false))
                {
                    list.Add(binding);
                }
            }
        }

        _byIdentity = named.ToFrozenDictionary(p => p.Key, p => p.Value.ToArray(), StringComparer.Ordinal);
        _anyIdentity = Array.FindAll(bindings, b => b.AnyIdentity);
    }

    private static PolicySnapshot CreateUnrestricted()
    {
        var snapshot = new PolicySnapshot("unrestricted");
        snapshot._everything = SessionPolicy.AllowEverything(snapshot);
        return snapshot;
    }
}

/// <summary>One binding, compiled: who (identities, groups; null = not stated), where, and the role's policy.</summary>
internal sealed class CompiledBinding(FrozenSet<string>? identities, bool anyIdentity, FrozenSet<string>? groups,
    FrozenSet<string>? connections, SessionPolicy policy)
{
    public FrozenSet<string>? Identities { get; } = identities;

    public bool AnyIdentity { get; } = anyIdentity;

    public FrozenSet<string>? Groups { get; } = groups;

    /// <summary>Null: any connection.</summary>
    public FrozenSet<string>? Connections { get; } = connections;

    public SessionPolicy Policy { get; } = policy;

    public bool MatchesConnection(string connection) => Connections is null || Connections.Contains(connection);

    public bool MatchesIdentity(string identity, IReadOnlyCollection<string> groups)
    {
        if (AnyIdentity || (Identities is not null && Identities.Contains(identity)))
        {
            return true;
        }

        if (Groups is not null)
        {
            foreach (string group in groups)
            {
                if (Groups.Contains(group))
                {
                    return true;
                }
            }
        }

        return false;
    }
}
