using System.Collections.Frozen;
using System.Text;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Policy.Masking;

/// <summary>Validates and compiles the <c>masking</c> section of a policy (docs/policy.md); errors carry positions.</summary>
internal static class MaskingCompiler
{
    /// <summary>Bytes a hash key must have at least.</summary>
    public const int MinKeyBytes = 16;

    public static MaskingPolicy Compile(PolicyMaskingModel model, IEnumerable<string> roles, Action<PolicyPosition, string> error,
        Action<PolicyPosition, string> warning)
    {
        var roleNames = roles.ToHashSet(StringComparer.Ordinal);
        var rules = new List<MaskingRule>();
        var names = new Dictionary<string, PolicyPosition>(StringComparer.Ordinal);
        bool needsKey = false;
        foreach (var rule in model.Rules)
        {
            string name = rule.Name.Text;
            if (name.Length is 0 or > 63 || !name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-' or '.'))
            {
                error(rule.Name.Position, $"masking rule name '{name}' must be 1 to 63 letters, digits, '_', '-' or '.'");
            }

            if (!names.TryAdd(name, rule.Name.Position))
            {
                error(rule.Name.Position, $"masking rule '{name}' is defined twice (first at line {names[name].Line})");
            }

            int index = rules.Count;
            string where = $"masking rule '{name}'";
            var columns = new List<ColumnPattern>();
            foreach (var value in NonEmpty(rule.Columns, "columns", where, rule.Position, error))
            {
                if (ColumnPattern.Parse(value.Text, out string? problem) is { } pattern)
                {
                    columns.Add(pattern);
                }
                else
                {
                    error(value.Position, $"'columns' of {where}: {problem}");
                }
            }

            var detectors = new List<DetectorSpec>();
            foreach (var value in NonEmpty(rule.Detect, "detect", where, rule.Position, error))
            {
                if (DetectorNames.TryParse(value.Text, out var kind) && kind != DetectorKind.Custom)
                {
                    detectors.Add(new DetectorSpec(kind, index));
                }
                else
                {
                    error(value.Position, $"unknown detector '{value.Text}' in {where}; expected one of: {string.Join(", ", DetectorNames.All)}");
                }
            }

            foreach (var value in NonEmpty(rule.Patterns, "patterns", where, rule.Position, error))
            {
                if (ValueScanner.ValidatePattern(value.Text) is { } problem)
                {
                    error(value.Position, $"pattern of {where}: {problem}");
                }
                else
                {
                    detectors.Add(new DetectorSpec(DetectorKind.Custom, index, value.Text));
                }
            }

            if (rule.Columns is null && rule.Detect is null && rule.Patterns is null)
            {
                error(rule.Position, $"{where} masks nothing: give it 'columns', 'detect' or 'patterns'");
            }

            var style = Style(rule, where, error);
            needsKey |= style.Kind == MaskStyleKind.Hash;
            var roleFilter = Set(rule.Roles, "roles", where, rule.Position, error);
            foreach (var role in rule.Roles ?? [])
            {
                if (!roleNames.Contains(role.Text))
                {
                    error(role.Position, $"{where} names role '{role.Text}', which is not defined under 'roles'");
                }
            }

            rules.Add(new MaskingRule(name, index, [.. columns], [.. detectors], style)
            {
                Expressions = Mode(rule.Expressions, "expressions", where, MaskExpressionMode.Mask, error, ("mask", MaskExpressionMode.Mask), ("deny", MaskExpressionMode.Deny)),
                Binary = Mode(rule.Binary, "binary", where, MaskBinaryMode.Null, error, ("null", MaskBinaryMode.Null), ("deny", MaskBinaryMode.Deny)),
                Copy = Mode(rule.Copy, "copy", where, MaskCopyMode.Mask, error, ("mask", MaskCopyMode.Mask), ("deny", MaskCopyMode.Deny)),
                DenyPredicates = Mode(rule.Predicates, "predicates", where, false, error, ("allow", false), ("deny", true)),
                Identities = Set(rule.Identities, "identities", where, rule.Position, error),
                Groups = Set(rule.Groups, "groups", where, rule.Position, error),
                Roles = roleFilter,
                Connections = Set(rule.Connections, "connections", where, rule.Position, error),
            });
        }

        if (model.Rules.Count == 0)
        {
            warning(model.Position, "the masking section has no rules; nothing is masked");
        }

        byte[] key = new byte[SipHash.KeyLength]; // unused: no rule hashes without a key
        if (model.Key is { } keyModel)
        {
            key = MaskText.DeriveKey(ReadKey(keyModel.Kind, keyModel.Value, error));
        }
        else if (needsKey)
        {
            error(model.Position, "a masking rule uses style hash, which needs masking.key: { env: NAME } or { file: PATH } (at least 16 bytes)");
        }

        return new MaskingPolicy([.. rules], key);
    }

    private static MaskStyle Style(PolicyMaskRuleModel rule, string where, Action<PolicyPosition, string> error)
    {
        string style = rule.Style?.Text ?? "redact";
        var kind = style switch
        {
            "redact" => MaskStyleKind.Redact,
            "keep_last" => MaskStyleKind.KeepLast,
            "hash" => MaskStyleKind.Hash,
            "null" => MaskStyleKind.Null,
            _ => (MaskStyleKind?)null,
        };
        if (kind is null)
        {
            error(rule.Style!.Position, $"'style' of {where} must be redact, keep_last, hash or null, not '{style}'");
            return MaskStyle.Redact;
        }

        int keep = 0;
        if (rule.Keep is { } keepValue)
        {
            if (kind != MaskStyleKind.KeepLast)
            {
                error(keepValue.Position, $"'keep' of {where} applies only to style keep_last");
            }
            else if (!int.TryParse(keepValue.Text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out keep)
                     || keep is < 1 or > MaskStyle.MaxKeep)
            {
                error(keepValue.Position, $"'keep' of {where} must be a whole number from 1 to {MaskStyle.MaxKeep}, not '{keepValue.Text}'");
            }
        }
        else if (kind == MaskStyleKind.KeepLast)
        {
            keep = 4;
        }

        return new MaskStyle(kind.Value, keep);
    }

    private static T Mode<T>(PolicyValue? value, string key, string where, T fallback, Action<PolicyPosition, string> error, params (string Name, T Mode)[] modes)
    {
        if (value is null)
        {
            return fallback;
        }

        foreach (var (name, mode) in modes)
        {
            if (value.Text == name)
            {
                return mode;
            }
        }

        error(value.Position, $"'{key}' of {where} must be {string.Join(" or ", modes.Select(m => m.Name))}, not '{value.Text}'");
        return fallback;
    }

    private static IEnumerable<PolicyValue> NonEmpty(IReadOnlyList<PolicyValue>? list, string key, string where, PolicyPosition position,
        Action<PolicyPosition, string> error)
    {
        if (list is { Count: 0 })
        {
            error(list is PolicyList { Position.Line: > 0 } p ? p.Position : position, $"'{key}' of {where} is an empty list; leave it out or name at least one");
        }

        return list ?? [];
    }

    private static FrozenSet<string>? Set(IReadOnlyList<PolicyValue>? list, string key, string where, PolicyPosition position, Action<PolicyPosition, string> error) =>
        list is null ? null : NonEmpty(list, key, where, position, error).Select(v => v.Text).ToFrozenSet(StringComparer.Ordinal);

    private static byte[] ReadKey(string kind, PolicyValue value, Action<PolicyPosition, string> error)
    {
        string? text;
        try
        {
            text = kind switch
            {
                "env" => Environment.GetEnvironmentVariable(value.Text)
                         ?? throw new InvalidOperationException($"environment variable {value.Text} is not set"),
                "file" => File.ReadAllText(value.Text).TrimEnd('\r', '\n'),
                _ => value.Text,
            };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            error(value.Position, $"masking.key cannot be read: {(ex is InvalidOperationException ? ex.Message : ex.GetType().Name)}");
            return [];
        }

        byte[] key = Encoding.UTF8.GetBytes(text);
        if (key.Length < MinKeyBytes)
        {
            error(value.Position, $"masking.key must have at least {MinKeyBytes} bytes (it has {key.Length})");
        }

        return key;
    }
}
