namespace Gatehouse.Policy.Rules;

/// <summary>Where a policy value came from: file, 1-based line and column (0 when built in code).</summary>
public readonly record struct PolicyPosition(string? File, long Line, long Column)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}" : File ?? "(policy)";
}

/// <summary>A text value of a policy and where it was written, so a compile error can point at it.</summary>
public sealed record PolicyValue(string Text, PolicyPosition Position)
{
    /// <summary>A value built in code (benchmarks, tests): no position.</summary>
    public PolicyValue(string text)
        : this(text, default)
    {
    }

    /// <summary>A value built in code: <c>Classes = ["read", "write"]</c>.</summary>
    public static implicit operator PolicyValue(string text) => new(text);

    /// <summary>The named alternative of the implicit conversion.</summary>
    public static PolicyValue FromString(string text) => new(text);

    public override string ToString() => Text;
}

/// <summary>
/// A list of policy values that knows where it was written, so an "empty list" error points at the list (any
/// <see cref="IReadOnlyList{T}"/> works in a model; this one adds the position).
/// </summary>
public sealed class PolicyList : IReadOnlyList<PolicyValue>
{
    private readonly PolicyValue[] _items;

    public PolicyList(IEnumerable<PolicyValue> items, PolicyPosition position = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        _items = [.. items];
        Position = position;
    }

    public PolicyPosition Position { get; }

    public int Count => _items.Length;

    public PolicyValue this[int index] => _items[index];

    /// <summary>Values built in code: <c>PolicyList list = ["read", "write"];</c></summary>
    public static implicit operator PolicyList(string[] texts) => FromTexts(texts);

    public static PolicyList FromTexts(IEnumerable<string> texts) => new(texts.Select(t => new PolicyValue(t)));

    public IEnumerator<PolicyValue> GetEnumerator() => ((IEnumerable<PolicyValue>)_items).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>
/// A policy as written (docs/policy.md), before validation: plain records, every value positioned. The host
/// reads one from YAML; code can build one directly. <see cref="PolicyCompiler"/> validates and compiles it.
/// </summary>
/// <param name="Source">Where the policy came from (the file path); becomes <see cref="PolicySnapshot.Source"/>.</param>
/// <param name="Position">The position of the whole document, for errors about it as a whole.</param>
public sealed record PolicyModel(string Source, PolicyPosition Position)
{
    /// <summary><c>unknown_statements</c>: deny (default), require_approval or allow.</summary>
    public PolicyValue? UnknownStatements { get; init; }

    /// <summary>Global rules: they apply to every role, before the role's own rules.</summary>
    public IReadOnlyList<PolicyRuleModel> Rules { get; init; } = [];

    public IReadOnlyList<PolicyRoleModel> Roles { get; init; } = [];

    /// <summary>In order: the first binding that matches a session gives it its role.</summary>
    public IReadOnlyList<PolicyBindingModel> Bindings { get; init; } = [];

    /// <summary>Masking of result values (docs/policy.md, masking); null when the policy masks nothing.</summary>
    public PolicyMaskingModel? Masking { get; init; }
}

/// <summary>The <c>masking</c> section: rules, and the key of the <c>hash</c> style.</summary>
/// <param name="Position">The section's mapping.</param>
public sealed record PolicyMaskingModel(PolicyPosition Position)
{
    /// <summary>
    /// The key of the hash style: <c>{ env: NAME }</c>, <c>{ file: PATH }</c> or <c>{ value: TEXT }</c> (kind and
    /// text); read when the policy is compiled, so a reload picks up a rotated key.
    /// </summary>
    public (string Kind, PolicyValue Value)? Key { get; init; }

    public IReadOnlyList<PolicyMaskRuleModel> Rules { get; init; } = [];
}

/// <summary>
/// A masking rule: what it masks (stored columns, value detectors, patterns), how (style), for whom (identities,
/// groups, roles, connections; all when none is stated), and the modes for the paths origin cannot cover.
/// </summary>
/// <param name="Name">Unique among the masking rules.</param>
/// <param name="Position">The rule's mapping.</param>
public sealed record PolicyMaskRuleModel(PolicyValue Name, PolicyPosition Position)
{
    /// <summary><c>schema.table.column</c> or <c>table.column</c> patterns, with <c>*</c> globs.</summary>
    public IReadOnlyList<PolicyValue>? Columns { get; init; }

    /// <summary>Built-in detectors: card, ssn, email, phone, iban, aws_key, secret_token, jwt, pem_private_key.</summary>
    public IReadOnlyList<PolicyValue>? Detect { get; init; }

    /// <summary>Custom detectors: regular expressions, run in linear time.</summary>
    public IReadOnlyList<PolicyValue>? Patterns { get; init; }

    /// <summary>redact (default), keep_last, hash or null.</summary>
    public PolicyValue? Style { get; init; }

    /// <summary>For keep_last: how many trailing characters stay (default 4).</summary>
    public PolicyValue? Keep { get; init; }

    /// <summary>mask (default) or deny.</summary>
    public PolicyValue? Expressions { get; init; }

    /// <summary>null (default) or deny.</summary>
    public PolicyValue? Binary { get; init; }

    /// <summary>mask (default) or deny.</summary>
    public PolicyValue? Copy { get; init; }

    /// <summary>allow (default) or deny.</summary>
    public PolicyValue? Predicates { get; init; }

    public IReadOnlyList<PolicyValue>? Identities { get; init; }

    public IReadOnlyList<PolicyValue>? Groups { get; init; }

    public IReadOnlyList<PolicyValue>? Roles { get; init; }

    public IReadOnlyList<PolicyValue>? Connections { get; init; }
}

/// <summary>A role: the statement classes it allows and its own rules.</summary>
/// <param name="Name">The role's name (a key under <c>roles</c>).</param>
/// <param name="Allow">Class names (read, write, ..., unknown) or <c>all</c>.</param>
public sealed record PolicyRoleModel(PolicyValue Name, IReadOnlyList<PolicyValue> Allow)
{
    public IReadOnlyList<PolicyRuleModel> Rules { get; init; } = [];
}

/// <summary>
/// A rule: criteria and an action. A null criterion is not stated; a stated one must match (every stated
/// criterion must match for the rule to match).
/// </summary>
/// <param name="Name">Unique among the global rules and the rules of each role.</param>
/// <param name="Action"><c>deny</c> or <c>require_approval</c>.</param>
/// <param name="Position">The rule's mapping, for errors about the rule as a whole.</param>
public sealed record PolicyRuleModel(PolicyValue Name, PolicyValue Action, PolicyPosition Position)
{
    /// <summary>Said to the client after the rule name; generated from the criteria when absent.</summary>
    public PolicyValue? Description { get; init; }

    public IReadOnlyList<PolicyValue>? Classes { get; init; }

    public IReadOnlyList<PolicyValue>? Shapes { get; init; }

    public IReadOnlyList<PolicyValue>? Copy { get; init; }

    /// <summary>Relation patterns written like SQL names: <c>public.payments</c>, <c>billing.*</c>, <c>"MixedCase".t</c>.</summary>
    public IReadOnlyList<PolicyValue>? Tables { get; init; }

    /// <summary>Function patterns: <c>pg_read_file</c>, <c>dblink*</c>, <c>pg_catalog.lo_import</c>.</summary>
    public IReadOnlyList<PolicyValue>? Functions { get; init; }
}

/// <summary>Who gets which role where. <c>*</c> in identities or connections matches anyone / any connection.</summary>
/// <param name="Role">The role's name.</param>
/// <param name="Position">The binding's mapping.</param>
public sealed record PolicyBindingModel(PolicyValue Role, PolicyPosition Position)
{
    public IReadOnlyList<PolicyValue>? Identities { get; init; }

    public IReadOnlyList<PolicyValue>? Groups { get; init; }

    public IReadOnlyList<PolicyValue>? Connections { get; init; }

    /// <summary>
    /// <c>standing</c> (default): the binding gives its role whenever it matches. <c>grant</c>: only while the
    /// identity holds a live just-in-time grant of the role on the connection.
    /// </summary>
    public PolicyValue? Access { get; init; }

    /// <summary>For <c>access: grant</c>: the longest grant that may be requested (a duration such as 8h; default 8h).</summary>
    public PolicyValue? MaxDuration { get; init; }

    /// <summary>For <c>access: grant</c>: requests approved without a person.</summary>
    public PolicyAutoApproveModel? AutoApprove { get; init; }
}

/// <summary>
/// <c>auto_approve</c> of a grant binding: a request from a member of one of <see cref="Groups"/> for at most
/// <see cref="MaxDuration"/> is approved at once, by the policy.
/// </summary>
/// <param name="Position">The <c>auto_approve</c> mapping.</param>
public sealed record PolicyAutoApproveModel(PolicyPosition Position)
{
    public IReadOnlyList<PolicyValue>? Groups { get; init; }

    /// <summary>Default: the binding's <c>max_duration</c>.</summary>
    public PolicyValue? MaxDuration { get; init; }
}

/// <summary>A problem found while compiling a policy, at the position of the offending value.</summary>
public sealed record PolicyIssue(PolicyPosition Position, string Message)
{
    public override string ToString() => $"{Position}: {Message}";
}

/// <summary>What a compile knows about the rest of the configuration, to warn about names it does not know.</summary>
/// <param name="IsKnownIdentity">Whether an identity name is configured; null: do not check.</param>
/// <param name="IsKnownConnection">Whether a connection name is configured; null: do not check.</param>
public sealed record PolicyCompileContext(Func<string, bool>? IsKnownIdentity, Func<string, bool>? IsKnownConnection)
{
    public static PolicyCompileContext None { get; } = new(null, null);
}

/// <summary>The outcome of compiling a policy: a snapshot when there was no error.</summary>
public sealed record PolicyCompilation(PolicySnapshot? Snapshot, IReadOnlyList<PolicyIssue> Errors, IReadOnlyList<PolicyIssue> Warnings);

/// <summary>Thrown by <see cref="PolicyCompiler.Compile"/> for a policy with errors; carries all of them.</summary>
public sealed class PolicyCompileException : Exception
{
    public PolicyCompileException(IReadOnlyList<PolicyIssue> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Errors = errors;
    }

    public PolicyCompileException()
        : this([])
    {
    }

    public PolicyCompileException(string message)
        : this([new PolicyIssue(default, message)])
    {
    }

    public PolicyCompileException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [new PolicyIssue(default, message)];
    }

    public IReadOnlyList<PolicyIssue> Errors { get; }
}
