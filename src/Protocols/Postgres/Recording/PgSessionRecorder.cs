using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gatehouse.Engine.Recording;
using Gatehouse.Engine.Sessions;
using Gatehouse.Policy.Sql;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres.Recording;

/// <summary>
/// The recording of one PostgreSQL session (docs/recording-format.md, "PostgreSQL sessions"). Two taps stand in
/// for the connections' outputs: the client's records every byte the client receives; the server's holds back what
/// the client direction sends upstream until that direction's records (statements, decisions, other client
/// messages) are in the recording. The client direction's records are made here, on that direction's thread, into a
/// scratch buffer of its own; the server direction only adds a result record when values were masked.
/// </summary>
internal sealed class PgSessionRecorder
{
    private byte[] _scratch = new byte[1024];
    private byte[]? _redacted;
    private readonly byte[] _resultScratch = new byte[256];
    private long _maskedRecorded;

    public PgSessionRecorder(RecordingWriter writer, PipeWriter clientOutput, PipeWriter serverOutput, RecordingBackpressure mode, Session session)
    {
        void Failed(string reason) => session.Abort(SessionEndReason.RecordingFailed, PeerSide.Gateway, reason);
        ToClient = new RecordingTap(clientOutput, writer, RecordKind.ServerMessage, RecordDirection.ServerToClient, mode, Failed, session.Aborted);
        ToServer = new RecordingTap(serverOutput, writer, 0, RecordDirection.None, mode, Failed, session.Aborted);
    }

    /// <summary>What the client receives goes through here, from AuthenticationOk on.</summary>
    public RecordingTap ToClient { get; }

    /// <summary>What the client direction sends upstream goes through here.</summary>
    public RecordingTap ToServer { get; }

    // ---- Client direction --------------------------------------------------------------------------------------

    /// <summary>
    /// Records a message from the client before it is decided or forwarded: Query, Parse, Bind and FunctionCall as
    /// statements, every other message whole. Without a policy (<paramref name="decidedByPolicy"/> false) a statement's
    /// decision is recorded with it; otherwise the policy gate records it once it has decided.
    /// </summary>
    public void OnClientMessage(byte code, in ReadOnlySequence<byte> frame, bool standardConformingStrings, bool decidedByPolicy)
    {
        switch ((FrontendCode)code)
        {
            case FrontendCode.Query:
            case FrontendCode.Parse:
            case FrontendCode.Bind:
            case FrontendCode.FunctionCall:
                RecordStatement(code, frame, standardConformingStrings);
                if (!decidedByPolicy)
                {
                    ToServer.Record(RecordKind.Decision, RecordDirection.None, UnrestrictedDecision);
                }

                return;
            default:
                if (frame.IsSingleSegment)
                {
                    ToServer.Record(RecordKind.ClientMessage, RecordDirection.ClientToServer, frame.FirstSpan);
                    return;
                }

                var copy = ArrayPool<byte>.Shared.Rent((int)frame.Length);
                frame.CopyTo(copy);
                ToServer.Record(RecordKind.ClientMessage, RecordDirection.ClientToServer, copy.AsSpan(0, (int)frame.Length));
                ArrayPool<byte>.Shared.Return(copy);
                return;
        }
    }

    /// <summary>The decision of every statement of a session without a policy: written once, recorded as it is.</summary>
    private static readonly byte[] UnrestrictedDecision = DecisionPayload(RecordedDecision.Allowed, "unrestricted");

    private static byte[] DecisionPayload(RecordedDecision outcome, string rule)
    {
        var buffer = new byte[16 + 3 * rule.Length];
        var fields = new RecordFieldWriter(buffer);
        fields.Write(DecisionFields.Outcome, [(byte)outcome]);
        fields.WriteText(DecisionFields.Rule, rule);
        return fields.WrittenSpan.ToArray();
    }

    /// <summary>Records how the statement just recorded was decided (client direction).</summary>
    public void Decision(RecordedDecision outcome, string? rule = null, string? reason = null, string? approver = null, string? ticket = null)
    {
        int size = 16 + 3 * ((rule?.Length ?? 0) + (reason?.Length ?? 0) + (approver?.Length ?? 0) + (ticket?.Length ?? 0));
        var scratch = Scratch(size);
        var fields = new RecordFieldWriter(scratch);
        fields.Write(DecisionFields.Outcome, [(byte)outcome]);
        if (rule is not null)
        {
            fields.WriteText(DecisionFields.Rule, rule);
        }

        if (approver is not null)
        {
            fields.WriteText(DecisionFields.Approver, approver);
        }

        if (reason is not null)
        {
            fields.WriteText(DecisionFields.Reason, reason);
        }

        if (ticket is not null)
        {
            fields.WriteText(DecisionFields.Ticket, ticket);
        }

        ToServer.Record(RecordKind.Decision, RecordDirection.None, fields.WrittenSpan);
    }

    private void RecordStatement(byte code, in ReadOnlySequence<byte> frame, bool standardConformingStrings)
    {
        // One contiguous body: the frame itself, or a pooled copy when the pipe split it.
        byte[]? rented = null;
        var body = frame.Slice(5);
        if (!body.IsSingleSegment)
        {
            rented = ArrayPool<byte>.Shared.Rent((int)body.Length);
            body.CopyTo(rented);
            body = new ReadOnlySequence<byte>(rented, 0, (int)body.Length);
        }

        try
        {
            var span = body.FirstSpan;
            var settings = new SqlLexSettings(standardConformingStrings);
            // Fields take about what the body does (a tag and a varint where the body has a length or a NUL); a
            // redacted text can be longer, and then the record is written again into a larger buffer.
            int size = span.Length + 64;
            while (true)
            {
                var fields = new RecordFieldWriter(Scratch(size));
                fields.Write(StatementFields.Message, [code]);
                switch ((FrontendCode)code)
                {
                    case FrontendCode.Query:
                        fields.Write(StatementFields.Text, SqlSecretRedactor.Redact(CString(span, out _), settings, ref _redacted));
                        break;
                    case FrontendCode.Parse:
                        var name = CString(span, out int next);
                        fields.Write(StatementFields.Name, name);
                        fields.Write(StatementFields.Text, SqlSecretRedactor.Redact(CString(span[next..], out _), settings, ref _redacted));
                        break;
                    case FrontendCode.Bind:
                        WriteBind(body, ref fields);
                        break;
                    case FrontendCode.FunctionCall:
                        // The function's OID: the call carries no SQL text.
                        fields.WriteText(StatementFields.Name, BinaryPrimitives.ReadUInt32BigEndian(span).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        break;
                }

                if (!fields.Overflowed)
                {
                    ToServer.Record(RecordKind.Statement, RecordDirection.ClientToServer, fields.WrittenSpan);
                    return;
                }

                size *= 2;
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Bind: portal, statement, then each parameter by its format (<paramref name="body"/> is one segment).</summary>
    private static void WriteBind(in ReadOnlySequence<byte> body, ref RecordFieldWriter fields)
    {
        var bind = new PgBindReader(body);
        fields.Write(StatementFields.Portal, bind.Portal.FirstSpan);
        fields.Write(StatementFields.Name, bind.Statement.FirstSpan);
        while (bind.TryReadParameter(out short format, out bool isNull, out var parameter))
        {
            var value = parameter.FirstSpan;
            if (isNull)
            {
                fields.Write(StatementFields.NullParameter, default);
            }
            else if (format != 0)
            {
                fields.Write(StatementFields.BinaryParameter, value);
            }
            else if (SqlSecretRedactor.MentionsPassword(value))
            {
                var redacted = new ArrayBufferWriter<byte>(value.Length + 16);
                SqlSecretRedactor.RedactAssignments(value, redacted);
                fields.Write(StatementFields.Parameter, redacted.WrittenSpan);
            }
            else
            {
                fields.Write(StatementFields.Parameter, value);
            }
        }
    }

    private static ReadOnlySpan<byte> CString(ReadOnlySpan<byte> body, out int consumed)
    {
        int end = body.IndexOf((byte)0);
        if (end < 0)
        {
            end = body.Length;
        }

        consumed = Math.Min(end + 1, body.Length);
        return body[..end];
    }

    private Span<byte> Scratch(int size)
    {
        if (_scratch.Length < size)
        {
            _scratch = new byte[Math.Max(size, _scratch.Length * 2)];
        }

        return _scratch;
    }

    // ---- Server direction --------------------------------------------------------------------------------------

    /// <summary>At a CommandComplete: a result record when values were masked since the last one (server direction).</summary>
    public void OnCommandComplete(in ReadOnlySequence<byte> frame, long maskedValues)
    {
        long masked = maskedValues - _maskedRecorded;
        if (masked <= 0)
        {
            return;
        }

        _maskedRecorded = maskedValues;
        var fields = new RecordFieldWriter(_resultScratch);
        Span<byte> tag = stackalloc byte[128];
        var body = frame.Slice(5);
        int tagLength = (int)Math.Min(body.Length - 1, tag.Length);
        body.Slice(0, tagLength).CopyTo(tag);
        fields.Write(ResultMetaFields.CommandTag, tag[..tagLength]);
        fields.WriteNumber(ResultMetaFields.MaskedValues, (ulong)masked);
        ToClient.Record(RecordKind.ResultMeta, RecordDirection.ServerToClient, fields.WrittenSpan);
    }

    // ---- End ---------------------------------------------------------------------------------------------------

    /// <summary>
    /// Writes the SessionEnd record and seals the recording (with a recorder or without: a login refused before the
    /// upstream was reached). Called once both directions stopped; waits (bounded by <paramref name="timeout"/>) for
    /// room when the buffer is full, since the end must be in the recording.
    /// </summary>
    public static async Task EndAsync(RecordingWriter writer, Session session, long maskedValues, TimeSpan timeout)
    {
        var scratch = new byte[512 + 3 * (session.EndDetail?.Length ?? 0)];
        var payload = Payload(scratch, session, maskedValues);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            while (writer.Append(RecordKind.SessionEnd, RecordDirection.None, scratch.AsSpan(0, payload)) == RecordingStatus.Full)
            {
                await writer.WaitForRoomAsync(deadline.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The end could not be written in time; the recording still seals (a reader sees no SessionEnd).
        }

        await writer.DisposeAsync().ConfigureAwait(false);
    }

    private static int Payload(byte[] scratch, Session session, long maskedValues)
    {
        var fields = new RecordFieldWriter(scratch);
        fields.WriteText(SessionEndFields.Reason, session.EndReason.ToString());
        fields.WriteText(SessionEndFields.Side, session.EndSide.ToString());
        if (session.EndDetail is { } detail)
        {
            fields.WriteText(SessionEndFields.Detail, detail);
        }

        fields.WriteNumber(SessionEndFields.BytesFromClient, (ulong)session.BytesFromClient);
        fields.WriteNumber(SessionEndFields.BytesFromServer, (ulong)session.BytesFromServer);
        fields.WriteNumber(SessionEndFields.MaskedValues, (ulong)maskedValues);
        return fields.Written;
    }
}
