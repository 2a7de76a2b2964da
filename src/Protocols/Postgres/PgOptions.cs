using System.Collections.Frozen;
using System.Security.Cryptography.X509Certificates;
using Gatehouse.Engine.Secrets;
using Gatehouse.Policy.Identity;

namespace Gatehouse.Protocols.Postgres;

/// <summary>TLS towards clients.</summary>
public enum ClientTlsMode : byte
{
    /// <summary>SSLRequest is answered 'N'.</summary>
    Disabled,
    /// <summary>TLS when the client asks for it.</summary>
    Optional,
    /// <summary>A client that does not start TLS is refused after its startup message.</summary>
    Required,
}

/// <summary>TLS towards the upstream server, named as libpq's sslmode values.</summary>
public enum UpstreamTlsMode : byte
{
    Disable,
    /// <summary>Encrypt, do not verify the server's certificate.</summary>
    Require,
    /// <summary>Encrypt, verify the chain (system store or the configured CA) and the host name.</summary>
    VerifyFull,
}

/// <summary>How the gateway asks clients for their secret.</summary>
public enum PasswordMethod : byte
{
    /// <summary>SCRAM-SHA-256: the secret never crosses the wire, TLS or not.</summary>
    Scram,
    /// <summary>Cleartext password message: needed for bearer tokens; only over TLS, or loopback when allowed.</summary>
    Cleartext,
}

/// <summary>One PostgreSQL listener's client-facing settings.</summary>
public sealed record PgListenerOptions
{
    public required string Name { get; init; }

    public ClientTlsMode TlsMode { get; init; } = ClientTlsMode.Optional;

    /// <summary>The server certificate with its private key; required unless TLS is disabled.</summary>
    public X509Certificate2? Certificate { get; init; }

    public PasswordMethod PasswordMethod { get; init; } = PasswordMethod.Scram;

    /// <summary>Allows cleartext secrets from loopback clients without TLS (sidecar deployments).</summary>
    public bool AllowCleartextOnLoopback { get; init; }
}

/// <summary>An upstream PostgreSQL server and the credential the gateway holds for it.</summary>
public sealed record PgConnectionTarget
{
    /// <summary>The name clients use as their database name.</summary>
    public required string Name { get; init; }

    public required string Host { get; init; }

    public int Port { get; init; } = 5432;

    public required string Database { get; init; }

    public required string User { get; init; }

    public SecretReference? Password { get; init; }

    public UpstreamTlsMode Tls { get; init; } = UpstreamTlsMode.Disable;

    /// <summary>CA bundle (PEM) for verify-full; the system store when null.</summary>
    public string? CaFile { get; init; }
}

/// <summary>
/// Everything a PostgreSQL session needs to decide, as one immutable snapshot. A reload builds a new one and
/// swaps it; a session keeps the snapshot it started with for its handshake.
/// </summary>
public sealed class PgConfigSnapshot
{
    public PgConfigSnapshot(IEnumerable<PgConnectionTarget> connections, IdentityDirectory identities)
    {
        Connections = connections.ToFrozenDictionary(c => c.Name, StringComparer.Ordinal);
        Identities = identities;
    }

    public FrozenDictionary<string, PgConnectionTarget> Connections { get; }

    public IdentityDirectory Identities { get; }

    /// <summary>
    /// The OIDC/JWT providers whose access tokens a cleartext listener accepts as the password; empty when none are
    /// configured (then every password is checked as a static secret).
    /// </summary>
    public IdentityProviderSet IdentityProviders { get; init; } = IdentityProviderSet.Empty;
}
