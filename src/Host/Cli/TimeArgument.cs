using System.Globalization;
using Gatehouse.Policy.Rules;

namespace Gatehouse.Host.Cli;

/// <summary>
/// A point in time as the commands take it (<c>--since</c>, <c>--until</c>): a duration back from now (<c>30d</c>,
/// <c>12h</c>, <c>1h30m</c>), a UTC date (<c>2030-01-02</c>, midnight UTC), or an ISO 8601 date and time
/// (<c>2030-01-02T09:00Z</c>, <c>2030-01-02T09:00:00+02:00</c>; without an offset it is UTC).
/// </summary>
internal static class TimeArgument
{
    private static readonly string[] s_formats =
    [
        "yyyy-MM-dd",
        "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF",
        "yyyy-MM-dd'T'HH:mmK", "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
        "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss",
        "yyyy-MM-dd HH:mmK", "yyyy-MM-dd HH:mm:ssK",
    ];

    public static bool TryParse(string? text, DateTimeOffset now, out DateTimeOffset time)
    {
        time = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        text = text.Trim();
        if (DurationText.TryParse(text, out var back) && back > TimeSpan.Zero)
        {
            time = now - back;
            return true;
        }

        return DateTimeOffset.TryParseExact(text, s_formats, CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);
    }
}
