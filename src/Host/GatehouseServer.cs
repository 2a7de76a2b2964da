using Gatehouse.Engine;
using Gatehouse.Host.Config;
using Gatehouse.Host.Policy;
using Gatehouse.Policy.Approvals;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host;

/// <summary>
/// Wires a validated config into a running gateway: one engine, one protocol per listener, the live statement
/// policy and its file watcher. Tests and the command line both start the gateway through here.
/// </summary>
public sealed class GatehouseServer : IAsyncDisposable
{
    private readonly List<PgProtocol> _postgres = [];
    private readonly PolicyReloader? _reloader;
    private readonly ILogger _policyLogger;

    public GatehouseServer(GatehouseConfig config, ILoggerFactory loggerFactory)
    {
        Config = config;
        _policyLogger = loggerFactory.CreateLogger("Gatehouse.Policy");
        Policy = new PolicyStore(config.Policy);
        if (config.PolicyFile is not null)
        {
            _reloader = new PolicyReloader(config.PolicyFile, Policy, config.PolicyContext, _policyLogger, config.PolicyStamp);
        }

        Gateway = new Gateway(config.Limits, loggerFactory);
        var cancels = new PgCancelKeys();
        foreach (var listener in config.Listeners)
        {
            var protocol = new PgProtocol(listener.Postgres, config.Postgres, cancels, Policy, Approvals);
            _postgres.Add(protocol);
            Gateway.AddListener(listener.Name, listener.EndPoint, protocol);
        }
    }

    public GatehouseConfig Config { get; }

    public Gateway Gateway { get; }

    /// <summary>The live statement policy: the config's snapshot at first, swapped by every valid reload of the policy file.</summary>
    public PolicyStore Policy { get; }

    /// <summary>Where statements that require approval wait (in memory until the state store holds them).</summary>
    public IApprovalBroker Approvals { get; } = new InMemoryApprovalBroker();

    /// <summary>Starts the listeners and the policy file watcher (when the policy is a file).</summary>
    public void Start()
    {
        foreach (var warning in Config.Warnings)
        {
            PolicyLog.Warning(_policyLogger, warning.ToString());
        }

        PolicySnapshot policy = Policy.Current;
        if (policy.IsUnrestricted)
        {
            PolicyLog.Unrestricted(_policyLogger);
        }
        else
        {
            PolicyLog.Loaded(_policyLogger, policy.Source, policy.Version, policy.Roles.Count, policy.BindingCount);
        }

        Gateway.Start();
        _reloader?.Start();
    }

    /// <summary>
    /// Reloads the policy file now (tests, and a future admin command): true when a new snapshot is in
    /// <see cref="Policy"/>; false when the file was refused (logged; the last good policy stays) or the policy is
    /// not a file.
    /// </summary>
    public Task<bool> ReloadPolicyAsync() => _reloader?.ReloadAsync() ?? Task.FromResult(false);

    public Task StopAsync() => Gateway.StopAsync();

    public async ValueTask DisposeAsync()
    {
        if (_reloader is not null)
        {
            await _reloader.DisposeAsync().ConfigureAwait(false);
        }

        await Gateway.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The logger factory the host uses: console, text or JSON lines, at the configured level.</summary>
    public static ILoggerFactory CreateLoggerFactory(LoggingConfig logging) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(logging.Level);
        if (logging.Json)
        {
            builder.AddJsonConsole(o => o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ");
        }
        else
        {
            builder.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
                o.UseUtcTimestamp = true;
            });
        }
    });
}
