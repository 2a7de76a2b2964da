using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Policy.Rules;
using static Gatehouse.Host.Review.ReviewText;

namespace Gatehouse.Host.Review;

/// <summary>
/// The review as one self-contained HTML file (<c>--format html</c>): inline CSS and script, nothing fetched. Per
/// identity a timeline (grants as bars, sessions as marks on a UTC time axis, in SVG) and tables; a session opens
/// to its statements with decision, rule, approver and result. Every text from the store or a recording is
/// HTML-escaped (statement texts are attacker-controlled), and a Content-Security-Policy allows only the page's
/// own style and script by hash, so even markup that slipped through could neither run nor load anything.
/// </summary>
public static class ReviewHtmlWriter
{
    private const double Left = 180;
    private const double Right = 990;
    private const double LaneHeight = 22;
    private const double AxisHeight = 28;

    /// <summary>Writes the whole page.</summary>
    public static void Write(ReviewReport report, TextWriter output)
    {
        var body = new StringBuilder();
        Body(report, body);
        string csp = $"default-src 'none'; style-src '{Hash(Style)}'; script-src '{Hash(Script)}'; img-src data:; base-uri 'none'; form-action 'none'";
        output.Write("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        output.Write($"<meta http-equiv=\"Content-Security-Policy\" content=\"{E(csp)}\">\n");
        output.Write("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        output.Write("<meta name=\"referrer\" content=\"no-referrer\">\n");
        output.Write($"<title>Gatehouse access review {E(ReviewWindow.Format(report.Since))} to {E(ReviewWindow.Format(report.Until))}</title>\n");
        output.Write($"<style>{Style}</style>\n</head>\n");
        output.Write(body.ToString());
        output.Write($"<script>{Script}</script>\n</body>\n</html>\n");
    }

    private static void Body(ReviewReport report, StringBuilder h)
    {
        h.Append("<body>\n<header>\n<h1>Access review</h1>\n");
        h.Append($"<p class=\"window\">{E(ReviewWindow.Format(report.Since))} to {E(ReviewWindow.Format(report.Until))} (UTC); generated {E(ReviewWindow.Format(report.GeneratedAt))}");
        if (report.IdentityFilter.Count > 0 || report.ConnectionFilter.Count > 0)
        {
            h.Append($"; limited to identities {E(Names(report.IdentityFilter))}, connections {E(Names(report.ConnectionFilter))}");
        }

        h.Append("</p>\n<p id=\"script-status\" class=\"muted\">Tables below; click a session to see its statements.</p>\n</header>\n");

        if (report.Warnings.Count > 0)
        {
            h.Append("<section class=\"warnings\" id=\"warnings\">\n<h2>Warnings</h2>\n<ul>\n");
            foreach (var warning in report.Warnings)
            {
                bool loud = ReviewBuilder.IsDamagedWarning(warning);
                h.Append($"<li{(loud ? " class=\"damaged\"" : "")}>{E(warning)}</li>\n");
            }

            h.Append("</ul>\n</section>\n");
        }

        var s = report.Summary;
        h.Append("<section class=\"summary\" id=\"summary\">\n<h2>Summary</h2>\n<dl>\n");
        foreach (var (name, value, alarm) in new (string, long, bool)[]
                 {
                     ("identities", s.Identities, false), ("grants", s.Grants, false), ("revoked grants", s.RevokedGrants, false),
                     ("denied requests", s.DeniedRequests, false), ("expired requests", s.ExpiredRequests, false), ("sessions", s.Sessions, false),
                     ("statements", s.Statements, false), ("denied", s.Denied, false), ("held", s.Held, false), ("masked values", s.Masked, false),
                     ("unused grants", s.UnusedGrants, s.UnusedGrants > 0), ("unused standing access", s.UnusedStanding, s.UnusedStanding > 0),
                     ("damaged recordings", s.DamagedRecordings, s.DamagedRecordings > 0), ("sessions without recording", s.UnrecordedSessions, s.UnrecordedSessions > 0),
                 })
        {
            h.Append($"<div{(alarm ? " class=\"alarm\"" : "")}><dt>{E(name)}</dt><dd>{Number(value)}</dd></div>\n");
        }

        h.Append("</dl>\n</section>\n");
        h.Append("<nav class=\"tools\"><label>Identity <input id=\"filter\" type=\"search\" placeholder=\"filter by name\" autocomplete=\"off\"></label> ");
        h.Append("<button type=\"button\" id=\"expand\">Open all sessions</button> <button type=\"button\" id=\"collapse\">Close all</button></nav>\n");
        h.Append("<p class=\"legend\">Timelines (UTC):");
        foreach (var (swatch, label) in new[]
                 {
                     ("<rect class=\"grant\" x=\"1\" y=\"1\" width=\"24\" height=\"10\" rx=\"2\"/>", "grant, used"),
                     ("<rect class=\"grant unused\" x=\"1\" y=\"1\" width=\"24\" height=\"10\" rx=\"2\"/>", "grant never used"),
                     ("<line class=\"revoked\" x1=\"13\" y1=\"0\" x2=\"13\" y2=\"12\"/>", "revoked"),
                     ("<rect class=\"session\" x=\"6\" y=\"2\" width=\"14\" height=\"8\"/>", "session"),
                     ("<rect class=\"session denied\" x=\"6\" y=\"2\" width=\"14\" height=\"8\"/>", "session with refusals"),
                     ("<rect class=\"session damaged\" x=\"6\" y=\"2\" width=\"14\" height=\"8\"/>", "damaged recording"),
                     ("<rect class=\"session missing\" x=\"6\" y=\"2\" width=\"14\" height=\"8\"/>", "no recording"),
                 })
        {
            h.Append($" <span><svg viewBox=\"0 0 26 12\" aria-hidden=\"true\">{swatch}</svg>{E(label)}</span>");
        }

        h.Append("</p>\n");

        if (report.Identities.Count == 0)
        {
            h.Append("<p class=\"empty\">No access, requests or sessions in this window.</p>\n");
        }

        int sessionIndex = 0;
        for (int i = 0; i < report.Identities.Count; i++)
        {
            var identity = report.Identities[i];
            var ids = new Dictionary<SessionReview, string>(ReferenceEqualityComparer.Instance);
            foreach (var session in identity.Sessions)
            {
                ids[session] = $"s-{sessionIndex++}";
            }

            Identity(report, identity, i, ids, h);
        }

        h.Append("<footer class=\"muted\">Gatehouse access review (docs/review.md). Times are UTC.</footer>\n");
    }

    private static void Identity(ReviewReport report, IdentityReview identity, int index, Dictionary<SessionReview, string> ids, StringBuilder h)
    {
        h.Append($"<section class=\"identity\" id=\"i-{index}\" data-identity=\"{E(identity.Identity)}\">\n");
        h.Append($"<h2>{E(identity.Identity)}</h2>\n");
        h.Append($"<p class=\"counts\">{Number(identity.Grants.Count)} grant(s), {Number(identity.Sessions.Count)} session(s), "
                 + $"{Number(identity.Sessions.Sum(x => x.Denied))} denied, {Number(identity.Sessions.Sum(x => x.Held))} held, "
                 + $"{Number(identity.Sessions.Sum(x => x.MaskedValues))} masked, {Number(identity.Unused.Count)} access never used</p>\n");
        Timeline(report, identity, ids, h);

        if (identity.Grants.Count > 0)
        {
            h.Append("<h3>Grants</h3>\n<table class=\"grants\">\n<thead><tr><th>grant</th><th>connection</th><th>role</th><th>requested</th><th>reason</th>"
                     + "<th>approved by</th><th>approved</th><th>from</th><th>until</th><th>for</th><th>status</th><th>revoked</th><th>sessions</th></tr></thead>\n<tbody>\n");
            foreach (var g in identity.Grants)
            {
                string revoked = g.RevokedBy is null ? "" : $"{g.RevokedBy} at {ReviewWindow.Format(g.RevokedAt!.Value)}{(g.RevokeReason is null ? "" : ": " + g.RevokeReason)}";
                h.Append($"<tr class=\"grant-row{(g.Used ? "" : " unused")}\" id=\"g-{E(g.Id)}\"><td class=\"id\">{E(g.Id)}</td><td>{E(g.Connection)}</td><td>{E(g.Role)}</td>"
                         + $"<td>{T(g.RequestedAt)}</td><td class=\"text\">{E(g.Reason)}</td><td>{E(g.ApprovedBy)}{(g.ApprovalReason is null ? "" : $"<div class=\"muted\">{E(g.ApprovalReason)}</div>")}</td>"
                         + $"<td>{T(g.ApprovedAt)}</td><td>{T(g.Start)}</td><td>{T(g.EffectiveEnd)}</td><td>{E(DurationText.Format(g.Duration))}</td>"
                         + $"<td><span class=\"status {E(g.Status)}\">{E(g.Status)}</span></td><td>{E(revoked)}</td>"
                         + $"<td>{(g.Used ? Number(g.SessionIds.Count) : "<span class=\"badge warn\">never used</span>")}</td></tr>\n");
            }

            h.Append("</tbody>\n</table>\n");
        }

        if (identity.Requests.Count > 0)
        {
            h.Append("<h3>Access requests not granted</h3>\n<table class=\"requests\">\n<thead><tr><th>request</th><th>state</th><th>connection</th><th>role</th>"
                     + "<th>for</th><th>requested</th><th>reason</th><th>decided by</th><th>decided</th><th>why</th></tr></thead>\n<tbody>\n");
            foreach (var r in identity.Requests)
            {
                h.Append($"<tr class=\"request-row\"><td class=\"id\">{E(r.Id)}</td><td>{E(r.State)}</td><td>{E(r.Connection)}</td><td>{E(r.Role)}</td>"
                         + $"<td>{E(DurationText.Format(r.Duration))}</td><td>{T(r.RequestedAt)}</td><td class=\"text\">{E(r.Reason)}</td><td>{E(r.DecidedBy)}</td>"
                         + $"<td>{T(r.DecidedAt)}</td><td class=\"text\">{E(r.DecisionReason)}</td></tr>\n");
            }

            h.Append("</tbody>\n</table>\n");
        }

        if (identity.Sessions.Count > 0)
        {
            h.Append("<h3>Sessions</h3>\n<table class=\"sessions\">\n<thead><tr><th>session</th><th>start</th><th>for</th><th>connection</th><th>role</th>"
                     + "<th>access</th><th>statements</th><th>denied</th><th>held</th><th>masked</th><th>tables</th><th>end</th><th>recording</th></tr></thead>\n<tbody>\n");
            foreach (var x in identity.Sessions)
            {
                string id = ids[x];
                h.Append($"<tr class=\"session-row{(x.Damaged ? " damaged" : "")}\" data-target=\"{id}\"><td class=\"id\"><a href=\"#{id}\" data-target=\"{id}\">{E(x.Id)}</a></td>"
                         + $"<td>{T(x.Start)}</td><td>{E(DurationText.Format(x.Duration))}</td><td>{E(x.Connection)}</td><td>{E(x.Role ?? "?")}</td>"
                         + $"<td>{E(Access(x))}</td><td>{E(Classes(x))}</td>"
                         + $"<td>{Number(x.Denied)}</td><td>{Number(x.Held)}</td><td>{Number(x.MaskedValues)}</td><td class=\"text\">{E(string.Join(", ", x.Tables))}</td>"
                         + $"<td>{E(x.EndReason ?? "-")}</td><td>{Integrity(x)}</td></tr>\n");
            }

            h.Append("</tbody>\n</table>\n");
            foreach (var x in identity.Sessions)
            {
                SessionDetail(x, ids[x], h);
            }
        }

        if (identity.Approvals.Count > 0)
        {
            h.Append("<h3>Held statements</h3>\n<table class=\"approvals\">\n<thead><tr><th>approval</th><th>state</th><th>by</th><th>decided</th><th>requested</th>"
                     + "<th>connection</th><th>rule</th><th>session</th><th>statement</th></tr></thead>\n<tbody>\n");
            foreach (var a in identity.Approvals)
            {
                string session = a.SessionId is null ? ""
                    : identity.Sessions.FirstOrDefault(x => x.Id == a.SessionId) is { } owner ? $"<a href=\"#{ids[owner]}\" data-target=\"{ids[owner]}\">{E(a.SessionId)}</a>"
                    : E(a.SessionId);
                h.Append($"<tr class=\"approval-row\"><td class=\"id\">{E(a.Id)}</td><td>{E(a.State)}</td><td>{E(a.DecidedBy)}{(a.Reason is null ? "" : $"<div class=\"muted\">{E(a.Reason)}</div>")}</td>"
                         + $"<td>{T(a.DecidedAt)}</td><td>{T(a.RequestedAt)}</td><td>{E(a.Connection)}</td><td>{E(a.Rule)}</td><td>{session}</td>"
                         + $"<td><pre class=\"sql\">{E(a.Statement)}</pre></td></tr>\n");
            }

            h.Append("</tbody>\n</table>\n");
        }

        if (identity.Standing.Count > 0)
        {
            h.Append("<h3>Standing access (current policy)</h3>\n<table class=\"standing\">\n<thead><tr><th>connection</th><th>role</th><th>used in the window</th></tr></thead>\n<tbody>\n");
            foreach (var a in identity.Standing)
            {
                bool unused = identity.IsUnused(a);
                h.Append($"<tr class=\"standing-row{(unused ? " unused" : "")}\"><td>{E(a.Connection)}</td><td>{E(a.Role)}</td>"
                         + $"<td>{(unused ? "<span class=\"badge warn\">never used</span>" : "yes")}</td></tr>\n");
            }

            h.Append("</tbody>\n</table>\n");
        }

        if (identity.Unused.Count > 0)
        {
            h.Append("<h3>Access never used</h3>\n<table class=\"unused\">\n<thead><tr><th>kind</th><th>connection</th><th>role</th><th>grant</th><th>from</th><th>until</th></tr></thead>\n<tbody>\n");
            foreach (var u in identity.Unused)
            {
                h.Append($"<tr class=\"unused-row\"><td>{E(u.Kind)}</td><td>{E(u.Connection)}</td><td>{E(u.Role)}</td><td>{E(u.GrantId)}</td><td>{T(u.From)}</td><td>{T(u.Until)}</td></tr>\n");
            }

            h.Append("</tbody>\n</table>\n");
        }

        h.Append("</section>\n");
    }

    private static void SessionDetail(SessionReview x, string id, StringBuilder h)
    {
        h.Append($"<details class=\"session-detail{(x.Damaged ? " damaged" : "")}\" id=\"{id}\">\n<summary>Session {E(x.Id)}: {Number(x.StatementCount)} statement(s), "
                 + $"{E(x.Connection)} as {E(x.Role ?? "?")}, {T(x.Start)}{(x.Damaged ? " <strong>DAMAGED RECORDING</strong>" : "")}</summary>\n");
        if (x.Damaged)
        {
            h.Append("<p class=\"banner\">DAMAGED RECORDING: the evidence below is not trustworthy; it may have been altered or cut.</p>\n");
        }

        h.Append("<dl class=\"meta\">");
        Meta(h, "recording", x.RecordingPath ?? "none");
        Meta(h, "integrity", x.Integrity);
        if (x.Problems.Count > 0)
        {
            Meta(h, "problems", string.Join("; ", x.Problems));
        }

        Meta(h, "client", x.ClientAddress ?? "");
        Meta(h, "ended", x.End is { } end ? ReviewWindow.Format(end) : "still open");
        Meta(h, "end reason", x.EndReason is null ? "-" : x.EndReason + (x.EndDetail is null ? "" : ": " + x.EndDetail));
        Meta(h, "access", Access(x));
        h.Append("</dl>\n");
        if (x.Statements.Count > 0)
        {
            h.Append("<table class=\"statements\">\n<thead><tr><th>at</th><th>msg</th><th>class</th><th>decision</th><th>rule</th><th>held / approver</th>"
                     + "<th>result</th><th>masked</th><th>statement</th></tr></thead>\n<tbody>\n");
            foreach (var t in x.Statements)
            {
                string held = t.Held ? $"held{(t.Approver is null ? "" : ", " + t.Approver)}{(t.Ticket is null ? "" : " (" + t.Ticket + ")")}" : "";
                h.Append($"<tr class=\"statement-row decision-{E(t.Decision)}\"><td>{T(t.At)}</td><td>{E(t.Message.ToString())}</td><td>{E(t.Class)}</td>"
                         + $"<td>{E(t.Decision)}</td><td>{E(t.Rule)}</td><td>{E(held)}</td><td class=\"text\">{E(t.Result)}</td><td>{Number(t.MaskedValues)}</td>"
                         + $"<td><pre class=\"sql\">{E(t.Text)}</pre>{(t.Parameters.Count == 0 ? "" : $"<div class=\"params\">parameters: {E(string.Join(", ", t.Parameters))}</div>")}</td></tr>\n");
            }

            h.Append("</tbody>\n</table>\n");
        }
        else
        {
            h.Append($"<p class=\"muted\">{(x.Integrity == ReviewBuilder.IntegrityMissing ? "No recording: what this session ran is unknown." : "No statements.")}</p>\n");
        }

        h.Append("</details>\n");
    }

    /// <summary>The identity's timeline: one lane per grant (its sessions marked on it), one per connection for sessions without a grant.</summary>
    private static void Timeline(ReviewReport report, IdentityReview identity, Dictionary<SessionReview, string> ids, StringBuilder h)
    {
        var lanes = new List<(string Label, GrantReview? Grant, List<SessionReview> Sessions)>();
        foreach (var g in identity.Grants)
        {
            lanes.Add(($"{g.Role} on {g.Connection}, {g.Id}", g, identity.Sessions.Where(x => x.GrantId == g.Id).ToList()));
        }

        foreach (var group in identity.Sessions.Where(x => x.GrantId is null).GroupBy(x => (x.Connection ?? "?", x.Access)).OrderBy(g => g.Key.Item1, StringComparer.Ordinal))
        {
            lanes.Add(($"{group.Key.Access} on {group.Key.Item1}", null, group.ToList()));
        }

        if (lanes.Count == 0)
        {
            return;
        }

        double height = AxisHeight + (lanes.Count * LaneHeight) + 8;
        double span = (report.Until - report.Since).TotalMilliseconds;
        double X(DateTimeOffset t) => Math.Clamp(Left + ((t - report.Since).TotalMilliseconds / span * (Right - Left)), Left, Right);

        h.Append($"<svg class=\"timeline\" viewBox=\"0 0 1000 {F(height)}\" role=\"img\" aria-label=\"timeline of {E(identity.Identity)}\">\n");
        h.Append($"<rect class=\"plot\" x=\"{F(Left)}\" y=\"0\" width=\"{F(Right - Left)}\" height=\"{F(height - 8)}\"/>\n");
        foreach (var (tick, label) in Ticks(report.Since, report.Until))
        {
            double x = X(tick);
            h.Append($"<line class=\"tick\" x1=\"{F(x)}\" y1=\"{F(AxisHeight - 6)}\" x2=\"{F(x)}\" y2=\"{F(height - 8)}\"/>");
            h.Append($"<text class=\"tick-label\" x=\"{F(x)}\" y=\"{F(AxisHeight - 10)}\">{E(label)}</text>\n");
        }

        for (int i = 0; i < lanes.Count; i++)
        {
            var (label, grant, sessions) = lanes[i];
            double y = AxisHeight + (i * LaneHeight);
            h.Append($"<text class=\"lane-label\" x=\"{F(Left - 6)}\" y=\"{F(y + 15)}\">{E(Short(label, 32))}</text>\n");
            if (grant is not null)
            {
                double x1 = X(grant.Start);
                double x2 = Math.Max(X(grant.EffectiveEnd), x1 + 2);
                string cls = grant.Used ? "grant" : "grant unused";
                h.Append($"<a href=\"#g-{E(grant.Id)}\"><rect class=\"{cls}\" x=\"{F(x1)}\" y=\"{F(y + 3)}\" width=\"{F(x2 - x1)}\" height=\"{F(LaneHeight - 6)}\" rx=\"3\">"
                         + $"<title>{E($"grant {grant.Id}: {grant.Role} on {grant.Connection}, {ReviewWindow.Format(grant.Start)} to {ReviewWindow.Format(grant.EffectiveEnd)}, approved by {grant.ApprovedBy}, {grant.Status}{(grant.Used ? "" : ", never used")}")}</title></rect></a>\n");
                if (grant.RevokedAt is { } revoked && revoked >= report.Since && revoked < report.Until)
                {
                    h.Append($"<line class=\"revoked\" x1=\"{F(X(revoked))}\" y1=\"{F(y + 1)}\" x2=\"{F(X(revoked))}\" y2=\"{F(y + LaneHeight - 1)}\"><title>{E($"revoked by {grant.RevokedBy}")}</title></line>\n");
                }
            }

            foreach (var x in sessions)
            {
                double x1 = X(x.Start);
                double x2 = Math.Max(X(x.End ?? report.GeneratedAt), x1 + 3);
                string cls = x.Damaged ? "session damaged" : x.Integrity == ReviewBuilder.IntegrityMissing ? "session missing" : x.Denied > 0 ? "session denied" : "session";
                string id = ids[x];
                h.Append($"<a href=\"#{id}\" data-target=\"{id}\" class=\"mark\"><rect class=\"{cls}\" x=\"{F(x1)}\" y=\"{F(y + 6)}\" width=\"{F(x2 - x1)}\" height=\"{F(LaneHeight - 12)}\">"
                         + $"<title>{E($"session {x.Id}: {ReviewWindow.Format(x.Start)}, {DurationText.Format(x.Duration)}, {x.StatementCount} statement(s), {x.Denied} denied, {x.Held} held, recording {x.Integrity}")}</title></rect></a>\n");
            }
        }

        h.Append("</svg>\n");
    }

    /// <summary>Tick times aligned to a round step that gives at most 8 ticks, with their labels.</summary>
    internal static IEnumerable<(DateTimeOffset At, string Label)> Ticks(DateTimeOffset since, DateTimeOffset until)
    {
        TimeSpan[] steps =
        [
            TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15), TimeSpan.FromHours(1), TimeSpan.FromHours(3),
            TimeSpan.FromHours(6), TimeSpan.FromHours(12), TimeSpan.FromDays(1), TimeSpan.FromDays(2), TimeSpan.FromDays(7), TimeSpan.FromDays(14),
            TimeSpan.FromDays(30), TimeSpan.FromDays(90), TimeSpan.FromDays(365),
        ];
        var span = until - since;
        var step = steps.FirstOrDefault(s => span / s <= 8, steps[^1]);
        long first = ((since.UtcTicks + step.Ticks - 1) / step.Ticks) * step.Ticks;
        string format = step >= TimeSpan.FromDays(1) ? "yyyy-MM-dd" : span > TimeSpan.FromDays(1) ? "MM-dd HH:mm" : "HH:mm";
        for (long t = first; t < until.UtcTicks; t += step.Ticks)
        {
            var at = new DateTimeOffset(t, TimeSpan.Zero);
            yield return (at, at.ToString(format, CultureInfo.InvariantCulture));
        }
    }

    private static string Integrity(SessionReview x) => x.Integrity switch
    {
        ReviewBuilder.IntegrityDamaged => "<span class=\"badge damaged\">DAMAGED: not trustworthy</span>",
        ReviewBuilder.IntegrityMissing => "<span class=\"badge warn\">no recording</span>",
        ReviewBuilder.IntegrityUnsealed => "<span class=\"badge warn\">unsealed</span>",
        _ => $"<span class=\"badge ok\">{E(x.Integrity)}</span>",
    };

    /// <summary>What gave a session access, in words: <c>grant gr_...</c>, <c>standing</c> or <c>unexplained</c>.</summary>
    private static string Access(SessionReview x) => x.GrantId is null ? x.Access : "grant " + x.GrantId;

    private static void Meta(StringBuilder h, string name, string value) => h.Append($"<dt>{E(name)}</dt><dd>{E(value)}</dd>");

    /// <summary>HTML-escapes text for element content and quoted attribute values.</summary>
    public static string E(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }

        var b = new StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            switch (c)
            {
                case '&': b.Append("&amp;"); break;
                case '<': b.Append("&lt;"); break;
                case '>': b.Append("&gt;"); break;
                case '"': b.Append("&quot;"); break;
                case '\'': b.Append("&#39;"); break;
                case '\0': b.Append('\uFFFD'); break;
                default: b.Append(c); break;
            }
        }

        return b.ToString();
    }

    private static string T(DateTimeOffset? time) => time is { } t ? $"<time datetime=\"{E(Time(t))}\">{E(ReviewWindow.Format(t))}</time>" : "";

    private static string F(double d) => d.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Short(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    private static string Hash(string text) => "sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    private const string Style = """

        :root { color-scheme: light; --ink: #1d2330; --muted: #667085; --line: #d7dce5; --grant: #cfe0fb; --grant-edge: #3f6fb5; --unused: #fde7b0;
                --unused-edge: #b7791f; --session: #1f4f9c; --denied: #c2410c; --damaged: #c81e1e; --ok: #1f7a3f; }
        * { box-sizing: border-box; }
        body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0 24px 40px; background: #fff; }
        header h1 { margin: 16px 0 4px; font-size: 22px; }
        h2 { font-size: 18px; margin: 20px 0 6px; }
        h3 { font-size: 14px; margin: 14px 0 4px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
        .muted { color: var(--muted); }
        .warnings { border: 2px solid var(--unused-edge); background: #fffaf0; padding: 4px 14px; margin: 12px 0; }
        .warnings li.damaged { color: var(--damaged); font-weight: 700; }
        .summary dl { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; }
        .summary dl div { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; min-width: 110px; }
        .summary dl div.alarm { border-color: var(--damaged); background: #fff1f1; }
        .summary dt { font-size: 11px; color: var(--muted); text-transform: uppercase; }
        .summary dd { margin: 0; font-size: 20px; font-weight: 600; }
        nav.tools { margin: 14px 0; display: flex; gap: 8px; align-items: center; }
        section.identity { border-top: 2px solid var(--line); margin-top: 18px; }
        section.identity[hidden] { display: none; }
        table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; font-size: 13px; }
        th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
        th { background: #f4f6fa; font-weight: 600; }
        time { white-space: nowrap; }
        .legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; color: var(--muted); margin: 4px 0 10px; }
        .legend svg { width: 26px; height: 12px; vertical-align: middle; margin-right: 4px; }
        .legend .session { fill: var(--session); }
        .legend .session.denied { fill: var(--denied); }
        .legend .session.missing { fill: #fff; stroke: var(--muted); stroke-dasharray: 2 1; }
        .legend .session.damaged { fill: var(--damaged); stroke: #000; stroke-width: 1.5; }
        .legend .grant { fill: var(--grant); stroke: var(--grant-edge); }
        .legend .grant.unused { fill: var(--unused); stroke: var(--unused-edge); stroke-dasharray: 4 2; }
        .legend .revoked { stroke: var(--damaged); stroke-width: 3; }
        td.id { font-family: ui-monospace, Menlo, monospace; white-space: nowrap; }
        td.text { min-width: 12em; max-width: 320px; overflow-wrap: anywhere; }
        tr.session-row { cursor: pointer; }
        tr.session-row:hover { background: #f0f5ff; }
        tr.damaged td { background: #fff1f1; }
        tr.unused td { background: #fffaf0; }
        pre.sql { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font: 12px/1.35 ui-monospace, Menlo, monospace; max-width: 640px; }
        .params { font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
        .badge { border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 600; white-space: nowrap; }
        .badge.ok { background: #e7f6ec; color: var(--ok); }
        .badge.warn { background: #fff4db; color: #8a5a00; }
        .badge.damaged { background: var(--damaged); color: #fff; }
        .status.revoked { color: var(--damaged); }
        .status.live { color: var(--ok); font-weight: 600; }
        details.session-detail { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 4px 10px; }
        details.session-detail.damaged { border: 2px solid var(--damaged); }
        details.session-detail summary { cursor: pointer; font-weight: 600; }
        .banner { background: var(--damaged); color: #fff; padding: 6px 10px; font-weight: 700; }
        dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; font-size: 12px; }
        dl.meta dt { color: var(--muted); }
        dl.meta dd { margin: 0; overflow-wrap: anywhere; }
        tr.decision-denied td, tr.decision-rejected td { color: var(--denied); }
        svg.timeline { width: 100%; height: auto; display: block; margin: 6px 0; font: 11px system-ui, sans-serif; }
        svg .plot { fill: #fafbfd; stroke: var(--line); }
        svg .tick { stroke: #e3e7ee; }
        svg .tick-label { fill: var(--muted); text-anchor: middle; font-size: 10px; }
        svg .lane-label { fill: var(--ink); text-anchor: end; font-size: 11px; }
        svg .grant { fill: var(--grant); stroke: var(--grant-edge); }
        svg .grant.unused { fill: var(--unused); stroke: var(--unused-edge); stroke-dasharray: 4 2; }
        svg .revoked { stroke: var(--damaged); stroke-width: 3; }
        svg .session { fill: var(--session); }
        svg .session.denied { fill: var(--denied); }
        svg .session.missing { fill: #fff; stroke: var(--muted); stroke-dasharray: 2 1; }
        svg .session.damaged { fill: var(--damaged); stroke: #000; stroke-width: 1.5; }
        svg a.mark { cursor: pointer; }
        footer { margin-top: 30px; font-size: 12px; }

        """;

    private const string Script = """

        (function () {
          'use strict';
          function openSession(id) {
            var d = document.getElementById(id);
            if (!d || d.tagName !== 'DETAILS') { return; }
            d.open = true;
            d.scrollIntoView({ block: 'start' });
          }
          document.addEventListener('click', function (e) {
            var target = e.target && e.target.closest ? e.target.closest('[data-target]') : null;
            if (target) { openSession(target.getAttribute('data-target')); }
          });
          if (location.hash.length > 1) { openSession(location.hash.slice(1)); }
          var filter = document.getElementById('filter');
          filter.addEventListener('input', function () {
            var q = filter.value.toLowerCase();
            document.querySelectorAll('section.identity').forEach(function (s) {
              s.hidden = q !== '' && s.getAttribute('data-identity').toLowerCase().indexOf(q) < 0;
            });
          });
          function all(open) {
            document.querySelectorAll('details.session-detail').forEach(function (d) { d.open = open; });
          }
          document.getElementById('expand').addEventListener('click', function () { all(true); });
          document.getElementById('collapse').addEventListener('click', function () { all(false); });
          var sessions = document.querySelectorAll('tr.session-row').length;
          var identities = document.querySelectorAll('section.identity').length;
          document.getElementById('script-status').textContent =
            identities + ' identities, ' + sessions + ' sessions. Click a session (row or timeline mark) to see its statements.';
          document.body.setAttribute('data-ready', 'true');
        })();

        """;
}
