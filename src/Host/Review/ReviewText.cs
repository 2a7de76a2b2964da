using System.Globalization;

namespace Gatehouse.Host.Review;

/// <summary>
/// How the review's writers spell values (docs/review.md#formats), in one place so the formats agree: times to the
/// millisecond, durations in seconds, counts, name lists and statement classes. The report's window and the
/// terminal's times are spelt by <see cref="ReviewWindow.Format"/> and the command line's table helpers.
/// </summary>
internal static class ReviewText
{
    /// <summary>A time as the CSV, JSON and HTML write it: UTC, ISO 8601, milliseconds; null for null.</summary>
    public static string? Time(DateTimeOffset? time) =>
        time?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>A duration in seconds, rounded to the millisecond.</summary>
    public static double Seconds(TimeSpan span) => Math.Round(span.TotalMilliseconds) / 1000d;

    /// <summary>A count.</summary>
    public static string Number(long n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>The names a report was limited to: <c>all</c> when none.</summary>
    public static string Names(IReadOnlyList<string> names) => names.Count == 0 ? "all" : string.Join(", ", names);

    /// <summary>Statements by class: <c>read=3 write=1</c> (the total when there are none by class; <c>?</c> without a recording).</summary>
    public static string Classes(SessionReview session) =>
        session.Integrity == ReviewBuilder.IntegrityMissing ? "?"
        : session.StatementsByClass.Count == 0 ? Number(session.StatementCount)
        : string.Join(" ", session.StatementsByClass.Select(c => $"{c.Key}={Number(c.Value)}"));
}
