using System.Globalization;
using System.Security.Cryptography;
using Npgsql;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>
/// Real client programs (psql, pgbench, psycopg2) pointed at a gateway, with a clean libpq environment: an
/// inherited PGHOST or PGOPTIONS must not change what a test connects to.
/// </summary>
public static class Clients
{
    /// <summary>Debian's python3, which has python3-psycopg2 (the pyenv python3 on PATH has not).</summary>
    public const string SystemPython = "/usr/bin/python3";

    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(90);

    /// <summary>libpq variables for a connection to the gateway; every other inherited PG* variable is removed.</summary>
    public static Dictionary<string, string?> LibpqEnvironment(string password, string sslMode = "disable")
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var key in Environment.GetEnvironmentVariables().Keys.OfType<string>())
        {
            if (key.StartsWith("PG", StringComparison.Ordinal))
            {
                env[key] = null;
            }
        }

        env["PGPASSWORD"] = password;
        env["PGSSLMODE"] = sslMode;
        env["PGCONNECT_TIMEOUT"] = "10";
        return env;
    }

    /// <summary>
    /// psql -X -A -t through the gateway. <paramref name="script"/> goes through stdin (-f -), so it may hold
    /// several statements, meta-commands and inline COPY data. Not ON_ERROR_STOP unless <paramref name="extraArgs"/> says so.
    /// </summary>
    public static Task<ProcessResult> PsqlAsync(
        int port, string password, string script, string user = GatewayHost.Alice, string database = GatewayHost.AppConnection,
        string sslMode = "disable", params string[] extraArgs) =>
        ProcessRunner.RunAsync(
            "psql",
            ["-X", "-A", "-t", "-h", GatewayHost.Localhost, "-p", port.ToString(CultureInfo.InvariantCulture), "-U", user, "-d", database,
             .. extraArgs, "-f", "-"],
            env: LibpqEnvironment(password, sslMode),
            stdin: script,
            timeout: ToolTimeout);

    /// <summary>psql -c with a single command string (sent as one simple Query).</summary>
    public static Task<ProcessResult> PsqlCommandAsync(int port, string password, string command, string sslMode = "disable") =>
        ProcessRunner.RunAsync(
            "psql",
            ["-X", "-A", "-t", "-h", GatewayHost.Localhost, "-p", port.ToString(CultureInfo.InvariantCulture), "-U", GatewayHost.Alice,
             "-d", GatewayHost.AppConnection, "-c", command],
            env: LibpqEnvironment(password, sslMode),
            timeout: ToolTimeout);

    public static Task<ProcessResult> PgbenchAsync(int port, string password, params string[] args) =>
        ProcessRunner.RunAsync(
            "pgbench",
            [.. args, "-h", GatewayHost.Localhost, "-p", port.ToString(CultureInfo.InvariantCulture), "-U", GatewayHost.Alice, GatewayHost.AppConnection],
            env: LibpqEnvironment(password),
            timeout: ToolTimeout);

    /// <summary>Runs a Python script with the system python3; GH_DSN holds a libpq DSN for the gateway.</summary>
    public static async Task<ProcessResult> PythonAsync(string script, string dsn)
    {
        var file = Path.Combine(Path.GetTempPath(), $"gatehouse-it-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}.py");
        await File.WriteAllTextAsync(file, script);
        try
        {
            var env = LibpqEnvironment(password: "", sslMode: "disable");
            env["PGPASSWORD"] = null; // the DSN carries the secret
            env["GH_DSN"] = dsn;
            return await ProcessRunner.RunAsync(SystemPython, [file], env: env, timeout: ToolTimeout);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

/// <summary>Helpers that talk to the real server directly (as its superuser), bypassing the gateway.</summary>
public static class Direct
{
    /// <summary>A fresh identifier for a table, so tests never share state.</summary>
    public static string UniqueName(string prefix) => $"{prefix}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(5))}";

    public static async Task<NpgsqlConnection> OpenAsync(PostgresServer server)
    {
        var connection = new NpgsqlConnection(server.ConnectionString() + ";Pooling=false");
        await connection.OpenAsync();
        return connection;
    }

    public static async Task<T?> ScalarAsync<T>(PostgresServer server, string sql)
    {
        await using var connection = await OpenAsync(server);
        await using var command = new NpgsqlCommand(sql, connection);
        var value = await command.ExecuteScalarAsync();
        return value is DBNull or null ? default : (T)value;
    }

    public static async Task ExecuteAsync(PostgresServer server, string sql)
    {
        await using var connection = await OpenAsync(server);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Waits until a statement containing <paramref name="marker"/> is running on the server, so a test acts on
    /// a query that is really in progress (not one still on its way).
    /// </summary>
    public static async Task WaitForActiveQueryAsync(PostgresServer server, string marker, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        await using var connection = await OpenAsync(server);
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            connection);
        command.Parameters.Add(new NpgsqlParameter { Value = marker });
        while (true)
        {
            var count = (long)(await command.ExecuteScalarAsync())!;
            if (count > 0)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no active query with marker {marker} on the server");
            }

            await Task.Delay(20);
        }
    }
}
