using System.Text.Json;
using Gatehouse.Engine.Recording;

namespace Gatehouse.Tests.Recording;

/// <summary>Recordings left unsealed by a killed process are sealed by recovery, honestly marked as recovered.</summary>
public sealed class RecordingRecoveryTests : IDisposable
{
    private readonly RecordingFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    /// <summary>A recording cut inside block 5, as a crash mid-write leaves it.</summary>
    private async Task<(string Path, RecordingBlockInfo LastWhole, long Length)> CrashedAsync(string id)
    {
        string path = await _fixture.RecordAsync(id);
        var blocks = (await RecordingReader.VerifyAsync(path, RecordingFixture.Key)).Blocks;
        long cut = blocks[5].FileOffset + blocks[5].FileLength / 3;
        await using (var file = new FileStream(path, FileMode.Open))
        {
            file.SetLength(cut);
        }

        return (path, blocks[4], cut);
    }

    [Fact]
    public async Task An_unsealed_recording_gets_a_recovery_seal_after_its_last_whole_block()
    {
        var (path, lastWhole, length) = await CrashedAsync("crashed");
        var before = await RecordingReader.VerifyAsync(path, RecordingFixture.Key);
        Assert.Equal(RecordingIntegrity.Unsealed, before.Integrity);

        var result = await RecordingRecovery.SealAsync(path, RecordingFixture.Key);
        Assert.Equal(RecordingRecoveryOutcome.Sealed, result.Outcome);
        Assert.Equal(4, result.SealedAfterBlock);
        Assert.Equal(length - (lastWhole.FileOffset + lastWhole.FileLength), result.DiscardedBytes);

        var after = await RecordingReader.VerifyAsync(path, RecordingFixture.Key);
        Assert.Equal(RecordingIntegrity.Recovered, after.Integrity);
        Assert.Empty(after.Problems);
        Assert.True(after.IsSealed);
        Assert.Equal(6, after.Blocks.Count);
        Assert.True(after.Blocks[^1].Recovered && after.Blocks[^1].Final);

        var events = await RecordingFixture.ReadAllAsync(path);
        var recovery = events[^1];
        Assert.Equal(RecordKind.Recovery, recovery.Kind);
        using var json = JsonDocument.Parse(recovery.Payload);
        Assert.Equal("unsealed", json.RootElement.GetProperty("reason").GetString());
        Assert.Equal(4, json.RootElement.GetProperty("last_block").GetInt64());
        Assert.Equal(result.DiscardedBytes, json.RootElement.GetProperty("discarded_bytes").GetInt64());
        Assert.Equal(before.Events + 1, after.Events);

        var (exit, _, stderr) = RecordingFixture.Lz4("-t", path);
        Assert.True(exit == 0, $"lz4 -t failed after recovery: {stderr}");

        // Sealed now: a second pass leaves it alone.
        byte[] sealedBytes = await File.ReadAllBytesAsync(path);
        Assert.Equal(RecordingRecoveryOutcome.AlreadySealed, (await RecordingRecovery.SealAsync(path, RecordingFixture.Key)).Outcome);
        Assert.Equal(sealedBytes, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task A_recording_cut_at_a_block_boundary_is_sealed_without_discarding_anything()
    {
        string path = await _fixture.RecordAsync("boundary");
        var blocks = (await RecordingReader.VerifyAsync(path, RecordingFixture.Key)).Blocks;
        await using (var file = new FileStream(path, FileMode.Open))
        {
            file.SetLength(blocks[^1].FileOffset);
        }

        var result = await RecordingRecovery.SealAsync(path, RecordingFixture.Key);
        Assert.Equal((RecordingRecoveryOutcome.Sealed, 0L), (result.Outcome, result.DiscardedBytes));
        Assert.Equal(RecordingIntegrity.Recovered, (await RecordingReader.VerifyAsync(path, RecordingFixture.Key)).Integrity);
    }

    [Fact]
    public async Task A_sealed_recording_is_left_alone()
    {
        string path = await _fixture.RecordAsync("sealed");
        byte[] before = await File.ReadAllBytesAsync(path);
        var result = await RecordingRecovery.SealAsync(path, RecordingFixture.Key);
        Assert.Equal(RecordingRecoveryOutcome.AlreadySealed, result.Outcome);
        Assert.Equal(before, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task A_recording_being_written_is_refused()
    {
        await using var service = new RecordingService(_fixture.Options());
        var writer = service.Start(RecordingFixture.Session("live"));
        writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "Q"u8);
        await writer.FlushAsync();

        var result = await RecordingRecovery.SealAsync(writer.Path!, RecordingFixture.Key);
        Assert.Equal(RecordingRecoveryOutcome.Refused, result.Outcome);
        Assert.StartsWith("cannot open it exclusively", result.Detail, StringComparison.Ordinal);
        await writer.DisposeAsync();
        Assert.Equal(RecordingIntegrity.Intact, (await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key)).Integrity);
    }

    [Fact]
    public async Task Another_key_is_refused_and_changes_nothing()
    {
        var (path, _, length) = await CrashedAsync("other-key");
        var result = await RecordingRecovery.SealAsync(path, new RecordingKey("test-key-1", new byte[32]));
        Assert.Equal(RecordingRecoveryOutcome.Refused, result.Outcome);
        Assert.Equal(length, new FileInfo(path).Length);
    }

    [Fact]
    public async Task A_damaged_last_block_is_refused()
    {
        var (path, lastWhole, _) = await CrashedAsync("damaged-last");
        byte[] bytes = await File.ReadAllBytesAsync(path);
        bytes[lastWhole.FileOffset + lastWhole.FileLength / 2] ^= 0x40;
        await File.WriteAllBytesAsync(path, bytes);

        var result = await RecordingRecovery.SealAsync(path, RecordingFixture.Key);
        Assert.Equal(RecordingRecoveryOutcome.Refused, result.Outcome);
        Assert.Contains("its last block (4", result.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(9)]
    public async Task A_file_without_a_whole_block_is_empty(int length)
    {
        string path = await _fixture.RecordAsync($"empty-{length}");
        await using (var file = new FileStream(path, FileMode.Open))
        {
            file.SetLength(length);
        }

        var result = await RecordingRecovery.SealAsync(path, RecordingFixture.Key);
        Assert.Equal(RecordingRecoveryOutcome.Empty, result.Outcome);
        Assert.Equal(length, new FileInfo(path).Length);
    }

    [Fact]
    public async Task A_directory_pass_seals_what_the_last_run_left_and_skips_the_rest()
    {
        var (crashed, _, _) = await CrashedAsync("dir-crashed");
        string intact = await _fixture.RecordAsync("dir-intact");
        await File.WriteAllTextAsync(Path.Combine(_fixture.Directory, "notes.txt"), "not a recording");

        var results = await RecordingRecovery.SealDirectoryAsync(_fixture.Directory, RecordingFixture.Key);
        Assert.Equal(2, results.Count);
        Assert.Equal(RecordingRecoveryOutcome.Sealed, results.Single(r => r.Path == crashed).Outcome);
        Assert.Equal(RecordingRecoveryOutcome.AlreadySealed, results.Single(r => r.Path == intact).Outcome);
    }
}
