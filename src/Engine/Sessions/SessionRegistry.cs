using System.Collections.Concurrent;

namespace Gatehouse.Engine.Sessions;

/// <summary>
/// The live sessions, and one heartbeat that enforces their deadlines (pre-auth, idle, credential expiry) for all of
/// them, as Kestrel does: no timer per session, one scan a second.
/// </summary>
public sealed class SessionRegistry : IDisposable
{
    private readonly ConcurrentDictionary<long, Session> _sessions = new();
    private readonly ITimer _heartbeat;
    private readonly TimeProvider _time;
    private long _nextId;
    private int _open;

    public SessionRegistry()
        : this(TimeProvider.System)
    {
    }

    /// <param name="time">The wall clock that credential expiry is measured against (tests pass their own).</param>
    public SessionRegistry(TimeProvider time)
    {
        _time = time;
        _heartbeat = time.CreateTimer(static state => ((SessionRegistry)state!).OnHeartbeat(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
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

    /// <summary>The live sessions at this moment, a copy (the admin API lists them; a revoked grant ends some).</summary>
    public IReadOnlyList<Session> List() => [.. _sessions.Values];

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
        long utcNow = _time.GetUtcNow().UtcTicks;
        foreach (var session in _sessions.Values)
        {
            var limits = session.Limits;
            var stage = session.Stage;
            long credentialDeadline = session.CredentialDeadlineTicks;
            if (credentialDeadline != 0 && utcNow > credentialDeadline && stage < SessionStage.Ending)
            {
                // Wall-clock time, not ticks: the token's expiry is a calendar moment set by its issuer.
                session.Abort(SessionEndReason.CredentialExpired, PeerSide.Client,
                    $"the access token expired at {session.CredentialExpiresAt:yyyy-MM-dd'T'HH:mm:ss'Z'}");
            }
            else if (stage < SessionStage.Relaying)
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
