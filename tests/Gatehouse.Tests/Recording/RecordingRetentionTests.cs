using Gatehouse.Engine.Recording;

namespace Gatehouse.Tests.Recording;

/// <summary>Retention deletes by age and by total size, oldest first, and never a recording being written.</summary>
public sealed class RecordingRetentionTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);

    private readonly RecordingFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    /// <summary>Five 1000-byte recordings last written 10, 8, 6, 4 and 2 days ago, and a file that is not one.</summary>
    private List<string> MakeFiles()
    {
        var files = new List<string>();
        foreach (int days in new[] { 10, 8, 6, 4, 2 })
        {
            string path = Path.Combine(_fixture.Directory, $"{days:00}-days.ghrec.lz4");
            File.WriteAllBytes(path, new byte[1000]);
            File.SetLastWriteTimeUtc(path, Now.UtcDateTime.AddDays(-days));
            files.Add(path);
        }

        string other = Path.Combine(_fixture.Directory, "old-notes.txt");
        File.WriteAllBytes(other, new byte[5000]);
        File.SetLastWriteTimeUtc(other, Now.UtcDateTime.AddDays(-100));
        return files;
    }

    public static TheoryData<int?, long?, int, long> Policies => new()
    {
        // max age (days), max total bytes, files deleted (oldest first), bytes kept
        { 5, null, 3, 2000 },
        { null, 2500, 3, 2000 },
        { null, 5000, 0, 5000 },
        { 7, 1000, 4, 1000 },
        { 30, 100_000, 0, 5000 },
        { 1, null, 5, 0 },
        { null, 0, 5, 0 },
    };

    [Theory]
    [MemberData(nameof(Policies))]
    public void Retention_deletes_by_age_and_size_oldest_first(int? maxAgeDays, long? maxTotal, int deleted, long kept)
    {
        var files = MakeFiles();
        var policy = new RecordingRetentionPolicy(maxAgeDays is { } d ? TimeSpan.FromDays(d) : null, maxTotal);

        var result = RecordingRetention.Apply(_fixture.Directory, policy, Now);

        Assert.Equal(files.Take(deleted), result.Deleted);
        Assert.Equal(deleted * 1000L, result.DeletedBytes);
        Assert.Equal(kept, result.KeptBytes);
        Assert.Equal(5 - deleted, result.KeptFiles);
        Assert.All(files.Skip(deleted), f => Assert.True(File.Exists(f)));
        Assert.All(files.Take(deleted), f => Assert.False(File.Exists(f)));
        Assert.True(File.Exists(Path.Combine(_fixture.Directory, "old-notes.txt")));
    }

    [Fact]
    public async Task A_recording_open_for_writing_is_never_deleted()
    {
        var files = MakeFiles();
        await using var service = new RecordingService(_fixture.Options());
        var writer = service.Start(RecordingFixture.Session("live") with { StartTime = Now.AddDays(-30) });
        writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "Q"u8);
        await writer.FlushAsync();
        File.SetLastWriteTimeUtc(writer.Path!, Now.UtcDateTime.AddDays(-30));

        // Without the service's help: the writer's file lock is enough.
        var result = RecordingRetention.Apply(_fixture.Directory, new RecordingRetentionPolicy(TimeSpan.FromDays(1), null), Now);
        Assert.Equal([writer.Path!], result.SkippedOpen);
        Assert.Equal(files, result.Deleted);
        Assert.True(File.Exists(writer.Path));

        // With it, the same answer without touching the file.
        result = RecordingRetention.Apply(_fixture.Directory, new RecordingRetentionPolicy(TimeSpan.FromDays(1), 0), Now, service.IsOpen);
        Assert.Equal([writer.Path!], result.SkippedOpen);
        Assert.Empty(result.Deleted);

        await writer.DisposeAsync();
        File.SetLastWriteTimeUtc(writer.Path!, Now.UtcDateTime.AddDays(-30));
        result = RecordingRetention.Apply(_fixture.Directory, new RecordingRetentionPolicy(TimeSpan.FromDays(1), null), Now, service.IsOpen);
        Assert.Equal([writer.Path!], result.Deleted);
        Assert.False(File.Exists(writer.Path));
    }
}
