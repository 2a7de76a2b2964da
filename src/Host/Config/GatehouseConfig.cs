using System.Net;
using Gatehouse.Engine;
using Gatehouse.Protocols.Postgres;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.Config;

/// <summary>A listener ready to bind.</summary>
public sealed record ListenerConfig(string Name, string Protocol, IPEndPoint EndPoint, PgListenerOptions Postgres);

/// <summary>How the host logs.</summary>
public sealed record LoggingConfig(LogLevel Level, bool Json);

/// <summary>A whole, validated configuration: what `gatehouse run` serves.</summary>
public sealed record GatehouseConfig(
    IReadOnlyList<ListenerConfig> Listeners,
    PgConfigSnapshot Postgres,
    GatewayLimits Limits,
    LoggingConfig Logging);
