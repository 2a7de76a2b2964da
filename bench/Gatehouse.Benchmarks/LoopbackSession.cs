using System.Net;
using System.Net.Sockets;
using Gatehouse.Engine;
using Gatehouse.Engine.Sessions;
using Gatehouse.Engine.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Benchmarks;

/// <summary>
/// A real <see cref="Session"/> over a connected loopback socket pair, as the listener would make it. The relay
/// handlers only record on the session; nothing is sent on the sockets.
/// </summary>
internal sealed class LoopbackSession : IDisposable
{
    private readonly Socket _peer;
    private readonly ConnectionTransport _transport;

    private LoopbackSession(Socket peer, ConnectionTransport transport)
    {
        _peer = peer;
        _transport = transport;
        Session = new Session(1, "bench", transport, Limits, NullLogger.Instance);
    }

    public static GatewayLimits Limits { get; } = new();

    public Session Session { get; }

    public static LoopbackSession Open()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        peer.Connect(listener.LocalEndPoint!);
        return new LoopbackSession(peer, ConnectionTransport.FromAccepted(listener.Accept()));
    }

    public void Dispose()
    {
        Session.Dispose();
        _transport.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _peer.Dispose();
    }
}
