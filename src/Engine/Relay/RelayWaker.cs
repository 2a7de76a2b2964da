using System.IO.Pipelines;

namespace Gatehouse.Engine.Relay;

/// <summary>
/// Wakes a relay direction that is waiting for input, so its handler can act without a frame: drain a session
/// that sits idle, or (policy) write a message that must go out in order. A wake is a cancelled read, which the
/// pump tells apart from a stop.
/// </summary>
public sealed class RelayWaker
{
    private PipeReader? _client;
    private PipeReader? _server;
    private PipeWriter? _toClient;
    private PipeWriter? _toServer;

    internal void Attach(PipeReader client, PipeReader server, PipeWriter toClient, PipeWriter toServer)
    {
        _client = client;
        _server = server;
        _toClient = toClient;
        _toServer = toServer;
    }

    /// <summary>Wakes the client-to-server direction.</summary>
    public void WakeClientToServer() => _client?.CancelPendingRead();

    /// <summary>Wakes the server-to-client direction.</summary>
    public void WakeServerToClient() => _server?.CancelPendingRead();

    /// <summary>Stops both directions: pending reads and pending flushes (a pump held by backpressure) return.</summary>
    internal void CancelAll()
    {
        _client?.CancelPendingRead();
        _server?.CancelPendingRead();
        _toClient?.CancelPendingFlush();
        _toServer?.CancelPendingFlush();
    }
}
