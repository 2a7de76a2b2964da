using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Gatehouse.Engine.Recording;

namespace Gatehouse.Host.Recordings;

/// <summary>
/// Writes a recording's events as JSON lines, one object per event, for a SIEM or <c>jq</c>
/// (docs/recording-format.md, "Export (JSON lines)"). Every object has <c>session</c>, <c>seq</c>, <c>time</c>
/// (ISO 8601 UTC, microseconds), <c>offset_us</c>, <c>kind</c> and <c>direction</c>, then the event's own fields.
/// The server stream is one object per backend message. Values are as recorded (already masked); the cancel key
/// of BackendKeyData is never written.
/// </summary>
public static class RecordingExport
{
    private static readonly JsonWriterOptions s_options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes one line per event of <paramref name="events"/>; returns how many.</summary>
    public static async Task<long> WriteJsonLinesAsync(RecordedSession session, IAsyncEnumerable<RecordedEvent> events, TextWriter output,
        CancellationToken cancellationToken = default)
    {
        long lines = 0;
        using var buffer = new MemoryStream();
        await foreach (var e in events.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            buffer.SetLength(0);
            using (var json = new Utf8JsonWriter(buffer, s_options))
            {
                Write(json, session, e);
            }

            await output.WriteLineAsync(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length)).ConfigureAwait(false);
            lines++;
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return lines;
    }

    /// <summary>The <c>kind</c> of an event in the export.</summary>
    public static string KindName(RecordedEvent e) => e switch
    {
        SessionStartEvent => "session_start",
        StatementEvent => "statement",
        DecisionEvent => "decision",
        ResultMetaEvent => "result_meta",
        ErrorEvent => "error",
        SessionEndEvent => "session_end",
        ServerMessageEvent => "server_message",
        ClientMessageEvent => "client_message",
        RecoveryEvent => "recovery",
        GapEvent => "gap",
        StreamProblemEvent => "stream_problem",
        _ => "unknown",
    };

    /// <summary>The <c>direction</c> of a record in the export.</summary>
    public static string DirectionName(RecordDirection direction) => direction switch
    {
        RecordDirection.None => "none",
        RecordDirection.ClientToServer => "client_to_server",
        RecordDirection.ServerToClient => "server_to_client",
        RecordDirection.GatewayToClient => "gateway_to_client",
        RecordDirection.GatewayToServer => "gateway_to_server",
        _ => ((byte)direction).ToString(CultureInfo.InvariantCulture),
    };

    private static void Write(Utf8JsonWriter json, RecordedSession session, RecordedEvent e)
    {
        json.WriteStartObject();
        json.WriteString("session", session.SessionId);
        json.WriteNumber("seq", e.Sequence);
        json.WriteString("time", TimeText(session.Start + e.At));
        json.WriteNumber("offset_us", e.TimeMicros);
        json.WriteString("kind", KindName(e));
        json.WriteString("direction", DirectionName(e.Direction));
        switch (e)
        {
            case SessionStartEvent start:
                Optional(json, "protocol", start.Protocol);
                Optional(json, "identity", start.Identity);
                Optional(json, "connection", start.Connection);
                Optional(json, "client_address", start.ClientAddress);
                Optional(json, "gateway_version", start.GatewayVersion);
                Optional(json, "start_time", start.StartTime);
                json.WriteStartObject("attributes");
                foreach (var (name, value) in start.Attributes)
                {
                    json.WriteString(name, value);
                }

                json.WriteEndObject();
                Optional(json, "problem", start.Problem);
                break;
            case StatementEvent statement:
                json.WriteString("message", statement.Message.ToString());
                Index(json, statement.StatementIndex);
                json.WriteString("text", statement.Text);
                Strings(json, "parameters", statement.Parameters);
                Optional(json, "statement_name", statement.StatementName);
                Optional(json, "portal", statement.Portal);
                json.WriteString("class", statement.Class);
                Strings(json, "tables", statement.Tables);
                if (statement.UnknownStatement)
                {
                    json.WriteBoolean("unknown_statement", true);
                }

                break;
            case DecisionEvent decision:
                Index(json, decision.StatementIndex);
                json.WriteString("outcome", decision.OutcomeName);
                Optional(json, "rule", decision.Rule);
                Optional(json, "approver", decision.Approver);
                Optional(json, "reason", decision.Reason);
                Optional(json, "ticket", decision.Ticket);
                break;
            case ResultMetaEvent meta:
                Index(json, meta.StatementIndex);
                Optional(json, "command_tag", meta.CommandTag);
                Number(json, "rows", meta.Rows);
                if (meta.Columns.Count > 0)
                {
                    Strings(json, "columns", meta.Columns);
                }

                json.WriteNumber("masked_values", meta.MaskedValues);
                Number(json, "duration_us", meta.DurationMicros);
                break;
            case ErrorEvent error:
                Optional(json, "code", error.Code);
                Optional(json, "message", error.Message);
                Optional(json, "severity", error.Severity);
                break;
            case SessionEndEvent end:
                Optional(json, "reason", end.Reason);
                Optional(json, "side", end.Side);
                Optional(json, "detail", end.Detail);
                Number(json, "bytes_from_client", end.BytesFromClient);
                Number(json, "bytes_from_server", end.BytesFromServer);
                Number(json, "masked_values", end.MaskedValues);
                break;
            case ServerMessageEvent server:
                Index(json, server.StatementIndex);
                WriteBackend(json, server.Message);
                break;
            case ClientMessageEvent client:
                Index(json, client.StatementIndex);
                json.WriteString("type", client.Message.MessageName);
                json.WriteString("code", client.Message.Code.ToString());
                if (client.Message.Kind is { } kind)
                {
                    json.WriteString("target", kind == 'P' ? "portal" : kind == 'S' ? "statement" : kind.ToString());
                }

                Optional(json, "name", client.Message.Name);
                Number(json, "max_rows", client.Message.MaxRows);
                Optional(json, client.Message.Code == 'f' ? "message" : "data", client.Message.Text);
                break;
            case RecoveryEvent recovery:
                try
                {
                    using var document = JsonDocument.Parse(recovery.Json);
                    json.WritePropertyName("recovery");
                    document.RootElement.WriteTo(json);
                }
                catch (JsonException)
                {
                    json.WriteString("recovery_text", recovery.Json);
                }

                break;
            case GapEvent gap:
                json.WriteString("detail", gap.Detail);
                break;
            case StreamProblemEvent problem:
                json.WriteString("detail", problem.Detail);
                break;
            case UnknownRecordEvent unknown:
                json.WriteNumber("record_kind", (byte)unknown.Kind);
                json.WriteNumber("length", unknown.PayloadLength);
                break;
        }

        json.WriteEndObject();
    }

    private static void WriteBackend(Utf8JsonWriter json, PgBackendMessage message)
    {
        json.WriteString("type", message.Name);
        json.WriteString("code", message.Code.ToString());
        json.WriteNumber("stream_offset", message.Offset);
        switch (message)
        {
            case PgRowDescription description:
                json.WriteStartArray("columns");
                foreach (var column in description.Columns)
                {
                    json.WriteStartObject();
                    json.WriteString("name", column.Name);
                    json.WriteNumber("type_oid", column.TypeOid);
                    json.WriteNumber("format", column.Format);
                    if (column.TableOid != 0)
                    {
                        json.WriteNumber("table_oid", column.TableOid);
                        json.WriteNumber("column_number", column.ColumnNumber);
                    }

                    json.WriteEndObject();
                }

                json.WriteEndArray();
                break;
            case PgDataRow row:
                Strings(json, "values", row.Values);
                break;
            case PgCommandComplete complete:
                json.WriteString("tag", complete.Tag);
                break;
            case PgNoticeMessage notice:
                json.WriteString("severity", notice.Severity);
                json.WriteString("sqlstate", notice.SqlState);
                json.WriteString("message", notice.Message);
                Optional(json, "detail", notice.Detail);
                Optional(json, "hint", notice.Hint);
                break;
            case PgReadyForQuery ready:
                json.WriteString("status", ready.Status.ToString());
                break;
            case PgCopyResponse copy:
                json.WriteNumber("format", copy.Format);
                Numbers(json, "column_formats", copy.ColumnFormats.Select(f => (long)f));
                break;
            case PgCopyData data:
                json.WriteString("data", data.Data);
                break;
            case PgParameterStatus status:
                json.WriteString("name", status.Parameter);
                json.WriteString("value", status.Value);
                break;
            case PgParameterDescription parameters:
                Numbers(json, "type_oids", parameters.TypeOids.Select(o => (long)o));
                break;
            case PgNotification notification:
                json.WriteNumber("process_id", notification.ProcessId);
                json.WriteString("channel", notification.Channel);
                json.WriteString("payload", notification.Payload);
                break;
            case PgFunctionCallResponse function:
                json.WriteString("value", function.Value);
                break;
            case PgBackendKeyData key:
                json.WriteNumber("process_id", key.ProcessId);
                break;
            case PgAuthentication authentication:
                json.WriteNumber("auth_code", authentication.AuthenticationCode);
                break;
            case PgNegotiateProtocolVersion negotiate:
                json.WriteNumber("minor_version", negotiate.MinorVersion);
                Strings(json, "unrecognized_options", negotiate.UnrecognizedOptions);
                break;
        }
    }

    /// <summary>A time as the export writes it: ISO 8601 UTC with microseconds.</summary>
    internal static string TimeText(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static void Index(Utf8JsonWriter json, int index)
    {
        if (index >= 0)
        {
            json.WriteNumber("statement_index", index);
        }
    }

    private static void Numbers(Utf8JsonWriter json, string name, IEnumerable<long> values)
    {
        json.WriteStartArray(name);
        foreach (long value in values)
        {
            json.WriteNumberValue(value);
        }

        json.WriteEndArray();
    }

    /// <summary>A member written only when it has a value.</summary>
    internal static void Optional(Utf8JsonWriter json, string name, string? value)
    {
        if (value is not null)
        {
            json.WriteString(name, value);
        }
    }

    private static void Number(Utf8JsonWriter json, string name, long? value)
    {
        if (value is { } number)
        {
            json.WriteNumber(name, number);
        }
    }

    /// <summary>An array of strings; a null one is written as <c>null</c>.</summary>
    internal static void Strings(Utf8JsonWriter json, string name, IEnumerable<string?> values)
    {
        json.WriteStartArray(name);
        foreach (string? value in values)
        {
            json.WriteStringValue(value);
        }

        json.WriteEndArray();
    }
}
