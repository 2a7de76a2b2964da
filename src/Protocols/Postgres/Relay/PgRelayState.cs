using Gatehouse.Engine.Sessions;
using Gatehouse.Protocols.Postgres.Policy;

namespace Gatehouse.Protocols.Postgres.Relay;

/// <summary>
/// The protocol state both relay directions share. Each field has one writer (named on it); the other direction
/// only reads, so no lock is taken on the relay path.
/// </summary>
internal sealed class PgRelayState(Session session, int maxClientMessage, int maxServerMessage)
{
    private int _pendingSyncs;
    private volatile bool _copyIn;

    public Session Session { get; } = session;

    public int MaxClientMessage { get; } = maxClientMessage;

    public int MaxServerMessage { get; } = maxServerMessage;

    /// <summary>
    /// Requests sent upstream that still await their ReadyForQuery (Query, Sync, FunctionCall). Zero means the
    /// session is idle: nothing is running, so a drain can end it without cutting a statement.
    /// </summary>
    public int PendingSyncs => Volatile.Read(ref _pendingSyncs);

    /// <summary>Written by the client direction before it forwards a request.</summary>
    public void RequestSent() => Interlocked.Increment(ref _pendingSyncs);

    /// <summary>A request counted by <see cref="RequestSent"/> that the server skipped (no ReadyForQuery will come).</summary>
    public void RequestSkipped() => ReadyReceived();

    /// <summary>Syncs forwarded since the last Execute or Query (client direction).</summary>
    private int _syncsSinceExecute;

    /// <summary>The client direction forwards an Execute or a Query: a COPY it starts begins here.</summary>
    public void ExecuteSent() => Volatile.Write(ref _syncsSinceExecute, 0);

    /// <summary>The client direction forwards a Sync outside COPY IN.</summary>
    public void SyncSent()
    {
        Interlocked.Increment(ref _syncsSinceExecute);
        RequestSent();
    }

    /// <summary>
    /// The server started COPY IN. Syncs the client pipelined after the Execute that started it reach the server
    /// while it is in COPY IN, where it ignores them (libpq sends Parse/Bind/Execute/Sync in one go, and another
    /// Sync after CopyDone): they will get no ReadyForQuery and must not count as pending. Written by the server
    /// direction.
    /// </summary>
    public void CopyInStarted()
    {
        CopyIn = true;
        int ignored = Interlocked.Exchange(ref _syncsSinceExecute, 0);
        if (ignored > 0)
        {
            Interlocked.Add(ref _pendingSyncs, -ignored);
        }
    }

    /// <summary>Written by the server direction on ReadyForQuery; returns the requests still pending.</summary>
    public int ReadyReceived()
    {
        int pending = Interlocked.Decrement(ref _pendingSyncs);
        if (pending < 0)
        {
            // An unsolicited ReadyForQuery (after a COPY error, for example) must not drive the count negative.
            Interlocked.CompareExchange(ref _pendingSyncs, 0, pending);
            pending = 0;
        }

        return pending;
    }

    /// <summary>COPY FROM STDIN in progress (written by the server direction on CopyInResponse and its end).</summary>
    public bool CopyIn
    {
        get => _copyIn;
        set => _copyIn = value;
    }

    /// <summary>The last transaction status the server reported ('I', 'T' or 'E'); written by the server direction.</summary>
    public byte TransactionStatus { get; set; } = (byte)'I';

    /// <summary>The server sent a FATAL error: it will close, and the client has been told why.</summary>
    public bool ServerSentFatal { get; set; }

    /// <summary>standard_conforming_strings as the server reports it (the SQL lexer depends on it).</summary>
    public bool StandardConformingStrings { get; set; } = true;

    /// <summary>Statement policy; null when the policy is unrestricted (nothing to decide or track).</summary>
    public PgPolicyGate? Gate { get; set; }

    /// <summary>Masking of results; null when the policy is unrestricted. Its rules are null while none applies.</summary>
    public Masking.PgSessionMasking? Masking { get; set; }

    /// <summary>The session's recording; null when recording is off.</summary>
    public Recording.PgSessionRecorder? Recorder { get; set; }

    /// <summary>Records a protocol violation; the first fault wins.</summary>
    public void Violation(PeerSide side, string detail) =>
        Session.TrySetEnd(side == PeerSide.Client ? SessionEndReason.ClientProtocolViolation : SessionEndReason.ServerProtocolViolation, side, detail);
}
