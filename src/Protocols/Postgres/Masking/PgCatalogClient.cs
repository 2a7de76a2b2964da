using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gatehouse.Engine.Transport;
using Gatehouse.Protocols.Postgres.Auth;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>Receives each backend message of a response, in order, while its bytes are still in the pipe.</summary>
internal interface IPgResponseHandler
{
    /// <summary>One whole message: its code and body (valid only during the call). May throw to abort the load.</summary>
    void OnMessage(byte code, ReadOnlySpan<byte> body);
}

/// <summary>
/// The gateway's own client connection to an upstream, for catalog queries: logged in by
/// <see cref="UpstreamConnector"/> (TLS, SCRAM, md5 as for sessions), then simple and extended queries written
/// with <see cref="PgWriter"/> and responses read frame by frame from the pipe.
/// </summary>
internal sealed class PgCatalogClient : IAsyncDisposable
{
    private readonly ConnectionTransport _transport;
    private readonly int _maxMessage;

    public PgCatalogClient(ConnectionTransport transport, int maxMessage)
    {
        _transport = transport;
        _maxMessage = maxMessage;
    }

    public PipeWriter Output => _transport.Output;

    /// <summary>Whether this connection already holds the catalog's named statements (they live as long as it does).</summary>
    public bool StatementsPrepared { get; set; }

    /// <summary>Connects and logs in as the target's configured user, with application_name gatehouse-catalog.</summary>
    public static async Task<PgCatalogClient> ConnectAsync(PgConnectionTarget target, int maxMessage, CancellationToken cancellationToken)
    {
        // UTF8 so that names decode the same whatever the database's encoding; the application name lets a DBA
        // tell the catalog connection from the sessions it serves.
        var login = await UpstreamConnector.ConnectAsync(target,
            [new("application_name", "gatehouse-catalog"), new("client_encoding", "UTF8")], cancellationToken).ConfigureAwait(false);
        return new PgCatalogClient(login.Transport, maxMessage);
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var result = await _transport.Output.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCompleted)
        {
            throw new PgCatalogException("the upstream server closed the catalog connection", connectionLost: true);
        }
    }

    /// <summary>Hands every message to <paramref name="handler"/> up to and including the next ReadyForQuery.</summary>
    public ValueTask ReadUntilReadyAsync<THandler>(THandler handler, CancellationToken cancellationToken)
        where THandler : IPgResponseHandler =>
        PgResponseReader.ReadUntilReadyAsync(_transport.Input, handler, _maxMessage, cancellationToken);

    /// <summary>Says goodbye (Terminate) when the connection is idle, then closes it.</summary>
    public async ValueTask CloseAsync()
    {
        try
        {
            PgWriter.WriteTerminate(_transport.Output);
            await _transport.Output.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or OperationCanceledException)
        {
            // Gone already: closing is all that is left.
        }

        await DisposeAsync().ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => _transport.DisposeAsync();
}

/// <summary>
/// Reads backend messages from a pipe: every whole message in the buffer is handed over in place (a message split
/// across segments is copied to a pooled buffer first); a partial message is never consumed, and the length is
/// checked before anything is buffered for it. A message too large to wait for in the pipe (whose writer pauses at
/// 1 MiB unconsumed) is assembled in a pooled buffer outside it, as the relay does.
/// </summary>
internal static class PgResponseReader
{
    /// <summary>An incomplete message longer than this is assembled outside the pipe: a quarter of its pause threshold.</summary>
    public const int AssemblyThreshold = 256 * 1024;

    public static async ValueTask ReadUntilReadyAsync<THandler>(PipeReader input, THandler handler, int maxMessage, CancellationToken cancellationToken)
        where THandler : IPgResponseHandler
    {
        var large = new LargeMessage();
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
                if (!Thread.CurrentThread.IsThreadPoolThread)
                {
                    // The transport's pipes continue inline on the socket's completion thread, which other sessions'
                    // relays share: catalog decoding is bulk work and belongs on the thread pool.
                    await Task.Yield();
                }

                var buffer = result.Buffer;
                bool ready = false;
                try
                {
                    ready = Handle(ref buffer, handler, maxMessage, ref large);
                }
                finally
                {
                    // buffer now starts at the first byte not handled. After ReadyForQuery, what follows belongs to
                    // the next response: leave it unexamined so that the next read returns it at once.
                    input.AdvanceTo(buffer.Start, ready ? buffer.Start : result.Buffer.End);
                }

                if (ready)
                {
                    return;
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    throw new PgCatalogException(buffer.IsEmpty && large.Buffer is null
                        ? "the upstream server closed the catalog connection"
                        : "the upstream server closed the catalog connection in the middle of a message", connectionLost: true);
                }
            }
        }
        finally
        {
            large.Release();
        }
    }

    /// <summary>Hands over what <paramref name="buffer"/> completes; true once ReadyForQuery was handed over.</summary>
    private static bool Handle<THandler>(ref ReadOnlySequence<byte> buffer, THandler handler, int maxMessage, ref LargeMessage large)
        where THandler : IPgResponseHandler
    {
        if (large.Buffer is not null)
        {
            int take = (int)Math.Min(buffer.Length, large.Length - large.Filled);
            buffer.Slice(0, take).CopyTo(large.Buffer.AsSpan(large.Filled));
            large.Filled += take;
            buffer = buffer.Slice(take);
            if (large.Filled < large.Length)
            {
                return false;
            }

            byte code = large.Code;
            try
            {
                handler.OnMessage(code, large.Buffer.AsSpan(0, large.Length));
            }
            finally
            {
                large.Release();
            }

            if (code == (byte)BackendCode.ReadyForQuery)
            {
                return true;
            }
        }

        Span<byte> header = stackalloc byte[5];
        while (buffer.Length >= 5)
        {
            buffer.Slice(0, 5).CopyTo(header);
            byte code = header[0];
            int length = BinaryPrimitives.ReadInt32BigEndian(header[1..]);
            if (length < 4 || length > maxMessage)
            {
                throw new PgCatalogException(length < 4
                    ? "the upstream server sent a message with an invalid length"
                    : $"the upstream server sent a message of {length} bytes, over the catalog connection's limit of {maxMessage}");
            }

            if (buffer.Length - 1 < length)
            {
                if (length > AssemblyThreshold)
                {
                    // Take the header and what is here of the body out of the pipe; the rest is copied as it comes.
                    large.Start(code, length - 4);
                    var part = buffer.Slice(5);
                    part.CopyTo(large.Buffer);
                    large.Filled = (int)part.Length;
                    buffer = buffer.Slice(buffer.End);
                }

                return false;
            }

            var body = buffer.Slice(5, length - 4);
            if (body.IsSingleSegment)
            {
                handler.OnMessage(code, body.FirstSpan);
            }
            else
            {
                var rented = ArrayPool<byte>.Shared.Rent(length - 4);
                try
                {
                    body.CopyTo(rented);
                    handler.OnMessage(code, rented.AsSpan(0, length - 4));
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(rented);
                }
            }

            buffer = buffer.Slice(1 + (long)length);
            if (code == (byte)BackendCode.ReadyForQuery)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A message being assembled outside the pipe.</summary>
    private struct LargeMessage
    {
        public byte[]? Buffer;
        public byte Code;
        public int Length;
        public int Filled;

        public void Start(byte code, int length)
        {
            Buffer = ArrayPool<byte>.Shared.Rent(length);
            Code = code;
            Length = length;
            Filled = 0;
        }

        public void Release()
        {
            if (Buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(Buffer);
                Buffer = null;
            }
        }
    }
}
