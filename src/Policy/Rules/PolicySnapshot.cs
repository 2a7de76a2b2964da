using System.Collections.Frozen;
using Gatehouse.Policy.Access;

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

    /// <summary>The masking rules; <see cref="Masking.MaskingPolicy.None"/> when the policy masks nothing.</summary>
    public Gatehouse.Policy.Masking.MaskingPolicy Masking { get; internal set; } = Gatehouse.Policy.Masking.MaskingPolicy.None;

    /// <summary>Whether any binding has <c>access: grant</c>.</summary>
    public bool HasGrantBindings { get; private set; }

    /// <summary>
    /// The policy of one session by standing bindings only: the role the first matching binding without
    /// <c>access: grant</c> gives <paramref name="identity"/> (or one of its <paramref name="groups"/>) on
    /// <paramref name="connection"/>; null when none matches (no access). Bindings that need a grant are skipped,
    /// so a caller that does not know about grants fails closed; <see cref="ResolveAccess"/> considers them.
    /// Bindings are tried in order and the first match wins. Without groups this allocates nothing.
    /// </summary>
    public SessionPolicy? Resolve(string identity, IReadOnlyCollection<string> groups, string connection) =>
        ResolveAccess(identity, groups, connection, grants: null, default).Policy;

    /// <summary>
    /// The access of one session: bindings are tried in order; a standing binding that matches the identity (or
    /// one of its groups) and the connection gives its role; a binding with <c>access: grant</c> gives its role
    /// only when <paramref name="grants"/> says the identity holds a grant of that role on the connection live at
    /// <paramref name="now"/>, and is otherwise passed over (a later binding may still match). When none gives a
    /// role, <see cref="AccessResolution.GrantRole"/> names the role of the first grant binding that matched, so
    /// the client can be told what to request. Without groups and without grant bindings this allocates nothing.
    /// </summary>
    /// <param name="grants">Null: no grant is live (grant bindings never match).</param>
    public AccessResolution ResolveAccess(string identity, IReadOnlyCollection<string> groups, string connection, IGrantCheck? grants,
        DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(connection);
        if (_everything is not null)
        {
            return new AccessResolution(_everything, null, null);
        }

        string? wanted = null;
        // Only the bindings that name this identity, or anyone, can match without groups: precomputed, in order.
        CompiledBinding[] candidates = groups.Count == 0 ? (_byIdentity.TryGetValue(identity, out var named) ? named : _anyIdentity) : _bindings;
        foreach (CompiledBinding binding in candidates)
        {
            if (!binding.MatchesConnection(connection) || (groups.Count > 0 && !binding.MatchesIdentity(identity, groups)))
            {
                continue;
            }

            if (binding.Grant is not { } grant)
            {
                return new AccessResolution(binding.Policy, null, null);
            }

            if (grants is not null && grants.HasLiveGrant(identity, connection, grant.Role, now, out DateTimeOffset end))
            {
                return new AccessResolution(binding.Policy, end, null);
            }

            wanted ??= grant.Role;
        }

        return new AccessResolution(null, null, wanted);
    }

    /// <summary>
    /// The terms under which <paramref name="identity"/> (with <paramref name="groups"/>) may request a grant on
    /// <paramref name="connection"/>: the first binding with <c>access: grant</c> that matches them and gives
    /// <paramref name="role"/> (any role when null). Null when no grant binding allows the request.
    /// </summary>
    public GrantTerms? FindGrantTerms(string identity, IReadOnlyCollection<string> groups, string connection, string? role)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(connection);
        foreach (CompiledBinding binding in _bindings)
        {
            if (binding.Grant is { } grant && (role is null || grant.Role == role)
                && binding.MatchesConnection(connection) && binding.MatchesIdentity(identity, groups))
            {
                return grant;
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
        HasGrantBindings = Array.Exists(bindings, b => b.Grant is not null);
    }

    private static PolicySnapshot CreateUnrestricted()
    {
        var snapshot = new PolicySnapshot("unrestricted");
        snapshot._everything = SessionPolicy.AllowEverything(snapshot);
        return snapshot;
    }
}

/// <summary>
/// One binding, compiled: who (identities, groups; null = not stated), where, the role's policy, and for
/// <c>access: grant</c> the grant terms (null: standing).
/// </summary>
internal sealed class CompiledBinding(FrozenSet<string>? identities, bool anyIdentity, FrozenSet<string>? groups,
    FrozenSet<string>? connections, SessionPolicy policy, GrantTerms? grant = null)
{
    public GrantTerms? Grant { get; } = grant;

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
