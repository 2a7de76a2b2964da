using System.Collections.Concurrent;

namespace Gatehouse.Engine.Sessions;

/// <summary>
/// The live sessions, and one heartbeat that enforces their deadlines (pre-auth, idle) for all of them, as
/// Kestrel does: no timer per session, one scan a second.
/// </summary>
public sealed class SessionRegistry : IDisposable
{
    private readonly ConcurrentDictionary<long, Session> _sessions = new();
    private readonly Timer _heartbeat;
    private long _nextId;
    private int _open;

    public SessionRegistry()
    {
        _heartbeat = new Timer(static state => ((SessionRegistry)state!).OnHeartbeat(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
    }

    public int Count => Volatile.Read(ref _open);

    internal long NextId() => Interlocked.Increment(ref _nextId);

    /// <summary>Reserves a slot; false when the gateway is at its connection limit.</summary>
    internal bool TryReserve(int max)
    {
        while (true)
        {
            int open = Volatile.Read(ref _open);
            if (open >= max)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _open, open + 1, open) == open)
            {
                return true;
            }
        }
    }

    internal void Release() => Interlocked.Decrement(ref _open);

    internal void Add(Session session) => _sessions[session.Id] = session;

    internal void Remove(Session session) => _sessions.TryRemove(session.Id, out _);

    internal void DrainAll()
    {
        foreach (var session in _sessions.Values)
        {
            session.RequestDrain();
        }
    }

    internal void AbortAll(SessionEndReason reason)
    {
        foreach (var session in _sessions.Values)
        {
            session.Abort(reason, PeerSide.Gateway, "gateway shutting down");
        }
    }

    /// <summary>Checks every session's deadlines. Internal so tests can drive it without waiting.</summary>
    internal void OnHeartbeat()
    {
        long now = Environment.TickCount64;
        foreach (var session in _sessions.Values)
        {
            var limits = session.Limits;
            var stage = session.Stage;
            if (stage < SessionStage.Relaying)
            {
                if (now - session.StartedTicks > (long)limits.PreAuthTimeout.TotalMilliseconds)
                {
                    session.Abort(SessionEndReason.PreAuthTimeout, PeerSide.Client, "no login before the pre-authentication deadline");
                }
            }
            else if (stage == SessionStage.Relaying && limits.IdleTimeout > TimeSpan.Zero
                     && now - session.LastActivityTicks > (long)limits.IdleTimeout.TotalMilliseconds)
            {
                session.Abort(SessionEndReason.IdleTimeout, PeerSide.Gateway, "no traffic for the idle timeout");
            }
        }
    }

    public void Dispose() => _heartbeat.Dispose();
}
