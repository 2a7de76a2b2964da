using System.Net;
using System.Net.Sockets;
using Gatehouse.Engine;
using Gatehouse.Engine.Sessions;
using Gatehouse.Engine.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Tests.Support;

/// <summary>Sessions for relay tests: a real engine Session whose client transport is one end of a loopback pair.</summary>
internal static class TestSessions
{
    public static Session Create(GatewayLimits? limits = null)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        var accepted = listener.Accept();
        client.Dispose();
        return new Session(1, "test", ConnectionTransport.FromAccepted(accepted), limits ?? new GatewayLimits(), NullLogger.Instance);
    }
}
