using System.Collections.Frozen;
using Gatehouse.Policy.Identity;
using YamlDotNet.RepresentationModel;

namespace Gatehouse.Host.Config;

/// <summary>
/// The config's <c>identity_providers</c>: OIDC/JWT issuers whose access tokens clients may present as their password
/// (docs/configuration.md). Every problem is a positioned error; keys are read from the JWKS file here, so a bad
/// file stops start-up (and <c>gatehouse check</c>) rather than the first login.
/// </summary>
internal static class IdentityProviderReader
{
    private static readonly string[] Keys =
    [
        "name", "issuer", "audience", "jwks_file", "discovery", "jwks_refresh", "algorithms", "clock_skew", "identity_claim",
        "groups_claim", "connections",
    ];

    public static List<JwtIdentityProvider> Read(YamlReader yaml, YamlMappingNode root, string baseDirectory, Func<string, bool> connectionExists)
    {
        var result = new List<JwtIdentityProvider>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var issuerAudiences = new HashSet<(string, string)>();
        int index = 0;
        foreach (var map in yaml.Sequence(root, "identity_providers", "the config"))
        {
            string where = $"identity_providers[{index++}]";
            yaml.CheckKeys(map, where, Keys);
            int errors = yaml.Errors.Count;
            var name = yaml.String(map, "name", where, required: true);
            var issuer = yaml.String(map, "issuer", where, required: true);
            var audience = yaml.String(map, "audience", where, required: true);
            var jwksFile = yaml.String(map, "jwks_file", where);
            bool discovery = yaml.Bool(map, "discovery", where) ?? false;

            if (name is not null && !names.Add(name))
            {
                yaml.Error(yaml.Get(map, "name"), $"identity provider '{name}' is defined twice");
            }

            if (issuer is not null && audience is not null && !issuerAudiences.Add((issuer, audience)))
            {
                yaml.Error(map, $"{where}: another identity provider already has this issuer and audience");
            }

            JwksKeySet? keys = null;
            if (jwksFile is not null && discovery)
            {
                yaml.Error(yaml.Get(map, "discovery"), $"{where}: use either 'jwks_file' or 'discovery: true', not both");
            }
            else if (jwksFile is not null)
            {
                keys = ReadJwks(yaml, yaml.Get(map, "jwks_file")!, Path.GetFullPath(Path.Combine(baseDirectory, jwksFile)));
            }
            else if (!discovery)
            {
                yaml.Error(map, $"{where} needs its signing keys: 'jwks_file: FILE', or 'discovery: true' to fetch them from the issuer");
            }
            else if (issuer is not null)
            {
                bool? allowsHttp = JwtProviderOptions.DiscoveryAllowsHttp(issuer);
                if (allowsHttp is null)
                {
                    yaml.Error(yaml.Get(map, "issuer"),
                        "with discovery, 'issuer' must be the issuer's https address (its discovery document is {issuer}/.well-known/openid-configuration)");
                }
                else if (!allowsHttp.Value && !issuer.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
                {
                    yaml.Error(yaml.Get(map, "issuer"),
                        "with discovery, 'issuer' must use https (plain http only for a loopback issuer): the keys it serves decide who may log in");
                }
            }

            var refresh = yaml.Duration(map, "jwks_refresh", where);
            if (refresh is not null && !discovery)
            {
                yaml.Error(yaml.Get(map, "jwks_refresh"), "'jwks_refresh' only applies with discovery: true");
            }
            else if (refresh is { } d && (d < JwtProviderOptions.MinJwksRefresh || d > JwtProviderOptions.MaxJwksRefresh))
            {
                yaml.Error(yaml.Get(map, "jwks_refresh"), "'jwks_refresh' must be from 5m to 1d");
            }

            var algorithms = ReadAlgorithms(yaml, map, where);
            var skew = yaml.Duration(map, "clock_skew", where);
            if (skew is { } s && s > JwtProviderOptions.MaxClockSkew)
            {
                yaml.Error(yaml.Get(map, "clock_skew"), "'clock_skew' must be at most 5m: a larger skew keeps expired tokens working");
            }

            var identityClaim = yaml.String(map, "identity_claim", where) ?? "sub";
            var groupsClaim = yaml.String(map, "groups_claim", where) ?? "groups";

            FrozenSet<string>? connections = null;
            if (yaml.Get(map, "connections") is { } connectionsNode)
            {
                var list = yaml.StringList(map, "connections", where);
                foreach (var connection in list.Where(c => !connectionExists(c)))
                {
                    yaml.Error(connectionsNode, $"identity provider '{name}' names connection '{connection}', which is not defined under 'connections'");
                }

                connections = list.ToFrozenSet(StringComparer.Ordinal);
            }

            if (yaml.Errors.Count > errors || name is null || issuer is null || audience is null)
            {
                continue;
            }

            result.Add(new JwtIdentityProvider(new JwtProviderOptions
            {
                Name = name,
                Issuer = issuer,
                Audience = audience,
                Keys = keys,
                Discovery = discovery,
                JwksRefresh = refresh ?? JwtProviderOptions.DefaultJwksRefresh,
                Algorithms = algorithms,
                ClockSkew = skew ?? JwtProviderOptions.DefaultClockSkew,
                IdentityClaim = identityClaim,
                GroupsClaim = groupsClaim,
                Connections = connections,
            }));
        }

        return result;
    }

    private static IReadOnlyList<string> ReadAlgorithms(YamlReader yaml, YamlMappingNode map, string where)
    {
        var node = yaml.Get(map, "algorithms");
        if (node is null)
        {
            return JwtProviderOptions.DefaultAlgorithms;
        }

        var list = yaml.StringList(map, "algorithms", where);
        if (node is YamlSequenceNode sequence)
        {
            if (sequence.Children.Count == 0)
            {
                yaml.Error(node, "'algorithms' must name at least one algorithm");
            }

            // Each refused name is reported at its own position.
            foreach (var item in sequence.Children)
            {
                if (item is YamlScalarNode { Value: { Length: > 0 } value } && JwtProviderOptions.CheckAlgorithm(value) is { } problem)
                {
                    yaml.Error(item, problem);
                }
            }
        }

        return list.Distinct(StringComparer.Ordinal).ToArray();
    }

    private static JwksKeySet? ReadJwks(YamlReader yaml, YamlNode node, string path)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            yaml.Error(node, $"cannot read the JWKS file {path}: {ex.Message}");
            return null;
        }

        if (!JwksKeySet.TryParse(json, out var keys, out var error))
        {
            yaml.Error(node, $"the JWKS file {path}: {error}");
        }

        return keys;
    }
}
