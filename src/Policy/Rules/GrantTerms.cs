using System.Collections.Frozen;

namespace Gatehouse.Policy.Rules;

/// <summary>
/// What a binding with <c>access: grant</c> allows: its role, the longest grant that may be requested, and which
/// requests the policy approves by itself (<c>auto_approve</c>).
/// </summary>
/// <param name="Role">The role a grant under this binding gives.</param>
/// <param name="MaxDuration">The cap on a requested grant's duration.</param>
/// <param name="AutoApproveGroups">Members of any of these groups are approved without a person; null: nobody.</param>
/// <param name="AutoApproveMaxDuration">The longest grant approved automatically.</param>
/// <param name="Position">Where the binding was written.</param>
public sealed record GrantTerms(
    string Role,
    TimeSpan MaxDuration,
    FrozenSet<string>? AutoApproveGroups,
    TimeSpan AutoApproveMaxDuration,
    PolicyPosition Position)
{
    /// <summary>The cap when a grant binding states no <c>max_duration</c>: a working day.</summary>
    public static readonly TimeSpan DefaultMaxDuration = TimeSpan.FromHours(8);

    /// <summary>Whether a request of <paramref name="duration"/> by a member of <paramref name="groups"/> is approved by the policy.</summary>
    public bool AutoApproves(IReadOnlyCollection<string> groups, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(groups);
        if (AutoApproveGroups is null || duration > AutoApproveMaxDuration || duration > MaxDuration)
        {
            return false;
        }

        foreach (string group in groups)
        {
            if (AutoApproveGroups.Contains(group))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// How a login resolves under a policy with just-in-time grants (<see cref="PolicySnapshot.ResolveAccess"/>).
/// </summary>
/// <param name="Policy">The session's policy; null when the identity has no access now.</param>
/// <param name="GrantEnd">Set when the access comes from a grant: when the last live grant of that role ends.</param>
/// <param name="GrantRole">
/// When <paramref name="Policy"/> is null: the role of the first grant binding that would have matched with a
/// live grant (tell the client to request it); null when no binding matches at all.
/// </param>
public readonly record struct AccessResolution(SessionPolicy? Policy, DateTimeOffset? GrantEnd, string? GrantRole)
{
    /// <summary>Whether the session may proceed.</summary>
    public bool HasAccess => Policy is not null;

    /// <summary>Whether the access comes from a just-in-time grant (the session should end when it ends).</summary>
    public bool ViaGrant => GrantEnd is not null;
}
