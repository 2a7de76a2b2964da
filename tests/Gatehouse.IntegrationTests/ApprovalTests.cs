using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Policy.Approvals;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Statements held for approval, against the real server: the client waits while nothing runs, a person approves
/// or denies, the held bytes run exactly once or not at all, and what was pipelined behind them stays behind.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ApprovalTests(PostgresFixture fixture) : IAsyncLifetime
{
    /// <summary>Writes to ledger tables need someone else's approval.</summary>
    public const string ApprovalPolicy = """
        roles:
          writer:
            allow: [read, write, transaction, session]
            rules:
              - name: ledger-needs-approval
                classes: [write]
                tables: ["ledger_*"]
                action: require_approval
        bindings:
          - identities: [alice]
            connections: ["*"]
            role: writer
        """;

    private GatewayHost _gateway = null!;
    private string _ledger = null!;

    private PostgresServer Server => fixture.Server;

    private IApprovalBroker Approvals => _gateway.Server.Approvals;

    public async Task InitializeAsync()
    {
        _ledger = Direct.UniqueName("ledger");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {_ledger} (id int PRIMARY KEY, amount int); INSERT INTO {_ledger} VALUES (1, 100), (2, 200);");
        _gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = ApprovalPolicy });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await Direct.ExecuteAsync(Server, $"DROP TABLE IF EXISTS {_ledger}");
    }

    private Task<long> CountAsync() => Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {_ledger}");

    /// <summary>Waits for the one pending request of this test's session(s).</summary>
    private async Task<ApprovalRecord> PendingAsync(Func<ApprovalRecord, bool>? where = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            var pending = Approvals.List().Where(r => r.Request.Statement.Contains(_ledger, StringComparison.Ordinal) && (where?.Invoke(r) ?? true)).ToList();
            if (pending.Count == 1)
            {
                return pending[0];
            }

            Assert.True(pending.Count <= 1, $"{pending.Count} pending requests");
            await Task.Delay(50);
        }

        throw new TimeoutException("no approval request appeared");
    }

    private async Task<ApprovalState> StateEventuallyAsync(string id, ApprovalState expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        ApprovalState state;
        do
        {
            state = Approvals.Find(id)!.State;
            if (state == expected)
            {
                break;
            }

            await Task.Delay(50);
        }
        while (DateTime.UtcNow < deadline);

        return state;
    }

    [Fact]
    public async Task A_held_delete_runs_once_approved_by_someone_else_while_psql_waits()
    {
        var psql = Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"DELETE FROM {_ledger} WHERE id = 1;");
        var request = await PendingAsync();

        Assert.Equal(GatewayHost.Alice, request.Request.Identity);
        Assert.Equal(GatewayHost.AppConnection, request.Request.Connection);
        Assert.Equal("ledger-needs-approval", request.Request.Rule);
        Assert.Equal("writer", request.Request.Role);
        Assert.Equal($"DELETE FROM {_ledger} WHERE id = 1;", request.Request.Statement);
        Assert.Equal(2, await CountAsync()); // nothing ran while it waited
        Assert.False(psql.IsCompleted);

        Assert.Equal(ApprovalDecisionResult.SelfApprovalRefused, Approvals.Decide(request.Request.Id, GatewayHost.Alice, approve: true));
        Assert.Equal(ApprovalDecisionResult.Done, Approvals.Decide(request.Request.Id, "bob", approve: true));
        Assert.Equal(ApprovalDecisionResult.NotPending, Approvals.Decide(request.Request.Id, "carol", approve: false));

        var result = (await psql).EnsureSuccess("psql");
        Assert.Equal("DELETE 1\n", result.Stdout);
        Assert.Equal(1, await CountAsync());
        Assert.Equal(ApprovalState.Approved, Approvals.Find(request.Request.Id)!.State);
    }

    [Fact]
    public async Task A_denied_statement_never_runs_and_the_client_is_told_who_denied_it()
    {
        var psql = Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"DELETE FROM {_ledger} WHERE id = 2;\nSELECT 'next';");
        var request = await PendingAsync();

        Assert.Equal(ApprovalDecisionResult.Done, Approvals.Decide(request.Request.Id, "bob", approve: false, reason: "not during the audit"));

        var result = await psql;
        Assert.Contains("bob denied the statement", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("not during the audit", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("next", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(2, await CountAsync());
    }

    [Fact]
    public async Task Pipelined_messages_stay_behind_a_held_statement_and_an_approval_runs_the_held_bytes_once()
    {
        await using var raw = await RawPgConnection.ConnectAsync(_gateway.Port);
        Assert.Null(await raw.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, _gateway.AliceSecret));
        await raw.SendAsync(PgFrames.Query($"INSERT INTO {_ledger} VALUES (3, 300)"), PgFrames.Query($"SELECT count(*) FROM {_ledger}"));

        var request = await PendingAsync();
        await Task.Delay(300);
        Assert.Equal(2, await CountAsync());

        Assert.Equal(ApprovalDecisionResult.Done, Approvals.Decide(request.Request.Id, "bob", approve: true));
        var insert = await raw.ReadUntilReadyAsync();
        var select = await raw.ReadUntilReadyAsync();
        Assert.Equal("CZ", string.Concat(insert.Select(m => m.Type)));
        Assert.Equal("TDCZ", string.Concat(select.Select(m => m.Type)));
        Assert.Equal("3", System.Text.Encoding.UTF8.GetString(select[1].Body.AsSpan(6)));

        // The same statement again is a new request: an approval is used once.
        await raw.SendAsync(PgFrames.Query($"INSERT INTO {_ledger} VALUES (3, 300)"));
        var again = await PendingAsync(r => r.Request.Id != request.Request.Id);
        Assert.NotEqual(request.Request.Id, again.Request.Id);
        Assert.Equal(3, await CountAsync());
    }

    [Fact]
    public async Task A_parameterized_statement_is_held_at_bind_with_its_parameters_shown_and_runs_with_them()
    {
        await using var connection = await _gateway.OpenAsync();
        await using var command = new NpgsqlCommand($"UPDATE {_ledger} SET amount = $1 WHERE id = $2", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = 999 });
        command.Parameters.Add(new NpgsqlParameter { Value = 1 });
        var update = command.ExecuteNonQueryAsync();

        var request = await PendingAsync();
        Assert.StartsWith($"UPDATE {_ledger} SET amount = $1 WHERE id = $2", request.Request.Statement, StringComparison.Ordinal);
        Assert.Contains("$1 = ", request.Request.Statement, StringComparison.Ordinal);
        Assert.Contains("$2 = ", request.Request.Statement, StringComparison.Ordinal);
        Assert.Equal(100, await Direct.ScalarAsync<int>(Server, $"SELECT amount FROM {_ledger} WHERE id = 1"));

        // Another session is not held up meanwhile.
        await using (var other = await _gateway.OpenAsync())
        await using (var select = new NpgsqlCommand($"SELECT count(*) FROM {_ledger}", other))
        {
            Assert.Equal(2L, await select.ExecuteScalarAsync());
        }

        Approvals.Decide(request.Request.Id, "bob", approve: true);
        Assert.Equal(1, await update);
        Assert.Equal(999, await Direct.ScalarAsync<int>(Server, $"SELECT amount FROM {_ledger} WHERE id = 1"));
    }

    [Fact]
    public async Task A_cancelled_or_disconnected_client_withdraws_its_request_and_nothing_runs()
    {
        await using (var connection = await _gateway.OpenAsync())
        await using (var command = new NpgsqlCommand($"DELETE FROM {_ledger} WHERE id = 1", connection))
        {
            using var cts = new CancellationTokenSource();
            var delete = command.ExecuteNonQueryAsync(cts.Token);
            var cancelled = await PendingAsync();
            await cts.CancelAsync();

            var ex = await Assert.ThrowsAnyAsync<Exception>(() => delete);
            var postgres = ex as PostgresException ?? ex.InnerException as PostgresException;
            Assert.Equal("57014", postgres?.SqlState);
            Assert.Equal(ApprovalState.Withdrawn, await StateEventuallyAsync(cancelled.Request.Id, ApprovalState.Withdrawn));
        }

        var raw = await RawPgConnection.ConnectAsync(_gateway.Port);
        Assert.Null(await raw.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, _gateway.AliceSecret));
        await raw.SendAsync(PgFrames.Query($"DELETE FROM {_ledger} WHERE id = 2"));
        var abandoned = await PendingAsync();
        await raw.DisposeAsync();

        Assert.Equal(ApprovalState.Withdrawn, await StateEventuallyAsync(abandoned.Request.Id, ApprovalState.Withdrawn));
        Assert.Equal(ApprovalDecisionResult.NotPending, Approvals.Decide(abandoned.Request.Id, "bob", approve: true));
        Assert.Equal(2, await CountAsync());
    }

    [Fact]
    public async Task A_statement_nobody_decides_in_time_is_refused_and_never_runs()
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = ApprovalPolicy, Approvals = "{ timeout: 2s }" });
        var psql = Clients.PsqlAsync(gateway.Port, gateway.AliceSecret, $"DELETE FROM {_ledger} WHERE id = 1;\nSELECT 'next';");

        var result = await psql;

        Assert.Contains("no one approved the statement in time", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("next", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(2, await CountAsync());
        Assert.Equal(ApprovalState.Expired, Assert.Single(gateway.Server.Approvals.List(all: true)).State);
    }
}
