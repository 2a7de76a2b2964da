using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gatehouse.Engine.Relay;
using Gatehouse.Policy.Masking;
using Gatehouse.Policy.Sql;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// Masking on one PostgreSQL session. The client direction asks <see cref="Analyze"/> how each statement text uses
/// masked names (the policy gate refuses what cannot be masked and remembers the rest with the request); the server
/// direction builds a mask plan from every RowDescription and rewrites DataRows, COPY rows, errors, notices and
/// notifications by it. A masked value never leaves: what cannot be masked is refused, or the session ends.
/// </summary>
/// <remarks>
/// Server-direction state (plans, scratch buffers) is touched by the server direction only; the rule set and the
/// catalog index are swapped atomically and read by both.
/// </remarks>
internal sealed class PgSessionMasking
{
    /// <summary>Detector matches remembered per row; beyond it, a value with matches is masked whole.</summary>
    private const int MaxMatchesPerRow = 256;

    private readonly PgCatalogCache? _catalog;
    private readonly PgRowPlan _queryPlan = new();
    private readonly List<(byte[] Name, PgRowPlan Plan)> _portals = [];
    private readonly Stack<PgRowPlan> _freePlans = new();
    private readonly PgScratch _scratch = new();
    private readonly DetectorMatch[] _matches = new DetectorMatch[MaxMatchesPerRow];
    private int[] _cellMatchStart = new int[16];
    private int[] _cellMatchCount = new int[16];
    private byte[] _contiguous = new byte[4096];
    private volatile SessionMasking? _rules;
    private volatile PgMaskIndex? _index;

    // Server direction: the plan DataRows follow now (null: ask the gate), the COPY being sent, and the catalog
    // version a RowDescription waited for (it waits once).
    private PgRowPlan? _rows;
    private PgCopyPlan? _copy;
    private long _waitedForVersion = -1;

    private long _maskedValues;

    public PgSessionMasking(SessionMasking? rules, PgCatalogCache? catalog)
    {
        _rules = rules;
        _catalog = catalog;
    }

    /// <summary>The rules that apply to the session now; null when none does (everything passes).</summary>
    public SessionMasking? Rules => _rules;

    /// <summary>A policy reload changed the session's rules.</summary>
    public void Update(SessionMasking? rules) => _rules = rules;

    /// <summary>Woken (the server direction) when the catalog was reloaded for a RowDescription that waited.</summary>
    public Action? WakeServer { get; set; }

    /// <summary>The masked columns under the current catalog and rules; null when no rule masks by column or no catalog is loaded.</summary>
    private PgMaskIndex? Index(SessionMasking rules)
    {
        if (rules.ColumnRules.Count == 0 || _catalog?.Current is not { } catalog)
        {
            return null;
        }

        var index = _index;
        if (index is null || !ReferenceEquals(index.Catalog, catalog) || !ReferenceEquals(index.Rules, rules))
        {
            index = PgMaskIndex.For(catalog, rules);
            _index = index;
        }

        return index;
    }

    // ---- Client direction ------------------------------------------------------------------------------------

    /// <summary>How a statement text uses masked names (<see cref="MaskAnalysis.None"/> when there are none to use).</summary>
    public MaskAnalysis Analyze(ReadOnlySpan<byte> text, bool standardConformingStrings)
    {
        var rules = _rules;
        if (rules is null)
        {
            return MaskAnalysis.None;
        }

        if (Index(rules) is not { } index)
        {
            if (rules.ColumnRules.Count == 0)
            {
                return MaskAnalysis.None;
            }

            // Columns are masked by the catalog: without one nothing may run. Ask for the first load (callers share a
            // running one; it has not changed, so this is no invalidation); a failure is the cache's to log.
            _catalog?.GetAsync(CancellationToken.None).ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            var unavailable = MaskAnalysis.None;
            unavailable.Unavailable = true;
            return unavailable;
        }

        return StatementMaskAnalyzer.Analyze(text, new SqlLexSettings(standardConformingStrings), index.Names);
    }

    /// <summary>The catalog changed under the session (DDL ran): reload it.</summary>
    public void CatalogChanged() => _catalog?.Invalidate();

    // ---- Server direction: result shapes ---------------------------------------------------------------------

    /// <summary>
    /// Whether a RowDescription must wait for a catalog reload: it names a table the catalog does not know (created
    /// since the last load). It waits once; if the reloaded catalog still does not know it, the column is treated
    /// as computed.
    /// </summary>
    public bool MustWaitForCatalog(in ReadOnlySequence<byte> rowDescription)
    {
        var rules = _rules;
        if (rules is null || _catalog is null || Index(rules) is not { } index)
        {
            return false;
        }

        if (_waitedForVersion >= 0)
        {
            if (index.Catalog.Version <= _waitedForVersion)
            {
                return true; // still loading
            }

            _waitedForVersion = -1;
            return false;
        }

        if (!PgRowPlan.NamesUnknownTable(rowDescription.Slice(5), index))
        {
            return false;
        }

        _waitedForVersion = index.Catalog.Version;
        _catalog.Refreshed += OnRefreshed;
        _catalog.Invalidate();
        return true;
    }

    private void OnRefreshed(PgCatalogSnapshot snapshot)
    {
        _catalog!.Refreshed -= OnRefreshed;
        WakeServer?.Invoke();
    }

    /// <summary>A RowDescription answering a simple Query: the rows that follow use it.</summary>
    public void QueryRows(in ReadOnlySequence<byte> rowDescription, int referencedRule)
    {
        Build(_queryPlan, rowDescription, referencedRule);
        _rows = _queryPlan;
    }

    /// <summary>A RowDescription (or NoData, <paramref name="rowDescription"/> empty) describing a portal: kept for its Executes.</summary>
    public void PortalRows(ReadOnlySpan<byte> portal, in ReadOnlySequence<byte> rowDescription, int referencedRule)
    {
        PgRowPlan? plan = null;
        foreach (var (name, existing) in _portals)
        {
            if (portal.SequenceEqual(name))
            {
                plan = existing;
                break;
            }
        }

        if (plan is null)
        {
            plan = _freePlans.TryPop(out var free) ? free : new PgRowPlan();
            _portals.Add((portal.ToArray(), plan));
        }

        if (rowDescription.IsEmpty)
        {
            plan.Clear();
        }
        else
        {
            Build(plan, rowDescription, referencedRule);
        }
    }

    /// <summary>The plan of a portal being executed; null when it was never described (the session must end).</summary>
    public PgRowPlan? PortalPlan(ReadOnlySpan<byte> portal)
    {
        foreach (var (name, plan) in _portals)
        {
            if (portal.SequenceEqual(name))
            {
                return plan;
            }
        }

        return null;
    }

    /// <summary>Rows from now on follow <paramref name="plan"/> (an Execute became current).</summary>
    public void UseRows(PgRowPlan? plan) => _rows = plan;

    /// <summary>A result ended (CommandComplete, PortalSuspended, an error): the next rows need their plan anew.</summary>
    public void EndRows() => _rows = null;

    /// <summary>The transaction ended: protocol portals are gone (cursors are fetched through their own RowDescription).</summary>
    public void TransactionEnded()
    {
        foreach (var (_, plan) in _portals)
        {
            if (_freePlans.Count < 64)
            {
                _freePlans.Push(plan);
            }
        }

        _portals.Clear();
    }

    /// <summary>Whether a plan for DataRows is in place.</summary>
    public bool HasRows => _rows is not null;

    /// <summary>
    /// Values masked so far (result cells and COPY fields, by origin or by a detector), for the recording and the
    /// review. Written by the server direction only.
    /// </summary>
    public long MaskedValues => _maskedValues;

    private void Build(PgRowPlan plan, in ReadOnlySequence<byte> rowDescription, int referencedRule)
    {
        var rules = _rules;
        if (rules is null)
        {
            plan.Clear();
            return;
        }

        plan.Build(rowDescription.Slice(5), rules, Index(rules), referencedRule);
    }

    // ---- Server direction: rows ------------------------------------------------------------------------------

    /// <summary>
    /// Rewrites a DataRow by the current plan: forwarded as it is when nothing in it is masked, else written anew
    /// with the masked values and the lengths recomputed. Stop when the row does not fit the plan.
    /// </summary>
    public FrameAction OnDataRow(in ReadOnlySequence<byte> frame, PipeWriter output, out string? fault)
    {
        fault = null;
        var rules = _rules;
        var plan = _rows;
        if (rules is null)
        {
            return FrameAction.Forward;
        }

        if (plan is null)
        {
            fault = "a result row arrived without a row description the gateway could mask it by";
            return FrameAction.Stop;
        }

        if (!plan.NeedsWork)
        {
            return FrameAction.Forward;
        }

        ReadOnlySpan<byte> row = Contiguous(frame);
        int columns = BinaryPrimitives.ReadInt16BigEndian(row[5..]);
        if (columns != plan.Count)
        {
            fault = $"a result row has {columns} columns where its row description has {plan.Count}";
            return FrameAction.Stop;
        }

        if (_cellMatchStart.Length < columns)
        {
            _cellMatchStart = new int[Math.Max(columns, _cellMatchStart.Length * 2)];
            _cellMatchCount = new int[_cellMatchStart.Length];
        }

        // Pass 1: is anything masked? Detector matches are kept for pass 2.
        var fields = plan.Fields;
        int position = 7;
        int used = 0;
        bool rewrite = false;
        for (int i = 0; i < columns; i++)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(row[position..]);
            position += 4;
            _cellMatchCount[i] = 0;
            if (length < 0)
            {
                continue;
            }

            ref readonly var field = ref fields[i];
            if (field.Rule is not null)
            {
                rewrite = true;
            }
            else if (field.Scan)
            {
                var value = row.Slice(position, length);
                if (field.Type == PgValueType.JsonbBinary && value.Length > 0)
                {
                    value = value[1..];
                }

                int found = rules.Scanner.Scan(value, _matches.AsSpan(used));
                if (found != 0)
                {
                    _cellMatchStart[i] = used;
                    _cellMatchCount[i] = found;
                    used += Math.Max(found, 0);
                    rewrite = true;
                }
            }

            position += length;
        }

        if (!rewrite)
        {
            return FrameAction.Forward;
        }

        // Pass 2: the row anew.
        var scratch = _scratch;
        scratch.Reset();
        scratch.Write(row[..7]);
        position = 7;
        for (int i = 0; i < columns; i++)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(row[position..]);
            position += 4;
            if (length < 0)
            {
                scratch.WriteInt32(-1); // NULL stays NULL
                continue;
            }

            var value = row.Slice(position, length);
            position += length;
            ref readonly var field = ref fields[i];
            if (field.Rule is null && _cellMatchCount[i] == 0)
            {
                scratch.WriteInt32(length);
                scratch.Write(value);
                continue;
            }

            _maskedValues++;
            int lengthAt = scratch.Length;
            scratch.WriteInt32(0);
            bool written;
            if (field.Rule is { } rule)
            {
                written = PgValueMasker.WriteMasked(rule, field.Type, field.Type == PgValueType.JsonbBinary && value.Length > 0 ? value[1..] : value,
                    rules, scratch);
            }
            else if (field.Type == PgValueType.JsonbBinary)
            {
                scratch.WriteByte(1);
                written = PgValueMasker.WriteScanned(value[1..], _matches.AsSpan(_cellMatchStart[i], Math.Max(_cellMatchCount[i], 0)),
                    _cellMatchCount[i] < 0, PgValueType.Json, rules, scratch);
            }
            else
            {
                written = PgValueMasker.WriteScanned(value, _matches.AsSpan(_cellMatchStart[i], Math.Max(_cellMatchCount[i], 0)),
                    _cellMatchCount[i] < 0, field.Type, rules, scratch);
            }

            if (written)
            {
                scratch.PatchInt32(lengthAt, scratch.Length - lengthAt - 4);
            }
            else
            {
                scratch.Length = lengthAt;
                scratch.WriteInt32(-1);
            }
        }

        scratch.PatchInt32(1, scratch.Length - 1);
        output.Write(scratch.Written);
        return FrameAction.Handled;
    }

    // ---- Server direction: errors, notices, notifications ----------------------------------------------------

    /// <summary>
    /// ErrorResponse and NoticeResponse: the texts (message, detail, hint, context, internal query) are scanned by
    /// the detectors. When the session masks columns, messages that can echo values are rewritten: data and constraint
    /// errors (SQLSTATE classes 22 and 23), and any message raised while running a statement that reads masked columns
    /// (<paramref name="readsMasked"/>) unless it points into the statement's text (a position field: raised while
    /// parsing, before any value was read). Their message keeps its wording with quoted and parenthesised values and
    /// whatever follows <c>": "</c> redacted; detail, hint, context and internal query, which can quote input lines
    /// (XML, JSON), are redacted whole. Handled when rewritten.
    /// </summary>
    public FrameAction OnErrorOrNotice(in ReadOnlySequence<byte> frame, PipeWriter output, bool readsMasked)
    {
        var rules = _rules;
        if (rules is null)
        {
            return FrameAction.Forward;
        }

        ReadOnlySpan<byte> message = Contiguous(frame);
        var fields = new PgErrorFields(message);
        bool echoes = rules.ColumnRules.Count > 0 && (EchoesValues(fields) || (readsMasked && !fields.Has((byte)'P')));
        bool rewrite = echoes;
        foreach (var field in fields)
        {
            if (rewrite || (IsTextField(field.Code) && rules.Scanner.Scan(field.Text, _matches) != 0))
            {
                rewrite = true;
                break;
            }
        }

        if (!rewrite)
        {
            return FrameAction.Forward;
        }

        var scratch = _scratch;
        scratch.Reset();
        scratch.Write(message[..5]);
        foreach (var field in fields)
        {
            byte code = field.Code;
            var text = field.Text;
            scratch.WriteByte(code);
            if (echoes && code == (byte)'M')
            {
                WriteEchoedMessage(text, rules, scratch);
            }
            else if (echoes && IsTextField(code))
            {
                scratch.Write(MaskText.Redaction);
            }
            else if (IsTextField(code))
            {
                WriteMaskedText(text, false, rules, scratch);
            }
            else
            {
                scratch.Write(text);
            }

            scratch.WriteByte(0);
        }

        scratch.WriteByte(0);
        scratch.PatchInt32(1, scratch.Length - 1);
        output.Write(scratch.Written);
        return FrameAction.Handled;
    }

    /// <summary>NotificationResponse: the channel and payload are scanned. Handled when rewritten.</summary>
    public FrameAction OnNotification(in ReadOnlySequence<byte> frame, PipeWriter output)
    {
        var rules = _rules;
        if (rules is null || rules.Scanner.IsEmpty)
        {
            return FrameAction.Forward;
        }

        ReadOnlySpan<byte> message = Contiguous(frame);
        var body = message[9..]; // code, length, process id
        int channelEnd = body.IndexOf((byte)0);
        var channel = body[..channelEnd];
        var payload = body[(channelEnd + 1)..^1];
        if (rules.Scanner.Scan(channel, _matches) == 0 && rules.Scanner.Scan(payload, _matches) == 0)
        {
            return FrameAction.Forward;
        }

        var scratch = _scratch;
        scratch.Reset();
        scratch.Write(message[..9]);
        WriteMaskedText(channel, false, rules, scratch);
        scratch.WriteByte(0);
        WriteMaskedText(payload, false, rules, scratch);
        scratch.WriteByte(0);
        scratch.PatchInt32(1, scratch.Length - 1);
        output.Write(scratch.Written);
        return FrameAction.Handled;
    }

    /// <summary>Detector matches replaced; with <paramref name="echoes"/>, quoted and parenthesised values redacted too.</summary>
    private void WriteMaskedText(ReadOnlySpan<byte> text, bool echoes, SessionMasking rules, PgScratch output)
    {
        if (echoes)
        {
            // "value" and (value): what data errors quote. Identifiers in them are lost too; values never show.
            int at = 0;
            while (at < text.Length)
            {
                int open = text[at..].IndexOfAny((byte)'"', (byte)'(');
                if (open < 0)
                {
                    break;
                }

                open += at;
                byte close = text[open] == (byte)'"' ? (byte)'"' : (byte)')';
                int end = text[(open + 1)..].LastIndexOf(close);
                if (end < 0)
                {
                    break;
                }

                end += open + 1;
                output.Write(text[at..(open + 1)]);
                output.Write(MaskText.Redaction);
                output.WriteByte(close);
                at = end + 1;
            }

            text = text[at..];
            if (text.IsEmpty)
            {
                return;
            }
        }

        int found = rules.Scanner.Scan(text, _matches);
        if (found < 0)
        {
            output.Write(MaskText.Redaction);
            return;
        }

        PgValueMasker.WriteScannedText(text, _matches.AsSpan(0, found), rules, output);
    }

    /// <summary>
    /// A message that may echo a value: quoted and parenthesised parts redacted, and what follows the first <c>": "</c>
    /// (<c>invalid input syntax for type integer: ****</c>, <c>cross-database references are not implemented: ****</c>).
    /// </summary>
    private void WriteEchoedMessage(ReadOnlySpan<byte> text, SessionMasking rules, PgScratch output)
    {
        int colon = text.IndexOf(": "u8);
        if (colon < 0)
        {
            WriteMaskedText(text, echoes: true, rules, output);
            return;
        }

        WriteMaskedText(text[..(colon + 2)], echoes: true, rules, output);
        output.Write(MaskText.Redaction);
    }

    /// <summary>SQLSTATE class 22 (data exception) or 23 (integrity constraint violation): texts that quote values.</summary>
    private static bool EchoesValues(PgErrorFields fields)
    {
        var code = fields.Get((byte)'C');
        return code.StartsWith("22"u8) || code.StartsWith("23"u8);
    }

    /// <summary>Fields with free text: message, detail, hint, context (where), internal query.</summary>
    private static bool IsTextField(byte code) => code is (byte)'M' or (byte)'D' or (byte)'H' or (byte)'W' or (byte)'q';

    // ---- Server direction: COPY TO STDOUT --------------------------------------------------------------------

    /// <summary>
    /// A COPY to the client starts (CopyOutResponse). With <paramref name="target"/> (a table copied in text format,
    /// checked before it ran), the masked columns are known; every row is also scanned by the detectors.
    /// </summary>
    public void CopyOut(MaskCopyTarget? target, bool binary)
    {
        var rules = _rules;
        _copy = null;
        if (rules is null)
        {
            return;
        }

        _copy = PgCopyPlan.Create(target, binary, rules, Index(rules));
    }

    /// <summary>COPY ended (CopyDone or an error).</summary>
    public void CopyEnded() => _copy = null;

    /// <summary>A CopyData row from the server: masked columns replaced, detector matches replaced. Handled when rewritten.</summary>
    public FrameAction OnCopyData(in ReadOnlySequence<byte> frame, PipeWriter output, out string? fault)
    {
        fault = null;
        var rules = _rules;
        var copy = _copy;
        if (rules is null || copy is null || copy.Binary)
        {
            return FrameAction.Forward;
        }

        ReadOnlySpan<byte> message = Contiguous(frame);
        var row = message[5..];
        if (!copy.NeedsColumns && rules.Scanner.Scan(row, _matches) == 0)
        {
            return FrameAction.Forward;
        }

        if (copy.NeedsColumns && (row.IsEmpty || row[^1] != (byte)'\n'))
        {
            fault = "a COPY row of a table with masked columns did not end with a newline";
            return FrameAction.Stop;
        }

        var scratch = _scratch;
        scratch.Reset();
        scratch.Write(message[..5]);
        if (!copy.NeedsColumns)
        {
            _maskedValues++;
            WriteMaskedText(row, false, rules, scratch);
        }
        else
        {
            var line = row[..^1];
            int column = 0;
            while (true)
            {
                int tab = line.IndexOf((byte)'\t');
                var field = tab < 0 ? line : line[..tab];
                var rule = copy.EveryColumn ?? (column < copy.Columns.Length ? copy.Columns[column] : null);
                if (rule is not null && !field.SequenceEqual("\\N"u8))
                {
                    _maskedValues++;
                    if (rule.Style.Kind == MaskStyleKind.Null || (copy.EveryColumn is null && !copy.TextColumns[column]))
                    {
                        scratch.Write("\\N"u8);
                    }
                    else
                    {
                        PgValueMasker.WriteStyle(rule.Style, field, rules, scratch);
                    }
                }
                else
                {
                    WriteMaskedText(field, false, rules, scratch);
                }

                column++;
                if (tab < 0)
                {
                    break;
                }

                scratch.WriteByte((byte)'\t');
                line = line[(tab + 1)..];
            }

            if (copy.EveryColumn is null && column != copy.Columns.Length)
            {
                fault = $"a COPY row has {column} columns where the gateway expected {copy.Columns.Length}";
                return FrameAction.Stop;
            }

            scratch.WriteByte((byte)'\n');
        }

        scratch.PatchInt32(1, scratch.Length - 1);
        output.Write(scratch.Written);
        return FrameAction.Handled;
    }

    /// <summary>A frame as one span: the frame itself, or a copy when it spans pipe segments.</summary>
    private ReadOnlySpan<byte> Contiguous(in ReadOnlySequence<byte> frame)
    {
        if (frame.IsSingleSegment)
        {
            return frame.FirstSpan;
        }

        if (_contiguous.Length < frame.Length)
        {
            _contiguous = new byte[Math.Max((int)frame.Length, _contiguous.Length * 2)];
        }

        frame.CopyTo(_contiguous);
        return _contiguous.AsSpan(0, (int)frame.Length);
    }
}
