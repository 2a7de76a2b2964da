using Gatehouse.Engine;
using Gatehouse.Host.Config;
using Gatehouse.Protocols.Postgres;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host;

/// <summary>
/// Wires a validated config into a running gateway: one engine, one protocol per listener. Tests and the
/// command line both start the gateway through here.
/// </summary>
public sealed class GatehouseServer : IAsyncDisposable
{
    private readonly List<PgProtocol> _postgres = [];

    public GatehouseServer(GatehouseConfig config, ILoggerFactory loggerFactory)
    {
        Config = config;
        Gateway = new Gateway(config.Limits, loggerFactory);
        var cancels = new PgCancelKeys();
        foreach (var listener in config.Listeners)
        {
            var protocol = new PgProtocol(listener.Postgres, config.Postgres, cancels);
            _postgres.Add(protocol);
            Gateway.AddListener(listener.Name, listener.EndPoint, protocol);
        }
    }

    public GatehouseConfig Config { get; }

    public Gateway Gateway { get; }

    public void Start() => Gateway.Start();

    public Task StopAsync() => Gateway.StopAsync();

    public ValueTask DisposeAsync() => Gateway.DisposeAsync();

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
