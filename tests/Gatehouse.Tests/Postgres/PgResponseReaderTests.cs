using Gatehouse.Protocols.Postgres.Masking;
using Gatehouse.Tests.Support;
using static Gatehouse.Tests.Support.PgMessages;

namespace Gatehouse.Tests.Postgres;

/// <summary>
/// The catalog connection's response reader over hand-written frames: every two-segment split of a stream of two
/// responses, a message larger than the pipe window assembled outside it, a connection that closes mid-message,
/// and lengths out of bounds.
/// </summary>
public sealed class PgResponseReaderTests
{
    private static readonly byte[][] FirstResponse =
    [
        RowDescription("oid", "relname"),
        DataRow("16384", "Customer"),
        DataRow("16390", null),
        CommandComplete("SELECT 2"),
        ReadyForQuery('I'),
    ];

    private static readonly byte[][] SecondResponse =
    [
        Notice("relation changed"),
        Error("ERROR", "42501", "permission denied for schema locked"),
        ReadyForQuery('I'),
    ];

    [Fact]
    public async Task Every_split_of_two_responses_reads_the_same_messages()
    {
        var stream = Concat([.. FirstResponse, .. SecondResponse]);
        for (int split = 0; split <= stream.Length; split++)
        {
            var reader = new ChunkedPipeReader([stream[..split], stream[split..]]);
            var first = new Recorder();
            await PgResponseReader.ReadUntilReadyAsync(reader, first, 1024, CancellationToken.None);
            var second = new Recorder();
            await PgResponseReader.ReadUntilReadyAsync(reader, second, 1024, CancellationToken.None);
            Assert.Equal(FirstResponse.Select(Hex), first.Messages.Select(Hex));
            Assert.Equal(SecondResponse.Select(Hex), second.Messages.Select(Hex));
        }
    }

    [Fact]
    public async Task A_message_larger_than_the_pipe_window_is_assembled_outside_it()
    {
        var definition = new string('x', PgResponseReader.AssemblyThreshold * 3 + 17);
        var stream = Concat(DataRow(definition), CommandComplete("SELECT 1"), ReadyForQuery('I'));
        var chunks = stream.Chunk(64 * 1024 + 3).ToArray();
        var recorder = new Recorder();
        await PgResponseReader.ReadUntilReadyAsync(new ChunkedPipeReader(chunks), recorder, 64 * 1024 * 1024, CancellationToken.None);
        Assert.Equal(3, recorder.Messages.Count);
        Assert.Equal(Hex(DataRow(definition)), Hex(recorder.Messages[0]));
        Assert.Equal(Hex(ReadyForQuery('I')), Hex(recorder.Messages[2]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(9)]
    public async Task A_connection_that_closes_before_ReadyForQuery_is_a_lost_connection(int cut)
    {
        var stream = Concat(DataRow("a"), ReadyForQuery('I'));
        var reader = new ChunkedPipeReader([stream[..^cut]]);
        var error = await Assert.ThrowsAsync<PgCatalogException>(
            () => PgResponseReader.ReadUntilReadyAsync(reader, new Recorder(), 1024, CancellationToken.None).AsTask());
        Assert.True(error.ConnectionLost);
    }

    [Theory]
    [InlineData(3, "invalid length")]
    [InlineData(2000, "over the catalog connection's limit of 1024")]
    public async Task A_length_out_of_bounds_is_refused_before_buffering(int length, string expected)
    {
        byte[] header = [(byte)'D', .. I32(length)];
        var reader = new ChunkedPipeReader([header]);
        var error = await Assert.ThrowsAsync<PgCatalogException>(
            () => PgResponseReader.ReadUntilReadyAsync(reader, new Recorder(), 1024, CancellationToken.None).AsTask());
        Assert.Contains(expected, error.Message);
        Assert.False(error.ConnectionLost);
    }

    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes);

    /// <summary>Records every message as a whole frame again (code, length, body).</summary>
    private sealed class Recorder : IPgResponseHandler
    {
        public List<byte[]> Messages { get; } = [];

        public void OnMessage(byte code, ReadOnlySpan<byte> body) => Messages.Add(Message((char)code, body.ToArray()));
    }
}
