using Gatehouse.Protocols.Postgres;
using Gatehouse.Protocols.Postgres.Masking;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Tests.Postgres;

/// <summary>
/// The cache's rules over a fake source whose loads the test completes by hand: shared loads, failures reported to
/// every waiter and retried, invalidations during a load, the periodic refresh on a driven clock, disposal.
/// </summary>
public sealed class PgCatalogCacheTests
{
    private static readonly PgConnectionTarget Target = new() { Name = "app", Host = "db", Database = "app", User = "gatehouse" };

    [Fact]
    public async Task Callers_share_the_first_load_and_then_get_the_snapshot_without_waiting()
    {
        var (cache, source, _) = Create();
        await using var _cache = cache;
        var a = cache.GetAsync(CancellationToken.None);
        var b = cache.GetAsync(CancellationToken.None);
        await source.WaitForLoadsAsync(1);
        Assert.False(a.IsCompleted);
        source.Complete(0);
        var snapshot = await a;
        Assert.Same(snapshot, await b);
        Assert.Equal(1, snapshot.Version);

        var again = cache.GetAsync(CancellationToken.None);
        Assert.True(again.IsCompletedSuccessfully);
        Assert.Same(snapshot, await again);
        Assert.Same(again, cache.GetAsync(CancellationToken.None));
        Assert.Equal(1, source.Loads);
    }

    [Fact]
    public async Task A_failed_load_fails_every_waiter_and_the_next_call_tries_again()
    {
        var (cache, source, log) = Create();
        await using var _cache = cache;
        var waiters = Enumerable.Range(0, 3).Select(_ => cache.GetAsync(CancellationToken.None)).ToArray();
        await source.WaitForLoadsAsync(1);
        source.Fail(0, new PgCatalogException("The catalog of 'app' could not be loaded: cannot reach the upstream server (SocketException)"));
        foreach (var waiter in waiters)
        {
            var error = await Assert.ThrowsAsync<PgCatalogException>(() => waiter);
            Assert.Contains("cannot reach the upstream server", error.Message);
        }

        Assert.Null(cache.Current);
        Assert.Contains(log.Lines, l => l.Contains("[2101]", StringComparison.Ordinal) && l.Contains("cannot reach", StringComparison.Ordinal));

        var retry = cache.GetAsync(CancellationToken.None);
        await source.WaitForLoadsAsync(2);
        source.Complete(1);
        Assert.Equal(1, (await retry).Version);
    }

    [Fact]
    public async Task An_unexpected_exception_is_reported_as_a_catalog_failure()
    {
        var (cache, source, _) = Create();
        await using var _cache = cache;
        var waiter = cache.GetAsync(CancellationToken.None);
        await source.WaitForLoadsAsync(1);
        source.Fail(0, new InvalidOperationException("boom"));
        var error = await Assert.ThrowsAsync<PgCatalogException>(() => waiter);
        Assert.Contains("'app' could not be loaded", error.Message);
    }

    [Fact]
    public async Task Invalidations_during_a_load_queue_one_more_and_callers_wait_for_it()
    {
        var (cache, source, _) = Create();
        await using var _cache = cache;
        var first = cache.GetAsync(CancellationToken.None);
        await source.WaitForLoadsAsync(1);
        source.Complete(0);
        var v1 = await first;

        // DDL seen: a load starts at once; the old snapshot is still served to readers of Current.
        cache.Invalidate();
        await source.WaitForLoadsAsync(2);
        var afterFirstInvalidation = cache.GetAsync(CancellationToken.None);
        Assert.False(afterFirstInvalidation.IsCompleted);
        Assert.Same(v1, cache.Current);

        // More DDL while that load runs: it may have read the catalog before, so one more load is queued for all.
        cache.Invalidate();
        cache.Invalidate();
        var afterMore = cache.GetAsync(CancellationToken.None);
        source.Complete(1);
        var v2 = await afterFirstInvalidation;
        Assert.Equal(2, v2.Version);
        Assert.False(afterMore.IsCompleted);
        await source.WaitForLoadsAsync(3);
        source.Complete(2);
        Assert.Equal(3, (await afterMore).Version);
        Assert.Equal(3, source.Loads);
        Assert.Same(await afterMore, cache.Current);
    }

    [Fact]
    public async Task The_periodic_refresh_loads_in_the_background_and_raises_Refreshed()
    {
        var (cache, source, _) = Create();
        await using var _cache = cache;
        var refreshed = new List<long>();
        cache.Refreshed += s =>
        {
            lock (refreshed)
            {
                refreshed.Add(s.Version);
            }
        };

        var first = cache.GetAsync(CancellationToken.None);
        await source.WaitForLoadsAsync(1);
        source.Complete(0);
        var v1 = await first;

        source.Time.Fire();
        await source.WaitForLoadsAsync(2);
        // While the refresh runs, callers get the snapshot they have at once.
        var during = cache.GetAsync(CancellationToken.None);
        Assert.True(during.IsCompletedSuccessfully);
        Assert.Same(v1, await during);
        // A tick during a load does not start another.
        source.Time.Fire();
        source.Complete(1);
        await WaitUntilAsync(() => cache.Current?.Version == 2);
        Assert.Equal(2, source.Loads);
        await WaitUntilAsync(() =>
        {
            lock (refreshed)
            {
                return refreshed.Count == 2;
            }
        });
        Assert.Equal([1, 2], refreshed);
        Assert.Equal(TimeSpan.FromMinutes(5), source.Time.Period);
    }

    [Fact]
    public async Task A_failed_refresh_keeps_the_previous_snapshot()
    {
        var (cache, source, log) = Create();
        await using var _cache = cache;
        var first = cache.GetAsync(CancellationToken.None);
        await source.WaitForLoadsAsync(1);
        source.Complete(0);
        var v1 = await first;
        source.Time.Fire();
        await source.WaitForLoadsAsync(2);
        source.Fail(1, new PgCatalogException("The catalog of 'app' could not be loaded: timed out after 60 s"));
        await WaitUntilAsync(() => log.Lines.Any(l => l.Contains("timed out", StringComparison.Ordinal)));
        Assert.Same(v1, cache.Current);
        Assert.Same(v1, await cache.GetAsync(CancellationToken.None));
        Assert.Contains(log.Lines, l => l.Contains("(Refresh)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_waiter_can_stop_waiting_without_cancelling_the_load()
    {
        var (cache, source, _) = Create();
        await using var _cache = cache;
        using var cancel = new CancellationTokenSource();
        var impatient = cache.GetAsync(cancel.Token);
        var patient = cache.GetAsync(CancellationToken.None);
        await source.WaitForLoadsAsync(1);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => impatient);
        source.Complete(0);
        Assert.Equal(1, (await patient).Version);
    }

    [Fact]
    public async Task Dispose_stops_the_timer_cancels_the_load_and_closes_the_source()
    {
        var (cache, source, _) = Create();
        var waiter = cache.GetAsync(CancellationToken.None);
        await source.WaitForLoadsAsync(1);
        await cache.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiter);
        Assert.True(source.Disposed);
        Assert.True(source.Time.TimerDisposed);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => cache.GetAsync(CancellationToken.None));
        cache.Invalidate();
        Assert.Equal(1, source.Loads);
    }

    [Fact]
    public async Task The_registry_keeps_one_cache_per_target_and_a_changed_target_gets_a_new_one()
    {
        await using var catalogs = new PgCatalogs(new PgCatalogOptions(), LoggerFactory.Create(_ => { }));
        var cache = catalogs.For(Target);
        Assert.Same(cache, catalogs.For(Target with { }));
        var moved = catalogs.For(Target with { Host = "db2" });
        Assert.NotSame(cache, moved);
        Assert.NotSame(cache, catalogs.For(Target with { User = "other" }));
        Assert.NotSame(cache, catalogs.For(Target with { Database = "other" }));
        Assert.NotSame(cache, catalogs.For(Target with { Port = 6432 }));
        Assert.NotSame(cache, catalogs.For(Target with { Name = "renamed" }));

        await catalogs.RetainAsync([Target]);
        Assert.Same(cache, catalogs.For(Target));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => moved.GetAsync(CancellationToken.None));
    }

    private static (PgCatalogCache Cache, FakeSource Source, ListLogger Log) Create()
    {
        var source = new FakeSource();
        var log = new ListLogger();
        var cache = new PgCatalogCache(Target, new PgCatalogOptions(), log, source.Time, source);
        return (cache, source, log);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(5);
        }
    }

    /// <summary>Loads that the test completes or fails by index; counts them.</summary>
    private sealed class FakeSource : IPgCatalogSource
    {
        private readonly List<(long Version, TaskCompletionSource<PgCatalogSnapshot> Completion)> _loads = [];

        public ManualTimers Time { get; } = new();

        public bool Disposed { get; private set; }

        public int Loads
        {
            get
            {
                lock (_loads)
                {
                    return _loads.Count;
                }
            }
        }

        public Task<PgCatalogSnapshot> LoadAsync(long version, CancellationToken cancellationToken)
        {
            var completion = new TaskCompletionSource<PgCatalogSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
            cancellationToken.Register(() => completion.TrySetCanceled(cancellationToken));
            lock (_loads)
            {
                _loads.Add((version, completion));
            }

            return completion.Task;
        }

        public async Task WaitForLoadsAsync(int count) => await WaitUntilAsync(() => Loads >= count);

        public void Complete(int index)
        {
            var (version, completion) = Get(index);
            completion.SetResult(new PgCatalogSnapshot(version, DateTimeOffset.UnixEpoch, [], [25], [114]));
        }

        public void Fail(int index, Exception failure) => Get(index).Completion.SetException(failure);

        public ValueTask DisposeAsync()
        {
            Disposed = true;
            return ValueTask.CompletedTask;
        }

        private (long Version, TaskCompletionSource<PgCatalogSnapshot> Completion) Get(int index)
        {
            lock (_loads)
            {
                return _loads[index];
            }
        }
    }

    /// <summary>A clock whose one timer fires when the test says so.</summary>
    private sealed class ManualTimers : TimeProvider, IDisposable
    {
        private Timer? _timer;

        public TimeSpan Period => _timer?.Period ?? TimeSpan.Zero;

        public bool TimerDisposed => _timer?.Disposed ?? false;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _timer = new Timer(callback, state, period);
            return _timer;
        }

        public void Dispose() => _timer?.Dispose();

        public void Fire()
        {
            if (_timer is { Disposed: false } timer)
            {
                timer.Callback(timer.State);
            }
        }

        private sealed class Timer(TimerCallback callback, object? state, TimeSpan period) : ITimer
        {
            public TimerCallback Callback { get; } = callback;

            public object? State { get; } = state;

            public TimeSpan Period { get; } = period;

            public bool Disposed { get; private set; }

            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose() => Disposed = true;

            public ValueTask DisposeAsync()
            {
                Disposed = true;
                return ValueTask.CompletedTask;
            }
        }
    }

    private sealed class ListLogger : ILogger
    {
        private readonly List<string> _lines = [];

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines)
            {
                _lines.Add($"[{eventId.Id}] {formatter(state, exception)}");
            }
        }
    }
}
