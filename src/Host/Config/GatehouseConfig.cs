using System.Net;
using Gatehouse.Engine;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host.Config;

/// <summary>A listener ready to bind.</summary>
public sealed record ListenerConfig(string Name, string Protocol, IPEndPoint EndPoint, PgListenerOptions Postgres);

/// <summary>How the host logs.</summary>
public sealed record LoggingConfig(LogLevel Level, bool Json);

/// <summary>A whole, validated configuration: what `gatehouse run` serves.</summary>
/// <param name="Policy">The compiled statement policy at load time (<see cref="PolicySnapshot.Unrestricted"/> for <c>policy: unrestricted</c>).</param>
/// <param name="PolicyFile">The policy file's full path, watched for changes; null for <c>policy: unrestricted</c>.</param>
public sealed record GatehouseConfig(
    IReadOnlyList<ListenerConfig> Listeners,
    PgConfigSnapshot Postgres,
    GatewayLimits Limits,
    LoggingConfig Logging,
    PolicySnapshot Policy,
    string? PolicyFile)
{
    /// <summary>The policy file's stamp before it was read: the reloader's starting point.</summary>
    public PolicyFileStamp? PolicyStamp { get; init; }

    /// <summary>Problems that do not stop the config from loading (names a policy binds that are not configured).</summary>
    public IReadOnlyList<ConfigError> Warnings { get; init; } = [];

    /// <summary>What a policy compile checks its names against: this config's identities and connections.</summary>
    public PolicyCompileContext PolicyContext => new(
        identity => Postgres.Identities.TryGet(identity, out _),
        connection => Postgres.Connections.ContainsKey(connection));
}
