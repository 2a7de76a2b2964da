using System.Text.Json;

namespace Gatehouse.Host.Review;

/// <summary>
/// The review as one JSON document (<c>--format json</c>), schema <c>gatehouse.review/1</c> (docs/review.md#json):
/// every member is always written, null when it does not apply, in a fixed order. Times are ISO 8601 UTC with
/// milliseconds, durations are seconds. A later schema adds members; it never renames or drops one without a new
/// schema name.
/// </summary>
public static class ReviewJsonWriter
{
    /// <summary>The schema name written into every document.</summary>
    public const string Schema = "gatehouse.review/1";

    /// <summary>Writes the whole report, indented, UTF-8.</summary>
    public static void Write(ReviewReport report, Stream output)
    {
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("schema", Schema);
        Time(w, "generated_at", report.GeneratedAt);
        Time(w, "since", report.Since);
        Time(w, "until", report.Until);
        w.WriteStartObject("filters");
        Strings(w, "identities", report.IdentityFilter);
        Strings(w, "connections", report.ConnectionFilter);
        w.WriteEndObject();

        w.WriteStartObject("summary");
        foreach (var (name, value) in report.Summary.Counters)
        {
            w.WriteNumber(name, value);
        }

        w.WriteEndObject();
        Strings(w, "warnings", report.Warnings);

        w.WriteStartArray("identities");
        foreach (var identity in report.Identities)
        {
            w.WriteStartObject();
            w.WriteString("identity", identity.Identity);

            w.WriteStartArray("grants");
            foreach (var g in identity.Grants)
            {
                w.WriteStartObject();
                w.WriteString("id", g.Id);
                w.WriteString("connection", g.Connection);
                w.WriteString("role", g.Role);
                w.WriteString("status", g.Status);
                w.WriteString("request_id", g.RequestId);
                Time(w, "requested_at", g.RequestedAt);
                w.WriteString("reason", g.Reason);
                w.WriteString("approved_by", g.ApprovedBy);
                Time(w, "approved_at", g.ApprovedAt);
                w.WriteString("approval_reason", g.ApprovalReason);
                Time(w, "start", g.Start);
                Time(w, "end", g.End);
                Seconds(w, "duration_s", g.Duration);
                Time(w, "revoked_at", g.RevokedAt);
                w.WriteString("revoked_by", g.RevokedBy);
                w.WriteString("revoke_reason", g.RevokeReason);
                Time(w, "effective_end", g.EffectiveEnd);
                w.WriteBoolean("used", g.Used);
                Strings(w, "sessions", g.SessionIds);
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("requests");
            foreach (var r in identity.Requests)
            {
                w.WriteStartObject();
                w.WriteString("id", r.Id);
                w.WriteString("connection", r.Connection);
                w.WriteString("role", r.Role);
                w.WriteString("state", r.State);
                Seconds(w, "duration_s", r.Duration);
                w.WriteString("reason", r.Reason);
                Time(w, "requested_at", r.RequestedAt);
                w.WriteString("decided_by", r.DecidedBy);
                Time(w, "decided_at", r.DecidedAt);
                w.WriteString("decision_reason", r.DecisionReason);
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("sessions");
            foreach (var x in identity.Sessions)
            {
                w.WriteStartObject();
                w.WriteString("id", x.Id);
                w.WriteString("connection", x.Connection);
                w.WriteString("role", x.Role);
                w.WriteString("client_address", x.ClientAddress);
                Time(w, "start", x.Start);
                Time(w, "end", x.End);
                Seconds(w, "duration_s", x.Duration);
                w.WriteString("access", x.Access);
                w.WriteString("grant_id", x.GrantId);
                w.WriteNumber("statement_count", x.StatementCount);
                w.WriteStartObject("statements_by_class");
                foreach (var (name, count) in x.StatementsByClass)
                {
                    w.WriteNumber(name, count);
                }

                w.WriteEndObject();
                w.WriteNumber("denied", x.Denied);
                w.WriteNumber("held", x.Held);
                w.WriteNumber("masked", x.MaskedValues);
                Strings(w, "tables", x.Tables);
                w.WriteString("end_reason", x.EndReason);
                w.WriteString("end_detail", x.EndDetail);
                w.WriteString("recording", x.RecordingPath);
                w.WriteString("integrity", x.Integrity);
                w.WriteBoolean("trustworthy", !x.Damaged && x.Integrity != ReviewBuilder.IntegrityMissing);
                Strings(w, "problems", x.Problems);
                w.WriteStartArray("statements");
                foreach (var t in x.Statements)
                {
                    w.WriteStartObject();
                    Time(w, "at", t.At);
                    w.WriteString("message", t.Message.ToString());
                    w.WriteString("class", t.Class);
                    w.WriteString("decision", t.Decision);
                    w.WriteString("rule", t.Rule);
                    w.WriteBoolean("held", t.Held);
                    w.WriteString("approver", t.Approver);
                    w.WriteString("ticket", t.Ticket);
                    w.WriteString("result", t.Result);
                    w.WriteNumber("masked", t.MaskedValues);
                    w.WriteString("text", t.Text);
                    Strings(w, "parameters", t.Parameters);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("approvals");
            foreach (var a in identity.Approvals)
            {
                w.WriteStartObject();
                w.WriteString("id", a.Id);
                w.WriteString("connection", a.Connection);
                w.WriteString("role", a.Role);
                w.WriteString("rule", a.Rule);
                w.WriteString("state", a.State);
                Time(w, "requested_at", a.RequestedAt);
                w.WriteString("decided_by", a.DecidedBy);
                Time(w, "decided_at", a.DecidedAt);
                w.WriteString("reason", a.Reason);
                w.WriteString("session_id", a.SessionId);
                w.WriteString("statement", a.Statement);
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("standing");
            foreach (var a in identity.Standing)
            {
                w.WriteStartObject();
                w.WriteString("connection", a.Connection);
                w.WriteString("role", a.Role);
                w.WriteEndObject();
            }

            w.WriteEndArray();

            w.WriteStartArray("unused");
            foreach (var u in identity.Unused)
            {
                w.WriteStartObject();
                w.WriteString("kind", u.Kind);
                w.WriteString("connection", u.Connection);
                w.WriteString("role", u.Role);
                w.WriteString("grant_id", u.GrantId);
                Time(w, "from", u.From);
                Time(w, "until", u.Until);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
    }

    private static void Time(Utf8JsonWriter w, string name, DateTimeOffset? time)
    {
        if (ReviewText.Time(time) is { } text)
        {
            w.WriteString(name, text);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void Seconds(Utf8JsonWriter w, string name, TimeSpan span) => w.WriteNumber(name, ReviewText.Seconds(span));

    private static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }

        w.WriteEndArray();
    }
}
