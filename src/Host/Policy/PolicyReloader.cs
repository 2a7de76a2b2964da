using Gatehouse.Host.Config;
using Gatehouse.Policy.Rules;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.Policy;

/// <summary>
/// Keeps a <see cref="PolicyStore"/> in step with its policy file. A change is noticed by a file system watcher on
/// the file's folder (editors often write a new file and rename it over the old one, so renames count too) and,
/// as a fallback for file systems and mounts without change events (NFS, ConfigMap symlink swaps), by comparing
/// the file's last-write time and length every <see cref="DefaultPollInterval"/>. Changes are debounced, then the
/// file is loaded and compiled: a valid policy is swapped in (sessions pick it up at their next statement), an
/// invalid one is logged with every positioned error and the last good snapshot stays.
/// </summary>
public sealed class PolicyReloader : IAsyncDisposable
{
    /// <summary>How often the file's stamp is compared when no watcher event came.</summary>
    public static readonly TimeSpan DefaultPollInterval = TimeSpan.FromSeconds(2);

    /// <summary>Quiet time after the last event before reading: an editor's save is several events.</summary>
    public static readonly TimeSpan DefaultDebounce = TimeSpan.FromMilliseconds(200);

    private readonly string _path;
    private readonly string _fileName;
    private readonly PolicyStore _store;
    private readonly PolicyCompileContext _context;
    private readonly ILogger _logger;
    private readonly TimeSpan _pollInterval;
    private readonly TimeSpan _debounce;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Timer _debounceTimer;
    private readonly Timer _pollTimer;
    private FileSystemWatcher? _watcher;
    private PolicyFileStamp? _stamp;
    private string? _lastText;
    private volatile bool _disposed;

    /// <param name="path">The policy file's full path.</param>
    /// <param name="store">Receives every valid policy.</param>
    /// <param name="context">What compiles check names against (the config's identities and connections).</param>
    /// <param name="logger">Where reloads and refused policies are logged.</param>
    /// <param name="initialStamp">The stamp of the file the current snapshot was compiled from.</param>
    /// <param name="pollInterval">Defaults to <see cref="DefaultPollInterval"/>.</param>
    /// <param name="debounce">Defaults to <see cref="DefaultDebounce"/>.</param>
    public PolicyReloader(string path, PolicyStore store, PolicyCompileContext context, ILogger logger,
        PolicyFileStamp? initialStamp = null, TimeSpan? pollInterval = null, TimeSpan? debounce = null)
    {
        _path = Path.GetFullPath(path);
        _fileName = Path.GetFileName(_path);
        _store = store;
        _context = context;
        _logger = logger;
        _stamp = initialStamp;
        _pollInterval = pollInterval ?? DefaultPollInterval;
        _debounce = debounce ?? DefaultDebounce;
        _debounceTimer = new Timer(_ => _ = ReloadCoreAsync(force: false), null, Timeout.Infinite, Timeout.Infinite);
        _pollTimer = new Timer(_ => Poll(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The watched file.</summary>
    public string FilePath => _path;

    /// <summary>Starts watching. A change made since <c>initialStamp</c> is picked up at once.</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            // The folder, not the file: a rename over the file must be seen, and the old file's watch would die with it.
            var watcher = new FileSystemWatcher(Path.GetDirectoryName(_path)!)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                IncludeSubdirectories = false,
            };
            watcher.Changed += OnEvent;
            watcher.Created += OnEvent;
            watcher.Deleted += OnEvent;
            watcher.Renamed += OnRenamed;
            watcher.Error += (_, e) => PolicyLog.WatcherFailed(_logger, _path, _pollInterval, e.GetException());
            watcher.EnableRaisingEvents = true;
            _watcher = watcher;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or PlatformNotSupportedException or UnauthorizedAccessException)
        {
            PolicyLog.WatcherFailed(_logger, _path, _pollInterval, ex);
        }

        _pollTimer.Change(_pollInterval, _pollInterval);
        Poll();
    }

    /// <summary>
    /// Loads, compiles and (when valid) swaps in the policy file now, whether or not it changed. True when a new
    /// snapshot was swapped in; false when the file was refused (the errors are logged) or the reloader is disposed.
    /// </summary>
    public Task<bool> ReloadAsync() => ReloadCoreAsync(force: true);

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _watcher?.Dispose();
        await _debounceTimer.DisposeAsync().ConfigureAwait(false);
        await _pollTimer.DisposeAsync().ConfigureAwait(false);

        // Let a reload in progress finish. The gate itself is not disposed: a SemaphoreSlim without a wait handle
        // holds nothing, and a late waiter must still be able to release it.
        await _gate.WaitAsync().ConfigureAwait(false);
        _gate.Release();
    }

    private void OnEvent(object sender, FileSystemEventArgs e)
    {
        if (string.Equals(e.Name, _fileName, StringComparison.Ordinal))
        {
            Schedule(e.ChangeType.ToString());
        }
    }

    private void OnRenamed(object sender, RenamedEventArgs e)
    {
        if (string.Equals(e.Name, _fileName, StringComparison.Ordinal) || string.Equals(e.OldName, _fileName, StringComparison.Ordinal))
        {
            Schedule("Renamed");
        }
    }

    private void Poll()
    {
        if (!_disposed && !Equals(PolicyFileStamp.Of(_path), Volatile.Read(ref _stamp)))
        {
            Schedule("poll");
        }
    }

    private void Schedule(string trigger)
    {
        if (_disposed)
        {
            return;
        }

        PolicyLog.Changed(_logger, _path, trigger);
        try
        {
            _debounceTimer.Change(_debounce, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed between the check and the call.
        }
    }

    private async Task<bool> ReloadCoreAsync(bool force)
    {
        if (_disposed)
        {
            return false;
        }

        try
        {
            await _gate.WaitAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            return false;
        }

        try
        {
            if (_disposed)
            {
                return false;
            }

            PolicyLoadResult result = PolicyLoader.LoadFile(_path, _context);
            Volatile.Write(ref _stamp, result.Stamp);

            // An event without a content change (touch, a second event of one save), or the same broken text
            // again: nothing new to apply or to report.
            if (!force && result.Text is not null && string.Equals(result.Text, _lastText, StringComparison.Ordinal))
            {
                return false;
            }

            _lastText = result.Text;
            foreach (ConfigError warning in result.Warnings)
            {
                PolicyLog.Warning(_logger, warning.ToString());
            }

            if (result.Snapshot is null)
            {
                PolicyLog.ReloadRefused(_logger, _path, result.Errors.Count, _store.Current.Version);
                foreach (ConfigError error in result.Errors)
                {
                    PolicyLog.Error(_logger, error.ToString());
                }

                return false;
            }

            _store.Swap(result.Snapshot);
            PolicyLog.Reloaded(_logger, _path, result.Snapshot.Version);
            return true;
        }
        catch (Exception ex)
        {
            PolicyLog.ReloadCrashed(_logger, _path, _store.Current.Version, ex);
            return false;
        }
        finally
        {
            _gate.Release();
        }
    }
}
