using Gatehouse.Engine;
using Gatehouse.Engine.Sessions;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres.Cancel;

namespace Gatehouse.Protocols.Postgres;

/// <summary>
/// The PostgreSQL protocol (3.0) for one listener. Configuration is an immutable snapshot swapped atomically on
/// reload; sessions read it once at their start.
/// </summary>
public sealed class PgProtocol : ISessionProtocol
{
    private PgConfigSnapshot _config;

    /// <param name="listener">The listener's client-facing options.</param>
    /// <param name="config">The first configuration snapshot.</param>
    /// <param name="cancels">Shared by every PostgreSQL listener of a gateway: a cancel may arrive on any of them.</param>
    /// <param name="policy">The live statement policy; sessions follow its reloads from their next statement.</param>
    /// <param name="approvals">
    /// Where statements that require approval wait for a person; null refuses them (approvals not enabled).
    /// </param>
    /// <param name="audit">Where statement refusals, holds and refused logins are recorded; none when null.</param>
    /// <param name="approvalTimeout">How long a held statement waits for a decision (default 15 minutes).</param>
    public PgProtocol(PgListenerOptions listener, PgConfigSnapshot config, PgCancelKeys cancels, PolicyStore policy, IApprovalBroker? approvals = null,
        IAuditSink? audit = null, TimeSpan? approvalTimeout = null)
    {
        Listener = listener;
        _config = config;
        Cancels = cancels.Registry;
        Policy = policy;
        Approvals = approvals;
        Audit = audit ?? NullAuditSink.Instance;
        ApprovalTimeout = approvalTimeout ?? TimeSpan.FromMinutes(15);
    }

    public string Name => "postgres";

    public PgListenerOptions Listener { get; }

    public PgConfigSnapshot Config => Volatile.Read(ref _config);

    internal CancelRegistry Cancels { get; }

    public PolicyStore Policy { get; }

    public IApprovalBroker? Approvals { get; }

    public IAuditSink Audit { get; }

    public TimeSpan ApprovalTimeout { get; }

    /// <summary>The upstream catalogs masking by column needs, shared by the gateway's listeners; null keeps none.</summary>
    internal Masking.PgCatalogs? Catalogs { get; init; }

    /// <summary>Swaps in a new configuration; sessions that start afterwards use it.</summary>
    public void Update(PgConfigSnapshot config) => Volatile.Write(ref _config, config);

    public Task RunAsync(Session session) => new PgSession(this, session).RunAsync();

    public Task RefuseAsync(Session session, SessionEndReason reason) => new PgSession(this, session).RefuseAsync(reason);
}

/// <summary>The cancel keys of every PostgreSQL session of one gateway, shared by its listeners.</summary>
public sealed class PgCancelKeys
{
    internal CancelRegistry Registry { get; } = new();
}
