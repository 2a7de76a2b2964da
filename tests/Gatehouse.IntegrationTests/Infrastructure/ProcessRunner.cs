using System.Diagnostics;
using System.Text;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>What a finished child process left behind.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Throws with both streams when the exit code is not 0, so a failing step explains itself in the test log.</summary>
    public ProcessResult EnsureSuccess(string what)
    {
        if (ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{what} failed with exit code {ExitCode}.{Environment.NewLine}stderr:{Environment.NewLine}{Stderr}{Environment.NewLine}stdout:{Environment.NewLine}{Stdout}");
        }

        return this;
    }
}

/// <summary>
/// Runs external tools (initdb, pg_ctl, psql, pgbench, ...) with arguments passed as a list, never through a
/// shell, so test code never has to think about quoting.
/// </summary>
public static class ProcessRunner
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    // After the child exits, a grandchild that inherited its stdout (a daemon started without redirection)
    // could keep the pipe open forever; we stop waiting for end-of-stream after this long.
    private static readonly TimeSpan DrainAfterExit = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Runs <paramref name="file"/> to completion and returns its exit code and output.
    /// </summary>
    /// <param name="env">Variables to set for the child; a null value removes an inherited variable.</param>
    /// <param name="stdin">Written to the child's standard input, which is then closed (closed at once when null).</param>
    /// <param name="timeout">On expiry the whole process tree is killed and a <see cref="TimeoutException"/> carries the output so far.</param>
    /// <param name="runAsUser">Run as this system user via runuser (we must be root), e.g. "postgres" for initdb.</param>
    public static async Task<ProcessResult> RunAsync(
        string file,
        IEnumerable<string> args,
        IDictionary<string, string?>? env = null,
        string? stdin = null,
        TimeSpan? timeout = null,
        string? runAsUser = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(file);
        ArgumentNullException.ThrowIfNull(args);

        var argList = args.ToList();
        var psi = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };

        if (runAsUser is not null && !string.Equals(runAsUser, Environment.UserName, StringComparison.Ordinal))
        {
            if (!Environment.IsPrivilegedProcess)
            {
                throw new InvalidOperationException(
                    $"Cannot run {file} as {runAsUser}: switching users needs root, and this process runs as {Environment.UserName}.");
            }

            // runuser (util-linux) passes our environment on, so env below reaches the real program;
            // only HOME, SHELL, USER and LOGNAME are reset to the target user's.
            psi.FileName = FindRunuser();
            psi.ArgumentList.Add("-u");
            psi.ArgumentList.Add(runAsUser);
            psi.ArgumentList.Add("--");
            psi.ArgumentList.Add(file);
        }
        else
        {
            psi.FileName = file;
        }

        foreach (var a in argList)
        {
            psi.ArgumentList.Add(a);
        }

        if (env is not null)
        {
            foreach (var (key, value) in env)
            {
                if (value is null)
                {
                    psi.Environment.Remove(key);
                }
                else
                {
                    psi.Environment[key] = value;
                }
            }
        }

        using var process = new Process { StartInfo = psi };
        var commandLine = DescribeCommand(psi);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Cannot start {commandLine}: {e.Message}", e);
        }

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        var stdoutPump = PumpAsync(process.StandardOutput, stdout);
        var stderrPump = PumpAsync(process.StandardError, stderr);

        var limit = timeout ?? DefaultTimeout;
        using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeoutCts.CancelAfter(limit);

        try
        {
            await WriteStdinAsync(process, stdin, timeoutCts.Token);
            await process.WaitForExitAsync(timeoutCts.Token);
        }
        catch (OperationCanceledException)
        {
            KillTree(process);
            await DrainAsync(stdoutPump, stderrPump);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException(
                $"{commandLine} did not finish within {limit.TotalSeconds:0.#} s and was killed.{Environment.NewLine}" +
                $"stderr so far:{Environment.NewLine}{Snapshot(stderr)}{Environment.NewLine}stdout so far:{Environment.NewLine}{Snapshot(stdout)}");
        }

        await DrainAsync(stdoutPump, stderrPump);
        return new ProcessResult(process.ExitCode, Snapshot(stdout), Snapshot(stderr));
    }

    private static async Task WriteStdinAsync(Process process, string? stdin, CancellationToken ct)
    {
        try
        {
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin.AsMemory(), ct);
                await process.StandardInput.FlushAsync(ct);
            }

            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The child exited (or closed stdin) before reading everything; its exit code tells the story.
        }
    }

    // Reads in chunks rather than ReadToEndAsync so a timeout can still report what was printed so far.
    private static async Task PumpAsync(StreamReader reader, StringBuilder sink)
    {
        var buffer = new char[4096];
        try
        {
            int n;
            while ((n = await reader.ReadAsync(buffer.AsMemory())) > 0)
            {
                lock (sink)
                {
                    sink.Append(buffer, 0, n);
                }
            }
        }
        catch (ObjectDisposedException)
        {
        }
        catch (IOException)
        {
        }
    }

    private static async Task DrainAsync(Task stdoutPump, Task stderrPump)
    {
        await Task.WhenAny(Task.WhenAll(stdoutPump, stderrPump), Task.Delay(DrainAfterExit));
    }

    private static string Snapshot(StringBuilder sink)
    {
        lock (sink)
        {
            return sink.ToString();
        }
    }

    private static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited between the timeout and the kill.
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }

    private static string FindRunuser()
    {
        foreach (var candidate in new[] { "/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser" })
        {
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        // Let PATH resolve it; Start() reports a clear error if it is not there.
        return "runuser";
    }

    private static string DescribeCommand(ProcessStartInfo psi)
    {
        var sb = new StringBuilder(psi.FileName);
        foreach (var a in psi.ArgumentList)
        {
            sb.Append(' ');
            sb.Append(a.Contains(' ', StringComparison.Ordinal) || a.Length == 0 ? $"'{a}'" : a);
        }

        return sb.ToString();
    }
}
