using Gatehouse.Engine;
using Gatehouse.Engine.Recording;
using Gatehouse.Host.Admin;
using Gatehouse.Host.Config;
using Gatehouse.Host.Policy;
using Gatehouse.Host.Recordings;
using Gatehouse.Host.State;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Rules;
using Gatehouse.Protocols.Postgres;
using Gatehouse.Protocols.Postgres.Masking;
using Microsoft.Extensions.Logging;

namespace Gatehouse.Host;

/// <summary>
/// Wires a validated config into a running gateway: one engine, one protocol per listener, the live statement
/// policy and its file watcher, the state store with the access service (just-in-time grants), the approval
/// broker (held statements) and the admin API. Tests and the command line both start the gateway through here.
/// </summary>
public sealed class GatehouseServer : IAsyncDisposable
{
    private readonly List<PgProtocol> _postgres = [];
    private readonly PolicyReloader? _reloader;
    private readonly ILogger _policyLogger;
    private readonly ILogger _stateLogger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly SqliteStateStore _store;
    private readonly AuditWriter _audit;
    private readonly WebhookAnnouncer _announcer;
    private readonly WebhookAnnouncer _auditWebhook;
    private readonly SessionAuditor _sessionAuditor;
    private AdminEndpoint? _admin;

    // Session recordings (null with recording: off), and the timer that applies their retention.
    private readonly RecordingService? _recordings;
    private readonly ILogger _recordingLogger;
    private Timer? _retention;

    // The upstream catalogs masking by column reads, one per connection target, shared by every listener.
    private readonly PgCatalogs _catalogs;

    public GatehouseServer(GatehouseConfig config, ILoggerFactory loggerFactory)
    {
        Config = config;
        _loggerFactory = loggerFactory;
        _policyLogger = loggerFactory.CreateLogger("Gatehouse.Policy");
        _stateLogger = loggerFactory.CreateLogger("Gatehouse.State");
        Policy = new PolicyStore(config.Policy);
        if (config.PolicyFile is not null)
        {
            _reloader = new PolicyReloader(config.PolicyFile, Policy, config.PolicyContext, _policyLogger, config.PolicyStamp);
        }

        Gateway = new Gateway(config.Limits, loggerFactory);

        // State: opened (and migrated) at start; the services below only use it from then on.
        _store = new SqliteStateStore(config.State.Path);
        _auditWebhook = new WebhookAnnouncer(config.State.AuditWebhook, _stateLogger);
        _audit = new AuditWriter(_store, _stateLogger, file: config.State.AuditLog is { } auditLog ? new AuditLogFile(auditLog) : null,
            webhook: _auditWebhook);
        _announcer = new WebhookAnnouncer(config.Approvals.Webhook, _stateLogger);
        Access = new AccessService(_store, Policy, Gateway.Sessions, _audit,
            new AccessOptions(config.Approvals.AllowSelfApproval, config.Approvals.AccessRequestTimeout), _stateLogger, _announcer,
            isKnownConnection: config.Postgres.Connections.ContainsKey);
        Policy.Grants = Access;
        Policy.GroupMemory = Access;
        Approvals = new StoredApprovalBroker(_store, _audit, _stateLogger, config.Approvals.StatementTimeout, config.Approvals.AllowSelfApproval,
            _announcer);
        _sessionAuditor = new SessionAuditor(Gateway.Sessions, _audit, _store.Instance);

        _recordingLogger = loggerFactory.CreateLogger("Gatehouse.Recording");
        PgRecordingOptions? recording = null;
        if (config.Recording.Enabled)
        {
            // The key is read (or generated) now: a gateway that cannot sign recordings does not start.
            var key = config.Recording.LoadKey(create: true);
            Directory.CreateDirectory(config.Recording.Directory);
            _recordings = new RecordingService(new RecordingOptions
            {
                Directory = config.Recording.Directory,
                Key = key,
                FlushToDisk = config.Recording.FlushToDisk,
                // A statement is one record: the largest client message must fit in half the buffer.
                MaxBufferedBytes = (int)Math.Min(int.MaxValue, Math.Max(8L << 20, 2L * config.Limits.MaxClientMessageSize + (1 << 20))),
            }, _recordingLogger);
            recording = new PgRecordingOptions(_recordings, config.Recording.OnBackpressure, _store.Instance);
        }

        var cancels = new PgCancelKeys();
        _catalogs = new PgCatalogs(new PgCatalogOptions(), loggerFactory);
        foreach (var listener in config.Listeners)
        {
            var protocol = new PgProtocol(listener.Postgres, config.Postgres, cancels, Policy, Approvals, _audit, config.Approvals.StatementTimeout)
            {
                Catalogs = _catalogs,
                Recording = recording,
            };
            _postgres.Add(protocol);
            Gateway.AddListener(listener.Name, listener.EndPoint, _sessionAuditor.Wrap(protocol));
        }
    }

    public GatehouseConfig Config { get; }

    public Gateway Gateway { get; }

    /// <summary>The live statement policy: the config's snapshot at first, swapped by every valid reload of the policy file.</summary>
    public PolicyStore Policy { get; }

    /// <summary>The state store (<c>state.path</c>): open once <see cref="Start"/> returned.</summary>
    public IStateStore Store => _store;

    /// <summary>Where audit events go (relay-side code records statement and login events here; never blocks).</summary>
    public AuditWriter Audit => _audit;

    /// <summary>Just-in-time grants: requests, decisions, revocation, and the live-grant check logins make.</summary>
    public AccessService Access { get; }

    /// <summary>Where statements that require approval wait; persisted in the state store.</summary>
    public StoredApprovalBroker Approvals { get; }

    /// <summary>The admin API's bound address (port 0 resolved) once started; null when <c>admin</c> is not configured.</summary>
    public System.Net.IPEndPoint? AdminEndPoint => _admin?.EndPoint;

    /// <summary>The admin API's base URL once started; null when it is not configured.</summary>
    public Uri? AdminUrl => _admin?.Url;

    /// <summary>
    /// Starts everything: state store (migrations), grants, approvals, admin API, listeners, policy file watcher.
    /// Throws <see cref="StateStoreException"/> when the state store cannot be used, <see cref="InvalidOperationException"/>
    /// for an unusable admin token, and socket or I/O exceptions when an address is taken.
    /// </summary>
    public void Start() => StartAsync().GetAwaiter().GetResult();

    /// <inheritdoc cref="Start"/>
    public async Task StartAsync(CancellationToken cancellationToken = default)
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

        await _store.OpenAsync(cancellationToken).ConfigureAwait(false);
        StateLog.Opened(_stateLogger, _store.Path, _store.SchemaVersion);
        _audit.Start();
        _announcer.Start();
        _auditWebhook.Start();
        await Access.StartAsync(cancellationToken).ConfigureAwait(false);
        await Approvals.StartAsync(cancellationToken).ConfigureAwait(false);
        if (Config.Admin is { } adminConfig)
        {
            var admin = new AdminEndpoint(adminConfig, _loggerFactory, Access, Approvals, Gateway, Policy, _store, _store.SchemaVersion,
                Config.IdentityProviders);
            _admin = admin;
            await admin.StartAsync(cancellationToken).ConfigureAwait(false);
        }

        await StartRecordingAsync(cancellationToken).ConfigureAwait(false);
        _sessionAuditor.Start();
        Gateway.Start();
        _reloader?.Start();
    }

    /// <summary>The session recordings' service; null with <c>recording: off</c>.</summary>
    public RecordingService? Recordings => _recordings;

    /// <summary>
    /// Seals what a killed gateway left unsealed (before any new recording is written), then applies retention now
    /// and every <see cref="RecordingConfig.RetentionInterval"/>.
    /// </summary>
    private async Task StartRecordingAsync(CancellationToken cancellationToken)
    {
        var config = Config.Recording;
        if (_recordings is null)
        {
            RecordingHostLog.Off(_recordingLogger);
            return;
        }

        var key = _recordings.Options.Key;
        var recovered = await RecordingRecovery.SealDirectoryAsync(config.Directory, key, _recordingLogger, cancellationToken).ConfigureAwait(false);
        RecordingHostLog.Started(_recordingLogger, config.Directory, key.Id, config.OnBackpressure, recovered.Count);
        if (config.MaxAge is not null || config.MaxTotalBytes is not null)
        {
            _retention = new Timer(_ => ApplyRetention(), null, TimeSpan.Zero, config.RetentionInterval);
        }
    }

    private void ApplyRetention()
    {
        var config = Config.Recording;
        try
        {
            RecordingRetention.Apply(config.Directory, new RecordingRetentionPolicy(config.MaxAge, config.MaxTotalBytes), DateTimeOffset.UtcNow,
                _recordings!.IsOpen, _recordingLogger);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            RecordingHostLog.RetentionFailed(_recordingLogger, ex.Message);
        }
    }

    /// <summary>
    /// Reloads the policy file now (tests, and a future admin command): true when a new snapshot is in
    /// <see cref="Policy"/>; false when the file was refused (logged; the last good policy stays) or the policy is
    /// not a file.
    /// </summary>
    public Task<bool> ReloadPolicyAsync() => _reloader?.ReloadAsync() ?? Task.FromResult(false);

    /// <summary>Drains the gateway (the admin API stays up meanwhile: a held statement may still be approved).</summary>
    public Task StopAsync() => Gateway.StopAsync();

    /// <summary>
    /// Stops in order: policy watcher, gateway (drain), admin API, approvals and grants (their pending writes),
    /// session auditing, the announcer, the audit writer (flushes), and last the state store.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_reloader is not null)
        {
            await _reloader.DisposeAsync().ConfigureAwait(false);
        }

        await Gateway.DisposeAsync().ConfigureAwait(false);
        if (_retention is not null)
        {
            await _retention.DisposeAsync().ConfigureAwait(false);
        }

        // After the gateway: every session has ended and sealed its recording by now.
        if (_recordings is not null)
        {
            await _recordings.DisposeAsync().ConfigureAwait(false);
        }

        await _catalogs.DisposeAsync().ConfigureAwait(false);
        if (_admin is not null)
        {
            await _admin.DisposeAsync().ConfigureAwait(false);
        }

        await Approvals.DisposeAsync().ConfigureAwait(false);
        await Access.DisposeAsync().ConfigureAwait(false);
        await _sessionAuditor.DisposeAsync().ConfigureAwait(false);
        await _announcer.DisposeAsync().ConfigureAwait(false);
        await _audit.DisposeAsync().ConfigureAwait(false);
        await _auditWebhook.DisposeAsync().ConfigureAwait(false);
        await _store.DisposeAsync().ConfigureAwait(false);
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
