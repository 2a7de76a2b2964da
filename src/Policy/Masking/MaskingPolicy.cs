using System.Collections.Concurrent;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// The masking section of a compiled policy: its rules in order and the key of the hash style. Sessions get the
/// rules that apply to them through <see cref="For"/>; sessions with the same rules share one
/// <see cref="SessionMasking"/> (and so one compiled detector set).
/// </summary>
public sealed class MaskingPolicy
{
    private readonly byte[] _key;
    private readonly ConcurrentDictionary<string, SessionMasking> _sets = new(StringComparer.Ordinal);

    internal MaskingPolicy(MaskingRule[] rules, byte[] key)
    {
        Rules = rules;
        _key = key;
    }

    /// <summary>No masking rules.</summary>
    public static MaskingPolicy None { get; } = new([], []);

    public IReadOnlyList<MaskingRule> Rules { get; }

    /// <summary>
    /// The rules that apply to one session; null when none does. The result is shared and immutable.
    /// </summary>
    public SessionMasking? For(string identity, IReadOnlyCollection<string> groups, string role, string connection)
    {
        if (Rules.Count == 0)
        {
            return null;
        }

        var applicable = new List<MaskingRule>();
        foreach (var rule in Rules)
        {
            if (rule.AppliesTo(identity, groups, role, connection))
            {
                applicable.Add(rule);
            }
        }

        if (applicable.Count == 0)
        {
            return null;
        }

        // Sessions with the same rules share one set: keyed by the rules' indexes.
        string id = string.Join(',', applicable.Select(r => r.Index));
        return _sets.GetOrAdd(id, static (id, state) => new SessionMasking(id, [.. state.applicable], state.self.Rules.Count, state.self._key),
            (applicable, self: this));
    }
}

/// <summary>
/// The masking rules of one session (shared by every session they apply to): the stored columns to mask and the
/// detectors to run over every text value, compiled. Immutable.
/// </summary>
public sealed class SessionMasking
{
    private readonly MaskingRule[] _byTag;
    private readonly byte[] _key;

    internal SessionMasking(string id, MaskingRule[] rules, int ruleCount, byte[] key)
    {
        Id = id;
        Rules = rules;
        _key = key;
        _byTag = new MaskingRule[ruleCount];
        foreach (var rule in rules)
        {
            _byTag[rule.Index] = rule;
        }

        ColumnRules = [.. rules.Where(r => r.Columns.Count > 0)];
        Scanner = ValueScanner.Create(rules.SelectMany(r => r.Detectors));
    }

    /// <summary>Identifies the rule set (the applicable rules' indexes): caches built from it are keyed by it.</summary>
    public string Id { get; }

    /// <summary>The applicable rules, in policy order.</summary>
    public IReadOnlyList<MaskingRule> Rules { get; }

    /// <summary>The applicable rules that mask stored columns.</summary>
    public IReadOnlyList<MaskingRule> ColumnRules { get; }

    /// <summary>Every applicable detector, compiled into one scanner; its match tags are rule indexes.</summary>
    public ValueScanner Scanner { get; }

    /// <summary>The hash style's key.</summary>
    public ReadOnlySpan<byte> Key => _key;

    /// <summary>The rule a detector match came from.</summary>
    public MaskingRule RuleOfTag(int tag) => _byTag[tag];

    /// <summary>The first applicable rule that masks a stored column (catalog names, UTF-8); null when none does.</summary>
    public MaskingRule? RuleFor(ReadOnlySpan<byte> schema, ReadOnlySpan<byte> table, ReadOnlySpan<byte> column)
    {
        foreach (var rule in ColumnRules)
        {
            foreach (var pattern in rule.Columns)
            {
                if (pattern.Matches(schema, table, column))
                {
                    return rule;
                }
            }
        }

        return null;
    }
}
