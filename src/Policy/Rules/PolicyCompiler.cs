using System.Collections.Frozen;
using System.Text;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Policy.Rules;

/// <summary>
/// Validates a <see cref="PolicyModel"/> and compiles it into an immutable <see cref="PolicySnapshot"/>: per role
/// one <see cref="SessionPolicy"/> (allowed class mask, rule masks, normalized object patterns, precompiled
/// client messages), and the bindings as frozen lookups. Every problem is reported with the position of the
/// value that causes it; a policy with any error compiles to nothing. The format is docs/policy.md.
/// </summary>
public static class PolicyCompiler
{
    /// <summary>Rules one session evaluates (global plus the role's): bounds the per-decision stack use.</summary>
    public const int MaxRulesPerRole = 1000;

    /// <summary>The built-in rule for statements whose class is <c>unknown</c>.</summary>
    public const string UnknownRuleName = "unknown_statements";

    /// <summary>The built-in rule for the FunctionCall protocol message.</summary>
    public const string FunctionCallRuleName = "function-call";

    /// <summary>Statement class names, as written in <c>allow</c> and <c>classes</c>.</summary>
    public static FrozenDictionary<string, StatementClass> ClassNames { get; } = new Dictionary<string, StatementClass>
    {
        ["read"] = StatementClass.Read,
        ["write"] = StatementClass.Write,
        ["ddl"] = StatementClass.Ddl,
        ["privilege"] = StatementClass.Privilege,
        ["admin"] = StatementClass.Admin,
        ["copy"] = StatementClass.Copy,
        ["opaque_code"] = StatementClass.OpaqueCode,
        ["file_access"] = StatementClass.FileAccess,
        ["transaction"] = StatementClass.Transaction,
        ["session"] = StatementClass.Session,
        ["unknown"] = StatementClass.Unknown,

        // Every class the classifier understands; not `unknown`, which must be allowed by name.
        ["all"] = AllKnown,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Shape names, as written in <c>shapes</c>.</summary>
    public static FrozenDictionary<string, StatementShape> ShapeNames { get; } = new Dictionary<string, StatementShape>
    {
        ["delete_without_where"] = StatementShape.DeleteWithoutWhere,
        ["update_without_where"] = StatementShape.UpdateWithoutWhere,
        ["truncate"] = StatementShape.Truncate,
        ["drop"] = StatementShape.Drop,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>COPY detail names, as written in <c>copy</c>.</summary>
    public static FrozenDictionary<string, CopyDetail> CopyNames { get; } = new Dictionary<string, CopyDetail>
    {
        ["to"] = CopyDetail.To,
        ["from"] = CopyDetail.From,
        ["client"] = CopyDetail.Client,
        ["file"] = CopyDetail.File,
        ["program"] = CopyDetail.Program,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private const StatementClass AllKnown = StatementClass.Read | StatementClass.Write | StatementClass.Ddl | StatementClass.Privilege
        | StatementClass.Admin | StatementClass.Copy | StatementClass.OpaqueCode | StatementClass.FileAccess
        | StatementClass.Transaction | StatementClass.Session;

    private static readonly (StatementClass Class, string Name, string Words)[] s_classWords =
    [
        (StatementClass.Read, "read", "read"),
        (StatementClass.Write, "write", "write"),
        (StatementClass.Ddl, "ddl", "DDL"),
        (StatementClass.Privilege, "privilege", "privilege"),
        (StatementClass.Admin, "admin", "administration"),
        (StatementClass.Copy, "copy", "COPY"),
        (StatementClass.OpaqueCode, "opaque_code", "opaque code"),
        (StatementClass.FileAccess, "file_access", "file access"),
        (StatementClass.Transaction, "transaction", "transaction"),
        (StatementClass.Session, "session", "session"),
        (StatementClass.Unknown, "unknown", "unrecognized"),
    ];

    /// <summary>Compiles a policy; throws <see cref="PolicyCompileException"/> with every error when it has any.</summary>
    public static PolicySnapshot Compile(PolicyModel model, PolicyCompileContext? context = null)
    {
        PolicyCompilation result = TryCompile(model, context);
        return result.Snapshot ?? throw new PolicyCompileException(result.Errors);
    }

    /// <summary>Compiles a policy, returning the errors and warnings instead of throwing.</summary>
    public static PolicyCompilation TryCompile(PolicyModel model, PolicyCompileContext? context = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = new Compilation(model, context ?? PolicyCompileContext.None);
        return c.Run();
    }

    private sealed class RuleDraft(PolicyRuleModel model, CompiledRule rule, PolicyRuleInfo info)
    {
        public PolicyRuleModel Model { get; } = model;

        public CompiledRule Rule { get; } = rule;

        public PolicyRuleInfo Info { get; } = info;
    }

    private sealed class Compilation(PolicyModel model, PolicyCompileContext context)
    {
        private readonly List<PolicyIssue> _errors = [];
        private readonly List<PolicyIssue> _warnings = [];

        public PolicyCompilation Run()
        {
            PolicyAction unknown = PolicyAction.Deny;
            if (model.UnknownStatements is { } u)
            {
                unknown = u.Text switch
                {
                    "deny" => PolicyAction.Deny,
                    "require_approval" => PolicyAction.RequireApproval,
                    "allow" => PolicyAction.Allow,
                    _ => Error(u.Position, $"unknown_statements must be deny, require_approval or allow, not '{u.Text}'", PolicyAction.Deny),
                };
            }

            var global = CompileRules(model.Rules, "the global rules");
            var globalNames = NameSet(model.Rules);

            if (model.Roles.Count == 0)
            {
                Error(model.Position, "the policy needs at least one role under 'roles'");
            }

            var roles = new Dictionary<string, (PolicyRoleModel Model, StatementClass Allowed, List<RuleDraft> Rules)>(StringComparer.Ordinal);
            foreach (PolicyRoleModel role in model.Roles)
            {
                CheckName(role.Name, "role");
                if (roles.ContainsKey(role.Name.Text))
                {
                    Error(role.Name.Position, $"role '{role.Name.Text}' is defined twice");
                    continue;
                }

                StatementClass allowed = Classes(role.Allow, $"'allow' of role '{role.Name.Text}'", role.Name.Position);
                foreach (PolicyRuleModel rule in role.Rules)
                {
                    if (globalNames.Contains(rule.Name.Text))
                    {
                        Error(rule.Name.Position, $"rule '{rule.Name.Text}' of role '{role.Name.Text}' has the name of a global rule");
                    }
                }

                var rules = CompileRules(role.Rules, $"role '{role.Name.Text}'");
                if (model.Rules.Count + role.Rules.Count > MaxRulesPerRole)
                {
                    Error(role.Name.Position, $"role '{role.Name.Text}' has {model.Rules.Count + role.Rules.Count} rules with the global ones; at most {MaxRulesPerRole}");
                }

                roles[role.Name.Text] = (role, allowed, rules);
            }

            if (model.Bindings.Count == 0)
            {
                Error(model.Position, "the policy needs at least one binding under 'bindings' (without one, nobody gets a role)");
            }

            var used = new HashSet<string>(StringComparer.Ordinal);
            var grants = new Dictionary<PolicyBindingModel, GrantTerms?>(ReferenceEqualityComparer.Instance);
            foreach (PolicyBindingModel binding in model.Bindings)
            {
                CheckBinding(binding, roles.ContainsKey(binding.Role.Text));
                grants[binding] = CompileAccess(binding);
                used.Add(binding.Role.Text);
            }

            foreach (var role in model.Roles)
            {
                if (!used.Contains(role.Name.Text))
                {
                    _warnings.Add(new PolicyIssue(role.Name.Position, $"role '{role.Name.Text}' is not used by any binding"));
                }
            }

            var masking = model.Masking is { } maskingModel
                ? Gatehouse.Policy.Masking.MaskingCompiler.Compile(maskingModel, roles.Keys, Error, (position, message) => _warnings.Add(new PolicyIssue(Fix(position), message)))
                : Gatehouse.Policy.Masking.MaskingPolicy.None;

            if (_errors.Count > 0)
            {
                return new PolicyCompilation(null, _errors, _warnings);
            }

            var snapshot = PolicySnapshot.CreateEmpty(model.Source);
            snapshot.Masking = masking;
            var policies = new Dictionary<string, SessionPolicy>(StringComparer.Ordinal);
            foreach (var (name, (_, allowed, rules)) in roles)
            {
                policies[name] = BuildSessionPolicy(snapshot, name, allowed, unknown, global, rules);
            }

            var bindings = new List<CompiledBinding>();
            foreach (PolicyBindingModel binding in model.Bindings)
            {
                bool anyIdentity = binding.Identities?.Any(i => i.Text == "*") ?? false;
                bool anyConnection = binding.Connections!.Any(c => c.Text == "*");
                bindings.Add(new CompiledBinding(
                    binding.Identities?.Select(i => i.Text).ToFrozenSet(StringComparer.Ordinal),
                    anyIdentity,
                    binding.Groups?.Select(g => g.Text).ToFrozenSet(StringComparer.Ordinal),
                    anyConnection ? null : binding.Connections!.Select(c => c.Text).ToFrozenSet(StringComparer.Ordinal),
                    policies[binding.Role.Text],
                    grants[binding]));
            }

            snapshot.Initialize(policies.ToFrozenDictionary(StringComparer.Ordinal), [.. bindings]);
            return new PolicyCompilation(snapshot, _errors, _warnings);
        }

        private static HashSet<string> NameSet(IReadOnlyList<PolicyRuleModel> rules) =>
            rules.Select(r => r.Name.Text).ToHashSet(StringComparer.Ordinal);

        private static SessionPolicy BuildSessionPolicy(PolicySnapshot snapshot, string role, StatementClass allowed, PolicyAction unknown,
            List<RuleDraft> global, List<RuleDraft> own)
        {
            var infos = new PolicyRuleInfo[SessionPolicy.FirstPolicyRule + global.Count + own.Count];
            infos[SessionPolicy.AllowedRule] = new PolicyRuleInfo("allowed", $"allowed by role \"{role}\"", []);
            for (int bit = 0; bit < SessionPolicy.ClassBits; bit++)
            {
                var flag = (StatementClass)(1 << bit);
                var (_, name, words) = Array.Find(s_classWords, w => w.Class == flag);
                infos[SessionPolicy.FirstClassRule + bit] = Info($"role:{role}", $"role \"{role}\" does not allow {words} statements (class {name})",
                    PolicyAction.Deny);
            }

            infos[SessionPolicy.UnknownRule] = Info(UnknownRuleName,
                "the gateway could not classify the statement (class unknown; allowed only by roles that allow class unknown)", unknown);
            infos[SessionPolicy.FunctionCallRule] = Info(FunctionCallRuleName,
                $"role \"{role}\" does not allow the FunctionCall protocol message (it calls a function by OID; needs class opaque_code)",
                PolicyAction.Deny);

            var rules = new CompiledRule[global.Count + own.Count];
            int index = 0;
            foreach (RuleDraft draft in global.Concat(own))
            {
                ushort slot = (ushort)(SessionPolicy.FirstPolicyRule + index);
                CompiledRule r = draft.Rule;
                rules[index++] = new CompiledRule(r.Classes, r.Shapes, r.Copy, r.Tables, r.Functions, r.Action, slot);
                infos[slot] = draft.Info;
            }

            return new SessionPolicy(snapshot, role, allowed, unknown, rules, infos);
        }

        private List<RuleDraft> CompileRules(IReadOnlyList<PolicyRuleModel> rules, string where)
        {
            var result = new List<RuleDraft>();
            var names = new Dictionary<string, PolicyPosition>(StringComparer.Ordinal);
            foreach (PolicyRuleModel rule in rules)
            {
                CheckName(rule.Name, "rule");
                if (names.TryGetValue(rule.Name.Text, out var first))
                {
                    Error(rule.Name.Position, $"rule '{rule.Name.Text}' is defined twice in {where} (first at line {first.Line})");
                }
                else
                {
                    names[rule.Name.Text] = rule.Name.Position;
                }

                PolicyAction action = rule.Action.Text switch
                {
                    "deny" => PolicyAction.Deny,
                    "require_approval" => PolicyAction.RequireApproval,
                    _ => Error(rule.Action.Position, $"'action' of rule '{rule.Name.Text}' must be deny or require_approval, not '{rule.Action.Text}'",
                        PolicyAction.Deny),
                };

                StatementClass classes = rule.Classes is null ? 0 : Classes(rule.Classes, $"'classes' of rule '{rule.Name.Text}'", rule.Position);
                StatementShape shapes = rule.Shapes is null ? 0 : Names(rule.Shapes, ShapeNames, $"'shapes' of rule '{rule.Name.Text}'", "shape", rule.Position);
                CopyDetail copy = rule.Copy is null ? 0 : Names(rule.Copy, CopyNames, $"'copy' of rule '{rule.Name.Text}'", "copy detail", rule.Position);
                ObjectPattern[]? tables = rule.Tables is null ? null : Patterns(rule.Tables, $"'tables' of rule '{rule.Name.Text}'", rule.Position);
                ObjectPattern[]? functions = rule.Functions is null ? null : Patterns(rule.Functions, $"'functions' of rule '{rule.Name.Text}'", rule.Position);
                if (rule.Classes is null && rule.Shapes is null && rule.Copy is null && rule.Tables is null && rule.Functions is null)
                {
                    Error(rule.Position, $"rule '{rule.Name.Text}' has no criteria (classes, shapes, copy, tables or functions); it would match every statement");
                }

                string description = rule.Description?.Text ?? Describe(rule, action);
                result.Add(new RuleDraft(rule, new CompiledRule(classes, shapes, copy, tables, functions, action, 0),
                    Info(rule.Name.Text, description, action)));
            }

            return result;
        }

        private void CheckBinding(PolicyBindingModel binding, bool roleDefined)
        {
            if (!roleDefined)
            {
                Error(binding.Role.Position, $"binding names role '{binding.Role.Text}', which is not defined under 'roles'");
            }

            if (binding.Identities is null && binding.Groups is null)
            {
                Error(binding.Position, "a binding needs 'identities' or 'groups' (identities: [\"*\"] for anyone)");
            }

            if (binding.Connections is null)
            {
                Error(binding.Position, "a binding needs 'connections' (connections: [\"*\"] for every connection)");
            }

            NonEmpty(binding.Identities, binding.Position, "identities");
            NonEmpty(binding.Groups, binding.Position, "groups");
            NonEmpty(binding.Connections, binding.Position, "connections");
            foreach (PolicyValue identity in binding.Identities ?? Enumerable.Empty<PolicyValue>())
            {
                if (identity.Text != "*" && context.IsKnownIdentity is { } known && !known(identity.Text))
                {
                    _warnings.Add(new PolicyIssue(identity.Position, $"identity '{identity.Text}' is not configured under 'identities' (yet)"));
                }
            }

            foreach (PolicyValue group in binding.Groups ?? Enumerable.Empty<PolicyValue>())
            {
                if (group.Text == "*")
                {
                    Error(group.Position, "'*' is not a group; use identities: [\"*\"] for anyone");
                }
            }

            foreach (PolicyValue connection in binding.Connections ?? Enumerable.Empty<PolicyValue>())
            {
                if (connection.Text != "*" && context.IsKnownConnection is { } known && !known(connection.Text))
                {
                    _warnings.Add(new PolicyIssue(connection.Position, $"connection '{connection.Text}' is not defined under 'connections'; this binding never applies there"));
                }
            }
        }

        /// <summary>
        /// <c>access</c>, <c>max_duration</c> and <c>auto_approve</c> of a binding: null for a standing binding,
        /// the grant terms for <c>access: grant</c>.
        /// </summary>
        private GrantTerms? CompileAccess(PolicyBindingModel binding)
        {
            bool grant = false;
            if (binding.Access is { } access)
            {
                switch (access.Text)
                {
                    case "standing":
                        break;
                    case "grant":
                        grant = true;
                        break;
                    default:
                        Error(access.Position, $"'access' must be standing or grant, not '{access.Text}'");
                        return null;
                }
            }

            if (!grant)
            {
                if (binding.MaxDuration is { } stray)
                {
                    Error(stray.Position, "'max_duration' applies only to a binding with access: grant");
                }

                if (binding.AutoApprove is { } strayAuto)
                {
                    Error(strayAuto.Position, "'auto_approve' applies only to a binding with access: grant");
                }

                return null;
            }

            TimeSpan max = binding.MaxDuration is { } maxValue ? Duration(maxValue, "max_duration") : GrantTerms.DefaultMaxDuration;
            FrozenSet<string>? autoGroups = null;
            TimeSpan autoMax = max;
            if (binding.AutoApprove is { } auto)
            {
                if (auto.Groups is null)
                {
                    Error(auto.Position, "'auto_approve' needs 'groups': the groups whose members' requests are approved without a person");
                }
                else
                {
                    NonEmpty(auto.Groups, auto.Position, "auto_approve.groups");
                    foreach (PolicyValue group in auto.Groups)
                    {
                        if (group.Text == "*")
                        {
                            Error(group.Position, "'*' is not a group: auto-approving everyone would make the grant a standing binding");
                        }
                    }

                    autoGroups = auto.Groups.Select(g => g.Text).ToFrozenSet(StringComparer.Ordinal);
                }

                if (auto.MaxDuration is { } autoMaxValue)
                {
                    autoMax = Duration(autoMaxValue, "auto_approve.max_duration");
                    if (autoMax > max)
                    {
                        Error(autoMaxValue.Position,
                            $"auto_approve.max_duration ({DurationText.Format(autoMax)}) is longer than the binding's max_duration ({DurationText.Format(max)})");
                    }
                }
            }

            return new GrantTerms(binding.Role.Text, max, autoGroups, autoMax, binding.Position);
        }

        private TimeSpan Duration(PolicyValue value, string key)
        {
            if (DurationText.TryParse(value.Text, out TimeSpan duration) && duration > TimeSpan.Zero)
            {
                return duration;
            }

            Error(value.Position, $"'{key}' must be a positive duration such as 30m, 1h or 8h, not '{value.Text}'");
            return TimeSpan.Zero;
        }

        private void NonEmpty(IReadOnlyList<PolicyValue>? list, PolicyPosition position, string key)
        {
            if (list is { Count: 0 })
            {
                Error(Or(list, position), $"'{key}' is an empty list; leave it out or name at least one");
            }

            foreach (PolicyValue value in list ?? Enumerable.Empty<PolicyValue>())
            {
                if (value.Text.Length == 0)
                {
                    Error(value.Position, $"an entry of '{key}' is empty");
                }
            }
        }

        private StatementClass Classes(IReadOnlyList<PolicyValue> values, string where, PolicyPosition position) =>
            Names(values, ClassNames, where, "class", position);

        private T Names<T>(IReadOnlyList<PolicyValue> values, FrozenDictionary<string, T> names, string where, string what, PolicyPosition position)
            where T : struct, Enum
        {
            if (values.Count == 0)
            {
                Error(Or(values, position), $"{where} is an empty list; leave it out or name at least one");
            }

            ulong mask = 0;
            foreach (PolicyValue value in values)
            {
                if (names.TryGetValue(value.Text, out T flag))
                {
                    mask |= Convert.ToUInt64(flag, System.Globalization.CultureInfo.InvariantCulture);
                }
                else
                {
                    Error(value.Position, $"unknown {what} '{value.Text}' in {where}; expected one of: {string.Join(", ", names.Keys.Order(StringComparer.Ordinal))}");
                }
            }

            return (T)Enum.ToObject(typeof(T), mask);
        }

        private ObjectPattern[] Patterns(IReadOnlyList<PolicyValue> values, string where, PolicyPosition position)
        {
            if (values.Count == 0)
            {
                Error(Or(values, position), $"{where} is an empty list; leave it out or name at least one");
            }

            var result = new List<ObjectPattern>();
            foreach (PolicyValue value in values)
            {
                if (ObjectPattern.Parse(value.Text, out string? error) is { } pattern)
                {
                    result.Add(pattern);
                }
                else
                {
                    Error(value.Position, $"{where}: {error}");
                }
            }

            return [.. result];
        }

        private void CheckName(PolicyValue name, string what)
        {
            if (name.Text.Length == 0 || name.Text.Length > 63 || !name.Text.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-' or '.'))
            {
                Error(name.Position, $"{what} name '{name.Text}' must be 1 to 63 letters, digits, '_', '-' or '.'");
            }
            else if (what == "rule" && name.Text is UnknownRuleName or FunctionCallRuleName)
            {
                Error(name.Position, $"rule name '{name.Text}' is reserved for a built-in rule");
            }
        }

        // Where an empty list was written, when the list knows it; else where its owner was.
        private static PolicyPosition Or(IReadOnlyList<PolicyValue> list, PolicyPosition fallback) =>
            list is PolicyList { Position.Line: > 0 } positioned ? positioned.Position : fallback;

        private void Error(PolicyPosition position, string message) => _errors.Add(new PolicyIssue(Fix(position), message));

        private T Error<T>(PolicyPosition position, string message, T fallback)
        {
            Error(position, message);
            return fallback;
        }

        private PolicyPosition Fix(PolicyPosition position) =>
            position.File is null && position.Line == 0 ? model.Position with { File = model.Position.File ?? model.Source } : position;
    }

    /// <summary>The precompiled client message: an ErrorResponse text, UTF-8, so a refusal allocates nothing.</summary>
    private static PolicyRuleInfo Info(string name, string description, PolicyAction action)
    {
        string message = action == PolicyAction.RequireApproval
            ? $"statement requires approval (policy rule \"{name}\"); approvals are not enabled on this gateway"
            : $"statement denied by policy rule \"{name}\": {description}";
        return new PolicyRuleInfo(name, description, Encoding.UTF8.GetBytes(message));
    }

    // "DELETE without WHERE or UPDATE without WHERE on public.payments is not allowed"
    private static string Describe(PolicyRuleModel rule, PolicyAction action)
    {
        var what = new List<string>();
        if (rule.Shapes is not null)
        {
            what.Add(string.Join(" or ", rule.Shapes.Select(s => s.Text switch
            {
                "delete_without_where" => "DELETE without WHERE",
                "update_without_where" => "UPDATE without WHERE",
                "truncate" => "TRUNCATE",
                "drop" => "DROP",
                _ => s.Text,
            })));
        }

        if (rule.Copy is not null)
        {
            what.Add("COPY " + string.Join(" or ", rule.Copy.Select(c => c.Text switch
            {
                "client" => "STDIN/STDOUT",
                _ => c.Text.ToUpperInvariant(),
            })));
        }

        if (rule.Classes is not null)
        {
            what.Add(string.Join(" or ", rule.Classes.Select(c => Array.Find(s_classWords, w => w.Name == c.Text) is { Words: { } words } ? words : c.Text))
                     + " statements");
        }

        string text = what.Count > 0 ? string.Join(", ", what) : "statements";
        if (rule.Tables is not null)
        {
            text += " on " + string.Join(", ", rule.Tables.Select(t => t.Text));
        }

        if (rule.Functions is not null)
        {
            text += " calling " + string.Join(", ", rule.Functions.Select(f => f.Text));
        }

        return text + (action == PolicyAction.RequireApproval ? " need approval" : " are not allowed");
    }
}
