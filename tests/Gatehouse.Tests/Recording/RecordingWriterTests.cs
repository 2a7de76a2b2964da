using Gatehouse.Engine.Recording;

namespace Gatehouse.Tests.Recording;

/// <summary>
/// The writer's promises to the relay: appends never allocate or block, a full buffer and a failed disk are reported
/// (never hidden), events reach the file within the flush interval, and closing seals.
/// </summary>
public sealed class RecordingWriterTests : IDisposable
{
    private readonly RecordingFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    [Fact]
    public async Task A_full_buffer_is_reported_and_room_comes_back_when_the_writer_drains()
    {
        // No writer thread: the test decides when the buffer drains.
        var service = new RecordingService(_fixture.Options(blockSize: 4096, maxBuffered: 64 * 1024), null, null, startThread: false);
        await using var _ = service;
        using var output = new MemoryStream();
        var writer = service.Start(RecordingFixture.Session("full"), output, leaveOpen: true);
        byte[] payload = new byte[200];

        int recorded = 0;
        RecordingStatus status;
        while ((status = writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, payload)) == RecordingStatus.Recorded)
        {
            recorded++;
        }

        Assert.Equal(RecordingStatus.Full, status);
        Assert.InRange(recorded, 250, 330);
        Assert.InRange(writer.BufferedBytes, 60 * 1024, 64 * 1024);
        Assert.Equal(1, writer.FullCount);
        Assert.Equal(RecordingWriterState.Open, writer.State);
        var room = writer.WaitForRoomAsync().AsTask();
        Assert.False(room.IsCompleted);

        service.DrainPass(tick: true);
        await room.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, writer.BufferedBytes);
        Assert.Equal(RecordingStatus.Recorded, writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, payload));

        var closing = writer.DisposeAsync().AsTask();
        service.DrainPass(tick: false);
        await closing.WaitAsync(TimeSpan.FromSeconds(5));
        output.Position = 0;
        await using var reader = new RecordingReader(output, RecordingFixture.Key, leaveOpen: true);
        var verification = await reader.VerifyAsync();
        Assert.Equal(RecordingIntegrity.Intact, verification.Integrity);
        Assert.Equal(recorded + 2, verification.Events); // SessionStart, the events before Full, the one after
    }

    [Fact]
    public async Task An_event_larger_than_half_the_buffer_is_refused_as_too_large()
    {
        await using var service = new RecordingService(_fixture.Options(blockSize: 4096, maxBuffered: 64 * 1024));
        var writer = service.Start(RecordingFixture.Session("too-large"));
        Assert.Equal(RecordingStatus.TooLarge, writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, new byte[32 * 1024]));
        Assert.Equal(RecordingStatus.Recorded, writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, new byte[30 * 1024]));
        await writer.DisposeAsync();
        Assert.Equal(RecordingIntegrity.Intact, (await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key)).Integrity);
    }

    public static TheoryData<string> FailingStreams => ["disk full", "closed stream"];

    [Theory]
    [MemberData(nameof(FailingStreams))]
    public async Task A_write_error_faults_the_writer_with_the_reason(string kind)
    {
        Stream output = kind == "disk full"
            ? new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0)
            : new MemoryStream();
        if (kind == "closed stream")
        {
            output.Dispose();
        }

        await using var service = new RecordingService(_fixture.Options());
        var writer = service.Start(RecordingFixture.Session(kind.Replace(' ', '-')), output);
        Assert.Equal(RecordingStatus.Recorded, writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "Q"u8));

        await Assert.ThrowsAsync<IOException>(() => writer.FlushAsync());
        Assert.Equal(RecordingWriterState.Faulted, writer.State);
        Assert.Equal(RecordingFault.WriteFailed, writer.Fault);
        Assert.Contains(kind == "disk full" ? "No space left on device" : "ObjectDisposedException", writer.FaultDetail, StringComparison.Ordinal);
        Assert.True(writer.Faulted.IsCancellationRequested);
        Assert.Equal(RecordingStatus.Faulted, writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "Q"u8));
        Assert.Equal(0, writer.BufferedBytes);
        await writer.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(RecordingWriterState.Faulted, writer.State);
        Assert.Equal(0, service.OpenRecordings);
    }

    [Fact]
    public async Task A_write_error_wakes_a_caller_waiting_for_room()
    {
        var service = new RecordingService(_fixture.Options(blockSize: 4096, maxBuffered: 64 * 1024), null, null, startThread: false);
        await using var _ = service;
        var output = new MemoryStream();
        var writer = service.Start(RecordingFixture.Session("fault-waiter"), output);
        while (writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, new byte[500]) == RecordingStatus.Recorded)
        {
        }

        var room = writer.WaitForRoomAsync().AsTask();
        output.Dispose();
        service.DrainPass(tick: true);
        await room.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(RecordingStatus.Faulted, writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, new byte[1]));
    }

    // A read-only directory is the same failure (CreateFailed), but the tests run as root, which ignores permissions.
    public static TheoryData<string> UncreatableDirectories => ["missing directory", "a file, not a directory"];

    [Theory]
    [MemberData(nameof(UncreatableDirectories))]
    public async Task A_file_that_cannot_be_created_comes_back_as_a_faulted_writer(string kind)
    {
        string directory = Path.Combine(_fixture.Directory, "not-there");
        if (kind == "a file, not a directory")
        {
            await File.WriteAllTextAsync(directory, "x");
        }

        var options = _fixture.Options();
        await using var service = new RecordingService(new RecordingOptions { Directory = directory, Key = options.Key });
        var writer = service.Start(RecordingFixture.Session("create-failed"));

        Assert.Equal(RecordingWriterState.Faulted, writer.State);
        Assert.Equal(RecordingFault.CreateFailed, writer.Fault);
        Assert.StartsWith($"cannot create {directory}/", writer.FaultDetail, StringComparison.Ordinal);
        Assert.True(writer.Faulted.IsCancellationRequested);
        Assert.Equal(RecordingStatus.Faulted, writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "Q"u8));
        await writer.DisposeAsync();
    }

    [Fact]
    public async Task An_existing_recording_is_never_overwritten()
    {
        string path = await _fixture.RecordAsync("twice", count: 10);
        byte[] before = await File.ReadAllBytesAsync(path);
        await using var service = new RecordingService(_fixture.Options());
        var writer = service.Start(RecordingFixture.Session("twice"));
        Assert.Equal(RecordingFault.CreateFailed, writer.Fault);
        Assert.Equal(before, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task Append_allocates_nothing_in_steady_state()
    {
        await using var service = new RecordingService(_fixture.Options(blockSize: 64 * 1024, maxBuffered: 16 * 1024 * 1024));
        var writer = service.Start(RecordingFixture.Session("allocations"));
        byte[] payload = new byte[100];
        new Random(5).NextBytes(payload);

        // Warm up past tiered compilation, with rounds twice as large as the measured one so that the shared pool holds
        // more segments than the measured round can have in flight; drain between rounds so each starts empty.
        for (int round = 0; round < 5; round++)
        {
            AppendMany(writer, payload, 20_000);
            await writer.FlushAsync();
            await Task.Delay(20);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        AppendMany(writer, payload, 10_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        await writer.DisposeAsync();
        Assert.Equal(0, allocated);
        Assert.Equal(RecordingIntegrity.Intact, (await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key)).Integrity);
    }

    private static void AppendMany(RecordingWriter writer, byte[] payload, int count)
    {
        for (int i = 0; i < count; i++)
        {
            if (writer.Append(RecordKind.ServerMessage, RecordDirection.ServerToClient, payload) != RecordingStatus.Recorded)
            {
                throw new InvalidOperationException("not recorded");
            }
        }
    }

    [Fact]
    public async Task Events_reach_the_file_within_the_flush_interval_without_a_flush()
    {
        await using var service = new RecordingService(_fixture.Options(flushMs: 50));
        var writer = service.Start(RecordingFixture.Session("interval"));
        foreach (var (kind, direction, payload) in RecordingFixture.Events(100))
        {
            writer.Append(kind, direction, payload);
        }

        // What a killed process would leave: the file as it is, while the writer is still open.
        string copy = Path.Combine(_fixture.Directory, "copy.ghrec.lz4");
        RecordingVerification? seen = null;
        for (int attempt = 0; attempt < 50 && seen?.Events != 101; attempt++)
        {
            await Task.Delay(20);
            File.Copy(writer.Path!, copy, overwrite: true);
            seen = await RecordingReader.VerifyAsync(copy, RecordingFixture.Key);
        }

        Assert.Equal(101, seen!.Events);
        Assert.Equal(RecordingIntegrity.Unsealed, seen.Integrity);
        Assert.Equal(RecordingProblemKind.Unsealed, Assert.Single(seen.Problems).Kind);
        await writer.DisposeAsync();
    }

    [Fact]
    public async Task Two_relay_directions_appending_at_once_are_both_recorded_in_their_own_order()
    {
        await using var service = new RecordingService(_fixture.Options(blockSize: 4096));
        var writer = service.Start(RecordingFixture.Session("concurrent"));
        const int PerSide = 5000;
        var sides = new[] { RecordDirection.ClientToServer, RecordDirection.ServerToClient }.Select(direction => Task.Run(async () =>
        {
            var payload = new byte[64];
            for (int i = 0; i < PerSide; i++)
            {
                BitConverter.TryWriteBytes(payload, i);
                RecordingStatus status;
                while ((status = writer.Append(RecordKind.ClientMessage, direction, payload)) == RecordingStatus.Full)
                {
                    await writer.WaitForRoomAsync();
                }

                Assert.Equal(RecordingStatus.Recorded, status);
            }
        })).ToArray();
        await Task.WhenAll(sides);
        await writer.DisposeAsync();

        var events = await RecordingFixture.ReadAllAsync(writer.Path!);
        foreach (var direction in new[] { RecordDirection.ClientToServer, RecordDirection.ServerToClient })
        {
            var sequence = events.Where(e => e.Direction == direction).Select(e => BitConverter.ToInt32(e.Payload.Span)).ToList();
            Assert.Equal(Enumerable.Range(0, PerSide), sequence);
        }

        Assert.Equal(RecordingIntegrity.Intact, (await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key)).Integrity);
    }

    [Fact]
    public async Task Stopping_the_service_seals_every_open_recording()
    {
        var service = new RecordingService(_fixture.Options());
        var writers = Enumerable.Range(0, 3).Select(i => service.Start(RecordingFixture.Session($"open-{i}"))).ToList();
        foreach (var writer in writers)
        {
            writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "Q"u8);
            Assert.True(service.IsOpen(writer.Path!));
        }

        await service.DisposeAsync();
        foreach (var writer in writers)
        {
            Assert.Equal(RecordingWriterState.Closed, writer.State);
            Assert.False(service.IsOpen(writer.Path!));
            Assert.Equal(RecordingIntegrity.Intact, (await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key)).Integrity);
        }

        Assert.Throws<ObjectDisposedException>(() => service.Start(RecordingFixture.Session("late")));
    }

    [Fact]
    public async Task Event_times_count_from_the_session_start_in_the_header()
    {
        await using var service = new RecordingService(_fixture.Options());
        var start = DateTimeOffset.UtcNow.AddSeconds(-2);
        var writer = service.Start(RecordingFixture.Session("times") with { StartTime = start });
        writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "Q"u8);
        await writer.DisposeAsync();

        var events = await RecordingFixture.ReadAllAsync(writer.Path!);
        Assert.InRange(events[1].Time, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(60));
        var header = (await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key)).Header!;
        Assert.Equal(start.AddTicks(-(start.Ticks % TimeSpan.TicksPerMicrosecond)), header.StartTime);
    }

    [Fact]
    public async Task A_flush_writes_everything_appended_before_it_and_keeps_recording()
    {
        await using var service = new RecordingService(_fixture.Options(flushMs: 60_000));
        var writer = service.Start(RecordingFixture.Session("flush"));
        writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "one"u8);
        await writer.FlushAsync();
        var first = await RecordingReader.VerifyAsync(writer.Path!, RecordingFixture.Key);
        Assert.Equal(2, first.Events);

        writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, "two"u8);
        await writer.DisposeAsync();
        var events = await RecordingFixture.ReadAllAsync(writer.Path!);
        Assert.Equal(["one", "two"], events.Skip(1).Select(e => System.Text.Encoding.ASCII.GetString(e.Payload.Span)));
    }
}
