using Gatehouse.Policy.Access;

namespace Gatehouse.Policy.Rules;

/// <summary>
/// The live policy: an immutable <see cref="PolicySnapshot"/> swapped atomically on reload. Readers take
/// <see cref="Current"/> once per statement; a session re-resolves its <see cref="SessionPolicy"/> when the
/// snapshot's version changed, so a new policy applies from each session's next statement.
/// </summary>
public sealed class PolicyStore(PolicySnapshot initial)
{
    private PolicySnapshot _current = initial;
    private IGrantCheck? _grants;

    public PolicySnapshot Current => Volatile.Read(ref _current);

    /// <summary>
    /// The live just-in-time grants that bindings with <c>access: grant</c> need (the host's access service); null
    /// when the gateway has none, and then grant bindings never match.
    /// </summary>
    public IGrantCheck? Grants
    {
        get => Volatile.Read(ref _grants);
        set => Volatile.Write(ref _grants, value);
    }

    /// <summary>
    /// Where logins report the groups their access token proved, for grant requests made later (the host's access
    /// service); null when nothing remembers them.
    /// </summary>
    public IGroupMemory? GroupMemory { get; set; }

    /// <summary>Swaps in a compiled policy. Its version must be greater than the current one's.</summary>
    public void Swap(PolicySnapshot next)
    {
        ArgumentNullException.ThrowIfNull(next);
        Volatile.Write(ref _current, next);
    }

    /// <summary>
    /// A login's access under the current policy and the live grants: the one call a protocol makes at login
    /// (<see cref="PolicySnapshot.ResolveAccess"/> with <see cref="Grants"/> and the current time).
    /// </summary>
    public AccessResolution ResolveAccess(string identity, IReadOnlyCollection<string> groups, string connection) =>
        Current.ResolveAccess(identity, groups, connection, Grants, DateTimeOffset.UtcNow);
}
