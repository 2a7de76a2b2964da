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

    /// <summary>Session recording; null records nothing (<c>recording: off</c>).</summary>
    public PgRecordingOptions? Recording { get; init; }

    /// <summary>Swaps in a new configuration; sessions that start afterwards use it.</summary>
    public void Update(PgConfigSnapshot config) => Volatile.Write(ref _config, config);

    public Task RunAsync(Session session) => new PgSession(this, session).RunAsync();

    public Task RefuseAsync(Session session, SessionEndReason reason) => new PgSession(this, session).RefuseAsync(reason);
}

/// <summary>How a PostgreSQL listener records its sessions.</summary>
/// <param name="Service">Writes every session's recording.</param>
/// <param name="OnBackpressure">What a session does when its recording cannot keep up.</param>
/// <param name="Instance">This gateway run's id: recordings are named <c>INSTANCE-SESSION</c>, as the state store's sessions are keyed.</param>
public sealed record PgRecordingOptions(Engine.Recording.RecordingService Service, Engine.Recording.RecordingBackpressure OnBackpressure, string Instance);

/// <summary>The cancel keys of every PostgreSQL session of one gateway, shared by its listeners.</summary>
public sealed class PgCancelKeys
{
    internal CancelRegistry Registry { get; } = new();
}
