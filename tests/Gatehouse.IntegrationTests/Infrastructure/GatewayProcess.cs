using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>
/// The gatehouse command line (`gatehouse run --config FILE`) as a child process, for tests whose failure mode
/// is the gateway process dying: an in-process gateway would take the test host down with it.
/// </summary>
public sealed partial class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _configFile;
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private GatewayProcess(Process process, string configFile, string aliceSecret)
    {
        _process = process;
        _configFile = configFile;
        AliceSecret = aliceSecret;
    }

    public string AliceSecret { get; }

    public int Port { get; private set; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Everything the gateway wrote on stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    [GeneratedRegex(@"listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();

    public static async Task<GatewayProcess> StartAsync(PostgresServer postgres, GatewaySettings? settings = null)
    {
        var (yaml, aliceSecret, _) = GatewayHost.BuildConfig(postgres, settings ?? new GatewaySettings(), "logging: { level: information }");
        var configFile = Path.Combine(Path.GetTempPath(), $"gatehouse-it-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.yaml");
        await File.WriteAllTextAsync(configFile, yaml);

        var psi = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "gatehouse.dll"));
        psi.ArgumentList.Add("run");
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(configFile);

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var gateway = new GatewayProcess(process, configFile, aliceSecret);
        process.OutputDataReceived += (_, e) => gateway.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => gateway.OnLine(e.Data);
        process.Exited += (_, _) => gateway._port.TrySetException(new InvalidOperationException($"the gateway exited before listening:\n{gateway.Output}"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            gateway.Port = await gateway._port.Task.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }

        return gateway;
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        var match = ListeningLine().Match(line);
        if (match.Success)
        {
            _port.TrySetResult(int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture));
        }
    }

    public string ConnectionString(SslMode sslMode) => new NpgsqlConnectionStringBuilder
    {
        Host = GatewayHost.Localhost,
        Port = Port,
        Username = GatewayHost.Alice,
        Password = AliceSecret,
        Database = GatewayHost.AppConnection,
        SslMode = sslMode,
        Pooling = false,
        Timeout = 15,
        CommandTimeout = 60,
    }.ConnectionString;

    /// <summary>SIGKILL: the process dies at once, with nothing flushed or sealed.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _process.WaitForExitAsync(cts.Token);
    }

    /// <summary>Sends SIGTERM (graceful drain) and waits for the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        (await ProcessRunner.RunAsync("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)])).EnsureSuccess("kill -TERM");
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(cts.Token);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
        }
        finally
        {
            _process.Dispose();
            File.Delete(_configFile);
        }
    }
}
