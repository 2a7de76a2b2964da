using System.Buffers;
using System.IO.Pipelines;
using Gatehouse.Engine.Recording;

namespace Gatehouse.Tests.Recording;

/// <summary>
/// The tap's promise: nothing reaches the peer before it is recorded. A full recording pauses the flush (or ends
/// the session), a failed one stops the connection for good, and order is kept between bytes and records.
/// </summary>
public sealed class RecordingTapTests : IDisposable
{
    private readonly RecordingFixture _fixture = new();

    public void Dispose() => _fixture.Dispose();

    private (RecordingService Service, RecordingWriter Writer, MemoryStream File) Manual(int maxBuffered = 64 * 1024)
    {
        // No writer thread: the test decides when the recording drains.
        var service = new RecordingService(_fixture.Options(blockSize: 4096, maxBuffered: maxBuffered), null, null, startThread: false);
        var file = new MemoryStream();
        return (service, service.Start(RecordingFixture.Session("tap"), file, leaveOpen: true), file);
    }

    /// <summary>A tap over a fresh pipe that records what it writes as server messages.</summary>
    private static (Pipe Pipe, RecordingTap Tap) Tap(RecordingWriter writer, RecordingBackpressure mode, Action<string>? onFailure = null)
    {
        var pipe = new Pipe();
        return (pipe, new RecordingTap(pipe.Writer, writer, RecordKind.ServerMessage, RecordDirection.ServerToClient, mode, onFailure ?? (_ => { }),
            CancellationToken.None));
    }

    /// <summary>Fills the recording's buffer to the last byte with what was written before.</summary>
    private static void Fill(RecordingWriter writer)
    {
        foreach (int size in new[] { 1000, 100, 10, 1 })
        {
            while (writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, new byte[size]) == RecordingStatus.Recorded)
            {
            }
        }

        Assert.Equal(RecordingStatus.Full, writer.Append(RecordKind.ClientMessage, RecordDirection.ClientToServer, []));
    }

    private static async Task<byte[]> ReadAvailableAsync(PipeReader reader)
    {
        if (!reader.TryRead(out var result))
        {
            return [];
        }

        byte[] bytes = result.Buffer.ToArray();
        reader.AdvanceTo(result.Buffer.End);
        await Task.CompletedTask;
        return bytes;
    }

    [Fact]
    public async Task Bytes_written_through_the_tap_are_recorded_in_order_with_the_records_between_them()
    {
        var (service, writer, file) = Manual();
        await using var _ = service;
        string? failure = null;
        var (pipe, tap) = Tap(writer, RecordingBackpressure.Pause, reason => failure = reason);

        tap.Write("first "u8);
        tap.Write("second "u8);
        tap.Record(RecordKind.ResultMeta, RecordDirection.ServerToClient, "meta"u8);
        tap.Write("third"u8);
        var flush = await tap.FlushAsync();
        Assert.False(flush.IsCompleted);
        Assert.Equal("first second third"u8.ToArray(), await ReadAvailableAsync(pipe.Reader));

        var closing = writer.DisposeAsync().AsTask();
        service.DrainPass(tick: false);
        await closing;
        file.Position = 0;
        var events = new List<RecordingEvent>();
        await using (var reader = new RecordingReader(file, RecordingFixture.Key, leaveOpen: true))
        {
            await foreach (var e in reader.ReadEventsAsync())
            {
                events.Add(e);
            }
        }

        // Contiguous writes are one record; the record made between them splits them.
        var recorded = events.Where(e => e.Kind is RecordKind.ServerMessage or RecordKind.ResultMeta)
            .Select(e => (e.Kind, Text: System.Text.Encoding.ASCII.GetString(e.Payload.Span))).ToList();
        Assert.Equal([(RecordKind.ServerMessage, "first second "), (RecordKind.ResultMeta, "meta"), (RecordKind.ServerMessage, "third")], recorded);
        Assert.Null(failure);
    }

    [Fact]
    public async Task A_full_recording_pauses_the_flush_and_nothing_reaches_the_peer_until_it_is_recorded()
    {
        var (service, writer, _) = Manual();
        await using var _ = service;
        var (pipe, tap) = Tap(writer, RecordingBackpressure.Pause);

        Fill(writer);

        tap.Write("held back"u8);
        var flush = tap.FlushAsync().AsTask();
        await Task.Delay(100);
        Assert.False(flush.IsCompleted);
        Assert.Empty(await ReadAvailableAsync(pipe.Reader));
        Assert.True(tap.HasUnrecorded);

        service.DrainPass(tick: true);
        var result = await flush.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(result.IsCompleted);
        Assert.Equal("held back"u8.ToArray(), await ReadAvailableAsync(pipe.Reader));
        Assert.False(tap.HasUnrecorded);
    }

    [Fact]
    public async Task With_end_session_a_full_recording_fails_the_tap_and_the_bytes_are_never_flushed()
    {
        var (service, writer, _) = Manual();
        await using var _ = service;
        string? failure = null;
        var (pipe, tap) = Tap(writer, RecordingBackpressure.EndSession, reason => failure = reason);
        Fill(writer);

        tap.Write("never sent"u8);
        var result = await tap.FlushAsync();

        Assert.True(result.IsCompleted);
        Assert.Contains("could not keep up", failure, StringComparison.Ordinal);
        Assert.True(tap.HasUnrecorded);
        Assert.Empty(await ReadAvailableAsync(pipe.Reader));

        // Completing the tap does not hand the unrecorded bytes to the peer either.
        tap.Complete();
        Assert.Empty(await ReadAvailableAsync(pipe.Reader));
    }

    [Fact]
    public async Task A_failed_recording_fails_the_tap_at_once()
    {
        var (service, writer, _) = Manual();
        await using var _ = service;
        string? failure = null;
        var (pipe, tap) = Tap(writer, RecordingBackpressure.Pause, reason => failure = reason);
        var closing = writer.DisposeAsync().AsTask();
        service.DrainPass(tick: false);
        await closing;

        tap.Write("after the end"u8);
        var result = await tap.FlushAsync();

        Assert.True(result.IsCompleted);
        Assert.Equal("the recording was closed", failure);
        Assert.Empty(await ReadAvailableAsync(pipe.Reader));
    }

    [Fact]
    public async Task A_paused_flush_ends_when_the_relay_cancels_it()
    {
        var (service, writer, _) = Manual();
        await using var _ = service;
        var (pipe, tap) = Tap(writer, RecordingBackpressure.Pause);
        Fill(writer);

        tap.Write("x"u8);
        var flush = tap.FlushAsync().AsTask();
        await Task.Delay(50);
        tap.CancelPendingFlush();
        var result = await flush.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.True(result.IsCanceled);
        Assert.Empty(await ReadAvailableAsync(pipe.Reader));
    }
}
