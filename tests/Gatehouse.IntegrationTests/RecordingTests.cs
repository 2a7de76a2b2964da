using System.Buffers.Binary;
using System.Text;
using Gatehouse.Engine.Recording;
using Gatehouse.IntegrationTests.Infrastructure;
using Gatehouse.Policy.Approvals;
using Npgsql;
using NpgsqlTypes;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// Session recordings of real clients against the real server: what the recording says the client received is
/// byte for byte what a tap between them saw; statements carry their decoded parameters and decisions; secrets and
/// masked values never reach the file; the stock lz4 tool reads it; tampering is detected; a recording that cannot
/// be written refuses the login.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RecordingTests(PostgresFixture fixture) : IAsyncLifetime
{
    private const string Policy = """
        roles:
          writer:
            allow: [read, write, ddl, copy, transaction, session, privilege]
            rules:
              - name: no-drop
                description: DROP is not allowed
                shapes: [drop]
                action: deny
              - name: ledger-needs-approval
                classes: [write]
                tables: ["rec_ledger_*"]
                action: require_approval
        bindings:
          - identities: [alice]
            connections: ["*"]
            role: writer
        masking:
          key: { value: "recording-tests-masking-key" }
          rules:
            - name: ssn
              columns: ["public.rec_people_*.ssn"]
              style: keep_last
            - name: cards
              detect: [card]
        """;

    private GatewayHost _gateway = null!;
    private string _people = null!;
    private string _ledger = null!;

    private PostgresServer Server => fixture.Server;

    public async Task InitializeAsync()
    {
        _people = Direct.UniqueName("rec_people");
        _ledger = Direct.UniqueName("rec_ledger");
        await Direct.ExecuteAsync(Server, $"""
            CREATE TABLE {_people} (id int PRIMARY KEY, name text, ssn text, note text);
            INSERT INTO {_people} VALUES (1, 'Ada', '123-45-6789', 'card 4111 1111 1111 1111'), (2, 'Bob', '987-65-4321', NULL);
            CREATE TABLE {_ledger} (id int PRIMARY KEY, amount int);
            """);
        _gateway = GatewayHost.Start(Server, new GatewaySettings { Policy = Policy, Approvals = "{ timeout: 30s }" });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await Direct.ExecuteAsync(Server, $"DROP TABLE IF EXISTS {_people}; DROP TABLE IF EXISTS {_people}_new; DROP TABLE IF EXISTS {_ledger}");
    }

    private RecordingKey Key => _gateway.Server.Config.Recording.LoadKey(create: false);

    [Fact]
    public async Task A_psql_session_replays_to_exactly_the_bytes_the_client_received()
    {
        await using var tap = new ByteTap(_gateway.Port);
        var result = await Clients.PsqlAsync(tap.Port, _gateway.AliceSecret, $"""
            SELECT id, name, ssn, note FROM {_people} ORDER BY id;
            SELECT 1/0;
            DROP TABLE {_people};
            SELECT count(*) FROM {_people}; SELECT 'two statements';
            \copy {_people} TO STDOUT
            BEGIN; SELECT 1; COMMIT;
            """);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("****6789", result.Stdout, StringComparison.Ordinal);

        var recording = await SingleRecordingAsync();
        var received = ClientView(tap.Received());
        var recorded = Messages(Concat(recording.Events.Where(e => e.Kind == RecordKind.ServerMessage)));
        Assert.True(received.Count > 20, $"only {received.Count} messages were received");
        Assert.Equal(received.Count, recorded.Count);
        for (int i = 0; i < received.Count; i++)
        {
            Assert.True(received[i].AsSpan().SequenceEqual(recorded[i]), $"message {i} ('{(char)received[i][0]}') differs from the recording");
        }

        Assert.Equal(RecordingIntegrity.Intact, recording.Verification.Integrity);
        Assert.Equal("ClientTerminated", Field(recording.Events.Last(e => e.Kind == RecordKind.SessionEnd), SessionEndFields.Reason));
    }

    [Fact]
    public async Task An_npgsql_session_in_the_extended_protocol_replays_to_exactly_the_bytes_the_client_received()
    {
        await using var tap = new ByteTap(_gateway.Port);
        await using (var connection = new NpgsqlConnection(_gateway.ConnectionString(port: tap.Port)))
        {
            await connection.OpenAsync();

            // Parameters, and a masked column (the ssn, and the card number in the note) in the rows.
            await using (var select = new NpgsqlCommand($"SELECT id, name, ssn, note FROM {_people} WHERE id >= $1 ORDER BY id", connection))
            {
                select.Parameters.Add(new NpgsqlParameter { Value = 1, NpgsqlDbType = NpgsqlDbType.Integer });
                await using var reader = await select.ExecuteReaderAsync();
                Assert.True(await reader.ReadAsync());
                Assert.Equal("****6789", reader.GetString(2));
                Assert.True(await reader.ReadAsync());
                Assert.False(await reader.ReadAsync());
            }

            // A prepared statement, executed twice.
            await using (var prepared = new NpgsqlCommand($"SELECT name, ssn FROM {_people} WHERE id = $1", connection))
            {
                var id = new NpgsqlParameter<int> { TypedValue = 1 };
                prepared.Parameters.Add(id);
                await prepared.PrepareAsync();
                Assert.Equal("Ada", await prepared.ExecuteScalarAsync());
                id.TypedValue = 2;
                Assert.Equal("Bob", await prepared.ExecuteScalarAsync());
            }

            // A write with text and NULL parameters.
            await using (var insert = new NpgsqlCommand($"INSERT INTO {_people} (id, name, ssn) VALUES ($1, $2, $3)", connection))
            {
                insert.Parameters.Add(new NpgsqlParameter { Value = 3 });
                insert.Parameters.Add(new NpgsqlParameter { Value = "Cy" });
                insert.Parameters.Add(new NpgsqlParameter { Value = DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
                Assert.Equal(1, await insert.ExecuteNonQueryAsync());
            }

            // The server's error, and the gateway's refusal.
            await using (var divide = new NpgsqlCommand("SELECT 1 / $1", connection))
            {
                divide.Parameters.Add(new NpgsqlParameter { Value = 0 });
                Assert.Equal("22012", (await Assert.ThrowsAsync<PostgresException>(() => divide.ExecuteScalarAsync())).SqlState);
            }

            await using (var drop = new NpgsqlCommand($"DROP TABLE {_people}", connection))
            {
                Assert.Equal("42501", (await Assert.ThrowsAsync<PostgresException>(() => drop.ExecuteNonQueryAsync())).SqlState);
            }

            // A batch whose second statement fails: the server skips the third up to the Sync.
            await using (var batch = new NpgsqlBatch(connection))
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT count(*) FROM {_people}"));
                batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT 1 / 0"));
                batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT 'never'"));
                Assert.Equal("22012", (await Assert.ThrowsAsync<PostgresException>(() => batch.ExecuteNonQueryAsync())).SqlState);
            }

            // A table made in the session, whose ssn column the catalog did not know yet: its rows wait for a reload.
            await using (var create = new NpgsqlCommand(
                             $"CREATE TABLE {_people}_new (id int, ssn text); INSERT INTO {_people}_new VALUES (1, '555-12-3456')", connection))
            {
                await create.ExecuteNonQueryAsync();
            }

            await using (var fresh = new NpgsqlCommand($"SELECT ssn FROM {_people}_new WHERE id = $1", connection))
            {
                fresh.Parameters.Add(new NpgsqlParameter { Value = 1 });
                Assert.Equal("****3456", await fresh.ExecuteScalarAsync());
            }

            await using (var after = new NpgsqlCommand("SELECT 'still usable'", connection))
            {
                Assert.Equal("still usable", await after.ExecuteScalarAsync());
            }
        }

        var recording = await SingleRecordingAsync();
        var received = ClientView(tap.Received());
        var recorded = Messages(Concat(recording.Events.Where(e => e.Kind == RecordKind.ServerMessage)));
        Assert.True(received.Count > 30, $"only {received.Count} messages were received");

        // The test's statements went as Parse and Bind (Npgsql's type loading at open is a simple Query); three errors.
        var codes = received.Select(m => (char)m[0]).ToList();
        Assert.All("12tTDCnZ", c => Assert.Contains(c, codes));
        Assert.Equal(3, codes.Count(c => c == 'E'));
        var parses = recording.Events.Where(e => e.Kind == RecordKind.Statement && Field(e, StatementFields.Message) == "P")
            .Select(e => Field(e, StatementFields.Text)).ToList();
        Assert.Contains($"SELECT name, ssn FROM {_people} WHERE id = $1", parses);
        Assert.Contains("SELECT 1 / $1", parses);
        for (int i = 0; i < Math.Min(received.Count, recorded.Count); i++)
        {
            Assert.True(received[i].AsSpan().SequenceEqual(recorded[i]), $"message {i} ('{(char)received[i][0]}') differs from the recording");
        }

        Assert.Equal(received.Count, recorded.Count);
        Assert.Equal(RecordingIntegrity.Intact, recording.Verification.Integrity);
        Assert.Equal("ClientTerminated", Field(recording.Events.Last(e => e.Kind == RecordKind.SessionEnd), SessionEndFields.Reason));
    }

    [Fact]
    public async Task Statements_are_recorded_with_their_decoded_parameters_and_decisions()
    {
        await using (var connection = await _gateway.OpenAsync())
        {
            await using var command = new NpgsqlCommand($"SELECT name FROM {_people} WHERE id = $1 AND name = $2", connection);
            command.Parameters.Add(new NpgsqlParameter { Value = 1, NpgsqlDbType = NpgsqlDbType.Integer });
            command.Parameters.Add(new NpgsqlParameter { Value = "Ada", NpgsqlDbType = NpgsqlDbType.Text });
            Assert.Equal("Ada", await command.ExecuteScalarAsync());

            var drop = await Assert.ThrowsAsync<PostgresException>(async () =>
            {
                await using var refused = new NpgsqlCommand($"DROP TABLE {_people}", connection);
                await refused.ExecuteNonQueryAsync();
            });
            Assert.Equal("42501", drop.SqlState);
        }

        var recording = await SingleRecordingAsync();
        var statements = recording.Events.Where(e => e.Kind == RecordKind.Statement).ToList();

        // Npgsql: Parse of the text, then a Bind with the int in binary and the text as text.
        var parse = statements.First(e => Field(e, StatementFields.Message) == "P" && Field(e, StatementFields.Text)!.Contains("WHERE id = $1", StringComparison.Ordinal));
        var bind = statements.First(e => Field(e, StatementFields.Message) == "B" && e.TimeMicros >= parse.TimeMicros);
        var parameters = Fields(bind).Where(f => f.Tag is StatementFields.Parameter or StatementFields.BinaryParameter or StatementFields.NullParameter).ToList();
        Assert.Equal(2, parameters.Count);
        Assert.Equal(StatementFields.BinaryParameter, parameters[0].Tag);
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(parameters[0].Value));
        Assert.Equal((StatementFields.Parameter, "Ada"), (parameters[1].Tag, Encoding.UTF8.GetString(parameters[1].Value)));

        // Each statement is followed by its decision: the Parse and Bind allowed, the DROP denied by its rule.
        Assert.Equal(RecordedDecision.Allowed, DecisionAfter(recording, parse));
        Assert.Equal(RecordedDecision.Allowed, DecisionAfter(recording, bind));
        var dropStatement = statements.First(e => Field(e, StatementFields.Text)?.StartsWith("DROP TABLE", StringComparison.Ordinal) == true);
        var denial = recording.Events.SkipWhile(e => e != dropStatement).First(e => e.Kind == RecordKind.Decision);
        Assert.Equal(RecordedDecision.Denied, (RecordedDecision)Fields(denial).First(f => f.Tag == DecisionFields.Outcome).Value[0]);
        Assert.Equal("no-drop", Field(denial, DecisionFields.Rule));
    }

    [Fact]
    public async Task A_held_statement_records_who_approved_it()
    {
        await using var connection = await _gateway.OpenAsync();
        var insert = Task.Run(async () =>
        {
            await using var command = new NpgsqlCommand($"INSERT INTO {_ledger} VALUES (1, 100)", connection);
            return await command.ExecuteNonQueryAsync();
        });

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        ApprovalRecord? pending = null;
        while (pending is null && DateTime.UtcNow < deadline)
        {
            pending = _gateway.Server.Approvals.List().FirstOrDefault(r => r.Request.Statement.Contains(_ledger, StringComparison.Ordinal));
            await Task.Delay(50);
        }

        Assert.NotNull(pending);
        Assert.Equal(ApprovalDecisionResult.Done, _gateway.Server.Approvals.Decide(pending.Request.Id, "bob", approve: true));
        Assert.Equal(1, await insert);
        await connection.CloseAsync();

        var recording = await SingleRecordingAsync();
        var decisions = recording.Events.Where(e => e.Kind == RecordKind.Decision)
            .Select(e => (Outcome: (RecordedDecision)Fields(e).First(f => f.Tag == DecisionFields.Outcome).Value[0], Event: e))
            .SkipWhile(d => d.Outcome != RecordedDecision.Held)
            .ToList();
        Assert.Equal([RecordedDecision.Held, RecordedDecision.Approved, RecordedDecision.Allowed], decisions.Take(3).Select(d => d.Outcome));
        Assert.Equal(pending.Request.Id, Field(decisions[0].Event, DecisionFields.Ticket));
        Assert.Equal("ledger-needs-approval", Field(decisions[0].Event, DecisionFields.Rule));
        Assert.Equal("bob", Field(decisions[1].Event, DecisionFields.Approver));

        // The held Bind was recorded once, not once per time the relay offered it again.
        int parse = recording.Events.FindIndex(e => e.Kind == RecordKind.Statement && Field(e, StatementFields.Message) == "P"
                                                    && Field(e, StatementFields.Text)!.StartsWith("INSERT INTO " + _ledger, StringComparison.Ordinal));
        Assert.True(parse >= 0, "the INSERT was not recorded");
        Assert.Single(recording.Events.Skip(parse), e => e.Kind == RecordKind.Statement && Field(e, StatementFields.Message) == "B");
    }

    [Fact]
    public async Task Passwords_and_masked_values_never_reach_the_recording()
    {
        string role = Direct.UniqueName("rec_role");
        var result = await Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"""
            CREATE ROLE {role} LOGIN PASSWORD 'hunter2-Sup3rSecret';
            ALTER ROLE {role} WITH PASSWORD 'another-Secret-99';
            SELECT ssn, note FROM {_people} ORDER BY id;
            SELECT length('host=x password=conn-Secret-42 user=y') AS conninfo;
            DROP ROLE {role};
            """);
        await Direct.ExecuteAsync(Server, $"DROP ROLE IF EXISTS {role}");
        Assert.Contains("****6789", result.Stdout, StringComparison.Ordinal);

        var recording = await SingleRecordingAsync();
        string everything = Encoding.UTF8.GetString(recording.Events.SelectMany(e => e.Payload.ToArray()).ToArray());
        foreach (var secret in new[] { "hunter2-Sup3rSecret", "another-Secret-99", "conn-Secret-42", "123-45-6789", "987-65-4321", "4111 1111 1111 1111", _gateway.AliceSecret })
        {
            Assert.DoesNotContain(secret, everything, StringComparison.Ordinal);
        }

        Assert.Contains("PASSWORD '****'", everything, StringComparison.Ordinal);
        Assert.Contains("password=****", everything, StringComparison.Ordinal);

        // Two ssn values and one card number masked: counted per statement and for the session.
        var meta = recording.Events.Single(e => e.Kind == RecordKind.ResultMeta);
        Assert.Equal("SELECT 2", Field(meta, ResultMetaFields.CommandTag));
        Assert.Equal(3UL, Number(meta, ResultMetaFields.MaskedValues));
        Assert.Equal(3UL, Number(recording.Events.Single(e => e.Kind == RecordKind.SessionEnd), SessionEndFields.MaskedValues));
    }

    [Fact]
    public async Task The_stock_lz4_tool_reads_a_recording_and_tampering_is_detected()
    {
        (await Clients.PsqlAsync(_gateway.Port, _gateway.AliceSecret, $"SELECT name FROM {_people} ORDER BY id;")).EnsureSuccess("psql");
        var recording = await SingleRecordingAsync();

        var lz4 = await ProcessRunner.RunAsync("lz4", ["-d", "-c", recording.Path]);
        Assert.Equal(0, lz4.ExitCode);
        Assert.Contains($"SELECT name FROM {_people} ORDER BY id;", lz4.Stdout, StringComparison.Ordinal);

        byte[] bytes = await File.ReadAllBytesAsync(recording.Path);
        bytes[bytes.Length / 2] ^= 0x20;
        string tampered = recording.Path + ".tampered" + RecordingFormat.FileExtension;
        await File.WriteAllBytesAsync(tampered, bytes);
        var verification = await RecordingReader.VerifyAsync(tampered, Key);
        Assert.Equal(RecordingIntegrity.Damaged, verification.Integrity);

        string truncated = recording.Path + ".truncated" + RecordingFormat.FileExtension;
        await File.WriteAllBytesAsync(truncated, bytes.AsSpan(0, verification.Blocks[0].FileLength).ToArray());
        Assert.NotEqual(RecordingIntegrity.Intact, (await RecordingReader.VerifyAsync(truncated, Key)).Integrity);
    }

    [Fact]
    public async Task A_login_whose_recording_cannot_be_created_is_refused()
    {
        Directory.Delete(_gateway.RecordingDirectory, recursive: true);
        try
        {
            var ex = await Assert.ThrowsAsync<PostgresException>(async () => await _gateway.OpenAsync());
            Assert.Equal("57P03", ex.SqlState);
            Assert.Contains("cannot record this session", ex.MessageText, StringComparison.Ordinal);
        }
        finally
        {
            Directory.CreateDirectory(_gateway.RecordingDirectory);
        }
    }

    // ---- Reading ---------------------------------------------------------------------------------------------

    private sealed record Recorded(string Path, RecordingVerification Verification, List<RecordingEvent> Events);

    /// <summary>The one recording of the test's gateway, once its session has ended and sealed it.</summary>
    private async Task<Recorded> SingleRecordingAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            var files = Directory.GetFiles(_gateway.RecordingDirectory, "*" + RecordingFormat.FileExtension);
            if (files.Length == 1 && _gateway.Server.Recordings!.OpenRecordings == 0)
            {
                await using var reader = RecordingReader.Open(files[0], Key);
                var events = new List<RecordingEvent>();
                await foreach (var e in reader.ReadEventsAsync())
                {
                    events.Add(e);
                }

                return new Recorded(files[0], reader.Verification!, events);
            }

            Assert.True(DateTime.UtcNow < deadline, $"expected one sealed recording, found {files.Length}");
            await Task.Delay(50);
        }
    }

    private static RecordedDecision DecisionAfter(Recorded recording, RecordingEvent statement)
    {
        var next = recording.Events[recording.Events.IndexOf(statement) + 1];
        Assert.Equal(RecordKind.Decision, next.Kind);
        return (RecordedDecision)Fields(next).First(f => f.Tag == DecisionFields.Outcome).Value[0];
    }

    private static List<(byte Tag, byte[] Value)> Fields(RecordingEvent e)
    {
        var list = new List<(byte, byte[])>();
        var reader = new RecordFieldReader(e.Payload.Span);
        while (reader.TryRead(out byte tag, out var value))
        {
            list.Add((tag, value.ToArray()));
        }

        return list;
    }

    private static string? Field(RecordingEvent e, byte tag) =>
        Fields(e).Where(f => f.Tag == tag).Select(f => Encoding.UTF8.GetString(f.Value)).FirstOrDefault();

    private static ulong Number(RecordingEvent e, byte tag)
    {
        Assert.True(RecordFieldReader.TryGetNumber(Fields(e).First(f => f.Tag == tag).Value, out ulong number));
        return number;
    }

    private static byte[] Concat(IEnumerable<RecordingEvent> events) => events.SelectMany(e => e.Payload.ToArray()).ToArray();

    /// <summary>Splits a stream of backend messages (code, Int32 length, body) into whole messages.</summary>
    private static List<byte[]> Messages(byte[] stream)
    {
        var messages = new List<byte[]>();
        int at = 0;
        while (at < stream.Length)
        {
            Assert.True(stream.Length - at >= 5, $"a partial message header at {at}");
            int length = BinaryPrimitives.ReadInt32BigEndian(stream.AsSpan(at + 1));
            Assert.True(stream.Length - at >= length + 1, $"a partial message at {at}");
            messages.Add(stream.AsSpan(at, length + 1).ToArray());
            at += length + 1;
        }

        return messages;
    }

    /// <summary>
    /// What the client received from AuthenticationOk on (the recording starts there: the SASL exchange before it is
    /// never recorded), without BackendKeyData (the session's cancel key, a secret of the live session).
    /// </summary>
    private static List<byte[]> ClientView(byte[] received)
    {
        var all = Messages(received);
        int ok = all.FindIndex(m => m[0] == (byte)'R' && BinaryPrimitives.ReadInt32BigEndian(m.AsSpan(5)) == 0);
        Assert.True(ok >= 0, "no AuthenticationOk was received");
        return all.Skip(ok).Where(m => m[0] != (byte)'K').ToList();
    }
}
