using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>One log line the gateway wrote.</summary>
public sealed record CapturedLog(string Category, LogLevel Level, int EventId, string Message, Exception? Exception);

/// <summary>
/// Keeps every line an in-process gateway logs, so a test can assert on what the gateway said (a session's end
/// reason, for example) and a failing test can show the log.
/// </summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLog> _lines = new();

    public IReadOnlyList<CapturedLog> Lines => _lines.ToArray();

    public ILogger CreateLogger(string categoryName) => new CaptureLogger(this, categoryName);

    /// <summary>Polls until a line matches (the gateway logs a session's end after closing it), or gives up.</summary>
    public async Task<CapturedLog?> WaitForAsync(Func<CapturedLog, bool> match, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            var found = _lines.FirstOrDefault(match);
            if (found is not null || DateTime.UtcNow > deadline)
            {
                return found;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The whole log, for assertion messages.</summary>
    public string Dump() => string.Join(Environment.NewLine, _lines.Select(l => $"{l.Level} [{l.EventId}] {l.Category}: {l.Message}{(l.Exception is null ? "" : " " + l.Exception)}"));

    public void Dispose()
    {
    }

    private sealed class CaptureLogger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._lines.Enqueue(new CapturedLog(category, logLevel, eventId.Id, formatter(state, exception), exception));
    }
}
