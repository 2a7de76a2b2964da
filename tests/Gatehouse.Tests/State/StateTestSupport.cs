using System.Security.Cryptography;
using Gatehouse.Host.State;

namespace Gatehouse.Tests.State;

/// <summary>A clock the test moves by hand (timers still run on real time; tests drive the sweeps themselves).</summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public static ManualTime At2030() => new(new DateTimeOffset(2030, 1, 2, 9, 0, 0, TimeSpan.Zero));

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>A state store in a fresh temp file, deleted (with its WAL files) on dispose.</summary>
internal sealed class TempStore : IAsyncDisposable
{
    private TempStore(string path, SqliteStateStore store)
    {
        Path = path;
        Store = store;
    }

    public string Path { get; }

    public SqliteStateStore Store { get; }

    public static string NewPath() =>
        System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"gatehouse-unit-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.db");

    public static async Task<TempStore> OpenAsync(string? path = null)
    {
        path ??= NewPath();
        var store = new SqliteStateStore(path);
        await store.OpenAsync();
        return new TempStore(path, store);
    }

    public static void Delete(string path)
    {
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            File.Delete(path + suffix);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        Delete(Path);
    }
}
