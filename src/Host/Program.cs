using System.CommandLine;
using System.Runtime.InteropServices;
using Gatehouse.Host.Config;
using Gatehouse.Policy.Identity;

namespace Gatehouse.Host;

/// <summary>The `gatehouse` command line.</summary>
public static class Program
{
    public static Task<int> Main(string[] args)
    {
        ConfigureSocketEngine();
        return BuildCommand().Parse(args).InvokeAsync();
    }

    /// <summary>
    /// Runs socket completions inline on the socket engine's threads instead of queueing each one to the thread
    /// pool. A relay step is short and never blocks (the few CPU-heavy handshake steps are moved to the pool), so
    /// the queue hop cost more than the work: on a 2-core machine this took pgbench -S through the gateway from
    /// about 5,500 to 9,500 tps with one client (bench/pg.sh). Must be set before the first socket is created;
    /// an operator can still set DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0.
    /// </summary>
    /// <remarks>
    /// With inline completions the runtime starts one socket engine thread per core. A gateway usually shares its
    /// cores (a sidecar next to the application, or the database on the same host), so it takes half of them by
    /// default: on 2 cores one engine thread gave 15.8k tps at 8 clients against 13.4k with two. On a dedicated
    /// appliance set DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT to the core count.
    /// </remarks>
    private static void ConfigureSocketEngine()
    {
        const string inline = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
        if (Environment.GetEnvironmentVariable(inline) is null)
        {
            Environment.SetEnvironmentVariable(inline, "1");
        }

        const string threads = "DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT";
        if (Environment.GetEnvironmentVariable(threads) is null)
        {
            Environment.SetEnvironmentVariable(threads, Math.Max(1, Environment.ProcessorCount / 2).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    internal static RootCommand BuildCommand()
    {
        var configOption = new Option<FileInfo>("--config", "-c")
        {
            Description = "The config file (YAML); see docs/configuration.md",
            Required = true,
        };

        var run = new Command("run", "Serve the configured listeners until SIGTERM or SIGINT, then drain") { configOption };
        run.SetAction((parse, _) => RunAsync(parse.GetValue(configOption)!));

        var checkConfig = new Option<FileInfo>("--config", "-c") { Description = "The config file to check", Required = true };
        var check = new Command("check", "Validate a config file and its policy file, and explain every error with its position") { checkConfig };
        check.SetAction(parse => Check(parse.GetValue(checkConfig)!));

        var iterations = new Option<int>("--iterations") { Description = "PBKDF2 iterations", DefaultValueFactory = _ => ScramVerifier.DefaultIterations };
        var hash = new Command("hash", "Read a secret on standard input and print its SCRAM-SHA-256 verifier for the config") { iterations };
        hash.SetAction(parse => HashSecret(parse.GetValue(iterations)));
        var secret = new Command("secret", "Agent secrets") { hash };

        return new RootCommand("Gatehouse: an identity-aware access gateway for PostgreSQL")
        {
            run, check, secret, Cli.AdminCommands.Access(), Cli.AdminCommands.Approvals(),
            Cli.RecordingCommands.Verify(), Cli.RecordingCommands.Sessions(), Cli.RecordingCommands.Replay(), Cli.RecordingCommands.Export(),
            Cli.ReviewCommand.Create(),
        };
    }

    private static async Task<int> RunAsync(FileInfo file)
    {
        GatehouseConfig config;
        try
        {
            config = ConfigLoader.LoadFile(file.FullName);
        }
        catch (ConfigException ex)
        {
            PrintErrors(ex);
            return 2;
        }

        using var loggerFactory = GatehouseServer.CreateLoggerFactory(config.Logging);
        GatehouseServer created;
        try
        {
            created = new GatehouseServer(config, loggerFactory);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            // The recording key or folder (unreadable, too short, not creatable).
            await Console.Error.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        await using var server = created;
        try
        {
            await server.StartAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException)
        {
            await Console.Error.WriteLineAsync($"gatehouse: cannot listen: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (State.StateStoreException ex)
        {
            await Console.Error.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        catch (InvalidOperationException ex)
        {
            // An unusable admin token (unset variable, too short).
            await Console.Error.WriteLineAsync($"gatehouse: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.TrySetResult();
        }

        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        await stop.Task.ConfigureAwait(false);
        await server.StopAsync().ConfigureAwait(false);
        return 0;
    }

    private static int Check(FileInfo file)
    {
        try
        {
            var config = ConfigLoader.LoadFile(file.FullName);
            foreach (var warning in config.Warnings)
            {
                Console.Error.WriteLine($"warning: {warning}");
            }

            Console.WriteLine($"{file.Name}: OK ({config.Listeners.Count} listener(s), {config.Postgres.Connections.Count} connection(s), "
                              + $"{config.Postgres.Identities.Count} identit{(config.Postgres.Identities.Count == 1 ? "y" : "ies")})");
            Console.WriteLine(config.PolicyFile is null
                ? "policy: unrestricted (every statement is relayed unchecked)"
                : $"policy {config.PolicyFile}: OK ({config.Policy.Roles.Count} role(s), {config.Policy.BindingCount} binding(s))");
            Console.WriteLine($"state: {config.State.Path}");
            Console.WriteLine(config.Admin is { } admin
                ? $"admin API: {admin.BaseUrl()} (token from {admin.Token})"
                : "admin API: off (no admin section)");
            return 0;
        }
        catch (ConfigException ex)
        {
            PrintErrors(ex);
            return 2;
        }
    }

    private static int HashSecret(int iterations)
    {
        var secret = Console.In.ReadLine();
        if (string.IsNullOrEmpty(secret))
        {
            Console.Error.WriteLine("gatehouse: no secret on standard input");
            return 2;
        }

        if (iterations < 4096)
        {
            Console.Error.WriteLine("gatehouse: --iterations must be at least 4096");
            return 2;
        }

        Console.WriteLine(ScramVerifier.Create(secret, iterations).ToString());
        return 0;
    }

    private static void PrintErrors(ConfigException ex)
    {
        // Policy errors name the policy file, config errors the config file: each points where to edit.
        foreach (var error in ex.Errors)
        {
            Console.Error.WriteLine(error.ToString());
        }

        Console.Error.WriteLine($"{ex.Errors.Count} error(s); the config was not loaded.");
    }
}
