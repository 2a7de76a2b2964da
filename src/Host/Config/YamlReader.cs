using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Gatehouse.Host.Config;

/// <summary>
/// Typed access to a YAML document that remembers where every value came from. Errors are collected, not thrown,
/// so `gatehouse check` reports all of them at once, each with its line and column.
/// </summary>
internal sealed class YamlReader(string file)
{
    public string File { get; } = file;

    public List<ConfigError> Errors { get; } = [];

    public void Error(YamlNode? node, string message) =>
        Errors.Add(new ConfigError(File, node?.Start.Line ?? 0, node?.Start.Column ?? 0, message));

    /// <summary>Parses the text; a syntax error becomes a positioned config error.</summary>
    /// <param name="text">The YAML text.</param>
    /// <param name="what">What the document is, for the error when it is not a mapping ("the config", "the policy").</param>
    public YamlMappingNode? Load(string text, string what = "the config")
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            // A repeated key (a role defined twice) must not silently replace the first one: YamlDotNet refuses it.
            string message = ex.Message.StartsWith("Duplicate key", StringComparison.Ordinal)
                ? $"duplicate key: {ex.InnerException?.Message ?? ex.Message}"
                : $"YAML syntax: {ex.InnerException?.Message ?? ex.Message}";
            Errors.Add(new ConfigError(File, ex.Start.Line, ex.Start.Column, message));
            return null;
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            Errors.Add(new ConfigError(File, 1, 1, $"{what} must be a YAML mapping (key: value)"));
            return null;
        }

        return root;
    }

    /// <summary>Reports keys that are not in the expected set (typos must not be ignored silently).</summary>
    public void CheckKeys(YamlMappingNode map, string where, params string[] known)
    {
        foreach (var key in map.Children.Keys)
        {
            var name = (key as YamlScalarNode)?.Value;
            if (name is null || Array.IndexOf(known, name) < 0)
            {
                Error(key, $"unknown key '{name}' in {where}; expected one of: {string.Join(", ", known)}");
            }
        }
    }

    public YamlNode? Get(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    public YamlMappingNode? Mapping(YamlMappingNode map, string key, string where, bool required = false)
    {
        var node = Get(map, key);
        if (node is null)
        {
            if (required)
            {
                Error(map, $"{where} needs '{key}'");
            }

            return null;
        }

        if (node is YamlMappingNode mapping)
        {
            return mapping;
        }

        Error(node, $"'{key}' in {where} must be a mapping");
        return null;
    }

    public IEnumerable<YamlMappingNode> Sequence(YamlMappingNode map, string key, string where)
    {
        var node = Get(map, key);
        if (node is null)
        {
            yield break;
        }

        if (node is not YamlSequenceNode sequence)
        {
            Error(node, $"'{key}' in {where} must be a list");
            yield break;
        }

        foreach (var item in sequence.Children)
        {
            if (item is YamlMappingNode mapping)
            {
                yield return mapping;
            }
            else
            {
                Error(item, $"each entry of '{key}' must be a mapping");
            }
        }
    }

    public string? String(YamlMappingNode map, string key, string where, bool required = false)
    {
        var node = Get(map, key);
        if (node is null)
        {
            if (required)
            {
                Error(map, $"{where} needs '{key}'");
            }

            return null;
        }

        if (node is YamlScalarNode { Value: { } value } && value.Length > 0)
        {
            return value;
        }

        Error(node, $"'{key}' in {where} must be a non-empty text value");
        return null;
    }

    public List<string> StringList(YamlMappingNode map, string key, string where)
    {
        var result = new List<string>();
        var node = Get(map, key);
        if (node is null)
        {
            return result;
        }

        if (node is not YamlSequenceNode sequence)
        {
            Error(node, $"'{key}' in {where} must be a list");
            return result;
        }

        foreach (var item in sequence.Children)
        {
            if (item is YamlScalarNode { Value: { Length: > 0 } value })
            {
                result.Add(value);
            }
            else
            {
                Error(item, $"entries of '{key}' must be text values");
            }
        }

        return result;
    }

    public int? Int(YamlMappingNode map, string key, string where, int min, int max)
    {
        var node = Get(map, key);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value)
            && value >= min && value <= max)
        {
            return value;
        }

        Error(node, $"'{key}' in {where} must be a whole number from {min} to {max}");
        return null;
    }

    public bool? Bool(YamlMappingNode map, string key, string where)
    {
        var node = Get(map, key);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text })
        {
            switch (text.ToLowerInvariant())
            {
                case "true" or "yes" or "on":
                    return true;
                case "false" or "no" or "off":
                    return false;
            }
        }

        Error(node, $"'{key}' in {where} must be true or false");
        return null;
    }

    public T? Enum<T>(YamlMappingNode map, string key, string where, params (string Name, T Value)[] values)
        where T : struct
    {
        var node = Get(map, key);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text })
        {
            foreach (var (name, value) in values)
            {
                if (string.Equals(name, text, StringComparison.OrdinalIgnoreCase))
                {
                    return value;
                }
            }
        }

        Error(node, $"'{key}' in {where} must be one of: {string.Join(", ", values.Select(v => v.Name))}");
        return null;
    }

    /// <summary>A duration: "500ms", "15s", "10m", "1h", "2d"; "0" disables.</summary>
    public TimeSpan? Duration(YamlMappingNode map, string key, string where)
    {
        var node = Get(map, key);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text } && TryParseDuration(text, out var value))
        {
            return value;
        }

        Error(node, $"'{key}' in {where} must be a duration such as 500ms, 15s, 10m, 1h or 2d");
        return null;
    }

    /// <summary>A size: "10000", "64KiB", "16MiB", "1GiB" (KB/MB/GB are read as powers of 1024 too).</summary>
    public int? Size(YamlMappingNode map, string key, string where, long min, long max)
    {
        var node = Get(map, key);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text } && TryParseSize(text, out long value) && value >= min && value <= max)
        {
            return (int)value;
        }

        Error(node, $"'{key}' in {where} must be a size from {min} to {max} bytes, such as 64KiB, 16MiB or 1GiB");
        return null;
    }

    internal static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        text = text.Trim();
        if (text == "0")
        {
            value = TimeSpan.Zero;
            return true;
        }

        (string Suffix, double Factor)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];
        foreach (var (suffix, factor) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            {
                value = TimeSpan.FromMilliseconds(number * factor);
                return true;
            }
        }

        return false;
    }

    internal static bool TryParseSize(string text, out long value)
    {
        value = 0;
        text = text.Trim();
        (string Suffix, long Factor)[] units = [("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("KB", 1L << 10), ("MB", 1L << 20), ("GB", 1L << 30), ("B", 1)];
        long factor = 1;
        foreach (var (suffix, f) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                text = text[..^suffix.Length].Trim();
                factor = f;
                break;
            }
        }

        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long number) || number > long.MaxValue / factor)
        {
            return false;
        }

        value = number * factor;
        return true;
    }
}
