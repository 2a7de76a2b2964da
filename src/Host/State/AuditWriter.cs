using System.Threading.Channels;
using Gatehouse.Policy.Access;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.State;

/// <summary>
/// The audit sink: <see cref="Record(AuditEvent)"/> queues and returns at once (the relay calls it), and one background
/// writer stores what is queued in batches, one transaction per batch. A full queue drops the event (counted,
/// logged once per burst) rather than slow a session down; a failed write is logged and the writer goes on.
/// </summary>
public sealed class AuditWriter : IAuditSink, IAsyncDisposable
{
    /// <summary>Events a batch may hold: one transaction per batch keeps a burst of session ends cheap.</summary>
    private const int BatchSize = 256;

    private readonly IStateStore _store;
    private readonly AuditLogFile? _file;
    private readonly WebhookAnnouncer? _webhook;
    private readonly ILogger _logger;
    private readonly Channel<object> _queue;
    private Task _writer = Task.CompletedTask;
    private long _dropped;
    private long _droppedReported;

    /// <param name="capacity">Queued items before new ones are dropped: about 2 MB of events at the default.</param>
    /// <param name="file">The JSON-lines copy of the trail (<c>state.audit_log</c>); none when null. Owned: disposed with the writer.</param>
    /// <param name="webhook">
    /// Where every event is also POSTed as JSON (<c>state.audit_webhook</c>), with retries, after it is stored; none when null.
    /// Not owned.
    /// </param>
    public AuditWriter(IStateStore store, ILogger logger, int capacity = 10_000, AuditLogFile? file = null, WebhookAnnouncer? webhook = null)
    {
        _store = store;
        _file = file;
        _webhook = webhook is { Enabled: true } ? webhook : null;
        _logger = logger;
        _queue = Channel.CreateBounded<object>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.DropWrite,
            SingleReader = true,
            SingleWriter = false,
        });
    }

    /// <summary>Events dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Starts the background writer.</summary>
    public void Start() => _writer = Task.Run(WriteLoopAsync);

    public void Record(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        Enqueue(auditEvent);
    }

    /// <summary>Queues a session's start or end for the sessions table.</summary>
    public void Record(SessionRecord session)
    {
        ArgumentNullException.ThrowIfNull(session);
        Enqueue(session);
    }

    /// <summary>Completes when everything queued before the call is stored (tests, and the end of an admin action).</summary>
    public Task FlushAsync()
    {
        var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // A flush marker must not be dropped: wait for room if the queue is full.
        return _queue.Writer.TryWrite(flushed) ? flushed.Task : WriteMarkerAsync(flushed);
    }

    private async Task WriteMarkerAsync(TaskCompletionSource flushed)
    {
        try
        {
            await _queue.Writer.WriteAsync(flushed).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            flushed.TrySetResult();
        }

        await flushed.Task.ConfigureAwait(false);
    }

    private void Enqueue(object item)
    {
        if (!_queue.Writer.TryWrite(item))
        {
            long dropped = Interlocked.Increment(ref _dropped);
            // One line per burst: the first drop, then every 1000th.
            if (dropped == 1 || dropped - Interlocked.Read(ref _droppedReported) >= 1000)
            {
                Interlocked.Exchange(ref _droppedReported, dropped);
                StateLog.AuditDropped(_logger, dropped);
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        var events = new List<AuditEvent>(BatchSize);
        var sessions = new List<SessionRecord>();
        var markers = new List<TaskCompletionSource>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (events.Count + sessions.Count < BatchSize && reader.TryRead(out var item))
            {
                switch (item)
                {
                    case AuditEvent e:
                        events.Add(e);
                        break;
                    case SessionRecord s:
                        sessions.Add(s);
                        break;
                    case TaskCompletionSource marker:
                        markers.Add(marker);
                        break;
                }
            }

            try
            {
                if (sessions.Count > 0)
                {
                    await _store.RecordSessionsAsync(sessions).ConfigureAwait(false);
                }

                if (events.Count > 0)
                {
                    await _store.AppendAuditAsync(events).ConfigureAwait(false);
                }
            }
            catch (Exception ex)
            {
                StateLog.AuditWriteFailed(_logger, events.Count + sessions.Count, ex);
            }

            // The file gets the events whatever happened to the store: one of the two must have them.
            if (_file is not null && events.Count > 0)
            {
                try
                {
                    _file.Append(events);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    StateLog.AuditFileWriteFailed(_logger, events.Count, _file.Path, ex);
                }
            }

            if (_webhook is not null)
            {
                foreach (var e in events)
                {
                    _webhook.Announce("audit " + e.Kind, e.Subject ?? e.SessionId?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-",
                        new AuditWebhookEvent("audit." + e.Kind, e.At.ToUniversalTime(), e.Identity, e.Connection, e.SessionId, e.Subject, e.Actor, e.Detail));
                }
            }

            events.Clear();
            sessions.Clear();
            foreach (var marker in markers)
            {
                marker.TrySetResult();
            }

            markers.Clear();
        }
    }

    /// <summary>Stops taking events and waits (up to 5 s) for the queued ones to be stored.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_writer.IsCompleted)
        {
            _file?.Dispose();
        }
    }
}

/// <summary>
/// The body of an audit event's webhook POST: the JSON-lines file's fields, and <c>type</c> (<c>audit.</c> and the
/// event kind, so one endpoint can take approval announcements and audit events apart).
/// </summary>
public sealed record AuditWebhookEvent(string Type, DateTimeOffset At, string? Identity, string? Connection, long? Session, string? Subject,
    string? Actor, string? Detail);
