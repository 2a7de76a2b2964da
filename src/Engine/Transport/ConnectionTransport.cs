using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Pipelines.Sockets.Unofficial;

namespace Gatehouse.Engine.Transport;

/// <summary>
/// One TCP connection as a duplex pipe, optionally upgraded to TLS in place (PostgreSQL and MySQL negotiate TLS
/// after a plaintext prelude). The transport only moves bytes; protocols live elsewhere.
/// </summary>
public sealed class ConnectionTransport : IAsyncDisposable
{
    private readonly SocketConnection _socket;
    private SslStream? _tls;
    private int _disposed;

    private ConnectionTransport(SocketConnection socket, EndPoint? remote)
    {
        _socket = socket;
        Pipe = socket;
        RemoteEndPoint = remote;
        IsLoopback = remote is IPEndPoint ip && IPAddress.IsLoopback(ip.Address);
    }

    /// <summary>The bytes of the connection: plaintext, or the decrypted side of TLS after an upgrade.</summary>
    public IDuplexPipe Pipe { get; private set; }

    public PipeReader Input => Pipe.Input;

    public PipeWriter Output => Pipe.Output;

    public EndPoint? RemoteEndPoint { get; }

    public bool IsLoopback { get; }

    public bool IsTls => _tls is not null;

    /// <summary>The TLS stream after an upgrade (protocol version, cipher, peer certificate).</summary>
    public SslStream? Tls => _tls;

    internal static ConnectionTransport FromAccepted(Socket socket)
    {
        SocketConnection.SetRecommendedServerOptions(socket);
        return Wrap(socket);
    }

    private static ConnectionTransport Wrap(Socket socket) => new(
        SocketConnection.Create(socket, TransportOptions.Pipes, TransportOptions.Pipes, TransportOptions.SocketOptions, name: null),
        socket.RemoteEndPoint);

    /// <summary>Opens a TCP connection to an upstream server.</summary>
    public static async Task<ConnectionTransport> ConnectAsync(string host, int port, CancellationToken cancellationToken)
    {
        var addresses = await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }

        Exception? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                SocketConnection.SetRecommendedClientOptions(socket);
                await socket.ConnectAsync(new IPEndPoint(address, port), cancellationToken).ConfigureAwait(false);
                return Wrap(socket);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException)
            {
                socket.Dispose();
                last = ex;
                if (ex is OperationCanceledException)
                {
                    throw;
                }
            }
        }

        throw last!;
    }

    /// <summary>
    /// Starts TLS as the server. The caller must have checked that no plaintext byte is buffered beyond the
    /// TLS request (CVE-2021-23214 class of bugs: plaintext injected before the handshake).
    /// </summary>
    public async Task UpgradeToServerTlsAsync(SslServerAuthenticationOptions options, CancellationToken cancellationToken)
    {
        var tls = new SslStream(new DuplexPipeStream(_socket), leaveInnerStreamOpen: false);
        _tls = tls;
        await tls.AuthenticateAsServerAsync(options, cancellationToken).ConfigureAwait(false);
        Pipe = new TlsDuplexPipe(tls, _socket);
    }

    /// <summary>Starts TLS as the client (the gateway to an upstream server).</summary>
    public async Task UpgradeToClientTlsAsync(SslClientAuthenticationOptions options, CancellationToken cancellationToken)
    {
        var tls = new SslStream(new DuplexPipeStream(_socket), leaveInnerStreamOpen: false);
        _tls = tls;
        await tls.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
        Pipe = new TlsDuplexPipe(tls, _socket);
    }

    /// <summary>
    /// Closes gracefully: what was written is sent, then we wait (bounded) for the peer to close its side so a
    /// final error message is not lost to a reset.
    /// </summary>
    public async ValueTask CloseAsync(TimeSpan linger)
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        try
        {
            await Pipe.Output.CompleteAsync().ConfigureAwait(false);
            using var cts = new CancellationTokenSource(linger);
            int cancelled = 0;
            while (true)
            {
                var result = await Pipe.Input.ReadAsync(cts.Token).ConfigureAwait(false);
                Pipe.Input.AdvanceTo(result.Buffer.End);

                // One cancelled read may be left over from the relay's stop; a second means someone wants us gone.
                if (result.IsCompleted || (result.IsCanceled && ++cancelled > 1))
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException
                                       or ObjectDisposedException or InvalidOperationException
                                       or ConnectionResetException or ConnectionAbortedException)
        {
            // The peer is gone or slow: either way we are done with it.
        }

        await DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Cuts the connection at once.</summary>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }

        try
        {
            _tls?.Dispose();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
        }

        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
