using Gatehouse.Host.Cli;
using Gatehouse.Policy.Rules;
using static Gatehouse.Host.Review.ReviewText;

namespace Gatehouse.Host.Review;

/// <summary>The review as plain-text tables for a terminal (<c>--format table</c>), one block per identity.</summary>
public static class ReviewTableWriter
{
    /// <summary>Writes the whole report.</summary>
    public static void Write(ReviewReport report, TextWriter output)
    {
        output.WriteLine($"Access review {ReviewWindow.Format(report.Since)} .. {ReviewWindow.Format(report.Until)} "
                         + $"(generated {ReviewWindow.Format(report.GeneratedAt)})");
        if (report.IdentityFilter.Count > 0 || report.ConnectionFilter.Count > 0)
        {
            output.WriteLine($"Limited to identities: {Names(report.IdentityFilter)}; connections: {Names(report.ConnectionFilter)}");
        }

        output.WriteLine();
        foreach (var warning in report.Warnings)
        {
            output.WriteLine($"WARNING: {Line(warning)}");
        }

        if (report.Warnings.Count > 0)
        {
            output.WriteLine();
        }

        var s = report.Summary;
        output.WriteLine("Summary");
        TextTable.Write(output, ["IDENTITIES", "GRANTS", "REVOKED", "DENIED REQ", "EXPIRED REQ", "SESSIONS", "STATEMENTS", "DENIED", "HELD", "MASKED",
                "UNUSED GRANTS", "UNUSED STANDING", "DAMAGED", "UNRECORDED"],
            [[Number(s.Identities), Number(s.Grants), Number(s.RevokedGrants), Number(s.DeniedRequests), Number(s.ExpiredRequests), Number(s.Sessions),
                Number(s.Statements), Number(s.Denied), Number(s.Held), Number(s.Masked), Number(s.UnusedGrants), Number(s.UnusedStanding),
                Number(s.DamagedRecordings), Number(s.UnrecordedSessions)]]);

        foreach (var identity in report.Identities)
        {
            output.WriteLine();
            output.WriteLine($"== {Line(identity.Identity)} ==");
            if (identity.Grants.Count > 0)
            {
                output.WriteLine("Grants:");
                TextTable.Write(output, ["ID", "CONNECTION", "ROLE", "REQUESTED", "REASON", "APPROVED BY", "APPROVED", "FROM", "UNTIL", "FOR", "STATUS",
                        "REVOKED BY", "SESSIONS"],
                    identity.Grants.Select(g => new[]
                    {
                        g.Id, g.Connection, g.Role, TextTable.Time(g.RequestedAt), TextTable.Short(g.Reason, 40), g.ApprovedBy, TextTable.Time(g.ApprovedAt),
                        TextTable.Time(g.Start), TextTable.Time(g.EffectiveEnd), DurationText.Format(g.Duration), g.Status,
                        g.RevokedBy is null ? "" : $"{g.RevokedBy} {TextTable.Time(g.RevokedAt)}", Number(g.SessionIds.Count),
                    }));
            }

            if (identity.Requests.Count > 0)
            {
                output.WriteLine("Access requests not granted:");
                TextTable.Write(output, ["ID", "STATE", "CONNECTION", "ROLE", "FOR", "REQUESTED", "REASON", "DECIDED BY", "DECIDED", "WHY"],
                    identity.Requests.Select(r => new[]
                    {
                        r.Id, r.State, r.Connection, r.Role, DurationText.Format(r.Duration), TextTable.Time(r.RequestedAt), TextTable.Short(r.Reason, 40),
                        r.DecidedBy, TextTable.Time(r.DecidedAt), TextTable.Short(r.DecisionReason, 40),
                    }));
            }

            if (identity.Sessions.Count > 0)
            {
                output.WriteLine("Sessions:");
                TextTable.Write(output, ["SESSION", "START", "FOR", "CONNECTION", "ROLE", "ACCESS", "STATEMENTS", "DENIED", "HELD", "MASKED", "TABLES",
                        "END", "RECORDING"],
                    identity.Sessions.Select(x => new[]
                    {
                        x.Id, TextTable.Time(x.Start), DurationText.Format(x.Duration), x.Connection, x.Role ?? "?", x.GrantId ?? x.Access, Classes(x),
                        Number(x.Denied), Number(x.Held), Number(x.MaskedValues), TextTable.Short(string.Join(",", x.Tables), 40),
                        x.EndReason ?? "-", x.Damaged ? "DAMAGED: NOT TRUSTWORTHY" : x.Integrity,
                    }));
            }

            if (identity.Approvals.Count > 0)
            {
                output.WriteLine("Held statements:");
                TextTable.Write(output, ["ID", "STATE", "BY", "DECIDED", "REQUESTED", "CONNECTION", "RULE", "SESSION", "STATEMENT"],
                    identity.Approvals.Select(a => new[]
                    {
                        a.Id, a.State, a.DecidedBy, TextTable.Time(a.DecidedAt), TextTable.Time(a.RequestedAt), a.Connection, a.Rule, a.SessionId,
                        TextTable.Short(a.Statement, 60),
                    }));
            }

            if (identity.Standing.Count > 0)
            {
                output.WriteLine("Standing access (current policy):");
                TextTable.Write(output, ["CONNECTION", "ROLE", "USED"],
                    identity.Standing.Select(a => new[] { a.Connection, a.Role, identity.IsUnused(a) ? "no" : "yes" }));
            }

            if (identity.Unused.Count > 0)
            {
                output.WriteLine("Access never used:");
                TextTable.Write(output, ["KIND", "CONNECTION", "ROLE", "GRANT", "FROM", "UNTIL"],
                    identity.Unused.Select(u => new[] { u.Kind, u.Connection, u.Role, u.GrantId, TextTable.Time(u.From), TextTable.Time(u.Until) }));
            }
        }

        if (report.Identities.Count == 0)
        {
            output.WriteLine();
            output.WriteLine("No access, requests or sessions in this window.");
        }
    }

    private static string Line(string text) => string.Create(text.Length, text, static (span, t) =>
    {
        for (int i = 0; i < t.Length; i++)
        {
            span[i] = char.IsControl(t[i]) ? ' ' : t[i];
        }
    });
}
