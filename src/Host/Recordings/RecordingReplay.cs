using System.Globalization;
using System.Text;
using Gatehouse.Engine.Recording;

namespace Gatehouse.Host.Recordings;

/// <summary>What a replay shows.</summary>
public sealed record ReplayOptions
{
    /// <summary>Rows shown of each result (and lines of each COPY); the others are counted.</summary>
    public int MaxRows { get; init; } = 50;

    /// <summary>Characters shown of one value; longer ones are cut with "...".</summary>
    public int MaxValueLength { get; init; } = 120;

    /// <summary>Characters shown of one statement text; a longer text is cut, saying how much was left out.</summary>
    public int MaxTextLength { get; init; } = 4000;
}

/// <summary>
/// Writes a recorded session as it happened, for people: a header (who, where, when, how it ended, whether the
/// recording verified), then each statement, decision, result (as a table), error and notice at its time from the
/// session's start. Values appear as recorded: masked values are already masked.
/// </summary>
public sealed class RecordingReplay
{
    private const string Indent = "              ";
    private readonly TextWriter _output;
    private readonly ReplayOptions _options;
    private readonly List<string?[]> _rows = [];
    private IReadOnlyList<string>? _columns;
    private long _omitted;
    private readonly List<string> _copyLines = [];
    private long _copyOmitted;
    private int _clientCopyMessages;
    private long _clientCopyBytes;

    private RecordingReplay(TextWriter output, ReplayOptions options)
    {
        _output = output;
        _options = options;
    }

    /// <summary>Writes the header from <paramref name="session"/>, then every event of <paramref name="events"/>.</summary>
    public static async Task WriteAsync(RecordedSession session, IAsyncEnumerable<RecordedEvent> events, TextWriter output, ReplayOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var replay = new RecordingReplay(output, options ?? new ReplayOptions());
        replay.WriteHeader(session);
        await foreach (var e in events.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            replay.Write(e);
        }

        replay.FlushTable(null);
    }

    /// <summary>How a recording's integrity reads in one line.</summary>
    public static string IntegrityText(RecordedSession session)
    {
        string text = session.Integrity switch
        {
            RecordingIntegrity.Intact => "intact",
            RecordingIntegrity.Recovered => "recovered (sealed by crash recovery: the end of the session may be missing)",
            RecordingIntegrity.Unsealed => "unsealed (no final seal: still being written, or cut short)",
            _ => "DAMAGED",
        };
        if (session.Integrity != RecordingIntegrity.Damaged && !session.SignaturesChecked)
        {
            text += ", signatures not checked" + (session.Verification?.Has(RecordingProblemKind.KeyIdMismatch) == true
                ? $" (signed with key {session.KeyId}, not the key given)"
                : " (no key)");
        }

        return text;
    }

    private void WriteHeader(RecordedSession s)
    {
        _output.WriteLine($"Session {s.SessionId} ({s.Protocol})");
        if (s.Integrity == RecordingIntegrity.Damaged)
        {
            _output.WriteLine("WARNING: this recording is DAMAGED: it was altered, cut or signed with another key. Only the blocks that verified are shown:");
            foreach (string problem in s.Problems)
            {
                _output.WriteLine($"  - {problem}");
            }
        }
        else if (s.Integrity == RecordingIntegrity.Unsealed)
        {
            _output.WriteLine("WARNING: this recording has no final seal: it is still being written, or its end was lost.");
        }

        if (!s.SignaturesChecked)
        {
            _output.WriteLine("WARNING: seal signatures were not checked: a rewritten recording would not be detected.");
        }

        _output.WriteLine($"identity:    {s.Identity ?? "(unknown)"}");
        _output.WriteLine($"connection:  {s.Connection ?? "(unknown)"}");
        _output.WriteLine($"role:        {s.Role ?? "(unknown)"}");
        _output.WriteLine($"client:      {s.ClientAddress ?? "(unknown)"}");
        _output.WriteLine($"start:       {Time(s.Start)}");
        _output.WriteLine(s.EndReason is null
            ? $"end:         no SessionEnd record (the recording stops {Seconds(s.Duration)} in)"
            : $"end:         {s.EndReason}{(s.EndSide is null ? "" : $" ({s.EndSide})")} after {Seconds(s.Duration)}");
        _output.WriteLine($"statements:  {s.Statements.Count} ({s.Denied} denied, {s.Held} held), {Plural(s.MaskedValues, "value")} masked");
        _output.WriteLine($"integrity:   {IntegrityText(s)}");
        _output.WriteLine($"file:        {s.Path}");
        foreach (string problem in s.DecodeProblems)
        {
            _output.WriteLine($"note:        {problem}");
        }

        _output.WriteLine();
    }

    private void Write(RecordedEvent e)
    {
        switch (e)
        {
            case SessionStartEvent start:
                var parts = new List<string>();
                foreach (var (name, value) in start.Attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
                {
                    if (name != "role")
                    {
                        parts.Add($"{name.Replace('_', ' ')} {value}");
                    }
                }

                Line(e, "session start" + (parts.Count > 0 ? ": " + string.Join(", ", parts) : "") + (start.Problem is null ? "" : $" ({start.Problem})"));
                break;
            case StatementEvent statement:
                FlushTable(null);
                WriteStatement(statement);
                break;
            case DecisionEvent decision:
                Line(e, "   " + DecisionText(decision));
                break;
            case ServerMessageEvent server:
                WriteServer(server);
                break;
            case ClientMessageEvent client:
                WriteClient(client);
                break;
            case ResultMetaEvent meta:
                Line(e, $"   {Plural(meta.MaskedValues, "value")} masked" + (meta.CommandTag is null ? "" : $" in {meta.CommandTag}"));
                break;
            case ErrorEvent error:
                Line(e, $"error ({DirectionText(error.Direction)}): {error.Severity} {error.Code}: {Clean(error.Message ?? "", int.MaxValue)}".Replace("  ", " ", StringComparison.Ordinal));
                break;
            case SessionEndEvent end:
                FlushTable(null);
                var bytes = new List<string>();
                if (end.BytesFromClient is { } fromClient)
                {
                    bytes.Add($"{fromClient} bytes from the client");
                }

                if (end.BytesFromServer is { } fromServer)
                {
                    bytes.Add($"{fromServer} bytes from the server");
                }

                if (end.MaskedValues is { } masked)
                {
                    bytes.Add($"{Plural(masked, "value")} masked");
                }

                Line(e, $"session end: {end.Reason ?? "(no reason)"}{(end.Side is null ? "" : $" ({end.Side})")}"
                        + (end.Detail is null ? "" : $": {Clean(end.Detail, int.MaxValue)}")
                        + (bytes.Count > 0 ? "; " + string.Join(", ", bytes) : ""));
                break;
            case RecoveryEvent recovery:
                Line(e, $"recovered after a crash: {Clean(recovery.Json, 500)}");
                break;
            case GapEvent gap:
                FlushTable(null);
                Line(e, $"!! events missing: {gap.Detail}");
                break;
            case StreamProblemEvent problem:
                FlushTable(null);
                Line(e, $"!! {problem.Detail}");
                break;
            case UnknownRecordEvent unknown:
                Line(e, $"(a record of kind 0x{(byte)unknown.Kind:x2} this reader does not know, {unknown.PayloadLength} bytes)");
                break;
        }
    }

    private void WriteStatement(StatementEvent s)
    {
        string name = s.Message is 'P' or 'B' && !string.IsNullOrEmpty(s.StatementName) ? s.StatementName + ": " : "";
        string portal = s.Message == 'B' && !string.IsNullOrEmpty(s.Portal) ? $" (portal {s.Portal})" : "";
        string text = s.UnknownStatement ? $"(statement {s.StatementName} was not prepared in this recording)" : s.Text;
        if (text.Length > _options.MaxTextLength)
        {
            text = text[.._options.MaxTextLength] + $" ... ({text.Length - _options.MaxTextLength} more characters)";
        }

        var lines = text.ReplaceLineEndings("\n").Split('\n');
        Line(s, $"{s.Message}  {name}{lines[0]}{portal}");
        foreach (string line in lines.Skip(1))
        {
            _output.WriteLine(Indent + line);
        }

        if (s.Parameters.Count > 0)
        {
            _output.WriteLine(Indent + string.Join(", ", s.Parameters.Select((p, i) => $"${i + 1} = {(p is null ? "NULL" : p.StartsWith(@"\x", StringComparison.Ordinal) ? p : "'" + Clean(p, _options.MaxValueLength).Replace("'", "''", StringComparison.Ordinal) + "'")}")));
        }
    }

    private static string DecisionText(DecisionEvent d) => d.Outcome switch
    {
        RecordedDecision.Allowed => "allowed",
        RecordedDecision.Denied => "DENIED" + (d.Rule is null ? "" : $" by rule {d.Rule}") + (d.Reason is null ? "" : $": {d.Reason}"),
        RecordedDecision.Held => "HELD" + (d.Rule is null ? "" : $" by rule {d.Rule}") + (d.Ticket is null ? "" : $": approval request {d.Ticket}"),
        RecordedDecision.Approved => "APPROVED" + (d.Approver is null ? "" : $" by {d.Approver}") + (d.Reason is null ? "" : $": {d.Reason}"),
        RecordedDecision.Rejected => "REJECTED" + (d.Approver is null ? "" : $" by {d.Approver}") + (d.Reason is null ? "" : $": {d.Reason}"),
        RecordedDecision.Expired => "EXPIRED" + (d.Ticket is null ? "" : $": approval request {d.Ticket} was not decided in time"),
        _ => $"decision {d.OutcomeName}",
    };

    private void WriteServer(ServerMessageEvent e)
    {
        switch (e.Message)
        {
            case PgRowDescription description:
                FlushTable(null);
                _columns = description.Columns.Select(c => c.Name).ToArray();
                break;
            case PgDataRow row:
                if (_rows.Count < _options.MaxRows)
                {
                    _rows.Add([.. row.Values]);
                }
                else
                {
                    _omitted++;
                }

                break;
            case PgCopyResponse copy when copy.Code == 'H':
                FlushTable(null);
                break;
            case PgCopyData data:
                if (_copyLines.Count < _options.MaxRows)
                {
                    _copyLines.Add(data.Data.TrimEnd('\n'));
                }
                else
                {
                    _copyOmitted++;
                }

                break;
            case PgCommandComplete complete:
                FlushTable(e);
                Line(e, "   " + complete.Tag);
                break;
            case PgNoticeMessage notice:
                FlushTable(e);
                string text = notice.ToString() + (notice.Detail is null ? "" : $" (detail: {notice.Detail})") + (notice.Hint is null ? "" : $" (hint: {notice.Hint})");
                Line(e, (e.Answers ? "   " : "") + Clean(text, int.MaxValue));
                break;
            case PgSimpleMessage { Code: 'I' }:
                Line(e, "   (empty query)");
                break;
            case PgSimpleMessage { Code: 's' }:
                FlushTable(null);
                Line(e, "   (portal suspended: more rows on the next Execute)");
                break;
            case PgReadyForQuery:
                FlushTable(e);
                break;
            case PgNotification notification:
                Line(e, $"NOTIFY {notification.Channel}: {Clean(notification.Payload, _options.MaxValueLength)} (from process {notification.ProcessId})");
                break;
            case PgFunctionCallResponse function:
                Line(e, $"   function result: {(function.Value is null ? "NULL" : Clean(function.Value, _options.MaxValueLength))}");
                break;
        }
    }

    private void WriteClient(ClientMessageEvent e)
    {
        switch (e.Message.Code)
        {
            case 'd':
                _clientCopyMessages++;
                _clientCopyBytes += e.Message.Length - 5;
                break;
            case 'c' or 'f':
                if (_clientCopyMessages > 0 || e.Message.Code == 'f')
                {
                    Line(e, $"   client sent {_clientCopyMessages} COPY data message{(_clientCopyMessages == 1 ? "" : "s")} ({_clientCopyBytes} bytes)"
                            + (e.Message.Code == 'f' ? $", then aborted the COPY: {Clean(e.Message.Text ?? "", 200)}" : ""));
                }

                _clientCopyMessages = 0;
                _clientCopyBytes = 0;
                break;
        }
    }

    /// <summary>
    /// Writes the rows (or COPY lines) gathered since the last RowDescription, if any. At the end of a result
    /// (<paramref name="at"/> given) the columns are forgotten too; otherwise they stay for the rows a later Execute
    /// of the same portal returns.
    /// </summary>
    private void FlushTable(RecordedEvent? at)
    {
        if (_rows.Count > 0 || _omitted > 0)
        {
            int count = _rows.Count == 0 ? 0 : _rows.Max(r => r.Length);
            var headers = Enumerable.Range(0, Math.Max(count, _columns?.Count ?? 0))
                .Select(i => _columns is not null && i < _columns.Count ? Clean(_columns[i], _options.MaxValueLength) : $"?column{i + 1}?").ToArray();
            var cells = _rows.Select(r => headers.Select((_, i) => i < r.Length ? r[i] is null ? "NULL" : Clean(r[i]!, _options.MaxValueLength) : "").ToArray()).ToList();
            var widths = headers.Select((h, i) => Math.Max(h.Length, cells.Count == 0 ? 0 : cells.Max(c => c[i].Length))).ToArray();
            _output.WriteLine(Indent + string.Join(" | ", headers.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
            _output.WriteLine(Indent + string.Join("-+-", widths.Select(w => new string('-', w))));
            foreach (var row in cells)
            {
                _output.WriteLine(Indent + string.Join(" | ", row.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
            }

            if (_omitted > 0)
            {
                _output.WriteLine(Indent + $"({_omitted} more row{(_omitted == 1 ? "" : "s")} not shown; --max-rows {_options.MaxRows})");
            }
        }

        if (_copyLines.Count > 0 || _copyOmitted > 0)
        {
            foreach (string line in _copyLines)
            {
                _output.WriteLine(Indent + Clean(line, _options.MaxValueLength * 4));
            }

            if (_copyOmitted > 0)
            {
                _output.WriteLine(Indent + $"({_copyOmitted} more COPY line{(_copyOmitted == 1 ? "" : "s")} not shown; --max-rows {_options.MaxRows})");
            }
        }

        _rows.Clear();
        _omitted = 0;
        _copyLines.Clear();
        _copyOmitted = 0;
        if (at is not null)
        {
            _columns = null;
        }
    }

    private static string Plural(long n, string noun) => $"{n} {noun}{(n == 1 ? "" : "s")}";

    private void Line(RecordedEvent e, string text) => _output.WriteLine($"{("+" + Seconds(e.At)),-10} {text}");

    /// <summary>Seconds with milliseconds: <c>12.345s</c>.</summary>
    public static string Seconds(TimeSpan time) => time.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture) + "s";

    private static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static string DirectionText(RecordDirection direction) => direction switch
    {
        RecordDirection.ClientToServer => "client",
        RecordDirection.ServerToClient => "server",
        RecordDirection.GatewayToClient => "gateway to client",
        RecordDirection.GatewayToServer => "gateway to server",
        _ => "gateway",
    };

    /// <summary>One line of text: control characters written as escapes, cut to <paramref name="max"/> characters.</summary>
    private static string Clean(string text, int max)
    {
        var clean = new StringBuilder(Math.Min(text.Length, max) + 8);
        foreach (char c in text)
        {
            if (clean.Length >= max)
            {
                clean.Append("...");
                break;
            }

            clean.Append(c switch
            {
                '\n' => @"\n",
                '\r' => @"\r",
                '\t' => @"\t",
                _ when char.IsControl(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }

        return clean.ToString();
    }
}
