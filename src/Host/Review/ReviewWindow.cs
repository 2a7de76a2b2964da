using System.Globalization;

namespace Gatehouse.Host.Review;

/// <summary>Input the review cannot use (a bad <c>--since</c>, an unknown format); the message says what to write instead.</summary>
public sealed class ReviewInputException : Exception
{
    /// <summary>An exception without a message.</summary>
    public ReviewInputException()
    {
    }

    /// <summary>An exception with the sentence shown to the user.</summary>
    public ReviewInputException(string message)
        : base(message)
    {
    }

    /// <summary>An exception with the sentence shown to the user and its cause.</summary>
    public ReviewInputException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The review's time window from <c>--since</c> and <c>--until</c>: each is a duration back from now (<c>30d</c>,
/// <c>12h</c>, <c>1h30m</c>), a UTC date (<c>2030-01-02</c>, midnight UTC), or an ISO 8601 date and time
/// (<c>2030-01-02T09:00Z</c>, <c>2030-01-02T09:00:00+02:00</c>; without an offset it is UTC).
/// </summary>
public static class ReviewWindow
{
    /// <summary>The window [since, until); <paramref name="until"/> null means now.</summary>
    /// <exception cref="ReviewInputException">A value is neither a duration nor a date, or the window is empty.</exception>
    public static (DateTimeOffset Since, DateTimeOffset Until) Parse(string? since, string? until, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(since))
        {
            throw new ReviewInputException("--since is required: a duration back from now (30d, 12h) or a UTC date or time (2030-01-02, 2030-01-02T09:00Z)");
        }

        var start = ParseTime("--since", since, now);
        var end = string.IsNullOrWhiteSpace(until) ? now : ParseTime("--until", until, now);
        if (start >= end)
        {
            throw new ReviewInputException(
                $"the window is empty: --since ({Format(start)}) must be before --until ({Format(end)})");
        }

        return (start, end);
    }

    /// <summary>One bound: a duration back from <paramref name="now"/>, or an absolute time.</summary>
    public static DateTimeOffset ParseTime(string option, string text, DateTimeOffset now)
    {
        if (Cli.TimeArgument.TryParse(text, now, out var time))
        {
            return time;
        }

        throw new ReviewInputException(
            $"{option} must be a duration back from now (such as 30d, 12h or 1h30m) or a UTC date or time "
            + $"(such as 2030-01-02 or 2030-01-02T09:00Z), not '{text.Trim()}'");
    }

    /// <summary>A time as the report prints it: UTC, ISO 8601, to the second.</summary>
    public static string Format(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
