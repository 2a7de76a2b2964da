namespace Gatehouse.Host.Config;

/// <summary>A problem in a config file, at a line and column (1-based), so the user can go straight to it.</summary>
public sealed record ConfigError(string File, long Line, long Column, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}: {Message}" : $"{File}: {Message}";
}

/// <summary>Thrown when a config cannot be used; carries every error found, not just the first.</summary>
public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;

    /// <summary>Every error on a line of its own, then how many there were: what the commands print for a bad config.</summary>
    public async Task WriteToAsync(TextWriter output)
    {
        foreach (var error in Errors)
        {
            await output.WriteLineAsync(error.ToString()).ConfigureAwait(false);
        }

        await output.WriteLineAsync($"{Errors.Count} error(s) in the config.").ConfigureAwait(false);
    }
}
