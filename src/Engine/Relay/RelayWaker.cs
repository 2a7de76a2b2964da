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
    public void WakeClientToServer() => Quietly(_client, static r => r.CancelPendingRead());

    /// <summary>Wakes the server-to-client direction.</summary>
    public void WakeServerToClient() => Quietly(_server, static r => r.CancelPendingRead());

    /// <summary>Stops both directions: pending reads and pending flushes (a pump held by backpressure) return.</summary>
    internal void CancelAll()
    {
        Quietly(_client, static r => r.CancelPendingRead());
        Quietly(_server, static r => r.CancelPendingRead());
        Quietly(_toClient, static w => w.CancelPendingFlush());
        Quietly(_toServer, static w => w.CancelPendingFlush());
    }

    private static void Quietly<T>(T? target, Action<T> action)
        where T : class
    {
        if (target is null)
        {
            return;
        }

        try
        {
            action(target);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ObjectDisposedException or OperationCanceledException or AggregateException)
        {
            // The pipe is already completed or torn down: there is nothing left to wake.
        }
    }
}
