using System.Collections.Concurrent;
using System.Text.Json;
using Gatehouse.Engine;
using Gatehouse.Engine.Sessions;
using Gatehouse.Policy.Access;

namespace Gatehouse.Host.State;

/// <summary>
/// Sessions into the state store and the audit log, for every protocol, without the protocols' help: a session
/// is recorded as started once it relays (a once-a-second look at the engine's sessions), and as ended, with its
/// end reason and byte counts, when its protocol returns (<see cref="Wrap"/>). Only sessions that got as far as an
/// identity are recorded: a port scan is not an audit event (failed logins are logged by the protocol).
/// </summary>
public sealed class SessionAuditor : IAsyncDisposable
{
    private readonly SessionRegistry _sessions;
    private readonly AuditWriter _writer;
    private readonly string _instance;
    private readonly ConcurrentDictionary<long, byte> _started = new();
    private ITimer? _timer;

    /// <param name="instance">This gateway run (session ids restart with every run).</param>
    public SessionAuditor(SessionRegistry sessions, AuditWriter writer, string instance)
    {
        _sessions = sessions;
        _writer = writer;
        _instance = instance;
    }

    /// <summary>The protocol, with every session's end recorded when it returns.</summary>
    public ISessionProtocol Wrap(ISessionProtocol protocol) => new Audited(protocol, this);

    public void Start() =>
        _timer = TimeProvider.System.CreateTimer(static state => ((SessionAuditor)state!).RecordStarts(), this, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));

    /// <summary>Records the start of every relaying session not yet recorded. Internal: tests call it.</summary>
    internal void RecordStarts()
    {
        foreach (var session in _sessions.List())
        {
            if (session.Stage == SessionStage.Relaying && session.Identity is not null && _started.TryAdd(session.Id, 0))
            {
                _writer.Record(Row(session, ended: false));
                _writer.Record(new AuditEvent(DateTimeOffset.UtcNow, AuditKinds.SessionStarted, session.Identity, session.ConnectionName, session.Id,
                    Detail: $"listener {session.ListenerName} from {session.Client.RemoteEndPoint}"));
            }
        }
    }

    private void RecordEnd(Session session)
    {
        bool started = _started.TryRemove(session.Id, out _);
        if (session.Identity is null && !started)
        {
            return;
        }

        var now = DateTimeOffset.UtcNow;
        _writer.Record(Row(session, ended: true) with { EndedAt = now });
        _writer.Record(new AuditEvent(now, AuditKinds.SessionEnded, session.Identity, session.ConnectionName, session.Id,
            Detail: $"{Reason(session.EndReason)} ({Reason(session.EndSide)}){(session.EndDetail is { } d ? ": " + d : "")}; "
                    + $"{session.BytesFromClient} bytes in, {session.BytesFromServer} bytes out"));
    }

    private SessionRecord Row(Session s, bool ended) => new(
        _instance, s.Id, s.Identity, s.ConnectionName, s.ListenerName, s.Client.RemoteEndPoint?.ToString(), s.StartedAt,
        EndReason: ended ? Reason(s.EndReason == SessionEndReason.None ? SessionEndReason.InternalError : s.EndReason) : null,
        EndSide: ended ? Reason(s.EndSide) : null,
        EndDetail: ended ? s.EndDetail : null,
        BytesFromClient: s.BytesFromClient,
        BytesFromServer: s.BytesFromServer);

    /// <summary>An end reason or side as the state store and the audit log write it (<c>authorization_failed</c>).</summary>
    internal static string Reason<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    public async ValueTask DisposeAsync()
    {
        if (_timer is not null)
        {
            await _timer.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class Audited(ISessionProtocol inner, SessionAuditor auditor) : ISessionProtocol
    {
        public string Name => inner.Name;

        public async Task RunAsync(Session session)
        {
            try
            {
                await inner.RunAsync(session).ConfigureAwait(false);
            }
            finally
            {
                auditor.RecordEnd(session);
            }
        }

        public Task RefuseAsync(Session session, SessionEndReason reason) => inner.RefuseAsync(session, reason);
    }
}
