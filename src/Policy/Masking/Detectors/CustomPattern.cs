using System.Text.RegularExpressions;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// A regular expression from the policy file, compiled for the non-backtracking engine: matching time is linear
/// in the value, whatever the pattern and the data (no catastrophic backtracking on hostile values). Patterns that
/// need backtracking (backreferences, lookarounds, atomic groups, conditionals) are refused when the policy is
/// loaded, with the engine's reason.
/// </summary>
/// <remarks>
/// <see cref="Regex.EnumerateMatches(ReadOnlySpan{char}, int)"/> allocates nothing once the engine's automaton has
/// seen the states a value needs. The <see cref="Regex"/> keeps one cached runner: a scan that runs while another
/// thread holds it gets a new runner, which allocates, so scans of the same pattern on many threads at once allocate
/// now and then.
/// </remarks>
internal sealed class CustomPattern
{
    public const RegexOptions Options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;

    private readonly Regex _regex;

    private CustomPattern(Regex regex, int tag, int priority)
    {
        _regex = regex;
        Tag = tag;
        Priority = priority;
    }

    /// <summary>The caller's tag for this detector's matches.</summary>
    public int Tag { get; }

    /// <summary>The position of the detector in the scanner's specs: the earlier wins a tie.</summary>
    public int Priority { get; }

    /// <summary>Compiles <paramref name="pattern"/>; the reason (one line) when it cannot be used.</summary>
    public static Regex? TryCompile(string pattern, out string? error)
    {
        if (string.IsNullOrEmpty(pattern))
        {
            error = "the pattern is empty";
            return null;
        }

        try
        {
            error = null;
            return new Regex(pattern, Options, Regex.InfiniteMatchTimeout);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException)
        {
            error = OneLine(ex.Message);
            return null;
        }
    }

    public static CustomPattern Create(string pattern, int tag, int priority)
    {
        var regex = TryCompile(pattern, out string? error)
            ?? throw new ArgumentException($"custom detector pattern \"{pattern}\" cannot be used: {error}", nameof(pattern));
        return new CustomPattern(regex, tag, priority);
    }

    /// <summary>The first non-empty match that starts at or after byte <paramref name="from"/>, in bytes.</summary>
    public bool FindNext(ref Utf16Text text, int from, out int start, out int length)
    {
        foreach (ValueMatch match in _regex.EnumerateMatches(text.Chars, text.CharOf(from)))
        {
            if (match.Length == 0)
            {
                continue;
            }

            start = Math.Max(text.StartOf(match.Index), from);
            int end = text.EndOf(match.Index + match.Length);
            if (end > start)
            {
                length = end - start;
                return true;
            }
        }

        start = length = 0;
        return false;
    }

    private static string OneLine(string message) =>
        message.ReplaceLineEndings(" ").Trim();
}
