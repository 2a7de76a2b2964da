using Gatehouse.Host.Config;
using YamlDotNet.RepresentationModel;

namespace Gatehouse.Host.Review;

/// <summary>
/// Standing access for the review: for every static identity of the config (<c>identities[].name</c>) and every
/// connection it may open, the role the first standing binding of the current policy gives it (no groups: static
/// identities have none). Token identities are not listed anywhere, so their standing access is not known.
/// </summary>
public static class StandingAccessReader
{
    /// <summary>The standing access of every static identity, and the set of identities it covers.</summary>
    /// <param name="config">The loaded config (its identity directory and policy).</param>
    /// <param name="configText">The config file's text: the directory cannot be listed, so the names are read from it.</param>
    public static (IReadOnlyList<StandingAccess> Access, IReadOnlySet<string> Known) Read(GatehouseConfig config, string configText)
    {
        var access = new List<StandingAccess>();
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in IdentityNames(configText))
        {
            if (!config.Postgres.Identities.TryGet(name, out var identity) || identity is null || !known.Add(name))
            {
                continue;
            }

            foreach (var connection in identity.Connections.Order(StringComparer.Ordinal))
            {
                if (config.Policy.Resolve(name, [], connection) is { } policy)
                {
                    access.Add(new StandingAccess(name, connection, policy.Role));
                }
            }
        }

        return (access, known);
    }

    /// <summary>The <c>name</c> of every entry of the top-level <c>identities</c> list (the file is already validated).</summary>
    internal static IReadOnlyList<string> IdentityNames(string configText)
    {
        var stream = new YamlStream();
        using (var reader = new StringReader(configText))
        {
            stream.Load(reader);
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root
            || !root.Children.TryGetValue(new YamlScalarNode("identities"), out var node) || node is not YamlSequenceNode list)
        {
            return [];
        }

        return [.. list.Children.OfType<YamlMappingNode>()
            .Select(m => m.Children.TryGetValue(new YamlScalarNode("name"), out var n) ? (n as YamlScalarNode)?.Value : null)
            .OfType<string>()];
    }
}
