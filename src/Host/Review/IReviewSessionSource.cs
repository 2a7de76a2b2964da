using Gatehouse.Host.Recordings;

namespace Gatehouse.Host.Review;

/// <summary>
/// Where the access review gets its recorded sessions: every session recording that overlaps a time range, read and
/// verified. The command line plugs in the recording digest reader over the configured recordings folder; tests
/// supply their own sessions.
/// </summary>
public interface IReviewSessionSource
{
    /// <summary>
    /// The recorded sessions that overlap [<paramref name="since"/>, <paramref name="until"/>): started before
    /// <paramref name="until"/> and ended at or after <paramref name="since"/>. A damaged recording is returned
    /// with <see cref="RecordedSession.Integrity"/> saying so, never left out.
    /// </summary>
    Task<IReadOnlyList<RecordedSession>> ListAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken ct);
}

/// <summary>A session source with nothing in it: recording is off, or no reader is available.</summary>
public sealed class NoRecordedSessions : IReviewSessionSource
{
    /// <summary>The one instance.</summary>
    public static readonly NoRecordedSessions Instance = new();

    private NoRecordedSessions()
    {
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<RecordedSession>> ListAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<RecordedSession>>([]);
}

/// <summary>Sessions given up front (tests, or a digest read elsewhere), filtered to the range asked for.</summary>
public sealed class ListedSessionSource(IEnumerable<RecordedSession> sessions) : IReviewSessionSource
{
    private readonly RecordedSession[] _sessions = [.. sessions];

    /// <summary>The ranges asked for, in order (tests check the review widens the range to whole grants).</summary>
    public List<(DateTimeOffset Since, DateTimeOffset Until)> Requests { get; } = [];

    /// <inheritdoc/>
    public Task<IReadOnlyList<RecordedSession>> ListAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken ct)
    {
        Requests.Add((since, until));
        return Task.FromResult<IReadOnlyList<RecordedSession>>([.. _sessions.Where(s => s.Start < until && s.End >= since)]);
    }
}
