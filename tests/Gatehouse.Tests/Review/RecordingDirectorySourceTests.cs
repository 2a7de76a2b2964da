using Gatehouse.Engine.Recording;
using Gatehouse.Host.Review;
using Gatehouse.Tests.Recording;

namespace Gatehouse.Tests.Review;

/// <summary>The review's sessions from a real recordings folder: the window is [since, until).</summary>
public sealed class RecordingDirectorySourceTests : IDisposable
{
    private readonly RecordingFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    [Fact]
    public async Task A_session_that_starts_at_the_end_of_the_window_is_not_in_it()
    {
        var until = new DateTimeOffset(2025, 3, 14, 16, 0, 0, TimeSpan.Zero);
        await using (var service = new RecordingService(_fixture.Options()))
        {
            foreach (var (id, start) in new[] { ("inside", until.AddMinutes(-1)), ("at-the-end", until), ("after", until.AddMinutes(1)) })
            {
                var writer = service.Start(RecordingFixture.Session(id) with { StartTime = start });
                await writer.DisposeAsync();
            }
        }

        var sessions = await new RecordingDirectorySource(_fixture.Directory, RecordingFixture.Key)
            .ListAsync(until.AddHours(-1), until, CancellationToken.None);

        Assert.Equal(["inside"], sessions.Select(s => s.SessionId));
    }
}
