using System.Net;
using System.Net.Sockets;
using Gatehouse.Engine.Logging;
using Gatehouse.Engine.Sessions;
using Gatehouse.Engine.Transport;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Engine;

/// <summary>
/// The running gateway: its listeners, its sessions, and the drain that stops them. Protocol-agnostic.
/// </summary>
public sealed class Gateway : IAsyncDisposable
{
    /// <summary>How long a closing connection waits for its peer to read a final message and hang up.</summary>
    private static readonly TimeSpan CloseLinger = TimeSpan.FromSeconds(1);

    /// <summary>How long a refused connection may take to hear why (it may first negotiate TLS).</summary>
    private static readonly TimeSpan RefusalDeadline = TimeSpan.FromSeconds(5);

    private readonly List<Listener> _listeners = [];
    private readonly ILogger _logger;
    private readonly ILogger _sessionLogger;
    private int _draining;

    public Gateway(GatewayLimits limits, ILoggerFactory loggerFactory)
    {
        Limits = limits;
        _logger = loggerFactory.CreateLogger("Gatehouse.Engine");
        _sessionLogger = loggerFactory.CreateLogger("Gatehouse.Session");
    }

    public GatewayLimits Limits { get; }

    public SessionRegistry Sessions { get; } = new();

    /// <summary>The addresses actually bound, in the order listeners were added (port 0 resolved).</summary>
    public IReadOnlyList<IPEndPoint> BoundEndPoints => _listeners.Select(l => l.BoundEndPoint).ToArray();

    /// <summary>Adds a listener; it starts accepting at <see cref="Start"/>.</summary>
    public void AddListener(string name, IPEndPoint endPoint, ISessionProtocol protocol) =>
        _listeners.Add(new Listener(this, name, endPoint, protocol));

    /// <summary>Binds every listener (all or nothing) and starts accepting.</summary>
    public void Start()
    {
        try
        {
            foreach (var listener in _listeners)
            {
                listener.Bind();
            }
        }
        catch
        {
            foreach (var listener in _listeners)
            {
                listener.Stop();
            }

            throw;
        }

        foreach (var listener in _listeners)
        {
            listener.StartAccepting();
        }
    }

    /// <summary>
    /// Graceful stop: no new sessions; running sessions finish their statement and end; after the drain timeout
    /// the rest are cut.
    /// </summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _draining, 1) != 0)
        {
            return;
        }

        foreach (var listener in _listeners)
        {
            listener.Stop();
        }

        int count = Sessions.Count;
        if (count > 0)
        {
            EngineLog.Draining(_logger, count, Limits.DrainTimeout);
            Sessions.DrainAll();
            if (!await WaitForSessionsAsync(Limits.DrainTimeout).ConfigureAwait(false))
            {
                EngineLog.DrainCut(_logger, Sessions.Count);
                Sessions.AbortAll(SessionEndReason.ShutdownAborted);
                await WaitForSessionsAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
        }

        EngineLog.Stopped(_logger);
    }

    private async Task<bool> WaitForSessionsAsync(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Sessions.Count > 0)
        {
            if (Environment.TickCount64 > deadline)
            {
                return false;
            }

            await Task.Delay(50).ConfigureAwait(false);
        }

        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        Sessions.Dispose();
    }

    private async Task RunSessionAsync(Listener listener, Socket socket)
    {
        ConnectionTransport transport;
        try
        {
            transport = ConnectionTransport.FromAccepted(socket);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            socket.Dispose();
            return;
        }

        long id = Sessions.NextId();
        var refusal = Volatile.Read(ref _draining) != 0 ? SessionEndReason.Drained
            : !Sessions.TryReserve(Limits.MaxConnections) ? SessionEndReason.ConnectionLimit
            : SessionEndReason.None;
        if (refusal != SessionEndReason.None)
        {
            EngineLog.SessionRefused(_logger, id, refusal);
            using var refused = new Session(id, listener.Name, transport, Limits, _sessionLogger);
            refused.TrySetEnd(refusal, PeerSide.Gateway);
            refused.AbortAfter(RefusalDeadline);
            try
            {
                await listener.Protocol.RefuseAsync(refused, refusal).ConfigureAwait(false);
            }
            catch (Exception ex) when (Relay.FrameRelay.IsTransportFault(ex) || ex is InvalidOperationException)
            {
            }

            await transport.CloseAsync(CloseLinger).ConfigureAwait(false);
            return;
        }

        var session = new Session(id, listener.Name, transport, Limits, _sessionLogger);
        Sessions.Add(session);
        EngineLog.SessionAccepted(_logger, id, listener.Name, transport.RemoteEndPoint);
        try
        {
            await listener.Protocol.RunAsync(session).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            if (session.TrySetEnd(SessionEndReason.InternalError, PeerSide.Gateway, ex.GetType().Name))
            {
                EngineLog.SessionCrashed(_logger, id, ex);
            }
        }
        finally
        {
            session.TrySetEnd(SessionEndReason.InternalError, PeerSide.Gateway, "protocol ended without a reason");
            session.Advance(SessionStage.Ending);
            if (session.Upstream is { } upstream)
            {
                await upstream.DisposeAsync().ConfigureAwait(false);
            }

            if (session.Aborted.IsCancellationRequested)
            {
                await transport.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await transport.CloseAsync(CloseLinger).ConfigureAwait(false);
            }

            session.Advance(SessionStage.Ended);
            Sessions.Remove(session);
            Sessions.Release();
            EngineLog.SessionEnded(_logger, id, session.EndReason, session.EndSide, session.EndDetail, session.Identity,
                session.ConnectionName, Environment.TickCount64 - session.StartedTicks, session.BytesFromClient, session.BytesFromServer);
            session.Dispose();
        }
    }

    private sealed class Listener(Gateway gateway, string name, IPEndPoint endPoint, ISessionProtocol protocol)
    {
        private Socket? _socket;

        public string Name { get; } = name;

        public ISessionProtocol Protocol { get; } = protocol;

        public IPEndPoint BoundEndPoint { get; private set; } = endPoint;

        public void Bind()
        {
            var socket = new Socket(BoundEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(BoundEndPoint);
                socket.Listen(512);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            _socket = socket;
            BoundEndPoint = (IPEndPoint)socket.LocalEndPoint!;
            EngineLog.ListenerStarted(gateway._logger, Name, Protocol.Name, BoundEndPoint);
        }

        public void StartAccepting() => _ = AcceptLoopAsync(_socket!);

        private async Task AcceptLoopAsync(Socket listenSocket)
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await listenSocket.AcceptAsync().ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
                {
                    return;
                }
                catch (SocketException ex)
                {
                    // Transient (EMFILE, ECONNABORTED): log, back off briefly, keep serving.
                    EngineLog.AcceptFailed(gateway._logger, Name, ex);
                    await Task.Delay(100).ConfigureAwait(false);
                    continue;
                }

                // The session runs on the thread pool so a slow handshake never delays the next accept.
                ThreadPool.UnsafeQueueUserWorkItem(
                    static state => _ = state.gateway.RunSessionAsync(state.listener, state.accepted),
                    (gateway, listener: this, accepted), preferLocal: false);
            }
        }

        public void Stop()
        {
            var socket = Interlocked.Exchange(ref _socket, null);
            if (socket is not null)
            {
                socket.Dispose();
                EngineLog.ListenerStopped(gateway._logger, Name);
            }

        }
    }
}
