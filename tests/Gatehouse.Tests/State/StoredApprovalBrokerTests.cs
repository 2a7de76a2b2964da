using System.Net;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Tests.State;

public sealed class StoredApprovalBrokerTests : IAsyncLifetime
{
    private readonly ManualTime _time = ManualTime.At2030();
    private TempStore _temp = null!;

    public async Task InitializeAsync() => _temp = await TempStore.OpenAsync();

    public async Task DisposeAsync() => await _temp.DisposeAsync();

    private async Task<StoredApprovalBroker> StartAsync(bool allowSelfApproval = false, WebhookAnnouncer? announcer = null)
    {
        var broker = new StoredApprovalBroker(_temp.Store, NullAuditSink.Instance, NullLogger.Instance, TimeSpan.FromMinutes(5), allowSelfApproval,
            announcer, _time);
        await broker.StartAsync();
        return broker;
    }

    private ApprovalRequest Request(string id, TimeSpan? wait = null) =>
        new(id, "alice", "app", 12, "writer", "ledger-needs-approval", "DELETE FROM ledger WHERE id = $1; $1 = '7'", _time.GetUtcNow(),
            _time.GetUtcNow() + (wait ?? TimeSpan.FromMinutes(2)));

    [Fact]
    public async Task A_request_is_decided_once_by_someone_other_than_its_sender_and_stored()
    {
        await using var broker = await StartAsync();
        var ticket = broker.Submit(Request("ap_one"));
        bool woken = false;
        ticket.OnDecided(() => woken = true);

        Assert.Equal("ap_one", Assert.Single(broker.List()).Request.Id);
        Assert.Equal(ApprovalDecisionResult.SelfApprovalRefused, broker.Decide("ap_one", "alice", approve: true));
        Assert.Equal(ApprovalState.Pending, ticket.State);
        Assert.Equal(ApprovalDecisionResult.Done, broker.Decide("ap_one", "bob", approve: true, "checked"));
        Assert.True(woken);
        Assert.Equal((ApprovalState.Approved, "bob", "checked"), (ticket.State, ticket.DecidedBy, ticket.Reason));
        Assert.Equal(ApprovalDecisionResult.NotPending, broker.Decide("ap_one", "carol", approve: false));
        Assert.Equal(ApprovalDecisionResult.NotFound, broker.Decide("ap_none", "bob", approve: true));
        Assert.Empty(broker.List());
        Assert.Single(broker.List(all: true));

        await broker.FlushAsync();
        var stored = await _temp.Store.GetApprovalAsync("ap_one");
        Assert.Equal((ApprovalState.Approved, "bob", "checked"), (stored!.State, stored.DecidedBy, stored.Reason));
        Assert.Equal(ticket.Request, stored.Request);
    }

    [Fact]
    public async Task The_sender_may_deny_its_own_statement_and_approve_it_only_when_allowed()
    {
        await using (var strict = await StartAsync())
        {
            strict.Submit(Request("ap_deny"));
            Assert.Equal(ApprovalDecisionResult.Done, strict.Decide("ap_deny", "alice", approve: false));
        }

        await using var lenient = await StartAsync(allowSelfApproval: true);
        var ticket = lenient.Submit(Request("ap_self"));
        Assert.Equal(ApprovalDecisionResult.Done, lenient.Decide("ap_self", "alice", approve: true));
        Assert.Equal(ApprovalState.Approved, ticket.State);
    }

    [Fact]
    public async Task Requests_expire_at_their_deadline_capped_to_the_configured_timeout()
    {
        await using var broker = await StartAsync();
        var soon = broker.Submit(Request("ap_soon", TimeSpan.FromMinutes(1)));
        var capped = broker.Submit(Request("ap_capped", TimeSpan.FromHours(3)));
        Assert.Equal(_time.GetUtcNow().AddMinutes(5), capped.Request.ExpiresAt);

        _time.Advance(TimeSpan.FromMinutes(1));
        broker.Sweep();
        Assert.Equal(ApprovalState.Expired, soon.State);
        Assert.Equal(ApprovalState.Pending, capped.State);

        _time.Advance(TimeSpan.FromMinutes(4));
        broker.Sweep();
        Assert.Equal(ApprovalState.Expired, capped.State);
        Assert.Equal(ApprovalDecisionResult.NotPending, broker.Decide("ap_capped", "bob", approve: true));

        await broker.FlushAsync();
        Assert.Equal(ApprovalState.Expired, (await _temp.Store.GetApprovalAsync("ap_soon"))!.State);
    }

    [Fact]
    public async Task A_withdrawn_request_is_stored_and_a_restart_withdraws_what_was_left_pending()
    {
        await using (var broker = await StartAsync())
        {
            var gone = broker.Submit(Request("ap_gone"));
            gone.Withdraw();
            broker.Submit(Request("ap_left"));
            broker.Sweep();
            await broker.FlushAsync();
            Assert.Equal(ApprovalState.Withdrawn, (await _temp.Store.GetApprovalAsync("ap_gone"))!.State);
        }

        // Disposing stored nothing for ap_left (still pending in the store); the next start withdraws it.
        await using var next = await StartAsync();
        var left = next.Find("ap_left");
        Assert.Equal(ApprovalState.Withdrawn, left!.State);
        Assert.Equal(ApprovalDecisionResult.NotPending, next.Decide("ap_left", "bob", approve: true));
        Assert.Equal(ApprovalDecisionResult.NotPending, await next.DecideAsync("ap_gone", "bob", approve: true));
        Assert.Equal(2, (await next.ListAsync(all: true)).Count);
        Assert.Empty(await next.ListAsync(all: false));
    }

    [Fact]
    public async Task The_webhook_gets_the_statement_and_is_retried_but_the_log_line_does_not()
    {
        var handler = new FlakyHandler(failures: 2);
        var logger = new ListLogger();
        await using var announcer = new WebhookAnnouncer(new Uri("http://127.0.0.1:9/hook"), logger, handler, attempts: 4, firstPause: TimeSpan.FromMilliseconds(10));
        announcer.Start();
        await using var broker = new StoredApprovalBroker(_temp.Store, NullAuditSink.Instance, logger, TimeSpan.FromMinutes(5), false, announcer, _time);
        await broker.StartAsync();

        broker.Submit(Request("ap_hook"));
        var body = await handler.Delivered.Task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(3, handler.Attempts);
        Assert.Contains("\"type\":\"approval.requested\"", body, StringComparison.Ordinal);
        Assert.Contains("\"id\":\"ap_hook\"", body, StringComparison.Ordinal);
        Assert.Contains("DELETE FROM ledger WHERE id = $1", body, StringComparison.Ordinal);
        Assert.Contains("gatehouse approvals approve ap_hook", body, StringComparison.Ordinal);
        Assert.Contains(logger.Lines, l => l.Contains("ap_hook", StringComparison.Ordinal) && l.Contains("ledger-needs-approval", StringComparison.Ordinal));
        Assert.DoesNotContain(logger.Lines, l => l.Contains("DELETE", StringComparison.Ordinal) || l.Contains("'7'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_webhook_that_keeps_failing_is_logged_and_blocks_nothing()
    {
        var handler = new FlakyHandler(failures: int.MaxValue);
        var logger = new ListLogger();
        await using var announcer = new WebhookAnnouncer(new Uri("http://127.0.0.1:9/hook"), logger, handler, attempts: 3, firstPause: TimeSpan.FromMilliseconds(5));
        announcer.Start();
        await using var broker = new StoredApprovalBroker(_temp.Store, NullAuditSink.Instance, logger, TimeSpan.FromMinutes(5), false, announcer, _time);
        await broker.StartAsync();

        var started = DateTime.UtcNow;
        broker.Submit(Request("ap_down"));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!logger.Lines.Any(l => l.Contains("failed after 3 attempt(s)", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Contains(logger.Lines, l => l.Contains("Webhook for approval request ap_down failed after 3 attempt(s): HTTP 503", StringComparison.Ordinal));
        Assert.Equal(3, handler.Attempts);
    }

    private sealed class FlakyHandler(int failures) : HttpMessageHandler
    {
        private int _attempts;

        public int Attempts => Volatile.Read(ref _attempts);

        public TaskCompletionSource<string> Delivered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            int attempt = Interlocked.Increment(ref _attempts);
            string body = await request.Content!.ReadAsStringAsync(cancellationToken);
            if (attempt <= failures)
            {
                return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
            }

            Delivered.TrySetResult(body);
            return new HttpResponseMessage(HttpStatusCode.OK);
        }
    }

    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();

        public IReadOnlyList<string> Lines => [.. _lines];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter) => _lines.Enqueue(formatter(state, exception));
    }
}
