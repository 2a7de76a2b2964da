using System.Text;
using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Statement policy end to end: psql, Npgsql, pgbench and raw protocol messages through the gateway against the
/// real server. Every denial is checked twice: the client got SQLSTATE 42501 naming the rule, and the server's
/// data shows the statement (and whatever was pipelined with it) had no effect.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PolicyTests(PostgresFixture fixture) : IAsyncLifetime
{
    /// <summary>Alice writes, but not unbounded, not DDL, not files; writes to ledger tables need approval.</summary>
    public const string WriterPolicy = """
        rules:
          - name: no-file-access
            classes: [file_access]
            action: deny
        roles:
          writer:
            allow: [read, write, copy, transaction, session]
            rules:
              - name: no-unbounded-writes
                shapes: [delete_without_where, update_without_where]
                action: deny
              - name: ledger-needs-approval
                classes: [write]
                tables: ["ledger_*"]
                action: require_approval
        bindings:
          - identities: [alice]
            connections: ["*"]
            role: writer
        """;

    public const string ReaderPolicy = """
        roles:
          reader:
            allow: [read, transaction, session]
        bindings:
          - identities: [alice]
            connections: ["*"]
            role: reader
        """;

    private GatewayHost _gateway = null!;
    private string _table = null!;

    private PostgresServer Server => fixture.Server;

    public async Task InitializeAsync()
    {
        _table = Direct.UniqueName("pol");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {_table} (id int PRIMARY KEY, v text); INSERT INTO {_table} VALUES (1, 'one'), (2, 'two');");
        _gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = WriterPolicy });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await Direct.ExecuteAsync(Server, $"DROP TABLE IF EXISTS {_table}");
    }

    private Task<long> CountAsync() => Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {_table}");

    private Task<bool> TableExistsAsync() => Direct.ScalarAsync<bool>(Server, $"SELECT to_regclass('{_table}') IS NOT NULL");

    private Task<ProcessResult> Psql(string script) => Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, script);

    // ---- psql: simple query ----------------------------------------------------------------------------------

    [Fact]
    public async Task Psql_drop_table_is_denied_by_the_role_and_the_table_survives()
    {
        var result = await Psql($"DROP TABLE {_table};");

        Assert.Contains("ERROR:  statement denied by policy rule \"role:writer\"", result.Stderr, StringComparison.Ordinal);
        Assert.True(await TableExistsAsync());
    }

    [Fact]
    public async Task Psql_a_denied_statement_anywhere_in_a_multi_statement_query_denies_all_of_it()
    {
        // psql -c sends the whole string as one Query message.
        var result = await Clients.PsqlCommandAsync(_gateway.Port, _gateway.AliceSecret,
            $"INSERT INTO {_table} VALUES (3, 'three'); DELETE FROM {_table}; INSERT INTO {_table} VALUES (4, 'four')");

        Assert.Contains("no-unbounded-writes", result.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, await CountAsync());
    }

    [Fact]
    public async Task Psql_a_denial_inside_a_transaction_aborts_it_as_a_server_error_would()
    {
        var result = await Psql($"""
            BEGIN;
            INSERT INTO {_table} VALUES (3, 'three');
            UPDATE {_table} SET v = 'x';
            SELECT 'still in the aborted transaction';
            COMMIT;
            SELECT 'after: ' || count(*) FROM {_table};
            """);

        Assert.Contains("no-unbounded-writes", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("current transaction is aborted", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("after: 2", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(2, await CountAsync());
        Assert.Equal("one", await Direct.ScalarAsync<string>(Server, $"SELECT v FROM {_table} WHERE id = 1"));
    }

    [Fact]
    public async Task Psql_evasions_by_comments_case_and_quoting_are_denied()
    {
        foreach (var sql in new[]
                 {
                     $"dRoP/* c */TaBlE {_table};",
                     $"DE/**/LETE FROM {_table};",
                     $"/* x */ -- y\n\tdelete\nfrom \"{_table}\";",
                     $"WITH d AS (DELETE FROM {_table} RETURNING *) SELECT count(*) FROM d;",
                     $"DO $$ BEGIN EXECUTE 'DELETE FROM {_table}'; END $$;",
                     $"SELECT $q$ harmless $q$; DELETE FROM {_table};",
                     "SELECT pg_read_file('/etc/passwd');",
                     $"COPY {_table} TO PROGRAM 'cat > /tmp/x';",
                 })
        {
            var result = await Psql(sql);
            Assert.True(result.Stderr.Contains("statement denied", StringComparison.Ordinal), $"not denied: {sql}\n{result.Stderr}");
        }

        Assert.Equal(2, await CountAsync());
        Assert.True(await TableExistsAsync());
    }

    [Fact]
    public async Task Psql_allowed_statements_run_and_a_require_approval_rule_holds_the_statement_until_a_decision()
    {
        var ledger = "ledger_" + _table;
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {ledger} (id int)");
        try
        {
            var psql = Psql($"""
                INSERT INTO {_table} VALUES (3, 'three');
                UPDATE {_table} SET v = 'uno' WHERE id = 1;
                SELECT string_agg(v, ',' ORDER BY id) FROM {_table};
                INSERT INTO {ledger} VALUES (1);
                """);

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            Gatehouse.Policy.Approvals.ApprovalRecord? held = null;
            while (held is null && DateTime.UtcNow < deadline)
            {
                held = _gateway.Server.Approvals.List().FirstOrDefault(r => r.Request.Statement.Contains(ledger, StringComparison.Ordinal));
                await Task.Delay(50);
            }

            Assert.NotNull(held);
            Assert.Equal("ledger-needs-approval", held.Request.Rule);
            _gateway.Server.Approvals.Decide(held.Request.Id, "bob", approve: false);
            var result = await psql;

            Assert.Contains("uno,two,three", result.Stdout, StringComparison.Ordinal);
            Assert.Contains("ledger-needs-approval", result.Stderr, StringComparison.Ordinal);
            Assert.Equal(0L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {ledger}"));
        }
        finally
        {
            await Direct.ExecuteAsync(Server, $"DROP TABLE {ledger}");
        }
    }

    [Fact]
    public async Task Standard_conforming_strings_off_is_tracked_so_the_same_text_splits_as_the_server_splits_it()
    {
        // With standard_conforming_strings on this is a SELECT and then a DELETE; with it off, one string literal.
        var text = $"SELECT 'a\\'; DELETE FROM {_table}; --' AS s;";

        var on = await Psql(text);
        var off = await Psql("SET standard_conforming_strings = off;\nSET escape_string_warning = off;\n" + text);

        Assert.Contains("statement denied", on.Stderr, StringComparison.Ordinal);
        Assert.Contains($"a'; DELETE FROM {_table}; --", off.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("denied", off.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, await CountAsync());
    }

    [Fact]
    public async Task A_text_sent_while_a_setting_change_is_in_flight_is_decided_under_both_readings()
    {
        await using var raw = await LoginAsync();
        // Not waiting for the SET's answer: the gateway cannot know which reading the server will use. One write, so
        // that both arrive together: written one by one, the SET's answer could come back before the second arrives,
        // and the gateway would then rightly decide it under the one reading it knows.
        await raw.SendAsync([.. PgFrames.Query("SET standard_conforming_strings = off"),
            .. PgFrames.Query($"SELECT 'a\\'; DELETE FROM {_table}; --' AS s")]);

        await raw.ReadUntilReadyAsync();
        var second = await raw.ReadUntilReadyAsync();

        Assert.Equal("42501", Assert.Single(second, m => m.Type == 'E').SqlState);
        Assert.Equal(2, await CountAsync());
    }

    [Fact]
    public async Task Pipelined_texts_with_non_ascii_characters_and_no_backslash_are_decided_normally()
    {
        await using var raw = await LoginAsync();
        await raw.SendAsync(
            PgFrames.Query("SET application_name = 'pipelined'"),
            PgFrames.Query($"UPDATE {_table} SET v = 'café ünïcödé' WHERE id = 1"),
            PgFrames.Query($"SELECT v FROM {_table} WHERE id = 1"));

        await raw.ReadUntilReadyAsync();
        var update = await raw.ReadUntilReadyAsync();
        var select = await raw.ReadUntilReadyAsync();

        Assert.Equal("CZ", Types(update));
        Assert.Equal("TDCZ", Types(select));
        Assert.Equal("café ünïcödé", await Direct.ScalarAsync<string>(Server, $"SELECT v FROM {_table} WHERE id = 1"));
    }

    [Fact]
    public async Task A_client_encoding_the_lexer_cannot_read_safely_denies_statements()
    {
        // In SJIS an ASCII byte can end a two-byte character: texts with such characters are refused, pure ASCII
        // (which reads the same in every encoding) still runs, so the client can switch back.
        var result = await Psql("SET client_encoding = 'SJIS';\nSELECT 'plain ascii';\nSELECT 'é';\nRESET client_encoding;\nSELECT 'back';");

        Assert.Contains("client-encoding", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("SET\nplain ascii\nRESET\nback\n", result.Stdout);
    }

    // ---- Npgsql: extended query ------------------------------------------------------------------------------

    [Fact]
    public async Task Npgsql_denied_command_raises_42501_naming_the_rule_and_the_connection_stays_usable()
    {
        await using var connection = await _gateway.OpenAsync();
        await using (var delete = new NpgsqlCommand($"DELETE FROM {_table}", connection))
        {
            var ex = await Assert.ThrowsAsync<PostgresException>(() => delete.ExecuteNonQueryAsync());
            Assert.Equal("42501", ex.SqlState);
            Assert.Contains("no-unbounded-writes", ex.MessageText, StringComparison.Ordinal);
        }

        await using var count = new NpgsqlCommand($"SELECT count(*) FROM {_table}", connection);
        Assert.Equal(2L, await count.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Npgsql_a_batch_with_a_denied_statement_commits_nothing_of_the_batch()
    {
        await using var connection = await _gateway.OpenAsync();
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"INSERT INTO {_table} VALUES (10, 'ten')"),
                new NpgsqlBatchCommand($"UPDATE {_table} SET v = 'all'"),
                new NpgsqlBatchCommand($"INSERT INTO {_table} VALUES (11, 'eleven')"),
            },
        };

        var ex = await Assert.ThrowsAsync<PostgresException>(() => batch.ExecuteNonQueryAsync());

        Assert.Equal("42501", ex.SqlState);
        Assert.Equal(2, await CountAsync());
    }

    [Fact]
    public async Task Npgsql_prepared_statements_are_decided_again_after_a_policy_reload()
    {
        await using var connection = await _gateway.OpenAsync();
        await using var insert = new NpgsqlCommand($"INSERT INTO {_table} VALUES ($1, 'p')", connection);
        insert.Parameters.Add(new NpgsqlParameter { Value = 20 });
        await insert.PrepareAsync();
        await insert.ExecuteNonQueryAsync();

        await File.WriteAllTextAsync(_gateway.PolicyFile!, ReaderPolicy);
        Assert.True(await _gateway.Server.ReloadPolicyAsync());

        insert.Parameters[0].Value = 21;
        var ex = await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync());
        Assert.Equal("42501", ex.SqlState);
        Assert.Contains("role:reader", ex.MessageText, StringComparison.Ordinal);
        Assert.Equal(3, await CountAsync());

        await using var select = new NpgsqlCommand($"SELECT count(*) FROM {_table}", connection);
        Assert.Equal(3L, await select.ExecuteScalarAsync());
    }

    [Fact]
    public async Task An_invalid_policy_file_is_rejected_and_the_last_good_policy_stays()
    {
        await File.WriteAllTextAsync(_gateway.PolicyFile!, "roles:\n  writer:\n    allow: [nonsense]\n");
        Assert.False(await _gateway.Server.ReloadPolicyAsync());

        await using var connection = await _gateway.OpenAsync();
        await using var insert = new NpgsqlCommand($"INSERT INTO {_table} VALUES (30, 'x')", connection);
        Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        await using var drop = new NpgsqlCommand($"DROP TABLE {_table}", connection);
        Assert.Equal("42501", (await Assert.ThrowsAsync<PostgresException>(() => drop.ExecuteNonQueryAsync())).SqlState);
    }

    // ---- Raw protocol: what drivers do not send on their own --------------------------------------------------

    [Fact]
    public async Task A_pipeline_with_a_denied_statement_answers_as_the_server_would_and_commits_nothing()
    {
        await using var raw = await LoginAsync();
        await raw.SendAsync(
            Parse("", $"INSERT INTO {_table} VALUES (40, 'forty')"), Bind("", ""), Execute(),
            Parse("", $"DELETE FROM {_table}"), Bind("", ""), Execute(),
            Parse("", $"INSERT INTO {_table} VALUES (41, 'forty-one')"), Bind("", ""), Execute(),
            PgFrames.Sync(),
            PgFrames.Query("SELECT 1"));

        var first = await raw.ReadUntilReadyAsync();
        var second = await raw.ReadUntilReadyAsync();

        Assert.Equal("12CEZ", string.Concat(first.Select(m => m.Type)));
        Assert.Equal("42501", first[3].SqlState);
        Assert.Contains("no-unbounded-writes", first[3].MessageText, StringComparison.Ordinal);
        Assert.Equal((byte)'I', first[^1].Body[0]);
        Assert.Equal("TDCZ", string.Concat(second.Select(m => m.Type)));
        Assert.Equal(2, await CountAsync());
    }

    [Fact]
    public async Task A_named_statement_cannot_be_swapped_for_a_denied_text_by_reparsing_its_name()
    {
        await using var raw = await LoginAsync();
        await raw.SendAsync(Parse("s1", $"SELECT count(*) FROM {_table}"), PgFrames.Sync());
        Assert.Equal("1Z", Types(await raw.ReadUntilReadyAsync()));

        // Re-parsing an existing name fails on the server; the gateway must keep deciding for the text it holds.
        await raw.SendAsync(Parse("s1", $"DELETE FROM {_table}"), Bind("", "s1"), Execute(), PgFrames.Sync());
        var reparse = await raw.ReadUntilReadyAsync();
        Assert.Equal("42501", reparse[0].SqlState);

        // The server holds an UPDATE under s2; then the policy stops allowing it. Re-parsing s2 with an allowed text
        // fails on the server (the name exists), so a Bind of s2 pipelined behind it must still be refused.
        await raw.SendAsync(Parse("s2", $"UPDATE {_table} SET v = 'evil' WHERE id = 1"), PgFrames.Sync());
        Assert.Equal("1Z", Types(await raw.ReadUntilReadyAsync()));
        await File.WriteAllTextAsync(_gateway.PolicyFile!, ReaderPolicy);
        Assert.True(await _gateway.Server.ReloadPolicyAsync());

        await raw.SendAsync(Parse("s2", "SELECT 1"), PgFrames.Sync(), Bind("", "s2"), Execute(), PgFrames.Sync());
        var duplicate = await raw.ReadUntilReadyAsync();
        Assert.Equal("42P05", duplicate[0].SqlState); // the server's own answer: s2 exists
        var run = await raw.ReadUntilReadyAsync();
        Assert.Equal("EZ", Types(run));
        Assert.Equal("42501", run[0].SqlState);
        Assert.Contains("role:reader", run[0].MessageText, StringComparison.Ordinal);
        Assert.Equal("one", await Direct.ScalarAsync<string>(Server, $"SELECT v FROM {_table} WHERE id = 1"));
    }

    [Fact]
    public async Task A_closed_statement_name_can_be_reused_and_is_decided_for_its_new_text()
    {
        await using var raw = await LoginAsync();
        await raw.SendAsync(Parse("s", $"SELECT 1"), Close('S', "s"), Parse("s", $"DELETE FROM {_table} WHERE id = 2"),
            Bind("", "s"), Execute(), PgFrames.Sync());

        Assert.Equal("1312CZ", Types(await raw.ReadUntilReadyAsync()));
        Assert.Equal(1, await CountAsync());
    }

    [Fact]
    public async Task A_statement_prepared_in_sql_cannot_be_bound_through_the_protocol()
    {
        await using var raw = await LoginAsync();
        await raw.SendAsync(Bind("", "never_parsed"), Execute(), PgFrames.Sync());

        var reply = await raw.ReadUntilReadyAsync();
        Assert.Equal("EZ", Types(reply));
        Assert.Contains("unknown-statement", reply[0].MessageText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_function_call_message_is_denied_and_the_session_goes_on()
    {
        await using var raw = await LoginAsync();
        // FunctionCall of pg_backend_pid (OID 2026) with no arguments, text result.
        await raw.SendAsync(PgFrames.Typed('F', [0, 0, 0x07, 0xEA, 0, 0, 0, 0, 0, 0]), PgFrames.Query("SELECT 'next'"));

        var denied = await raw.ReadUntilReadyAsync();
        var next = await raw.ReadUntilReadyAsync();
        Assert.Equal("EZ", Types(denied));
        Assert.Contains("function-call", denied[0].MessageText, StringComparison.Ordinal);
        Assert.Equal("TDCZ", Types(next));
    }

    [Fact]
    public async Task An_identity_without_a_binding_is_refused_at_login()
    {
        await using var gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = ReaderPolicy.Replace("identities: [alice]", "identities: [carol]", StringComparison.Ordinal) });
        await using var raw = await RawPgConnection.ConnectAsync(gateway.Port);

        var refusal = await raw.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, gateway.AliceSecret);

        Assert.NotNull(refusal);
        Assert.Equal("42501", refusal.Value.SqlState);
        Assert.Contains("no policy binding", refusal.Value.MessageText, StringComparison.Ordinal);
    }

    // ---- pgbench ---------------------------------------------------------------------------------------------

    [Fact]
    public async Task Pgbench_read_write_workload_runs_under_the_writer_role_and_is_refused_under_a_reader_role()
    {
        await PgbenchTests.InitializeOnceAsync(Server);
        var writer = await Clients.PgbenchAsync(_gateway.Port, _gateway.AliceSecret, "-n", "-t", "50", "-c", "2", "-M", "extended");
        Assert.True(writer.ExitCode == 0, writer.Stdout + writer.Stderr);
        Assert.Contains("number of failed transactions: 0", writer.Stdout, StringComparison.Ordinal);

        await using var reader = GatewayHost.Start(Server, new GatewaySettings { Policy = ReaderPolicy });
        long balanceBefore = await Direct.ScalarAsync<long>(Server, "SELECT sum(abalance) FROM pgbench_accounts");
        long historyBefore = await Direct.ScalarAsync<long>(Server, "SELECT count(*) FROM pgbench_history");

        var selectOnly = await Clients.PgbenchAsync(reader.Port, reader.AliceSecret, "-n", "-S", "-t", "50", "-c", "2", "-M", "prepared");
        var readWrite = await Clients.PgbenchAsync(reader.Port, reader.AliceSecret, "-n", "-t", "10", "-c", "1", "-M", "prepared");

        Assert.True(selectOnly.ExitCode == 0, selectOnly.Stdout + selectOnly.Stderr);
        Assert.NotEqual(0, readWrite.ExitCode);
        Assert.Contains("role:reader", readWrite.Stderr, StringComparison.Ordinal);
        Assert.Equal(balanceBefore, await Direct.ScalarAsync<long>(Server, "SELECT sum(abalance) FROM pgbench_accounts"));
        Assert.Equal(historyBefore, await Direct.ScalarAsync<long>(Server, "SELECT count(*) FROM pgbench_history"));
    }

    // ---- helpers ---------------------------------------------------------------------------------------------

    private async Task<RawPgConnection> LoginAsync()
    {
        var raw = await RawPgConnection.ConnectAsync(_gateway.Port);
        var refusal = await raw.LoginAsync(GatewayHost.Alice, GatewayHost.AppConnection, _gateway.AliceSecret);
        Assert.Null(refusal);
        return raw;
    }

    private static string Types(List<PgMessage> messages) => string.Concat(messages.Select(m => m.Type));

    private static byte[] Parse(string name, string sql) => PgFrames.Typed('P', [.. PgFrames.CString(name), .. PgFrames.CString(sql), 0, 0]);

    private static byte[] Bind(string portal, string statement) =>
        PgFrames.Typed('B', [.. PgFrames.CString(portal), .. PgFrames.CString(statement), 0, 0, 0, 0, 0, 0]);

    private static byte[] Execute() => PgFrames.Execute();

    private static byte[] Close(char kind, string name) => PgFrames.Typed('C', [(byte)kind, .. PgFrames.CString(name)]);
}
