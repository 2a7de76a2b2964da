using System.Security.Cryptography;
using System.Text.Json;
using Gatehouse.Host;
using Gatehouse.Host.Cli;
using Gatehouse.Host.Config;
using Gatehouse.Host.Review;
using Gatehouse.Policy.Identity;
using Gatehouse.Tests.State;

namespace Gatehouse.Tests.Review;

/// <summary><c>gatehouse review</c> end to end without a gateway: a config and policy file, the scenario's state store, sessions from the test.</summary>
public sealed class ReviewCommandTests : IAsyncLifetime
{
    private static readonly string Verifier = ScramVerifier.Create("s3cret").ToString();
    private ReviewScenario _scenario = null!;
    private string _folder = null!;
    private string _config = null!;

    public async Task InitializeAsync()
    {
        _scenario = await ReviewScenario.CreateAsync();
        _folder = Path.Combine(Path.GetTempPath(), $"gatehouse-review-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        Directory.CreateDirectory(_folder);
        await File.WriteAllTextAsync(Path.Combine(_folder, "policy.yaml"), ReviewScenario.Policy);
        _config = await WriteConfigAsync(_scenario.Temp.Path);
    }

    public async Task DisposeAsync()
    {
        await _scenario.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private async Task<string> WriteConfigAsync(string statePath, string name = "gatehouse.yaml")
    {
        string file = Path.Combine(_folder, name);
        await File.WriteAllTextAsync(file, $$"""
            listeners:
              - address: 127.0.0.1:0
            connections:
              - name: app
                host: 127.0.0.1
                database: app
                user: gatehouse
            identities:
              - name: alice
                secret: "{{Verifier}}"
                connections: [app]
              - name: bob
                secret: "{{Verifier}}"
                connections: [app]
            policy: policy.yaml
            state: { path: "{{statePath}}" }
            recording: off
            """);
        return file;
    }

    private async Task<(int Code, string Out, string Err)> RunAsync(string? since = "6h", string format = "json", string? output = null, string? config = null,
        string[]? identities = null, Func<GatehouseConfig, ICollection<string>, IReviewSessionSource>? sessions = null)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await ReviewCommand.RunAsync(new ReviewRequest(config ?? _config, since, null, identities ?? [], [], format, output), stdout, stderr,
            sessions ?? ((c, notes) =>
            {
                ReviewCommand.DefaultSessions(c, notes);
                return _scenario.Source();
            }),
            new ManualTime(ReviewScenario.T0.AddHours(6)), CancellationToken.None);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task A_json_report_goes_to_a_private_file_with_standing_access_from_the_config()
    {
        string file = Path.Combine(_folder, "review.json");
        var (code, stdout, stderr) = await RunAsync(output: file);
        Assert.Equal(0, code);
        Assert.Equal("Wrote " + file + ": 3 identities, 3 grant(s), 4 session(s), 3 warning(s).\n", stdout.ReplaceLineEndings("\n"));
        Assert.StartsWith("gatehouse: warning: DAMAGED RECORDING: session 102 of alice", stderr, StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        Assert.Empty(Directory.GetFiles(_folder, "*.tmp"));

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(file));
        var identities = doc.RootElement.GetProperty("identities");
        Assert.Equal("""[{"connection":"app","role":"reader"}]""", JsonSerializer.Serialize(identities[0].GetProperty("standing")));
        Assert.Equal("""[{"connection":"app","role":"reader"}]""", JsonSerializer.Serialize(identities[1].GetProperty("standing")));
        // carol is not a configured identity: her standing access is unknown, so none is listed.
        Assert.Equal("[]", JsonSerializer.Serialize(identities[2].GetProperty("standing")));
        Assert.Contains("recording is off in the config (recording: off): sessions come from the state store, without what they ran",
            doc.RootElement.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()));
    }

    [Fact]
    public async Task Without_a_recording_reader_sessions_come_from_the_state_store_and_the_report_says_so()
    {
        var (code, stdout, _) = await RunAsync(format: "csv", sessions: ReviewCommand.DefaultSessions);
        Assert.Equal(0, code);
        Assert.Contains("\r\nwarning" + new string(',', 38)
                        + "\"recording is off in the config (recording: off): sessions come from the state store, without what they ran\",,\r\n",
            stdout, StringComparison.Ordinal);
        // run_a/1 and run_a/2, neither recorded.
        Assert.Contains("\r\nsummary,,unrecorded_sessions,,,,2030-01-02T09:00:00.000Z,2030-01-02T15:00:00.000Z" + new string(',', 33) + "2\r\n",
            stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_table_is_written_to_standard_output_for_one_identity()
    {
        var (code, stdout, stderr) = await RunAsync(format: "table", identities: ["carol"]);
        Assert.Equal((0, ""), (code, stderr));
        Assert.Contains("Limited to identities: carol; connections: all", stdout, StringComparison.Ordinal);
        Assert.Contains("== carol ==", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("== alice ==", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_input_is_refused_with_what_to_do()
    {
        var (code, _, stderr) = await RunAsync(format: "pdf");
        Assert.Equal((2, "gatehouse: unknown format 'pdf': use table, csv, json or html\n"), (code, stderr.ReplaceLineEndings("\n")));

        (code, _, stderr) = await RunAsync(since: "last week");
        Assert.Equal(2, code);
        Assert.StartsWith("gatehouse: --since must be a duration back from now (such as 30d, 12h or 1h30m)", stderr, StringComparison.Ordinal);

        string missing = Path.Combine(_folder, "nowhere.db");
        (code, _, stderr) = await RunAsync(config: await WriteConfigAsync(missing, "other.yaml"));
        Assert.Equal(2, code);
        Assert.StartsWith($"gatehouse: the state store {missing} does not exist (state.path in {Path.Combine(_folder, "other.yaml")})", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(missing));

        (code, _, stderr) = await RunAsync(config: Path.Combine(_folder, "absent.yaml"));
        Assert.Equal(2, code);
        Assert.Contains("cannot read the file", stderr, StringComparison.Ordinal);

        (code, _, stderr) = await RunAsync(output: Path.Combine(_folder, "no-such-folder", "r.html"), format: "html");
        Assert.Equal(1, code);
        Assert.Contains("does not exist", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_command_line_has_review_with_its_options()
    {
        var command = Program.BuildCommand();
        Assert.Empty(command.Parse(["review", "-c", "g.yaml", "--since", "30d", "--format", "html", "-o", "r.html", "--identity", "a", "--identity", "b"]).Errors);
        Assert.Contains(command.Parse(["review", "-c", "g.yaml"]).Errors, e => e.Message.Contains("--since", StringComparison.Ordinal));
    }
}
