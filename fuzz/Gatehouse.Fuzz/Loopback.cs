using System.Net;
using System.Net.Sockets;
using Gatehouse.Engine.Transport;

namespace Gatehouse.Fuzz;

/// <summary>
/// One real client transport over a loopback socket pair, made once per process: a <c>Session</c> needs one, and the
/// relay handlers never touch it (they only record on the session), so every fuzz run shares it.
/// </summary>
internal static class Loopback
{
    private static readonly Lazy<(ConnectionTransport Transport, Socket Peer)> Pair = new(Connect);

    public static ConnectionTransport Transport => Pair.Value.Transport;

    private static (ConnectionTransport, Socket) Connect()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        peer.Connect(listener.LocalEndPoint!);
        var accepted = listener.Accept();
        return (ConnectionTransport.FromAccepted(accepted), peer);
    }
}
