using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Microsoft.Data.Sqlite;

namespace Gatehouse.Tests.State;

public sealed class SqliteStateStoreTests
{
    private static readonly DateTimeOffset T0 = new(2030, 1, 2, 9, 0, 0, TimeSpan.Zero);

    private static async Task<List<(long Version, string Description)>> VersionsAsync(string path)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, description FROM schema_version ORDER BY version";
        await using var reader = await command.ExecuteReaderAsync();
        var result = new List<(long, string)>();
        while (await reader.ReadAsync())
        {
            result.Add((reader.GetInt64(0), reader.GetString(1)));
        }

        return result;
    }

    private static async Task<bool> TableExistsAsync(string path, string table)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $t";
        command.Parameters.AddWithValue("$t", table);
        return (long)(await command.ExecuteScalarAsync())! == 1;
    }

    private static async Task ExecuteAsync(string path, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task An_empty_file_gets_every_migration_and_reopening_applies_none_again()
    {
        string path = TempStore.NewPath();
        try
        {
            await using (var first = new SqliteStateStore(path))
            {
                await first.OpenAsync();
                Assert.Equal(StateMigrations.Latest, first.SchemaVersion);
            }

            foreach (var table in new[] { "access_requests", "grants", "approvals", "sessions", "audit_events", "schema_version" })
            {
                Assert.True(await TableExistsAsync(path, table), table);
            }

            await using (var second = new SqliteStateStore(path))
            {
                await second.OpenAsync();
                Assert.Equal(StateMigrations.Latest, second.SchemaVersion);
            }

            Assert.Equal(StateMigrations.All.Select(m => (long)m.Version), (await VersionsAsync(path)).Select(v => v.Version));
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            }
        }
        finally
        {
            TempStore.Delete(path);
        }
    }

    [Fact]
    public async Task Reopening_with_a_newer_migration_list_applies_only_the_new_steps_in_order()
    {
        string path = TempStore.NewPath();
        StateMigration one = new(1, "one", "CREATE TABLE a (x INTEGER);");
        StateMigration two = new(2, "two", "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1);");
        StateMigration three = new(3, "three", "ALTER TABLE b ADD COLUMN z TEXT;");
        try
        {
            await using (var v1 = new SqliteStateStore(path, [one]))
            {
                await v1.OpenAsync();
                Assert.Equal(1, v1.SchemaVersion);
            }

            await using (var v3 = new SqliteStateStore(path, [three, one, two]))
            {
                await v3.OpenAsync();
                Assert.Equal(3, v3.SchemaVersion);
            }

            Assert.Equal([(1L, "one"), (2L, "two"), (3L, "three")], await VersionsAsync(path));
            Assert.True(await TableExistsAsync(path, "b"));
        }
        finally
        {
            TempStore.Delete(path);
        }
    }

    [Fact]
    public async Task A_failing_migration_leaves_the_file_as_it_was()
    {
        string path = TempStore.NewPath();
        StateMigration one = new(1, "one", "CREATE TABLE a (x INTEGER);");
        StateMigration broken = new(2, "broken", "CREATE TABLE half (y INTEGER); INSERT INTO nowhere VALUES (1);");
        try
        {
            await using (var v1 = new SqliteStateStore(path, [one]))
            {
                await v1.OpenAsync();
            }

            await using (var v2 = new SqliteStateStore(path, [one, broken]))
            {
                var ex = await Assert.ThrowsAsync<StateStoreException>(() => v2.OpenAsync());
                Assert.Contains("nowhere", ex.Message, StringComparison.Ordinal);
            }

            Assert.Equal([(1L, "one")], await VersionsAsync(path));
            Assert.False(await TableExistsAsync(path, "half"));
        }
        finally
        {
            TempStore.Delete(path);
        }
    }

    [Fact]
    public async Task A_database_written_by_a_newer_release_is_refused_and_left_untouched()
    {
        string path = TempStore.NewPath();
        try
        {
            await using (var store = new SqliteStateStore(path))
            {
                await store.OpenAsync();
            }

            int future = StateMigrations.Latest + 5;
            await ExecuteAsync(path, $"INSERT INTO schema_version (version, description, applied_at) VALUES ({future}, 'from the future', 0)");

            await using (var old = new SqliteStateStore(path))
            {
                var ex = await Assert.ThrowsAsync<StateStoreException>(() => old.OpenAsync());
                Assert.Contains($"schema version {future}, newer than this gatehouse understands (up to {StateMigrations.Latest})", ex.Message, StringComparison.Ordinal);
                await Assert.ThrowsAsync<InvalidOperationException>(() => old.ListGrantsAsync(true, T0, 10));
            }

            Assert.Equal(future, (await VersionsAsync(path)).Max(v => v.Version));
        }
        finally
        {
            TempStore.Delete(path);
        }
    }

    [Fact]
    public async Task A_file_that_is_not_a_database_or_a_missing_folder_is_a_clear_error()
    {
        string path = TempStore.NewPath();
        try
        {
            await File.WriteAllTextAsync(path, "this is not a database, just some text that is long enough to have a header");
            await using var garbage = new SqliteStateStore(path);
            var ex = await Assert.ThrowsAsync<StateStoreException>(() => garbage.OpenAsync());
            Assert.Contains(path, ex.Message, StringComparison.Ordinal);

            await using var nowhere = new SqliteStateStore(Path.Combine(path + ".d", "x.db"));
            ex = await Assert.ThrowsAsync<StateStoreException>(() => nowhere.OpenAsync());
            Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            TempStore.Delete(path);
        }
    }

    [Fact]
    public async Task A_request_is_decided_once_and_its_grant_is_stored_with_it()
    {
        await using var temp = await TempStore.OpenAsync();
        var store = temp.Store;
        var request = new AccessRequestRecord("ar_1", "alice", "app", "writer", TimeSpan.FromHours(1), "ticket 42", T0, T0.AddHours(24));
        await store.AddAccessRequestAsync(request, null);
        Assert.Equal(request, await store.GetAccessRequestAsync("ar_1"));
        Assert.Single(await store.ListAccessRequestsAsync(all: false, 10));

        var grant = new GrantRecord("gr_1", "ar_1", "alice", "app", "writer", T0.AddMinutes(5), T0.AddMinutes(65), "bob", "ticket 42");
        Assert.True(await store.DecideAccessRequestAsync("ar_1", AccessRequestState.Approved, "bob", T0.AddMinutes(5), "ok", grant));
        Assert.False(await store.DecideAccessRequestAsync("ar_1", AccessRequestState.Denied, "carol", T0.AddMinutes(6), null, null));
        Assert.False(await store.DecideAccessRequestAsync("ar_nope", AccessRequestState.Denied, "carol", T0, null, null));

        var decided = await store.GetAccessRequestAsync("ar_1");
        Assert.Equal((AccessRequestState.Approved, "bob", "ok", "gr_1"), (decided!.State, decided.DecidedBy, decided.DecisionReason, decided.GrantId));
        Assert.Empty(await store.ListAccessRequestsAsync(all: false, 10));
        Assert.Single(await store.ListAccessRequestsAsync(all: true, 10));
        Assert.Equal(grant, await store.GetGrantAsync("gr_1"));
    }

    [Fact]
    public async Task Pending_requests_expire_at_their_deadline_only()
    {
        await using var temp = await TempStore.OpenAsync();
        var store = temp.Store;
        await store.AddAccessRequestAsync(new AccessRequestRecord("ar_early", "alice", "app", "writer", TimeSpan.FromHours(1), "r", T0, T0.AddMinutes(10)), null);
        await store.AddAccessRequestAsync(new AccessRequestRecord("ar_late", "alice", "app", "writer", TimeSpan.FromHours(1), "r", T0, T0.AddMinutes(30)), null);

        var expired = await store.ExpireAccessRequestsAsync(T0.AddMinutes(10));
        Assert.Equal("ar_early", Assert.Single(expired).Id);
        Assert.Equal(AccessRequestState.Expired, (await store.GetAccessRequestAsync("ar_early"))!.State);
        Assert.Equal(AccessRequestState.Pending, (await store.GetAccessRequestAsync("ar_late"))!.State);
        Assert.Empty(await store.ExpireAccessRequestsAsync(T0.AddMinutes(10)));
    }

    [Fact]
    public async Task Grants_list_live_ones_and_are_revoked_once_and_not_after_they_ended()
    {
        await using var temp = await TempStore.OpenAsync();
        var store = temp.Store;
        var live = new GrantRecord("gr_live", null, "alice", "app", "writer", T0, T0.AddHours(1), "bob", "r");
        var ended = new GrantRecord("gr_ended", null, "alice", "app", "writer", T0.AddHours(-2), T0.AddHours(-1), "bob", "r");
        await store.AddAccessRequestAsync(new AccessRequestRecord("ar_a", "alice", "app", "writer", TimeSpan.FromHours(1), "r", T0, T0,
            AccessRequestState.Approved, "bob", T0, null, "gr_live"), live);
        await store.AddAccessRequestAsync(new AccessRequestRecord("ar_b", "alice", "app", "writer", TimeSpan.FromHours(1), "r", T0, T0,
            AccessRequestState.Approved, "bob", T0, null, "gr_ended"), ended);

        Assert.Equal(["gr_live"], (await store.ListGrantsAsync(all: false, T0.AddMinutes(1), 10)).Select(g => g.Id));
        Assert.Equal(2, (await store.ListGrantsAsync(all: true, T0.AddMinutes(1), 10)).Count);

        Assert.False(await store.RevokeGrantAsync("gr_ended", "carol", T0.AddMinutes(1), "too late"));
        Assert.True(await store.RevokeGrantAsync("gr_live", "carol", T0.AddMinutes(1), "done"));
        Assert.False(await store.RevokeGrantAsync("gr_live", "carol", T0.AddMinutes(2), "again"));
        var revoked = await store.GetGrantAsync("gr_live");
        Assert.Equal((T0.AddMinutes(1), "carol", "done"), (revoked!.RevokedAt, revoked.RevokedBy, revoked.RevokeReason));
        Assert.Empty(await store.ListGrantsAsync(all: false, T0.AddMinutes(3), 10));
    }

    [Fact]
    public async Task Approvals_complete_once_and_pending_ones_are_withdrawn_at_start()
    {
        await using var temp = await TempStore.OpenAsync();
        var store = temp.Store;
        var a = new ApprovalRequest("ap_a", "alice", "app", 7, "writer", "ledger", "DELETE FROM ledger WHERE id = 1", T0, T0.AddMinutes(15));
        var b = a with { Id = "ap_b", RequestedAt = T0.AddSeconds(1) };
        await store.AddApprovalAsync(a);
        await store.AddApprovalAsync(b);
        Assert.Equal(["ap_b", "ap_a"], (await store.ListApprovalsAsync(all: false, 10)).Select(r => r.Request.Id));

        Assert.True(await store.CompleteApprovalAsync("ap_a", ApprovalState.Approved, "bob", T0.AddMinutes(1), "fine"));
        Assert.False(await store.CompleteApprovalAsync("ap_a", ApprovalState.Denied, "carol", T0.AddMinutes(2), null));
        var record = await store.GetApprovalAsync("ap_a");
        Assert.Equal(a, record!.Request);
        Assert.Equal((ApprovalState.Approved, "bob", "fine"), (record.State, record.DecidedBy, record.Reason));

        Assert.Equal(1, await store.WithdrawPendingApprovalsAsync(T0.AddMinutes(3), "restart"));
        Assert.Equal(ApprovalState.Withdrawn, (await store.GetApprovalAsync("ap_b"))!.State);
        Assert.Empty(await store.ListApprovalsAsync(all: false, 10));
        Assert.Null(await store.GetApprovalAsync("ap_none"));
    }

    [Fact]
    public async Task Sessions_are_started_then_completed_and_audit_events_read_back_newest_first()
    {
        await using var temp = await TempStore.OpenAsync();
        var store = temp.Store;
        var start = new SessionRecord("run_x", 3, "alice", "app", "pg", "127.0.0.1:5000", T0);
        await store.RecordSessionsAsync([start]);
        await store.RecordSessionsAsync([start with { EndedAt = T0.AddMinutes(1), EndReason = "client_terminated", EndSide = "client", BytesFromClient = 10, BytesFromServer = 20 }]);
        var session = Assert.Single(await store.ListSessionsAsync(10));
        Assert.Equal((T0.AddMinutes(1), "client_terminated", 10L, 20L), (session.EndedAt, session.EndReason, session.BytesFromClient, session.BytesFromServer));

        await store.AppendAuditAsync([
            new AuditEvent(T0, AuditKinds.AccessRequested, "alice", "app", Subject: "ar_1", Detail: "role writer"),
            new AuditEvent(T0.AddSeconds(1), AuditKinds.SessionStarted, "alice", "app", SessionId: 3),
        ]);
        var events = await store.ListAuditAsync(null, 10);
        Assert.Equal([AuditKinds.SessionStarted, AuditKinds.AccessRequested], events.Select(e => e.Kind));
        Assert.Equal(3, events[0].SessionId);
        Assert.Single(await store.ListAuditAsync(T0.AddSeconds(1), 10));
    }
}
