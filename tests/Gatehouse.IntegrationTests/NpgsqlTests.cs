using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;
using NpgsqlTypes;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Npgsql (extended protocol, binary results by default) through the gateway: types, parameters, transactions,
/// COPY in both formats and directions, batches, multiplexing and prepared statements.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class NpgsqlTests(PostgresFixture fixture) : IAsyncLifetime
{
    private const string TypedValuesSql = """
        SELECT 42::int, 'héllo wörld'::text, '\x00ff10'::bytea, '2024-02-29 12:34:56.789+00'::timestamptz,
               12345.678901234567890::numeric, ARRAY[1, 2, NULL, 4]::int[], ARRAY['a', 'b c']::text[], NULL::int
        """;

    private GatewayHost _gateway = null!;
    private NpgsqlDataSource _dataSource = null!;

    private PostgresServer Server => fixture.Server;

    public Task InitializeAsync()
    {
        _gateway = GatewayHost.Start(Server);
        _dataSource = _gateway.CreateDataSource();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task Binary_results_read_back_as_the_typed_values()
    {
        await using var command = _dataSource.CreateCommand(TypedValuesSql);
        await using var reader = await command.ExecuteReaderAsync();

        Assert.True(await reader.ReadAsync());
        Assert.Equal(42, reader.GetInt32(0));
        Assert.Equal("héllo wörld", reader.GetString(1));
        Assert.Equal(new byte[] { 0x00, 0xff, 0x10 }, reader.GetFieldValue<byte[]>(2));
        Assert.Equal(new DateTime(2024, 2, 29, 12, 34, 56, 789, DateTimeKind.Utc), reader.GetFieldValue<DateTime>(3));
        Assert.Equal(12345.678901234567890m, reader.GetDecimal(4));
        Assert.Equal(new int?[] { 1, 2, null, 4 }, reader.GetFieldValue<int?[]>(5));
        Assert.Equal(new[] { "a", "b c" }, reader.GetFieldValue<string[]>(6));
        Assert.True(reader.IsDBNull(7));
        Assert.False(await reader.ReadAsync());
    }

    [Fact]
    public async Task Text_results_read_back_as_the_servers_text()
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        await using (var set = new NpgsqlCommand("SET TimeZone = 'UTC'", connection))
        {
            await set.ExecuteNonQueryAsync();
        }

        // Unknown result types make Npgsql ask for text format for every column.
        await using var command = new NpgsqlCommand(TypedValuesSql, connection) { AllResultTypesAreUnknown = true };
        await using var reader = await command.ExecuteReaderAsync();

        Assert.True(await reader.ReadAsync());
        Assert.Equal(
            new[] { "42", "héllo wörld", "\\x00ff10", "2024-02-29 12:34:56.789+00", "12345.678901234567890", "{1,2,NULL,4}", "{a,\"b c\"}" },
            Enumerable.Range(0, 7).Select(reader.GetString).ToArray());
        Assert.True(reader.IsDBNull(7));
    }

    [Fact]
    public async Task Parameters_are_bound_and_used()
    {
        await using var command = _dataSource.CreateCommand("SELECT $1::int + 1, $2 || '!', $3::bytea, length($3)");
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 41 });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "héllo" });
        command.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = [0, 1, 2, 255] });
        await using var reader = await command.ExecuteReaderAsync();

        Assert.True(await reader.ReadAsync());
        Assert.Equal(42, reader.GetInt32(0));
        Assert.Equal("héllo!", reader.GetString(1));
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, reader.GetFieldValue<byte[]>(2));
        Assert.Equal(4, reader.GetInt32(3));
    }

    [Fact]
    public async Task A_rolled_back_transaction_has_no_effect()
    {
        var table = Direct.UniqueName("npgsql_rollback");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int)");
        await using var connection = await _dataSource.OpenConnectionAsync();

        long insideTransaction;
        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await using (var insert = new NpgsqlCommand($"INSERT INTO {table} VALUES (1), (2)", connection, transaction))
            {
                await insert.ExecuteNonQueryAsync();
            }

            await using (var count = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection, transaction))
            {
                insideTransaction = (long)(await count.ExecuteScalarAsync())!;
            }

            await transaction.RollbackAsync();
        }

        await using var after = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        Assert.Equal(2, insideTransaction);
        Assert.Equal(0L, await after.ExecuteScalarAsync());
        Assert.Equal(0L, await Direct.ScalarAsync<long>(Server, $"SELECT count(*) FROM {table}"));
    }

    [Fact]
    public async Task Binary_copy_import_lands_every_row()
    {
        var table = Direct.UniqueName("npgsql_bin_in");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int, name text, data bytea)");
        await using var connection = await _dataSource.OpenConnectionAsync();

        ulong written;
        await using (var import = await connection.BeginBinaryImportAsync($"COPY {table} (id, name, data) FROM STDIN (FORMAT BINARY)"))
        {
            for (int i = 1; i <= 1000; i++)
            {
                await import.StartRowAsync();
                await import.WriteAsync(i, NpgsqlDbType.Integer);
                await import.WriteAsync($"row {i} ü", NpgsqlDbType.Text);
                await import.WriteAsync(new[] { (byte)i, (byte)(i >> 8), (byte)0 }, NpgsqlDbType.Bytea);
            }

            written = await import.CompleteAsync();
        }

        Assert.Equal(1000UL, written);
        Assert.Equal("1000|500500|row 777 ü|\\x090300",
            (await Server.PsqlAsync($"SELECT count(*), sum(id), (SELECT name FROM {table} WHERE id = 777), (SELECT data FROM {table} WHERE id = 777) FROM {table};")).Trim());
    }

    [Fact]
    public async Task Binary_copy_export_reads_every_row()
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        var rows = new List<(int Id, string Name, byte[]? Payload)>();

        await using (var export = await connection.BeginBinaryExportAsync("COPY (SELECT id, name, payload FROM items ORDER BY id) TO STDOUT (FORMAT BINARY)"))
        {
            while (await export.StartRowAsync() != -1)
            {
                var id = await export.ReadAsync<int>(NpgsqlDbType.Integer);
                var name = await export.ReadAsync<string>(NpgsqlDbType.Text);
                byte[]? payload = export.IsNull ? null : await export.ReadAsync<byte[]>(NpgsqlDbType.Bytea);
                if (payload is null)
                {
                    await export.SkipAsync();
                }

                rows.Add((id, name, payload));
            }
        }

        Assert.Equal(3, rows.Count);
        Assert.Equal((1, "alpha"), (rows[0].Id, rows[0].Name));
        Assert.Equal(new byte[] { 0, 1, 2, 3 }, rows[0].Payload);
        Assert.Equal((2, "beta"), (rows[1].Id, rows[1].Name));
        Assert.Equal("héllo wörld"u8.ToArray(), rows[1].Payload);
        Assert.Equal((3, "gamma", (byte[]?)null), rows[2]);
    }

    [Fact]
    public async Task Text_copy_import_lands_every_row()
    {
        var table = Direct.UniqueName("npgsql_text_in");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int, name text)");
        await using var connection = await _dataSource.OpenConnectionAsync();

        await using (var writer = await connection.BeginTextImportAsync($"COPY {table} (id, name) FROM STDIN"))
        {
            for (int i = 1; i <= 500; i++)
            {
                await writer.WriteAsync($"{i}\tname {i}\n");
            }

            await writer.WriteAsync("501\t\\N\n");
        }

        Assert.Equal("501|125751|name 250|1", (await Server.PsqlAsync(
            $"SELECT count(*), sum(id), (SELECT name FROM {table} WHERE id = 250), count(*) FILTER (WHERE name IS NULL) FROM {table};")).Trim());
    }

    [Fact]
    public async Task Text_copy_export_reads_every_row()
    {
        await using var connection = await _dataSource.OpenConnectionAsync();

        string text;
        using (var reader = await connection.BeginTextExportAsync("COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT"))
        {
            text = await reader.ReadToEndAsync();
        }

        Assert.Equal("1\talpha\n2\tbeta\n3\tgamma\n", text);
    }

    [Fact]
    public async Task A_batch_runs_every_command_in_order()
    {
        var table = Direct.UniqueName("npgsql_batch");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int PRIMARY KEY, name text)");
        await using var batch = _dataSource.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"INSERT INTO {table} VALUES (1, 'one'), (2, 'two')"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"UPDATE {table} SET name = 'TWO' WHERE id = 2"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT name FROM {table} ORDER BY id"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT $1::int * 2") { Parameters = { new NpgsqlParameter<int> { TypedValue = 21 } } });

        var names = new List<string>();
        await using (var reader = await batch.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                names.Add(reader.GetString(0));
            }

            Assert.True(await reader.NextResultAsync());
            Assert.True(await reader.ReadAsync());
            Assert.Equal(42, reader.GetInt32(0));
            Assert.False(await reader.NextResultAsync());
        }

        Assert.Equal(new[] { "one", "TWO" }, names);
        Assert.Equal(2, batch.BatchCommands[0].RecordsAffected);
        Assert.Equal(1, batch.BatchCommands[1].RecordsAffected);
    }

    [Fact]
    public async Task Multiplexed_concurrent_commands_share_one_session_and_all_get_their_results()
    {
        await using var multiplexed = _gateway.CreateDataSource(b =>
        {
            b.Pooling = true;
            b.Multiplexing = true;
            b.MaxPoolSize = 1;
        });

        var tasks = Enumerable.Range(1, 50).Select(async i =>
        {
            await using var command = multiplexed.CreateCommand("SELECT $1::int * 2, pg_backend_pid()");
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = i });
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            return (Input: i, Doubled: reader.GetInt32(0), Pid: reader.GetInt32(1));
        }).ToList();
        var results = await Task.WhenAll(tasks);

        Assert.All(results, r => Assert.Equal(r.Input * 2, r.Doubled));
        Assert.Single(results.Select(r => r.Pid).Distinct());
    }

    [Fact]
    public async Task A_prepared_statement_is_prepared_once_and_reused()
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT $1::int + 1000", connection);
        var parameter = new NpgsqlParameter<int> { TypedValue = 0 };
        command.Parameters.Add(parameter);
        await command.PrepareAsync();

        var results = new List<int>();
        for (int i = 0; i < 5; i++)
        {
            parameter.TypedValue = i;
            results.Add((int)(await command.ExecuteScalarAsync())!);
        }

        await using var check = new NpgsqlCommand("SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int + 1000'", connection);
        Assert.True(command.IsPrepared);
        Assert.Equal(new[] { 1000, 1001, 1002, 1003, 1004 }, results);
        Assert.Equal(1L, await check.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_2_MiB_parameter_is_inserted_intact()
    {
        var table = Direct.UniqueName("npgsql_big_param");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int, data bytea)");
        var data = new byte[2 * 1024 * 1024];
        new Random(2).NextBytes(data);

        await using (var insert = _dataSource.CreateCommand($"INSERT INTO {table} VALUES (1, $1)"))
        {
            insert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = data });
            Assert.Equal(1, await insert.ExecuteNonQueryAsync());
        }

        var expectedHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data));
        Assert.Equal($"{data.Length}|{expectedHash}", (await Server.PsqlAsync($"SELECT length(data), encode(sha256(data), 'hex') FROM {table};")).Trim());
    }

    [Fact]
    public async Task A_text_copy_import_with_a_bad_row_fails_with_22P02_and_the_connection_stays_usable()
    {
        var table = Direct.UniqueName("npgsql_text_bad");
        await Direct.ExecuteAsync(Server, $"CREATE TABLE {table} (id int, name text)");
        await using var connection = await _dataSource.OpenConnectionAsync();

        var error = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var writer = await connection.BeginTextImportAsync($"COPY {table} (id, name) FROM STDIN");
            await writer.WriteAsync("1\tone\nnot-a-number\ttwo\n");
            for (int i = 0; i < 2000; i++)
            {
                await writer.WriteAsync($"{i}\tfiller {i}\n");
            }
        });

        Assert.Equal(PostgresErrorCodes.InvalidTextRepresentation, error.SqlState);
        await using var after = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        Assert.Equal(0L, await after.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_notification_from_another_session_reaches_a_listener()
    {
        var channel = Direct.UniqueName("chan");
        await using var connection = await _dataSource.OpenConnectionAsync();
        var received = new TaskCompletionSource<NpgsqlNotificationEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Notification += (_, e) => received.TrySetResult(e);
        await using (var listen = new NpgsqlCommand($"LISTEN {channel}", connection))
        {
            await listen.ExecuteNonQueryAsync();
        }

        await Direct.ExecuteAsync(Server, $"NOTIFY {channel}, 'payload ü'");

        Assert.True(await connection.WaitAsync(TimeSpan.FromSeconds(15)), "no notification arrived");
        var notification = await received.Task;
        Assert.Equal((channel, "payload ü"), (notification.Channel, notification.Payload));
    }

    [Fact]
    public async Task A_notice_raised_by_a_statement_reaches_the_client()
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        var notices = new List<PostgresNotice>();
        connection.Notice += (_, e) => notices.Add(e.Notice);

        await using var command = new NpgsqlCommand("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$", connection);
        await command.ExecuteNonQueryAsync();

        var notice = Assert.Single(notices);
        Assert.Equal(("NOTICE", "hello 42"), (notice.InvariantSeverity, notice.MessageText));
    }
}
