using Microsoft.Extensions.Logging;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// The catalog caches of the gateway, one per upstream connection target. A target is identified by its name and
/// everything that decides which catalog a connection sees (host, port, database, user) or how it is reached (TLS
/// mode, CA file): a config reload that changes any of them gets a new cache, and <see cref="RetainAsync"/> closes
/// the caches of targets no longer configured.
/// </summary>
internal sealed class PgCatalogs : IAsyncDisposable
{
    private readonly Dictionary<TargetKey, PgCatalogCache> _caches = [];
    private readonly PgCatalogOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private bool _disposed;

    public PgCatalogs(PgCatalogOptions options, ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        _options = options;
        _logger = loggerFactory.CreateLogger("Gatehouse.Protocols.Postgres.Catalog");
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The cache for <paramref name="target"/>, created (without loading) on first use.</summary>
    public PgCatalogCache For(PgConnectionTarget target)
    {
        var key = TargetKey.Of(target);
        lock (_caches)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_caches.TryGetValue(key, out var cache))
            {
                cache = new PgCatalogCache(target, _options, _logger, _time);
                _caches.Add(key, cache);
            }

            return cache;
        }
    }

    /// <summary>Closes the caches of targets not in <paramref name="targets"/> (after a config reload).</summary>
    public async ValueTask RetainAsync(IEnumerable<PgConnectionTarget> targets)
    {
        var keep = targets.Select(TargetKey.Of).ToHashSet();
        List<PgCatalogCache> closing;
        lock (_caches)
        {
            closing = _caches.Where(c => !keep.Contains(c.Key)).Select(c => c.Value).ToList();
            foreach (var cache in closing)
            {
                _caches.Remove(TargetKey.Of(cache.Target));
            }
        }

        foreach (var cache in closing)
        {
            await cache.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<PgCatalogCache> closing;
        lock (_caches)
        {
            _disposed = true;
            closing = [.. _caches.Values];
            _caches.Clear();
        }

        foreach (var cache in closing)
        {
            await cache.DisposeAsync().ConfigureAwait(false);
        }
    }

    private readonly record struct TargetKey(string Name, string Host, int Port, string Database, string User, UpstreamTlsMode Tls, string? CaFile)
    {
        public static TargetKey Of(PgConnectionTarget target) =>
            new(target.Name, target.Host, target.Port, target.Database, target.User, target.Tls, target.CaFile);
    }
}
