namespace Gatehouse.Policy.Access;

/// <summary>
/// Whether an identity holds a live just-in-time grant. Asked at login (and when a session re-resolves its role
/// after a policy reload) for bindings with <c>access: grant</c>. Synchronous and cheap: answered from memory.
/// </summary>
public interface IGrantCheck
{
    /// <summary>
    /// True when <paramref name="identity"/> holds a grant of <paramref name="role"/> on
    /// <paramref name="connection"/> that is live at <paramref name="now"/>; <paramref name="end"/> is then the
    /// latest end among its live grants (the session may not outlive it).
    /// </summary>
    bool HasLiveGrant(string identity, string connection, string role, DateTimeOffset now, out DateTimeOffset end);
}

/// <summary>
/// Where a login reports the groups its credential proved (an access token's groups claim). A grant requested
/// later, through the admin API where no token is presented, is matched against them: bindings that name
/// <c>groups</c>, and <c>auto_approve</c>. Remembered in memory only, until the credential expires.
/// </summary>
public interface IGroupMemory
{
    /// <summary>Remembers <paramref name="groups"/> for <paramref name="identity"/> until <paramref name="until"/>; the latest login wins.</summary>
    void Remember(string identity, IReadOnlyCollection<string> groups, DateTimeOffset until);
}
