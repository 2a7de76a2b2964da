using System.Security.Cryptography;
using System.Text;
using Gatehouse.Engine.Recording;
using Gatehouse.IntegrationTests.Infrastructure;
using Npgsql;

namespace Gatehouse.IntegrationTests;

/// <summary>
/// A gateway killed with SIGKILL in the middle of a busy session: the recording it leaves is readable up to its
/// last written block, and the next start of the gateway seals it as recovered.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RecordingCrashTests(PostgresFixture fixture) : IAsyncLifetime
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "gatehouse-crash-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)));
    private readonly string _key = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }

        return Task.CompletedTask;
    }

    private GatewaySettings Settings => new() { Recording = $"{{ directory: {_directory}, key: {{ value: \"{_key}\" }} }}" };

    private RecordingKey Key => new Host.Config.RecordingConfig(_directory) { Key = Engine.Secrets.SecretReference.FromValue(_key) }.LoadKey(create: false);

    [Fact]
    public async Task Sigkill_during_a_busy_session_leaves_a_recording_the_next_start_seals()
    {
        int sent = 0;
        await using (var gateway = await GatewayProcess.StartAsync(fixture.Server, Settings))
        {
            await using var connection = new NpgsqlConnection(gateway.ConnectionString(SslMode.Disable));
            await connection.OpenAsync();
            var busy = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        await using var command = new NpgsqlCommand($"SELECT {sent + 1} AS n, repeat('x', 200)", connection);
                        await command.ExecuteScalarAsync();
                        sent++;
                    }
                }
                catch (Exception ex) when (ex is NpgsqlException or IOException or InvalidOperationException)
                {
                    // The gateway died under the session.
                }
            });

            while (sent < 300)
            {
                await Task.Delay(20);
            }

            await gateway.KillAsync();
            await busy.WaitAsync(TimeSpan.FromSeconds(30));
        }

        string file = Assert.Single(Directory.GetFiles(_directory, "*" + RecordingFormat.FileExtension));
        var before = await RecordingReader.VerifyAsync(file, Key);
        Assert.False(before.IsSealed, $"a killed gateway's recording cannot be sealed: {before}");
        Assert.True(before.VerifiedBlocks > 0, "nothing of the session was written before the kill");

        // The next start seals what it finds, before it serves anyone.
        await using (var restarted = await GatewayProcess.StartAsync(fixture.Server, Settings))
        {
            var after = await RecordingReader.VerifyAsync(file, Key);
            Assert.Equal(RecordingIntegrity.Recovered, after.Integrity);

            await using var reader = RecordingReader.Open(file, Key);
            int statements = 0, last = 0;
            await foreach (var e in reader.ReadEventsAsync())
            {
                if (e.Kind == RecordKind.Statement)
                {
                    statements++;
                    var fields = new RecordFieldReader(e.Payload.Span);
                    while (fields.TryRead(out byte tag, out var value))
                    {
                        var match = System.Text.RegularExpressions.Regex.Match(tag == StatementFields.Text ? Encoding.UTF8.GetString(value) : "", @"^SELECT (\d+) AS n");
                        if (match.Success)
                        {
                            last = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                        }
                    }
                }
            }

            // Statements are in order and whole up to the last block written: the kill lost at most the tail.
            Assert.True(statements >= 100, $"only {statements} statements of {sent} survived");
            Assert.InRange(last, 100, sent + 1);
        }
    }
}
