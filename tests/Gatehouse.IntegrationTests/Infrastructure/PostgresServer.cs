using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Npgsql;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>
/// A real, throwaway PostgreSQL server on 127.0.0.1 for integration tests, set up like scripts/lib/pg.sh:
/// SCRAM for TCP clients, trust on its private unix socket, durability off.
/// It has a superuser <see cref="AdminUser"/> with a random password and a database "app" holding
/// <c>items(id int primary key, name text, payload bytea)</c> with three rows.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string BootstrapSuperuser = "postgres";
    private const int StartAttempts = 3;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(60);

    private readonly string _bin;
    private readonly string? _owner;
    private int _disposed;

    private PostgresServer(string bin, string? owner, string rootDirectory, int port, string adminPassword)
    {
        _bin = bin;
        _owner = owner;
        RootDirectory = rootDirectory;
        Port = port;
        AdminPassword = adminPassword;
    }

    public string Host => "127.0.0.1";

    public int Port { get; private set; }

    public string AdminUser => "gh_admin";

    public string AdminPassword { get; }

    /// <summary>The temp directory holding data/, sock/ and pg.log; deleted on dispose.</summary>
    public string RootDirectory { get; }

    public string DataDirectory => Path.Combine(RootDirectory, "data");

    public string SocketDirectory => Path.Combine(RootDirectory, "sock");

    public string LogFile => Path.Combine(RootDirectory, "pg.log");

    /// <summary>An Npgsql connection string for the superuser over TCP (SCRAM), straight to the server.</summary>
    public string ConnectionString(string database = "app")
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = Host,
            Port = Port,
            Username = AdminUser,
            Password = AdminPassword,
            Database = database,
            // The throwaway server has no certificate; say so rather than let Prefer probe for TLS.
            SslMode = SslMode.Disable,
        };
        return builder.ConnectionString;
    }

    public static async Task<PostgresServer> StartAsync(CancellationToken ct = default)
    {
        // Debian's PostgreSQL, runuser and unix sockets: these tests run on Linux only (as does CI).
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("PostgresServer needs Linux with Debian's PostgreSQL packages.");
        }

        var bin = FindBinDirectory();
        // initdb and postgres refuse to run as root; as anyone else, that user owns the cluster.
        var owner = Environment.IsPrivilegedProcess ? "postgres" : null;

        var root = Path.Combine("/tmp", "gatehouse-pg-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)));
        // 0755, set explicitly because the umask may narrow the mode given at creation: the postgres user
        // must traverse this directory although root created it.
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                  UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                                  UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        Directory.CreateDirectory(root, mode);
        File.SetUnixFileMode(root, mode);

        var server = new PostgresServer(bin, owner, root, 0, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)));
        try
        {
            await server.InitAsync(ct);
            await server.StartWithRetriesAsync(ct);
            await server.CreateFixturesAsync(ct);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Runs SQL with psql as the bootstrap superuser over the unix socket (-X -A -t -q -v ON_ERROR_STOP=1)
    /// and returns its stdout: unaligned, tuples only, no command tags. Throws with stderr on failure.
    /// </summary>
    public async Task<string> PsqlAsync(string sql, string database = "app", CancellationToken ct = default)
    {
        // SQL goes through stdin so it may hold several statements and psql meta-commands, unquoted.
        var result = await ProcessRunner.RunAsync(
            Path.Combine(_bin, "psql"),
            ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", SocketDirectory, "-p", Port.ToString(CultureInfo.InvariantCulture),
             "-U", BootstrapSuperuser, "-d", database, "-f", "-"],
            env: CleanClientEnvironment(),
            stdin: sql,
            timeout: ToolTimeout,
            cancellationToken: ct);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"psql on database {database} failed (exit {result.ExitCode}): {result.Stderr.Trim()}{Environment.NewLine}SQL:{Environment.NewLine}{sql}");
        }

        return result.Stdout;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            {
                // Immediate: the data is thrown away next, so a shutdown checkpoint is wasted time.
                var stop = await ProcessRunner.RunAsync(
                    Path.Combine(_bin, "pg_ctl"),
                    ["-D", DataDirectory, "-m", "immediate", "-w", "-t", "30", "stop"],
                    timeout: ToolTimeout,
                    runAsUser: _owner);
                if (stop.ExitCode != 0)
                {
                    KillPostmaster();
                }
            }
        }
        catch (Exception)
        {
            // Dispose must not throw over a test's own failure; make sure the server is gone, then clean up.
            KillPostmaster();
        }
        finally
        {
            try
            {
                Directory.Delete(RootDirectory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
            catch (IOException)
            {
                // A straggling backend may still be writing; the OS cleans /tmp eventually, a test must not fail here.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private async Task InitAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(DataDirectory);
        Directory.CreateDirectory(SocketDirectory);
        File.WriteAllText(LogFile, string.Empty);
        if (_owner is not null)
        {
            // .NET has no chown; coreutils does. The whole tree, so pg_ctl can also write pg.log.
            (await ProcessRunner.RunAsync("chown", ["-R", $"{_owner}:", RootDirectory], timeout: ToolTimeout, cancellationToken: ct))
                .EnsureSuccess("chown of the PostgreSQL directory");
        }

        // --no-sync: a throwaway cluster need not survive a power cut. -U postgres: a fixed superuser name,
        // whichever OS user runs the tests.
        (await ProcessRunner.RunAsync(
            Path.Combine(_bin, "initdb"),
            ["-D", DataDirectory, "-U", BootstrapSuperuser, "-E", "UTF8", "--locale=C",
             "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions"],
            timeout: ToolTimeout,
            runAsUser: _owner,
            cancellationToken: ct)).EnsureSuccess("initdb");

        // Appended as root keeps the file's owner (postgres), which is all the server needs.
        File.AppendAllText(Path.Combine(DataDirectory, "postgresql.conf"), $"""

            # ---- throwaway settings from PostgresServer.cs (same as scripts/lib/pg.sh) ----
            listen_addresses = '127.0.0.1'
            unix_socket_directories = '{SocketDirectory}'
            max_connections = 300
            shared_buffers = 128MB
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            password_encryption = 'scram-sha-256'
            logging_collector = off

            """);
    }

    private async Task StartWithRetriesAsync(CancellationToken ct)
    {
        // A free port can be taken between our probe and the server's bind; another port then fixes it.
        for (var attempt = 1; ; attempt++)
        {
            Port = FreePort();
            File.AppendAllText(Path.Combine(DataDirectory, "postgresql.conf"), $"port = {Port}\n");
            try
            {
                await StartOnceAsync(ct);
                return;
            }
            catch (InvalidOperationException) when (attempt < StartAttempts && LogTail().Contains("could not bind", StringComparison.Ordinal))
            {
                KillPostmaster();
            }
        }
    }

    private async Task StartOnceAsync(CancellationToken ct)
    {
        // A fresh log per attempt, so the bind check below never reads an earlier attempt's failure.
        File.WriteAllText(LogFile, string.Empty);

        // pg_ctl without -w: we wait with pg_isready ourselves so the timeout and the error message are ours.
        // -l sends the postmaster's output to the log, so it never holds our stdout pipe open.
        (await ProcessRunner.RunAsync(
            Path.Combine(_bin, "pg_ctl"),
            ["-D", DataDirectory, "-l", LogFile, "-W", "start"],
            timeout: ToolTimeout,
            runAsUser: _owner,
            cancellationToken: ct)).EnsureSuccess("pg_ctl start");

        var deadline = DateTime.UtcNow + ReadyTimeout;
        while (true)
        {
            var ready = await ProcessRunner.RunAsync(
                Path.Combine(_bin, "pg_isready"),
                ["-q", "-h", SocketDirectory, "-p", Port.ToString(CultureInfo.InvariantCulture), "-t", "1"],
                env: CleanClientEnvironment(),
                timeout: TimeSpan.FromSeconds(10),
                cancellationToken: ct);
            if (ready.ExitCode == 0)
            {
                return;
            }

            // A postmaster that could not bind is gone for good: say so now instead of after the timeout.
            var log = LogTail();
            if (log.Contains("could not bind", StringComparison.Ordinal) ||
                log.Contains("could not create any TCP/IP sockets", StringComparison.Ordinal))
            {
                throw new InvalidOperationException(
                    $"PostgreSQL could not listen on {Host}:{Port}.{Environment.NewLine}Last lines of {LogFile}:{Environment.NewLine}{log}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException(
                    $"PostgreSQL did not become ready on {Host}:{Port} within {ReadyTimeout.TotalSeconds:0} s.{Environment.NewLine}" +
                    $"Last lines of {LogFile}:{Environment.NewLine}{LogTail()}");
            }

            await Task.Delay(100, ct);
        }
    }

    private async Task CreateFixturesAsync(CancellationToken ct)
    {
        // The password is hex, so it is safe inside a literal; password_encryption makes it a SCRAM verifier.
        await PsqlAsync($"""
            CREATE ROLE {AdminUser} SUPERUSER LOGIN PASSWORD '{AdminPassword}';
            CREATE DATABASE app OWNER {AdminUser};
            """, database: "postgres", ct: ct);
        await PsqlAsync($"""
            SET ROLE {AdminUser};
            CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, payload bytea);
            INSERT INTO items (id, name, payload) VALUES
                (1, 'alpha', '\x00010203'::bytea),
                (2, 'beta',  convert_to('héllo wörld', 'UTF8')),
                (3, 'gamma', NULL);
            ANALYZE items;
            """, database: "app", ct: ct);
    }

    // Inherited PG* variables (a developer's PGHOST, PGOPTIONS, PGSERVICE...) must not redirect or alter
    // our tool invocations, which say everything on the command line.
    private static Dictionary<string, string?> CleanClientEnvironment()
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var key in Environment.GetEnvironmentVariables().Keys.OfType<string>())
        {
            if (key.StartsWith("PG", StringComparison.Ordinal))
            {
                env[key] = null;
            }
        }

        env["PGCONNECT_TIMEOUT"] = "10";
        return env;
    }

    private string LogTail()
    {
        try
        {
            var lines = File.ReadAllLines(LogFile);
            return string.Join(Environment.NewLine, lines.Skip(Math.Max(0, lines.Length - 30)));
        }
        catch (IOException e)
        {
            return $"(cannot read {LogFile}: {e.Message})";
        }
        catch (UnauthorizedAccessException e)
        {
            return $"(cannot read {LogFile}: {e.Message})";
        }
    }

    // Last resort when pg_ctl cannot stop it: the postmaster's pid is the first line of postmaster.pid.
    private void KillPostmaster()
    {
        try
        {
            var pidFile = Path.Combine(DataDirectory, "postmaster.pid");
            if (File.Exists(pidFile) &&
                int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                using var p = System.Diagnostics.Process.GetProcessById(pid);
                p.Kill(entireProcessTree: true);
            }
        }
        catch (Exception)
        {
            // Gone already, or not ours to kill: nothing more to do.
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string FindBinDirectory()
    {
        var fromEnv = Environment.GetEnvironmentVariable("PG_BIN");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return fromEnv;
        }

        // Debian keeps server binaries per major version outside PATH; prefer 15 (the project's target),
        // else the newest installed.
        const string debianRoot = "/usr/lib/postgresql";
        var preferred = Path.Combine(debianRoot, "15", "bin");
        if (File.Exists(Path.Combine(preferred, "initdb")))
        {
            return preferred;
        }

        if (Directory.Exists(debianRoot))
        {
            var newest = Directory.GetDirectories(debianRoot)
                .Select(d => (Dir: Path.Combine(d, "bin"), Ok: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v), Version: v))
                .Where(x => x.Ok && File.Exists(Path.Combine(x.Dir, "initdb")))
                .OrderByDescending(x => x.Version)
                .Select(x => x.Dir)
                .FirstOrDefault();
            if (newest is not null)
            {
                return newest;
            }
        }

        throw new InvalidOperationException(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql: run scripts/test.sh, " +
            "or apt-get install -y postgresql, or set PG_BIN.");
    }
}
