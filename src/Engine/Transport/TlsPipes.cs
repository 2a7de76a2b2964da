using System.IO.Pipelines;
using System.Net.Security;

namespace Gatehouse.Engine.Transport;

/// <summary>
/// The socket pipe seen as a stream, for SslStream to run over. Built on the framework's pipe streams, whose
/// cancellation is reported through the awaiting task (never thrown from a callback).
/// </summary>
internal sealed class DuplexPipeStream(IDuplexPipe pipe) : Stream
{
    private readonly Stream _input = pipe.Input.AsStream(leaveOpen: true);
    private readonly Stream _output = pipe.Output.AsStream(leaveOpen: true);

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _input.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _input.ReadAsync(buffer, offset, count, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _output.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _output.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => _output.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>
/// The decrypted side of a TLS connection as a duplex pipe. Two copy loops sit between the pipes and the
/// SslStream, so that the relay can cancel its reads and flushes (a wake-up, a stop) without ever cancelling an
/// SslStream operation half-way through a record. Completing the output sends TLS close_notify, then FIN.
/// </summary>
internal sealed class TlsDuplexPipe : IDuplexPipe
{
    private readonly Pipe _inbound = new(TransportOptions.Pipes);
    private readonly Pipe _outbound = new(TransportOptions.Pipes);
    private readonly SslStream _tls;
    private readonly IDuplexPipe _socket;

    public TlsDuplexPipe(SslStream tls, IDuplexPipe socket)
    {
        _tls = tls;
        _socket = socket;
        _ = ReadLoopAsync();
        _ = WriteLoopAsync();
    }

    public PipeReader Input => _inbound.Reader;

    public PipeWriter Output => _outbound.Writer;

    private async Task ReadLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var memory = _inbound.Writer.GetMemory(16 * 1024);
                int read = await _tls.ReadAsync(memory).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                _inbound.Writer.Advance(read);
                var flush = await _inbound.Writer.FlushAsync().ConfigureAwait(false);
                if (flush.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex)
        {
            error = ex is IOException ? ex : new IOException("TLS read failed", ex);
        }

        await _inbound.Writer.CompleteAsync(error).ConfigureAwait(false);
    }

    private async Task WriteLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var result = await _outbound.Reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    await _tls.WriteAsync(segment).ConfigureAwait(false);
                }

                _outbound.Reader.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }

            await _tls.ShutdownAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            error = ex;
        }

        await _outbound.Reader.CompleteAsync(error).ConfigureAwait(false);
        try
        {
            // FIN after close_notify: the peer sees the end of the stream.
            await _socket.Output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException)
        {
        }
    }
}
