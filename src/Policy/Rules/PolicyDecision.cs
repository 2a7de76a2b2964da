namespace Gatehouse.Policy.Rules;

/// <summary>What policy does with a statement, ordered by restrictiveness: combining two takes the larger.</summary>
public enum PolicyAction : byte
{
    Allow = 0,

    /// <summary>Hold the statement until a person approves it (until approvals exist, refused like a denial).</summary>
    RequireApproval = 1,

    Deny = 2,
}

/// <summary>
/// A decision and the rule that made it: an index into the deciding <see cref="SessionPolicy"/>'s rule table
/// (<see cref="SessionPolicy.Rule"/>). Rule 0 is "allowed by the role"; a decision is two bytes and a lookup.
/// </summary>
public readonly record struct PolicyDecision(PolicyAction Action, ushort Rule)
{
    public static PolicyDecision Allowed => default;

    public bool IsAllowed => Action == PolicyAction.Allow;

    /// <summary>The more restrictive of two decisions; on a tie, the first.</summary>
    public static PolicyDecision Strictest(PolicyDecision a, PolicyDecision b) => b.Action > a.Action ? b : a;
}

/// <summary>One rule of a compiled policy, as a client and a log see it.</summary>
/// <param name="Name">The rule's name in the policy file (or a built-in name such as <c>role:reader</c>).</param>
/// <param name="Description">Why it matched, in words: "DDL is not allowed for role reader".</param>
/// <param name="Message">
/// The ErrorResponse message text, UTF-8, precompiled so a denial writes it without allocating:
/// <c>statement denied by policy rule "no-drop": DROP is not allowed</c>.
/// </param>
public sealed record PolicyRuleInfo(string Name, string Description, byte[] Message);
