using Gatehouse.Policy.Rules;
using YamlDotNet.RepresentationModel;

namespace Gatehouse.Host.Config;

/// <summary>The state of a policy file when it was read: a change of either tells the reloader to read it again.</summary>
public sealed record PolicyFileStamp(DateTime LastWriteUtc, long Length)
{
    /// <summary>The stamp of the file (or of the file a symbolic link finally points at); null when it is missing.</summary>
    public static PolicyFileStamp? Of(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
            {
                info = target;
            }

            return info.Exists ? new PolicyFileStamp(info.LastWriteTimeUtc, info.Length) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>The outcome of loading a policy file: a compiled snapshot, or the errors that prevented it.</summary>
/// <param name="Snapshot">Null when there is any error.</param>
/// <param name="Errors">Positioned errors, in the policy file's own name.</param>
/// <param name="Warnings">Positioned warnings (names the rest of the config does not know, unused roles).</param>
/// <param name="Stamp">The file's stamp taken before it was read; null when the file does not exist.</param>
/// <param name="Text">The text that was compiled; null when it could not be read.</param>
public sealed record PolicyLoadResult(
    PolicySnapshot? Snapshot, IReadOnlyList<ConfigError> Errors, IReadOnlyList<ConfigError> Warnings, PolicyFileStamp? Stamp, string? Text);

/// <summary>
/// Reads a policy file (docs/policy.md) into a <see cref="PolicyModel"/> and compiles it. The structure
/// (keys, types) is checked here, the meaning (names, references, patterns) by <see cref="PolicyCompiler"/>;
/// both report the line and column of the offending value, and every error is reported, not just the first.
/// </summary>
public static class PolicyLoader
{
    private static readonly string[] TopKeys = ["unknown_statements", "rules", "roles", "bindings", "masking"];
    private static readonly string[] MaskingKeys = ["key", "rules"];
    private static readonly string[] MaskRuleKeys =
    [
        "name", "columns", "detect", "patterns", "style", "keep", "expressions", "binary", "copy", "predicates", "identities", "groups", "roles",
        "connections",
    ];
    private static readonly string[] RoleKeys = ["allow", "rules"];
    private static readonly string[] RuleKeys = ["name", "description", "classes", "shapes", "copy", "tables", "functions", "action"];
    private static readonly string[] BindingKeys = ["identities", "groups", "connections", "role", "access", "max_duration", "auto_approve"];
    private static readonly string[] AutoApproveKeys = ["groups", "max_duration"];

    /// <summary>Reads and compiles the file at <paramref name="path"/> (named as given in errors).</summary>
    public static PolicyLoadResult LoadFile(string path, PolicyCompileContext context)
    {
        // The stamp is taken first: a change made while the file is read is seen by the next look.
        var stamp = PolicyFileStamp.Of(path);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new PolicyLoadResult(null, [new ConfigError(path, 0, 0, $"cannot read the policy file: {ex.Message}")], [], stamp, null);
        }

        return Load(text, path, context) with { Stamp = stamp };
    }

    /// <summary>Parses and compiles policy text; <paramref name="file"/> names it in errors and becomes its source.</summary>
    public static PolicyLoadResult Load(string text, string file, PolicyCompileContext context)
    {
        var yaml = new YamlReader(file);
        PolicyModel? model = Parse(yaml, text);
        var warnings = new List<ConfigError>();
        if (model is not null)
        {
            PolicyCompilation compilation = PolicyCompiler.TryCompile(model, context);
            yaml.Errors.AddRange(compilation.Errors.Select(e => ToConfigError(file, e)));
            warnings.AddRange(compilation.Warnings.Select(w => ToConfigError(file, w)));
            if (yaml.Errors.Count == 0)
            {
                return new PolicyLoadResult(compilation.Snapshot, [], warnings, null, text);
            }
        }

        return new PolicyLoadResult(null, yaml.Errors, warnings, null, text);
    }

    private static ConfigError ToConfigError(string file, PolicyIssue issue) =>
        new(issue.Position.File ?? file, issue.Position.Line, issue.Position.Column, issue.Message);

    private static PolicyPosition At(YamlReader yaml, YamlNode node) => new(yaml.File, node.Start.Line, node.Start.Column);

    private static PolicyModel? Parse(YamlReader yaml, string text)
    {
        var root = yaml.Load(text, "the policy");
        if (root is null)
        {
            return null;
        }

        yaml.CheckKeys(root, "the policy", TopKeys);
        var rules = Rules(yaml, root, "the policy");
        var roles = new List<PolicyRoleModel>();
        switch (yaml.Get(root, "roles"))
        {
            case null:
                break;
            case YamlMappingNode map:
                foreach (var (key, value) in map.Children)
                {
                    var name = Scalar(yaml, key, "role names");
                    if (name is null)
                    {
                        continue;
                    }

                    if (value is not YamlMappingNode role)
                    {
                        yaml.Error(value, $"role '{name.Text}' must be a mapping with 'allow' (and optionally 'rules')");
                        continue;
                    }

                    string where = $"role '{name.Text}'";
                    yaml.CheckKeys(role, where, RoleKeys);
                    var allowNode = yaml.Get(role, "allow");
                    PolicyList? allow = allowNode is YamlScalarNode { Value: "all" } all
                        ? new PolicyList([new PolicyValue("all", At(yaml, all))], At(yaml, all))
                        : List(yaml, role, "allow", where);
                    if (allow is null)
                    {
                        if (allowNode is null)
                        {
                            yaml.Error(key, $"{where} needs 'allow': the statement classes it may run, or 'all'");
                        }

                        continue;
                    }

                    roles.Add(new PolicyRoleModel(name, allow) { Rules = Rules(yaml, role, where) });
                }

                break;
            case var other:
                yaml.Error(other, "'roles' must be a mapping of role names to roles (reader: { allow: [read] })");
                break;
        }

        var bindings = new List<PolicyBindingModel>();
        int index = 0;
        foreach (var map in yaml.Sequence(root, "bindings", "the policy"))
        {
            string where = $"bindings[{index++}]";
            yaml.CheckKeys(map, where, BindingKeys);
            var roleNode = yaml.Get(map, "role");
            var role = roleNode is null ? null : Scalar(yaml, roleNode, $"'role' in {where}");
            if (roleNode is null)
            {
                yaml.Error(map, $"{where} needs 'role'");
            }

            if (role is null)
            {
                continue;
            }

            bindings.Add(new PolicyBindingModel(role, At(yaml, map))
            {
                Identities = List(yaml, map, "identities", where),
                Groups = List(yaml, map, "groups", where),
                Connections = List(yaml, map, "connections", where),
                Access = Optional(yaml, map, "access", where),
                MaxDuration = Optional(yaml, map, "max_duration", where),
                AutoApprove = AutoApprove(yaml, map, where),
            });
        }

        var unknownNode = yaml.Get(root, "unknown_statements");
        return new PolicyModel(yaml.File, new PolicyPosition(yaml.File, root.Start.Line, root.Start.Column))
        {
            UnknownStatements = unknownNode is null ? null : Scalar(yaml, unknownNode, "'unknown_statements'"),
            Rules = rules,
            Roles = roles,
            Bindings = bindings,
            Masking = Masking(yaml, root),
        };
    }

    /// <summary><c>masking: { key: { env: NAME }, rules: [...] }</c>.</summary>
    private static PolicyMaskingModel? Masking(YamlReader yaml, YamlMappingNode root)
    {
        var map = yaml.Mapping(root, "masking", "the policy");
        if (map is null)
        {
            return null;
        }

        yaml.CheckKeys(map, "masking", MaskingKeys);
        (string, PolicyValue)? key = null;
        if (yaml.Get(map, "key") is { } keyNode)
        {
            if (keyNode is YamlMappingNode { Children.Count: 1 } secret
                && secret.Children.First() is var (kindNode, valueNode)
                && kindNode is YamlScalarNode { Value: "env" or "file" or "value" } kind
                && Scalar(yaml, valueNode, "masking.key") is { } value)
            {
                key = (kind.Value!, value);
            }
            else
            {
                yaml.Error(keyNode, "masking.key must be one of { env: NAME }, { file: PATH } or { value: TEXT }");
            }
        }

        var rules = new List<PolicyMaskRuleModel>();
        int index = 0;
        foreach (var rule in yaml.Sequence(map, "rules", "masking"))
        {
            string where = $"masking.rules[{index++}]";
            yaml.CheckKeys(rule, where, MaskRuleKeys);
            var nameNode = yaml.Get(rule, "name");
            if (nameNode is null)
            {
                yaml.Error(rule, $"{where} needs 'name'");
                continue;
            }

            if (Scalar(yaml, nameNode, $"'name' in {where}") is not { } name)
            {
                continue;
            }

            where = $"masking rule '{name.Text}'";
            rules.Add(new PolicyMaskRuleModel(name, At(yaml, rule))
            {
                Columns = List(yaml, rule, "columns", where),
                Detect = List(yaml, rule, "detect", where),
                Patterns = List(yaml, rule, "patterns", where),
                Style = Optional(yaml, rule, "style", where),
                Keep = Optional(yaml, rule, "keep", where),
                Expressions = Optional(yaml, rule, "expressions", where),
                Binary = Optional(yaml, rule, "binary", where),
                Copy = Optional(yaml, rule, "copy", where),
                Predicates = Optional(yaml, rule, "predicates", where),
                Identities = List(yaml, rule, "identities", where),
                Groups = List(yaml, rule, "groups", where),
                Roles = List(yaml, rule, "roles", where),
                Connections = List(yaml, rule, "connections", where),
            });
        }

        return new PolicyMaskingModel(At(yaml, map)) { Key = key, Rules = rules };
    }

    private static PolicyValue? Optional(YamlReader yaml, YamlMappingNode map, string key, string where) =>
        yaml.Get(map, key) is { } node ? Scalar(yaml, node, $"'{key}' in {where}") : null;

    /// <summary><c>auto_approve: { groups: [...], max_duration: 1h }</c> of a grant binding.</summary>
    private static PolicyAutoApproveModel? AutoApprove(YamlReader yaml, YamlMappingNode binding, string where)
    {
        var map = yaml.Mapping(binding, "auto_approve", where);
        if (map is null)
        {
            return null;
        }

        string autoWhere = $"auto_approve of {where}";
        yaml.CheckKeys(map, autoWhere, AutoApproveKeys);
        return new PolicyAutoApproveModel(At(yaml, map))
        {
            Groups = List(yaml, map, "groups", autoWhere),
            MaxDuration = Optional(yaml, map, "max_duration", autoWhere),
        };
    }

    private static List<PolicyRuleModel> Rules(YamlReader yaml, YamlMappingNode parent, string owner)
    {
        var result = new List<PolicyRuleModel>();
        int index = 0;
        foreach (var map in yaml.Sequence(parent, "rules", owner))
        {
            string where = $"rules[{index++}] of {owner}";
            yaml.CheckKeys(map, where, RuleKeys);
            var nameNode = yaml.Get(map, "name");
            var actionNode = yaml.Get(map, "action");
            var name = nameNode is null ? null : Scalar(yaml, nameNode, $"'name' in {where}");
            var action = actionNode is null ? null : Scalar(yaml, actionNode, $"'action' in {where}");
            if (nameNode is null)
            {
                yaml.Error(map, $"{where} needs 'name'");
            }

            if (actionNode is null)
            {
                yaml.Error(map, $"{where} needs 'action': deny or require_approval");
            }

            var descriptionNode = yaml.Get(map, "description");
            var description = descriptionNode is null ? null : Scalar(yaml, descriptionNode, $"'description' in {where}");
            if (name is null || action is null)
            {
                continue;
            }

            where = $"rule '{name.Text}'";
            result.Add(new PolicyRuleModel(name, action, At(yaml, map))
            {
                Description = description,
                Classes = List(yaml, map, "classes", where),
                Shapes = List(yaml, map, "shapes", where),
                Copy = List(yaml, map, "copy", where),
                Tables = List(yaml, map, "tables", where),
                Functions = List(yaml, map, "functions", where),
            });
        }

        return result;
    }

    /// <summary>A list of text values; null when absent or not a list (reported). Emptiness is the compiler's to report.</summary>
    private static PolicyList? List(YamlReader yaml, YamlMappingNode map, string key, string where)
    {
        var node = yaml.Get(map, key);
        if (node is null)
        {
            return null;
        }

        if (node is not YamlSequenceNode sequence)
        {
            yaml.Error(node, $"'{key}' in {where} must be a list, such as [a, b]");
            return null;
        }

        var values = new List<PolicyValue>();
        foreach (var item in sequence.Children)
        {
            if (Scalar(yaml, item, $"entries of '{key}' in {where}") is { } value)
            {
                values.Add(value);
            }
        }

        return new PolicyList(values, At(yaml, node));
    }

    private static PolicyValue? Scalar(YamlReader yaml, YamlNode node, string what)
    {
        if (node is YamlScalarNode { Value: { Length: > 0 } text })
        {
            return new PolicyValue(text, At(yaml, node));
        }

        yaml.Error(node, $"{what} must be non-empty text values");
        return null;
    }
}
