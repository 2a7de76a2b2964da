using System.Net.Http.Json;
using System.Threading.Channels;
using Gatehouse.Host.Admin;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.State;

/// <summary>
/// Announces new approval and access requests to a webhook (<c>approvals.webhook</c>): a JSON POST per request,
/// from a background queue, so announcing never blocks a session or an admin call. Each announcement is tried a
/// few times with growing pauses (1 s, 2 s, 4 s, a little jitter); a final failure is logged, and the request
/// still waits for a decision through the admin API.
/// </summary>
public sealed class WebhookAnnouncer : IAsyncDisposable
{
    private readonly Uri? _url;
    private readonly ILogger _logger;
    private readonly HttpClient? _http;
    private readonly int _attempts;
    private readonly TimeSpan _firstPause;
    private readonly Channel<Announcement> _queue = Channel.CreateBounded<Announcement>(new BoundedChannelOptions(1000)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
    });

    private readonly CancellationTokenSource _stopping = new();
    private Task _worker = Task.CompletedTask;

    /// <param name="url">The webhook; null announces by log line only.</param>
    /// <param name="handler">The HTTP handler (tests); the default follows the system's proxy settings.</param>
    /// <param name="attempts">Tries per announcement.</param>
    /// <param name="firstPause">The pause after the first failure; doubled after each further one.</param>
    public WebhookAnnouncer(Uri? url, ILogger logger, HttpMessageHandler? handler = null, int attempts = 4, TimeSpan? firstPause = null)
    {
        _url = url;
        _logger = logger;
        _attempts = Math.Max(1, attempts);
        _firstPause = firstPause ?? TimeSpan.FromSeconds(1);
        if (url is not null)
        {
            _http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
            _http.Timeout = TimeSpan.FromSeconds(10);
            _http.DefaultRequestHeaders.UserAgent.ParseAdd("gatehouse-webhook/1");
        }
    }

    /// <summary>Whether a webhook is configured.</summary>
    public bool Enabled => _url is not null;

    public void Start()
    {
        if (_http is not null)
        {
            _worker = Task.Run(WorkAsync);
        }
    }

    /// <summary>Queues an announcement; returns at once. <paramref name="payload"/> is serialized as the JSON body.</summary>
    public void Announce(string kind, string id, object payload)
    {
        if (_http is null)
        {
            return;
        }

        if (!_queue.Writer.TryWrite(new Announcement(kind, id, payload)))
        {
            StateLog.WebhookDropped(_logger, kind, id);
        }
    }

    private async Task WorkAsync()
    {
        var ct = _stopping.Token;
        try
        {
            await foreach (var announcement in _queue.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                await DeliverAsync(announcement, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async Task DeliverAsync(Announcement announcement, CancellationToken ct)
    {
        string error = "";
        TimeSpan pause = _firstPause;
        for (int attempt = 1; attempt <= _attempts; attempt++)
        {
            try
            {
                using var response = await _http!.PostAsJsonAsync(_url, announcement.Payload, AdminJson.Options, ct).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    StateLog.WebhookDelivered(_logger, announcement.Kind, announcement.Id);
                    return;
                }

                error = $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
                // A client error other than throttling will not get better by trying again.
                if ((int)response.StatusCode is >= 400 and < 500 and not 408 and not 429)
                {
                    StateLog.WebhookFailed(_logger, announcement.Kind, announcement.Id, attempt, error);
                    return;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException)
            {
                error = ex is TaskCanceledException ? "timed out" : ex.Message;
            }

            if (attempt < _attempts)
            {
                var jitter = TimeSpan.FromMilliseconds(Random.Shared.Next(0, 250));
                await Task.Delay(pause + jitter, ct).ConfigureAwait(false);
                pause *= 2;
            }
        }

        StateLog.WebhookFailed(_logger, announcement.Kind, announcement.Id, _attempts, error);
    }

    /// <summary>Stops: announcements still queued get up to 2 s to go out.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _worker.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _worker.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stopping.Dispose();
        _http?.Dispose();
    }

    private sealed record Announcement(string Kind, string Id, object Payload);
}
