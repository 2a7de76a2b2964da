using System.Net;
using Gatehouse.Engine;
using Gatehouse.Policy.Identity;
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

    /// <summary>The state store (<c>state</c>): grants, approvals, sessions, audit events.</summary>
    public StateConfig State { get; init; } = new(Path.GetFullPath(StateConfig.DefaultFile));

    /// <summary>Session recordings (<c>recording</c>): on unless the config says off.</summary>
    public RecordingConfig Recording { get; init; } = new(Path.GetFullPath(RecordingConfig.DefaultDirectory)) { Enabled = false };

    /// <summary>The admin HTTP endpoint (<c>admin</c>); null: not served.</summary>
    public AdminConfig? Admin { get; init; }

    /// <summary>How approvals and access requests are decided and announced (<c>approvals</c>).</summary>
    public ApprovalsConfig Approvals { get; init; } = new();

    /// <summary>The OIDC/JWT identity providers whose access tokens clients may present as their password.</summary>
    public IdentityProviderSet IdentityProviders => Postgres.IdentityProviders;

    /// <summary>What a policy compile checks its names against: this config's identities and connections.</summary>
    public PolicyCompileContext PolicyContext => CompileContext(Postgres.Identities, Postgres.IdentityProviders, Postgres.Connections.ContainsKey);

    /// <summary>
    /// Names a policy may bind: configured identities, and, once an identity provider is configured, any name (token
    /// identities are not listed anywhere, so an unknown name is no longer a sign of a typo).
    /// </summary>
    internal static PolicyCompileContext CompileContext(IdentityDirectory identities, IdentityProviderSet providers, Func<string, bool> connectionExists) =>
        new(identity => providers.Count > 0 || identities.TryGet(identity, out _), connectionExists);
}
