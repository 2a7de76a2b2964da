using Microsoft.Extensions.Logging;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// The catalog of one upstream connection target, shared by every session on it. Loads on first use, reloads
/// when a session reports DDL (<see cref="Invalidate"/>) and every <see cref="PgCatalogOptions.RefreshInterval"/>,
/// and keeps serving the previous snapshot while a reload runs. One load runs at a time; callers that need a
/// load share it.
/// </summary>
/// <remarks>
/// Freshness is counted in generations: <see cref="Invalidate"/> raises the generation callers require, and a
/// load serves the generation that was required when it started. A snapshot from a load that started before an
/// invalidation may predate the DDL, so it does not satisfy callers after it: they wait for the next load, which
/// is queued once however many invalidations arrive meanwhile. <see cref="GetAsync"/> returns a cached completed
/// task when the current snapshot is fresh, without a lock or an allocation.
/// </remarks>
internal sealed class PgCatalogCache : IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly IPgCatalogSource _source;
    private readonly ILogger _logger;
    private readonly string _connection;
    private readonly ITimer _timer;
    private readonly CancellationTokenSource _disposing = new();

    private Published? _published;
    private long _required;
    private Round? _running;
    private Round? _queued;
    private Task _runningTask = Task.CompletedTask;
    private bool _disposed;

    public PgCatalogCache(PgConnectionTarget target, PgCatalogOptions options, ILogger logger, TimeProvider? time = null)
        : this(target, options, logger, time ?? TimeProvider.System, new PgCatalogLoader(target, options, time ?? TimeProvider.System))
    {
    }

    /// <summary>A cache over any source of snapshots (tests use a fake one).</summary>
    public PgCatalogCache(PgConnectionTarget target, PgCatalogOptions options, ILogger logger, TimeProvider time, IPgCatalogSource source)
    {
        Target = target;
        _source = source;
        _logger = logger;
        _connection = target.Name;
        _timer = time.CreateTimer(static state => ((PgCatalogCache)state!).OnTimer(), this, options.RefreshInterval, options.RefreshInterval);
    }

    public PgConnectionTarget Target { get; }

    /// <summary>The latest snapshot loaded, fresh or not; null before the first successful load.</summary>
    public PgCatalogSnapshot? Current => Volatile.Read(ref _published)?.Snapshot;

    /// <summary>
    /// Raised after each successful load with the new snapshot (by the loading task, after the snapshot is
    /// published and its waiters released), so sessions that met an OID the previous snapshot did not know can
    /// look again. Handlers must be quick; an exception from one is logged and does not reach the others.
    /// </summary>
    public event Action<PgCatalogSnapshot>? Refreshed;

    /// <summary>
    /// A snapshot no older than the last <see cref="Invalidate"/>: the current one when it is, otherwise the result
    /// of a load (started, or joined when one that satisfies the caller is running). A load that fails throws its
    /// <see cref="PgCatalogException"/> to every caller waiting on it; the next call starts another.
    /// Cancelling <paramref name="cancellationToken"/> stops this caller's wait, not the load. After
    /// <see cref="DisposeAsync"/>, the task fails with <see cref="ObjectDisposedException"/>.
    /// </summary>
    public Task<PgCatalogSnapshot> GetAsync(CancellationToken cancellationToken)
    {
        var published = Volatile.Read(ref _published);
        if (published is not null && published.Generation >= Volatile.Read(ref _required))
        {
            return published.Task;
        }

        Task<PgCatalogSnapshot> task;
        lock (_gate)
        {
            if (_disposed)
            {
                return Task.FromException<PgCatalogSnapshot>(Closed());
            }

            published = _published;
            if (published is not null && published.Generation >= _required)
            {
                return published.Task;
            }

            task = RequestLocked();
        }

        return cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task;
    }

    /// <summary>
    /// A session saw DDL: the current snapshot may be out of date. Starts a load in the background now (or queues
    /// one behind the running load, which may have read the catalog before the DDL); later
    /// <see cref="GetAsync"/> calls wait for it. Invalidations that arrive before that load starts share it.
    /// </summary>
    public void Invalidate()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _required++;
            RequestLocked();
        }

        PgCatalogLog.Invalidated(_logger, _connection);
    }

    public async ValueTask DisposeAsync()
    {
        Round? queued;
        Task running;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            queued = _queued;
            _queued = null;
            running = _runningTask;
        }

        await _timer.DisposeAsync().ConfigureAwait(false);
        await _disposing.CancelAsync().ConfigureAwait(false);
        queued?.Fail(Closed());
        await running.ConfigureAwait(false);
        await _source.DisposeAsync().ConfigureAwait(false);
        _disposing.Dispose();
        PgCatalogLog.Closed(_logger, _connection);
    }

    private void OnTimer()
    {
        lock (_gate)
        {
            // A load on its way (or queued) refreshes anyway.
            if (_disposed || _running is not null)
            {
                return;
            }

            StartLocked(new Round(RoundTrigger.Refresh));
        }
    }

    /// <summary>A load that serves the required generation: the running one if it does, else one queued behind it, else a new one.</summary>
    private Task<PgCatalogSnapshot> RequestLocked()
    {
        if (_running is null)
        {
            var round = new Round(RoundTrigger.Request);
            StartLocked(round);
            return round.Task;
        }

        if (_running.Generation >= _required)
        {
            return _running.Task;
        }

        _queued ??= new Round(RoundTrigger.Invalidation);
        return _queued.Task;
    }

    private void StartLocked(Round round)
    {
        round.Generation = _required;
        _running = round;
        _runningTask = RunAsync(round);
    }

    private async Task RunAsync(Round round)
    {
        // Off the caller's lock and thread: the load is I/O and the caller may be a relay pump.
        await Task.Yield();
        PgCatalogSnapshot? snapshot = null;
        Exception? failure = null;
        try
        {
            long version = (Volatile.Read(ref _published)?.Snapshot.Version ?? 0) + 1;
            long started = TimeProvider.System.GetTimestamp();
            snapshot = await _source.LoadAsync(version, _disposing.Token).ConfigureAwait(false);
            PgCatalogLog.Loaded(_logger, _connection, snapshot.Version, snapshot.RelationCount, snapshot.ViewCount, snapshot.ViewsNotDescribed,
                (long)TimeProvider.System.GetElapsedTime(started).TotalMilliseconds);
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
        {
            failure = Closed();
        }
        catch (Exception ex)
        {
            failure = ex as PgCatalogException
                      ?? new PgCatalogException($"The catalog of '{_connection}' could not be loaded: {ex.GetType().Name}: {ex.Message}", ex);
            PgCatalogLog.LoadFailed(_logger, _connection, round.Trigger.ToString(), failure.Message);
        }

        Round? next;
        lock (_gate)
        {
            if (snapshot is not null)
            {
                Volatile.Write(ref _published, new Published(snapshot, round.Generation));
            }

            _running = null;
            next = _queued;
            _queued = null;
            if (next is not null)
            {
                StartLocked(next);
            }
        }

        if (snapshot is not null)
        {
            round.Succeed(snapshot);
            RaiseRefreshed(snapshot);
        }
        else
        {
            round.Fail(failure!);
        }
    }

    private ObjectDisposedException Closed() => new(nameof(PgCatalogCache), $"The catalog cache of '{_connection}' was closed.");

    private void RaiseRefreshed(PgCatalogSnapshot snapshot)
    {
        var handlers = Refreshed;
        if (handlers is null)
        {
            return;
        }

        foreach (var handler in handlers.GetInvocationList())
        {
            try
            {
                ((Action<PgCatalogSnapshot>)handler)(snapshot);
            }
            catch (Exception ex)
            {
                PgCatalogLog.RefreshedHandlerFailed(_logger, _connection, ex.GetType().Name);
            }
        }
    }

    private enum RoundTrigger : byte
    {
        /// <summary>A caller needed a snapshot and none was fresh.</summary>
        Request,
        /// <summary>A session reported DDL while a load was running.</summary>
        Invalidation,
        /// <summary>The periodic refresh.</summary>
        Refresh,
    }

    /// <summary>A snapshot and the generation its load served, with the completed task <see cref="GetAsync"/> hands out.</summary>
    private sealed class Published(PgCatalogSnapshot snapshot, long generation)
    {
        public PgCatalogSnapshot Snapshot { get; } = snapshot;

        public long Generation { get; } = generation;

        public Task<PgCatalogSnapshot> Task { get; } = System.Threading.Tasks.Task.FromResult(snapshot);
    }

    /// <summary>One load and everyone waiting on it.</summary>
    private sealed class Round(RoundTrigger trigger)
    {
        private readonly TaskCompletionSource<PgCatalogSnapshot> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public RoundTrigger Trigger { get; } = trigger;

        /// <summary>The generation required when the load started (set under the cache's lock).</summary>
        public long Generation { get; set; }

        public Task<PgCatalogSnapshot> Task => _completion.Task;

        public void Succeed(PgCatalogSnapshot snapshot) => _completion.TrySetResult(snapshot);

        public void Fail(Exception failure)
        {
            _completion.TrySetException(failure);
            // Marks the failure observed: a background refresh may have no waiter, and nobody needs to hear of it twice.
            _ = _completion.Task.Exception;
        }
    }
}
