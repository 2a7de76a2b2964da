using Gatehouse.Engine.Recording;
using Gatehouse.Host.Recordings;

namespace Gatehouse.Host.Review;

/// <summary>
/// The review's sessions from the recordings folder: every recording whose session overlaps the window, read and
/// verified with the recording key (<see cref="RecordingDigest"/>). A recording that cannot be read at all is still
/// reported, as damaged, so missing evidence is never silent.
/// </summary>
internal sealed class RecordingDirectorySource(string directory, RecordingKey? key) : IReviewSessionSource
{
    public async Task<IReadOnlyList<RecordedSession>> ListAsync(DateTimeOffset since, DateTimeOffset until, CancellationToken ct)
    {
        var sessions = new List<RecordedSession>();
        if (!Directory.Exists(directory))
        {
            return sessions;
        }

        foreach (string path in RecordingFiles.Find(directory))
        {
            // The file name carries the start: recordings that start at or after the window's end are not opened.
            if (RecordingService.StartFromFileName(path) is { } start && start >= until)
            {
                continue;
            }

            var session = await RecordingDigest.ReadAsync(path, key, ct).ConfigureAwait(false);
            if (session.End >= since && session.Start < until)
            {
                sessions.Add(session);
            }
        }

        return sessions;
    }
}
