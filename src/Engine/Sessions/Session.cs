using Gatehouse.Engine.Transport;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Engine.Sessions;

/// <summary>
/// One client connection through the gateway, from accept to end. The engine owns its lifecycle (deadlines,
/// drain, abort, the end reason); the protocol drives it through its stages and relays its frames.
/// </summary>
public sealed class Session : IDisposable
{
    private readonly CancellationTokenSource _abort = new();
    private readonly CancellationTokenSource _drain = new();
    private long _lastActivity;
    private long _credentialExpiresTicks;
    private long _credentialDeadlineTicks;
    private int _endReason;
    private int _stage;

    internal Session(long id, string listenerName, ConnectionTransport client, GatewayLimits limits, ILogger logger)
    {
        Id = id;
        ListenerName = listenerName;
        Client = client;
        Limits = limits;
        Logger = logger;
        StartedAt = DateTimeOffset.UtcNow;
        StartedTicks = Environment.TickCount64;
        _lastActivity = StartedTicks;
    }

    public long Id { get; }

    public string ListenerName { get; }

    public ConnectionTransport Client { get; }

    /// <summary>The upstream connection, once the protocol has opened it.</summary>
    public ConnectionTransport? Upstream { get; set; }

    public GatewayLimits Limits { get; }

    public ILogger Logger { get; }

    public DateTimeOffset StartedAt { get; }

    internal long StartedTicks { get; }

    /// <summary>The authenticated identity, once known. Never a secret.</summary>
    public string? Identity { get; set; }

    /// <summary>The configured connection (upstream target) the session uses, once chosen.</summary>
    public string? ConnectionName { get; set; }

    public SessionStage Stage => (SessionStage)Volatile.Read(ref _stage);

    /// <summary>When the credential the session logged in with expires (an access token's <c>exp</c>); null for static secrets.</summary>
    public DateTimeOffset? CredentialExpiresAt
    {
        get
        {
            long ticks = Volatile.Read(ref _credentialExpiresTicks);
            return ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);
        }
    }

    /// <summary>UTC ticks after which the registry's heartbeat ends the session; 0 for none.</summary>
    internal long CredentialDeadlineTicks => Volatile.Read(ref _credentialDeadlineTicks);

    public SessionEndReason EndReason => (SessionEndReason)Volatile.Read(ref _endReason);

    /// <summary>A short, secret-free explanation of the end (logged).</summary>
    public string? EndDetail { get; private set; }

    public PeerSide EndSide { get; private set; }

    /// <summary>Bytes received from the client and from the server (each written by one pump only).</summary>
    public long BytesFromClient { get; internal set; }

    public long BytesFromServer { get; internal set; }

    /// <summary>Cancelled when the session must stop at once (deadline, kill, shutdown cut, a pump's end).</summary>
    public CancellationToken Aborted => _abort.Token;

    /// <summary>Cancelled when the gateway drains: finish what runs, take no new work, then end.</summary>
    public CancellationToken DrainRequested => _drain.Token;

    public bool IsDraining => _drain.IsCancellationRequested;

    /// <summary>Moves the session forward in its lifecycle (never back).</summary>
    public void Advance(SessionStage stage)
    {
        int next = (int)stage;
        int current;
        do
        {
            current = Volatile.Read(ref _stage);
            if (current >= next)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _stage, next, current) != current);
    }

    /// <summary>
    /// Ends the session (<see cref="SessionEndReason.CredentialExpired"/>) once its credential has expired: at
    /// <paramref name="expiresAt"/> plus <paramref name="grace"/> (the clock skew the login was checked with), enforced
    /// by the registry's heartbeat within a second.
    /// </summary>
    public void SetCredentialExpiry(DateTimeOffset expiresAt, TimeSpan grace = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(grace, TimeSpan.Zero);
        Volatile.Write(ref _credentialExpiresTicks, expiresAt.UtcTicks);
        Volatile.Write(ref _credentialDeadlineTicks, (expiresAt + grace).UtcTicks);
    }

    /// <summary>Records why the session ends. The first reason wins; later ones are consequences.</summary>
    public bool TrySetEnd(SessionEndReason reason, PeerSide side, string? detail = null)
    {
        if (Interlocked.CompareExchange(ref _endReason, (int)reason, (int)SessionEndReason.None) != (int)SessionEndReason.None)
        {
            return false;
        }

        EndSide = side;
        EndDetail = detail;
        return true;
    }

    /// <summary>
    /// Ends the session now for the given reason: every await on <see cref="Aborted"/> returns. The session's
    /// own code reacts on the thread pool, never on the caller's thread (the heartbeat, a drain, another session).
    /// </summary>
    public void Abort(SessionEndReason reason, PeerSide side, string? detail = null)
    {
        TrySetEnd(reason, side, detail);
        ThreadPool.UnsafeQueueUserWorkItem(static source => CancelQuietly(source), _abort, preferLocal: false);
    }

    internal void RequestDrain() =>
        ThreadPool.UnsafeQueueUserWorkItem(static source => CancelQuietly(source), _drain, preferLocal: false);

    /// <summary>Cancels, containing whatever a registered callback throws: one session's fault stays its own.</summary>
    private static void CancelQuietly(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
        catch (AggregateException)
        {
            // A callback failed while stopping a session; the session ends anyway through its end reason.
        }
    }

    /// <summary>Aborts the session if it is still running after <paramref name="delay"/> (refused sessions).</summary>
    internal void AbortAfter(TimeSpan delay) => _abort.CancelAfter(delay);

    /// <summary>Drains at once, on the caller's thread (tests).</summary>
    internal void RequestDrainNow() => CancelQuietly(_drain);

    /// <summary>Notes traffic, for the idle timeout. One store per read batch, no lock.</summary>
    internal void MarkActivity() => Volatile.Write(ref _lastActivity, Environment.TickCount64);

    internal long LastActivityTicks => Volatile.Read(ref _lastActivity);

    public void Dispose()
    {
        _abort.Dispose();
        _drain.Dispose();
    }
}
