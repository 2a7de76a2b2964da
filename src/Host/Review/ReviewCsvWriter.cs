using System.Globalization;
using System.Text;
using System.Text.Json;
using static Gatehouse.Host.Review.ReviewText;

namespace Gatehouse.Host.Review;

/// <summary>
/// The review as one flat CSV file (<c>--format csv</c>, docs/review.md#csv): every row has every column, and the
/// <c>record</c> column says what the row is (summary, warning, grant, request, session, statement, approval,
/// standing, unused); columns that do not apply are empty. RFC 4180: CRLF line ends, fields with a comma, quote or
/// line break are quoted, quotes doubled. A field that starts with <c>= + - @</c>, tab or carriage return gets a
/// leading <c>'</c>, so a spreadsheet never reads a statement text as a formula.
/// </summary>
public static class ReviewCsvWriter
{
    /// <summary>The columns, in order.</summary>
    public static readonly IReadOnlyList<string> Columns =
    [
        "record", "identity", "id", "connection", "role", "state", "start", "end", "duration_s", "requested_at", "reason", "decided_by", "decided_at",
        "decision_reason", "revoked_by", "revoked_at", "revoke_reason", "request_id", "grant_id", "session_id", "access", "recording", "integrity",
        "problems", "end_reason", "end_detail", "statements", "classes", "denied", "held", "masked", "tables", "class", "decision", "rule", "approver",
        "ticket", "result", "text", "parameters", "value",
    ];

    private static readonly Dictionary<string, int> s_index =
        Columns.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i, StringComparer.Ordinal);

    /// <summary>Writes the whole report.</summary>
    public static void Write(ReviewReport report, TextWriter output)
    {
        WriteRow(output, Columns);
        foreach (var (name, value) in report.Summary.Counters)
        {
            Row(output, "summary", ("id", name), ("start", Time(report.Since)), ("end", Time(report.Until)), ("value", Number(value)));
        }

        foreach (var warning in report.Warnings)
        {
            Row(output, "warning", ("text", warning));
        }

        foreach (var identity in report.Identities)
        {
            string who = identity.Identity;
            foreach (var g in identity.Grants)
            {
                Row(output, "grant", ("identity", who), ("id", g.Id), ("connection", g.Connection), ("role", g.Role), ("state", g.Status),
                    ("start", Time(g.Start)), ("end", Time(g.End)), ("duration_s", Seconds(g.Duration)), ("requested_at", Time(g.RequestedAt)),
                    ("reason", g.Reason), ("decided_by", g.ApprovedBy), ("decided_at", Time(g.ApprovedAt)), ("decision_reason", g.ApprovalReason),
                    ("revoked_by", g.RevokedBy), ("revoked_at", Time(g.RevokedAt)), ("revoke_reason", g.RevokeReason), ("request_id", g.RequestId),
                    ("value", Number(g.SessionIds.Count)));
            }

            foreach (var r in identity.Requests)
            {
                Row(output, "request", ("identity", who), ("id", r.Id), ("connection", r.Connection), ("role", r.Role), ("state", r.State),
                    ("duration_s", Seconds(r.Duration)), ("requested_at", Time(r.RequestedAt)), ("reason", r.Reason), ("decided_by", r.DecidedBy),
                    ("decided_at", Time(r.DecidedAt)), ("decision_reason", r.DecisionReason));
            }

            foreach (var x in identity.Sessions)
            {
                Row(output, "session", ("identity", who), ("id", x.Id), ("connection", x.Connection), ("role", x.Role), ("start", Time(x.Start)),
                    ("end", Time(x.End)), ("duration_s", Seconds(x.Duration)), ("grant_id", x.GrantId), ("session_id", x.Id), ("access", x.Access),
                    ("recording", x.RecordingPath), ("integrity", x.Integrity), ("problems", string.Join("; ", x.Problems)), ("end_reason", x.EndReason),
                    ("end_detail", x.EndDetail), ("statements", Number(x.StatementCount)), ("classes", Classes(x)),
                    ("denied", Number(x.Denied)), ("held", Number(x.Held)), ("masked", Number(x.MaskedValues)), ("tables", string.Join(" ", x.Tables)));
                foreach (var t in x.Statements)
                {
                    Row(output, "statement", ("identity", who), ("connection", x.Connection), ("role", x.Role), ("start", Time(t.At)),
                        ("session_id", x.Id), ("grant_id", x.GrantId), ("integrity", x.Integrity), ("held", t.Held ? "1" : "0"),
                        ("masked", Number(t.MaskedValues)), ("class", t.Class), ("decision", t.Decision), ("rule", t.Rule), ("approver", t.Approver),
                        ("ticket", t.Ticket), ("result", t.Result), ("text", t.Text), ("parameters", t.Parameters.Count == 0 ? null : JsonSerializer.Serialize(t.Parameters)),
                        ("value", t.Message.ToString()));
                }
            }

            foreach (var a in identity.Approvals)
            {
                Row(output, "approval", ("identity", who), ("id", a.Id), ("connection", a.Connection), ("role", a.Role), ("state", a.State),
                    ("requested_at", Time(a.RequestedAt)), ("decided_by", a.DecidedBy), ("decided_at", Time(a.DecidedAt)), ("decision_reason", a.Reason),
                    ("session_id", a.SessionId), ("rule", a.Rule), ("text", a.Statement));
            }

            foreach (var a in identity.Standing)
            {
                Row(output, "standing", ("identity", who), ("connection", a.Connection), ("role", a.Role));
            }

            foreach (var u in identity.Unused)
            {
                Row(output, "unused", ("identity", who), ("id", u.GrantId), ("connection", u.Connection), ("role", u.Role), ("state", u.Kind),
                    ("start", Time(u.From)), ("end", Time(u.Until)), ("grant_id", u.GrantId));
            }
        }
    }

    /// <summary>One field, quoted when needed and defused against formula injection.</summary>
    public static string Field(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "";
        }

        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            value = "'" + value;
        }

        return value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>A duration in seconds, to the millisecond.</summary>
    private static string Seconds(TimeSpan span) => ReviewText.Seconds(span).ToString("0.###", CultureInfo.InvariantCulture);

    private static void Row(TextWriter output, string record, params (string Column, string? Value)[] cells)
    {
        var row = new string?[Columns.Count];
        row[0] = record;
        foreach (var (column, value) in cells)
        {
            row[s_index[column]] = value;
        }

        WriteRow(output, row);
    }

    private static void WriteRow(TextWriter output, IReadOnlyList<string?> cells)
    {
        var line = new StringBuilder();
        for (int i = 0; i < cells.Count; i++)
        {
            if (i > 0)
            {
                line.Append(',');
            }

            line.Append(Field(cells[i]));
        }

        line.Append("\r\n");
        output.Write(line.ToString());
    }
}
