using System.Buffers;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// How a statement text uses masked names: what the gateway must know before a statement runs, because the
/// result's RowDescription can only say where a column came from when it is a bare column. Rule indexes, -1 for none.
/// </summary>
public struct MaskAnalysis
{
    /// <summary>The text names a masked column (or a whole row of a relation with one) where its value is read:
    /// computed result columns of the statement are then masked.</summary>
    public int Referenced;

    /// <summary>A masked column (or a whole row) is used inside an expression in a select list.</summary>
    public int InExpression;

    /// <summary>A masked column is used in WHERE, JOIN ... ON/USING, GROUP BY, ORDER BY, HAVING, or compared by a set
    /// operation (UNION, INTERSECT, EXCEPT).</summary>
    public int InPredicate;

    /// <summary>The statement writes (INSERT ... SELECT, CREATE ... AS, SELECT INTO, UPDATE ... SET x = masked,
    /// set_config or pg_notify of a masked value), or defines code that reads, values read from masked columns or
    /// relations with masked columns; or it is DDL on such a relation (renaming it, a column, its schema, attaching
    /// it to a parent, generated columns), which could move its values out of the rules' reach.</summary>
    public int Stored;

    /// <summary>The statement keeps a query for later (DECLARE, PREPARE, CREATE RULE...) that reads masked names.</summary>
    public int Defined;

    /// <summary>The statement reads the planner's statistics views, which show stored values.</summary>
    public bool Statistics;

    /// <summary>The statement reads a relation with masked columns, or a masked column, anywhere.</summary>
    public int Reads;

    /// <summary>The text could not be lexed: the caller must assume the worst.</summary>
    public bool Unreadable;

    /// <summary>The session masks by column, but the catalog to do it by is not loaded: nothing may run.</summary>
    public bool Unavailable;

    /// <summary>
    /// The statement can read values where no statement text shows it: SQL given as text (query_to_xml,
    /// table_to_xml, dblink, ts_stat), server files and raw pages, decoded WAL, code that runs dynamic SQL or is
    /// written in another language, COPY from a server file or program, foreign tables and servers (which show a
    /// table under another name), or a schema rename (column rules name schemas). The caller refuses it when columns
    /// are masked.
    /// </summary>
    public bool Opaque;

    /// <summary>The statement runs or defines code (DO, CREATE FUNCTION or PROCEDURE): it can read cursors and
    /// portals by name.</summary>
    public bool Code;

    /// <summary><c>DECLARE ... BINARY CURSOR</c>: the rows come in binary format.</summary>
    public bool BinaryCursor;

    /// <summary><c>COPY relation TO STDOUT</c> of a relation with masked columns: the rule, and what is copied.</summary>
    public int CopyRule;

    /// <summary>The COPY cannot be masked (a query, options, a file or program): the rule.</summary>
    public int CopyUnmaskable;

    /// <summary>For <see cref="CopyRule"/>: the relation and column list, normalized; null otherwise.</summary>
    public MaskCopyTarget? Copy;

    /// <summary>Nothing masked is used.</summary>
    public static MaskAnalysis None => new()
    {
        Referenced = -1, InExpression = -1, InPredicate = -1, Stored = -1, Defined = -1, CopyRule = -1, CopyUnmaskable = -1, Reads = -1,
    };

    /// <summary>The first rule the statement involves in any way; -1 when none.</summary>
    public readonly int AnyRule => Referenced >= 0 ? Referenced
        : InExpression >= 0 ? InExpression
        : InPredicate >= 0 ? InPredicate
        : Stored >= 0 ? Stored
        : Defined >= 0 ? Defined
        : CopyRule >= 0 ? CopyRule
        : CopyUnmaskable;
}

/// <summary>What a maskable COPY copies: the relation as named (schema null when unqualified) and the column list.</summary>
public sealed record MaskCopyTarget(byte[]? Schema, byte[] Relation, IReadOnlyList<byte[]>? Columns);

/// <summary>
/// Finds where a statement text uses masked names (<see cref="MaskedNames"/>), token by token, with the
/// PostgreSQL lexer: in a select list bare or inside an expression, in a predicate, as a source of a write, in a
/// COPY. It errs toward finding a use (a name that is also a masked column's name counts wherever it stands), so
/// it can only over-mask or over-refuse, never under-report. Names that stand for masked values under another
/// name are followed too: aliases of relations, derived tables, CTEs and functions over masked values, their
/// column alias lists, and select-list aliases of masked items. Allocates only for COPY targets and long texts.
/// </summary>
public static class StatementMaskAnalyzer
{
    private const int MaxDepth = 64;
    private const int MaxAliases = 64;
    private const int StackTokens = 512;

    /// <summary>Rounds of alias discovery: an alias can stand for another alias (a CTE over a derived table...).</summary>
    private const int AliasRounds = 8;

    /// <summary>How far back a select-list alias looks for its item.</summary>
    private const int MaxItemTokens = 256;

    private enum Clause : byte
    {
        Other,
        Select,
        From,
        Target,
        Predicate,
        Set,
    }

    /// <summary>What an alias stands for.</summary>
    private enum AliasKind : byte
    {
        /// <summary>A relation (table alias, derived table, CTE): its whole row reads masked values; its columns keep their names.</summary>
        Relation,

        /// <summary>A column (select-list alias, column alias list): it holds masked values.</summary>
        Column,

        /// <summary>The result of a function over masked values: its whole row and every column of it hold them.</summary>
        Computed,
    }

    /// <summary>Analyzes a text (possibly several statements); <see cref="MaskAnalysis.None"/> when it uses no masked name.</summary>
    public static MaskAnalysis Analyze(ReadOnlySpan<byte> text, SqlLexSettings settings, MaskedNames names)
    {
        var result = MaskAnalysis.None;
        if (names.IsEmpty)
        {
            return result;
        }

        SqlToken[]? rented = null;
        Span<SqlToken> tokens = stackalloc SqlToken[StackTokens];
        int count = 0;
        var lexer = new SqlLexer<PostgresDialect>(text, settings);
        while (lexer.Next(out SqlToken token))
        {
            if (token.Kind == SqlTokenKind.Error)
            {
                result.Unreadable = true;
                break;
            }

            if (count == tokens.Length)
            {
                var grown = ArrayPool<SqlToken>.Shared.Rent(tokens.Length * 2);
                tokens.CopyTo(grown);
                if (rented is not null)
                {
                    ArrayPool<SqlToken>.Shared.Return(rented);
                }

                rented = grown;
                tokens = grown;
            }

            tokens[count++] = token;
        }

        if (lexer.Error != SqlLexError.None)
        {
            result.Unreadable = true;
        }

        // Per token (and one past the end): the matching parenthesis, the masked rule it names, the next token that names one.
        int[]? rentedInts = count <= StackTokens ? null : ArrayPool<int>.Shared.Rent(3 * (count + 1));
        Span<int> ints = rentedInts ?? stackalloc int[3 * (StackTokens + 1)];

        try
        {
            Span<byte> aliasBytes = stackalloc byte[MaxAliases * SqlNames.PartBuffer];
            Span<int> aliasRules = stackalloc int[MaxAliases];
            Span<byte> aliasLengths = stackalloc byte[MaxAliases];
            Span<AliasKind> aliasKinds = stackalloc AliasKind[MaxAliases];
            var walk = new Walk(text, settings, tokens[..count], names, aliasBytes, aliasRules, aliasLengths, aliasKinds,
                ints[..(count + 1)], ints.Slice(count + 1, count + 1), ints.Slice(2 * (count + 1), count + 1));
            walk.Run(ref result);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<SqlToken>.Shared.Return(rented);
            }

            if (rentedInts is not null)
            {
                ArrayPool<int>.Shared.Return(rentedInts);
            }
        }

        return result;
    }

    private ref struct Walk
    {
        private readonly ReadOnlySpan<byte> _text;
        private readonly SqlLexSettings _settings;
        private readonly ReadOnlySpan<SqlToken> _tokens;
        private readonly MaskedNames _names;

        // Names that stand for masked values (see AliasKind).
        private readonly Span<byte> _aliasBytes;
        private readonly Span<int> _aliasRules;
        private readonly Span<byte> _aliasLengths;
        private readonly Span<AliasKind> _aliasKinds;
        private int _aliasCount;
        private bool _aliasOverflow;

        // Per token: the matching parenthesis (-1 for other tokens; the text's end for one never closed), the rule of
        // the masked name it is (-1), and the next token at or after it that is one (the token count: none).
        private readonly Span<int> _match;
        private readonly Span<int> _ruleAt;
        private readonly Span<int> _next;

        public Walk(ReadOnlySpan<byte> text, SqlLexSettings settings, ReadOnlySpan<SqlToken> tokens, MaskedNames names, Span<byte> aliasBytes,
            Span<int> aliasRules, Span<byte> aliasLengths, Span<AliasKind> aliasKinds, Span<int> match, Span<int> ruleAt, Span<int> next)
        {
            _text = text;
            _settings = settings;
            _tokens = tokens;
            _names = names;
            _aliasBytes = aliasBytes;
            _aliasRules = aliasRules;
            _aliasLengths = aliasLengths;
            _aliasKinds = aliasKinds;
            _aliasCount = 0;
            _aliasOverflow = false;
            _match = match;
            _ruleAt = ruleAt;
            _next = next;
        }

        public void Run(ref MaskAnalysis result)
        {
            PairParentheses();
            CollectAliases();

            int start = 0;
            for (int i = 0; i <= _tokens.Length; i++)
            {
                if (i == _tokens.Length || _tokens[i].Kind == SqlTokenKind.Semicolon)
                {
                    if (i > start)
                    {
                        Statement(start, i, ref result);
                    }

                    start = i + 1;
                }
            }
        }

        // ---- pass 1: parentheses and aliases ----------------------------------------------------------------

        private readonly void PairParentheses()
        {
            // _next serves as the stack of open parentheses here; it is filled with its real content later.
            int top = 0;
            for (int i = 0; i < _tokens.Length; i++)
            {
                _match[i] = -1;
                if (_tokens[i].Kind == SqlTokenKind.OpenParen)
                {
                    _next[top++] = i;
                }
                else if (_tokens[i].Kind == SqlTokenKind.CloseParen && top > 0)
                {
                    int open = _next[--top];
                    _match[open] = i;
                    _match[i] = open;
                }
            }

            while (top > 0)
            {
                _match[_next[--top]] = _tokens.Length;
            }
        }

        /// <summary>
        /// Finds names that stand for masked values, until a round finds nothing new: aliases of relations with
        /// masked columns (and of aliases), derived tables, CTEs and functions whose text uses masked names, their
        /// column alias lists, and select-list aliases of items that use masked names.
        /// </summary>
        private void CollectAliases()
        {
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            int n = _tokens.Length;
            for (int round = 0; round < AliasRounds; round++)
            {
                int before = _aliasCount;
                _next[n] = n;
                for (int i = n - 1; i >= 0; i--)
                {
                    _ruleAt[i] = IsName(i) ? NameRule(i, name) : -1;
                    _next[i] = _ruleAt[i] >= 0 ? i : _next[i + 1];
                }

                for (int i = 0; i < n; i++)
                {
                    SqlToken token = _tokens[i];
                    if (token.Kind == SqlTokenKind.OpenParen)
                    {
                        int close = _match[i];
                        int rule = close < n ? FirstRuleIn(i, close) : -1;
                        if (rule < 0)
                        {
                            continue;
                        }

                        // (query) alias, function(...) alias, (join) alias, and their column lists; not DISTINCT ON (...) x.
                        bool query = IsQueryStart(i + 1);
                        bool call = !query && i > 0 && IsName(i - 1) && Keyword(i - 1) == Kw.None;
                        if (query || call || i == 0 || !IsName(i - 1) || Keyword(i - 1) is Kw.From or Kw.Join or Kw.Lateral)
                        {
                            AliasAfter(close, rule, call ? AliasKind.Computed : AliasKind.Relation);
                        }

                        // name [(columns)] AS [NOT] [MATERIALIZED] (query): a CTE.
                        CteBefore(i, rule);
                        continue;
                    }

                    if (!IsName(i) || (i + 1 < n && _tokens[i + 1].Kind == SqlTokenKind.Dot))
                    {
                        continue;
                    }

                    // relation [AS] alias [(columns)]
                    int relation = RelationOrAliasRule(i, name, out var relationKind);
                    if (relation >= 0)
                    {
                        AliasAfter(i, relation, relationKind == AliasKind.Computed ? AliasKind.Computed : AliasKind.Relation);
                    }

                    // item [AS] alias in a select list
                    if (i > 0 && IsItemAlias(i))
                    {
                        int rule = ItemRule(Keyword(i - 1) == Kw.As ? i - 1 : i);
                        if (rule >= 0)
                        {
                            AddAlias(i, rule, AliasKind.Column);
                        }
                    }
                }

                if (_aliasCount == before)
                {
                    break;
                }
            }
        }

        /// <summary>An alias after token <paramref name="end"/> (a relation's name or a closing parenthesis), and its column list.</summary>
        private void AliasAfter(int end, int rule, AliasKind kind)
        {
            int j = end + 1;
            if (j < _tokens.Length && Keyword(j) == Kw.As)
            {
                j++;
            }

            if (j >= _tokens.Length || !IsName(j) || (_tokens[j].Kind == SqlTokenKind.Identifier && IsReservedAfterRelation(j))
                || (j + 1 < _tokens.Length && _tokens[j + 1].Kind == SqlTokenKind.Dot))
            {
                return;
            }

            AddAlias(j, rule, kind);
            if (j + 1 < _tokens.Length && _tokens[j + 1].Kind == SqlTokenKind.OpenParen)
            {
                ColumnList(j + 1, rule);
            }
        }

        /// <summary>The names in a column alias list (<c>alias(a, b, c)</c>) hold the masked values of what they rename.</summary>
        private void ColumnList(int open, int rule)
        {
            int close = Math.Min(_match[open], _tokens.Length);
            for (int k = open + 1; k < close; k++)
            {
                if (IsName(k) && (_tokens[k - 1].Kind is SqlTokenKind.Comma or SqlTokenKind.OpenParen))
                {
                    AddAlias(k, rule, AliasKind.Column);
                }
            }
        }

        /// <summary><c>name [(columns)] AS [NOT] [MATERIALIZED] (</c> before the parenthesis at <paramref name="open"/>.</summary>
        private void CteBefore(int open, int rule)
        {
            int k = open - 1;
            while (k >= 0 && (IsWord(k, "materialized"u8) || Keyword(k) == Kw.Not))
            {
                k--;
            }

            if (k < 1 || Keyword(k) != Kw.As)
            {
                return;
            }

            k--;
            int columns = -1;
            if (_tokens[k].Kind == SqlTokenKind.CloseParen && _match[k] >= 0 && _match[k] < k)
            {
                columns = _match[k];
                k = columns - 1;
            }

            if (k >= 0 && IsName(k))
            {
                AddAlias(k, rule, AliasKind.Relation);
                if (columns >= 0)
                {
                    ColumnList(columns, rule);
                }
            }
        }

        /// <summary>
        /// Token <paramref name="i"/> is a select-list alias: after AS (not in CAST(x AS type)), or a bare name after the
        /// end of an expression and before the end of the item.
        /// </summary>
        private readonly bool IsItemAlias(int i)
        {
            if (_tokens[i].Kind == SqlTokenKind.Identifier && IsReservedAfterItem(i))
            {
                return false;
            }

            if (Keyword(i - 1) == Kw.As)
            {
                return true;
            }

            // After the end of an expression: not after DISTINCT, nor after DISTINCT ON (...), which start the first item.
            var before = _tokens[i - 1].Kind;
            bool afterExpression = (before == SqlTokenKind.CloseParen && !(_match[i - 1] > 0 && Keyword(_match[i - 1] - 1) == Kw.On))
                || before is SqlTokenKind.String or SqlTokenKind.EscapeString or SqlTokenKind.DollarString or SqlTokenKind.Number
                    or SqlTokenKind.QuotedIdentifier or SqlTokenKind.UnicodeQuotedIdentifier
                || (before == SqlTokenKind.Identifier && !IsWord(i - 1, "distinct"u8) && (Keyword(i - 1) == Kw.End || !IsReservedAfterItem(i - 1)));
            if (!afterExpression)
            {
                return false;
            }

            if (i + 1 >= _tokens.Length)
            {
                return true;
            }

            return _tokens[i + 1].Kind is SqlTokenKind.Comma or SqlTokenKind.CloseParen or SqlTokenKind.Semicolon
                   || Keyword(i + 1) is Kw.From or Kw.Into;
        }

        /// <summary>The first masked rule in the select-list item that ends before token <paramref name="end"/>; -1 when none.</summary>
        private readonly int ItemRule(int end)
        {
            int j = end - 1;
            int limit = Math.Max(0, end - MaxItemTokens);
            while (j >= limit)
            {
                SqlToken token = _tokens[j];
                if (token.Kind == SqlTokenKind.CloseParen && _match[j] >= 0 && _match[j] < j)
                {
                    j = _match[j] - 1;
                    continue;
                }

                if (token.Kind is SqlTokenKind.Comma or SqlTokenKind.Semicolon)
                {
                    break;
                }

                if (token.Kind == SqlTokenKind.OpenParen)
                {
                    if (j > 0 && IsWord(j - 1, "cast"u8))
                    {
                        return -1; // CAST(x AS type): a type, not an alias
                    }

                    break;
                }

                if (IsItemBoundary(j))
                {
                    break;
                }

                j--;
            }

            return FirstRuleIn(j, end);
        }

        /// <summary>The first masked rule among the tokens strictly between <paramref name="open"/> and <paramref name="close"/>.</summary>
        private readonly int FirstRuleIn(int open, int close)
        {
            int k = _next[open + 1];
            return k < close ? _ruleAt[k] : -1;
        }

        private void AddAlias(int token, int rule, AliasKind kind)
        {
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            int length = Normalize(token, name);
            if (HasAlias(name[..length], kind))
            {
                return;
            }

            if (_aliasCount == MaxAliases)
            {
                _aliasOverflow = true;
                return;
            }

            int offset = _aliasCount * SqlNames.PartBuffer;
            name[..length].CopyTo(_aliasBytes.Slice(offset, SqlNames.PartBuffer));
            _aliasLengths[_aliasCount] = (byte)length;
            _aliasRules[_aliasCount] = rule;
            _aliasKinds[_aliasCount] = kind;
            _aliasCount++;
        }

        private readonly bool HasAlias(ReadOnlySpan<byte> name, AliasKind kind)
        {
            for (int i = 0; i < _aliasCount; i++)
            {
                if (_aliasKinds[i] == kind && name.SequenceEqual(_aliasBytes.Slice(i * SqlNames.PartBuffer, _aliasLengths[i])))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>The rule of an alias of that name (a column alias wins over a relation alias of the same name); -1 when none.</summary>
        private readonly int AliasRule(ReadOnlySpan<byte> name, out AliasKind kind)
        {
            int found = -1;
            kind = AliasKind.Relation;
            for (int i = 0; i < _aliasCount; i++)
            {
                if (name.SequenceEqual(_aliasBytes.Slice(i * SqlNames.PartBuffer, _aliasLengths[i])))
                {
                    if (found < 0 || _aliasKinds[i] == AliasKind.Column)
                    {
                        found = _aliasRules[i];
                        kind = _aliasKinds[i];
                    }
                }
            }

            return found;
        }

        private readonly int ColumnAliasRule(ReadOnlySpan<byte> name)
        {
            for (int i = 0; i < _aliasCount; i++)
            {
                if (_aliasKinds[i] == AliasKind.Column && name.SequenceEqual(_aliasBytes.Slice(i * SqlNames.PartBuffer, _aliasLengths[i])))
                {
                    return _aliasRules[i];
                }
            }

            return -1;
        }

        private readonly int RelationAliasRule(ReadOnlySpan<byte> name, out AliasKind kind)
        {
            kind = AliasKind.Relation;
            for (int i = 0; i < _aliasCount; i++)
            {
                if (_aliasKinds[i] != AliasKind.Column && name.SequenceEqual(_aliasBytes.Slice(i * SqlNames.PartBuffer, _aliasLengths[i])))
                {
                    kind = _aliasKinds[i];
                    return _aliasRules[i];
                }
            }

            return -1;
        }

        /// <summary>The rule of any masked name (column, relation or alias) at token <paramref name="i"/>; -1 when none.</summary>
        private readonly int NameRule(int i, Span<byte> name)
        {
            var normalized = name[..Normalize(i, name)];
            int rule = _names.ColumnRule(normalized);
            rule = rule >= 0 ? rule : _names.RelationRule(normalized);
            return rule >= 0 ? rule : AliasRule(normalized, out _);
        }

        private readonly int RelationOrAliasRule(int i, Span<byte> name, out AliasKind kind)
        {
            var normalized = name[..Normalize(i, name)];
            kind = AliasKind.Relation;
            int rule = _names.RelationRule(normalized);
            return rule >= 0 ? rule : RelationAliasRule(normalized, out kind);
        }

        // ---- pass 2: one statement ---------------------------------------------------------------------------

        private void Statement(int from, int to, ref MaskAnalysis result)
        {
            Span<Clause> clauses = stackalloc Clause[MaxDepth + 1];
            Span<bool> ownSelect = stackalloc bool[MaxDepth + 1]; // SELECT was written at this depth (not inherited into a call)
            Span<bool> query = stackalloc bool[MaxDepth + 1]; // a query or command starts at this depth (its FROM is a clause)
            Span<bool> compared = stackalloc bool[MaxDepth + 1]; // inside a predicate: what a subquery returns here is compared
            Span<bool> inCall = stackalloc bool[MaxDepth + 1]; // inside the arguments of a function called in FROM
            Span<bool> aliasList = stackalloc bool[MaxDepth + 1]; // a column alias list: names that are not uses
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            Span<byte> qualifier = stackalloc byte[SqlNames.PartBuffer];
            int depth = 0;
            clauses[0] = Clause.Other;
            query[0] = true;
            compared[0] = false;
            inCall[0] = false;
            aliasList[0] = false;
            Kw first = Keyword(from);
            bool writes = first is Kw.Insert or Kw.Update or Kw.Delete or Kw.Merge or Kw.Create or Kw.Alter;
            bool ddl = first is Kw.Create or Kw.Alter;
            bool defines = first is Kw.Declare or Kw.Prepare;
            bool setOperation = false;
            bool comparingSetOperation = false;
            bool star = false;
            bool fullJoin = false;
            bool sink = false;
            int source = -1;
            int referenced = -1;
            int topBare = -1; // masked columns selected bare at the outermost level: masked by origin, feeding nothing else
            int predicate = -1;
            int ddlRelation = -1;
            bool positional = false;
            bool afterTargetKeyword = false;
            bool distinctOn = false;

            if (first == Kw.Copy)
            {
                Copy(from, to, ref result);
                return;
            }

            if (first == Kw.Do || (first == Kw.Create && CreatesRoutine(from, to)))
            {
                result.Code = true;
                CodeBodies(from, to, first == Kw.Do, ref result);
            }

            if (first == Kw.Alter && from + 1 < to && IsWord(from + 1, "schema"u8) && HasWord(from, to, "rename"u8))
            {
                result.Opaque = true; // column rules name schemas: a renamed schema takes its tables out of them
            }

            if (first == Kw.Import
                || (first is Kw.Create or Kw.Alter && from + 1 < to && (IsWord(from + 1, "foreign"u8) || Keyword(from + 1) == Kw.Server)))
            {
                result.Opaque = true; // a foreign table (postgres_fdw, file_fdw) shows a table or file under another name
            }

            if (first == Kw.Declare && IsBinaryCursor(from, to))
            {
                result.BinaryCursor = true;
            }

            for (int i = from; i < to; i++)
            {
                SqlToken token = _tokens[i];
                switch (token.Kind)
                {
                    case SqlTokenKind.OpenParen:
                        if (depth < MaxDepth)
                        {
                            bool call = IsCallInFrom(i, from, clauses[depth]);
                            bool columns = !call && clauses[depth] is Clause.From && IsAliasListParen(i, from);
                            depth++;
                            clauses[depth] = clauses[depth - 1];
                            ownSelect[depth] = false;
                            inCall[depth] = inCall[depth - 1] || call;
                            aliasList[depth] = columns;
                            query[depth] = false;
                            compared[depth] = compared[depth - 1] || clauses[depth - 1] == Clause.Predicate;
                            if (distinctOn)
                            {
                                clauses[depth] = Clause.Predicate; // DISTINCT ON (x): rows are told apart by x's values
                                distinctOn = false;
                            }
                        }

                        if (i > from && IsName(i - 1) && Keyword(i - 1) == Kw.None)
                        {
                            int length = Normalize(i - 1, name);
                            sink |= IsSink(name[..length]);
                            result.Opaque |= IsOpaqueFunction(name[..length]);
                        }

                        continue;
                    case SqlTokenKind.CloseParen:
                        if (depth > 0)
                        {
                            depth--;
                        }

                        continue;
                    case SqlTokenKind.Number:
                        if (clauses[depth] == Clause.Predicate && i > from && (IsWord(i - 1, "by"u8) || _tokens[i - 1].Kind == SqlTokenKind.Comma))
                        {
                            positional = true; // ORDER BY 1: the first column's value orders the rows
                        }

                        continue;
                    case SqlTokenKind.Identifier:
                        if (Keyword(i) == Kw.On && i > from && IsWord(i - 1, "distinct"u8))
                        {
                            distinctOn = true; // the select list goes on after the parenthesis
                            continue;
                        }

                        // IS [NOT] DISTINCT FROM, substring(x FROM n), extract(f FROM x), trim(... FROM x): an operator's
                        // word inside an expression, not a FROM clause.
                        if (Keyword(i) == Kw.From && ((i > from && IsWord(i - 1, "distinct"u8)) || (depth > 0 && !query[depth])))
                        {
                            continue;
                        }

                        // FOR [NO KEY] UPDATE / [KEY] SHARE [OF relation]: a locking clause, neither a write nor a use.
                        if (IsWord(i, "for"u8) && i + 1 < to && (Keyword(i + 1) == Kw.Update || IsWord(i + 1, "share"u8) || IsWord(i + 1, "no"u8)
                                                                 || IsWord(i + 1, "key"u8)))
                        {
                            clauses[depth] = Clause.Target;
                            continue;
                        }

                        if (Keyword(i) == Kw.Update && i > from && (IsWord(i - 1, "for"u8) || IsWord(i - 1, "key"u8)))
                        {
                            continue;
                        }

                        query[depth] |= Keyword(i) is Kw.Select or Kw.Insert or Kw.Update or Kw.Delete or Kw.Merge or Kw.Values or Kw.Table or Kw.With;

                        if (Clauses(i, first, ref clauses[depth], ref writes, ref setOperation, ref afterTargetKeyword))
                        {
                            ownSelect[depth] |= clauses[depth] == Clause.Select;
                            if (clauses[depth] == Clause.Select)
                            {
                                inCall[depth] = false; // a query inside the call's arguments
                            }

                            comparingSetOperation |= Keyword(i) is Kw.Intersect or Kw.Except
                                                     || (Keyword(i) == Kw.Union && !(i + 1 < to && Keyword(i + 1) == Kw.All));
                            ddl |= Keyword(i) == Kw.Create;
                            continue;
                        }

                        fullJoin |= IsWord(i, "full"u8);
                        break;
                    case SqlTokenKind.QuotedIdentifier:
                    case SqlTokenKind.UnicodeQuotedIdentifier:
                        break;
                    case SqlTokenKind.Operator when _text[token.Start] == (byte)'*' && token.Length == 1:
                    {
                        if (IsSelectStar(i, from, to))
                        {
                            star = true;
                            continue;
                        }

                        if (i - 2 < from || _tokens[i - 1].Kind != SqlTokenKind.Dot || !IsName(i - 2))
                        {
                            continue;
                        }

                        // qualifier.*: every column of a relation with masked columns, bare or inside an expression.
                        int rule = RelationOrAliasRule(i - 2, name, out _);
                        if (rule >= 0)
                        {
                            Use(rule, ChainStart(i - 2, from), i, from, to, clauses[depth], ownSelect[depth], depth, compared[depth], wholeRow: false,
                                ref result, ref referenced, ref source, ref predicate, ref topBare);
                        }

                        continue;
                    }

                    default:
                        continue;
                }

                // A name: act at the end of a dotted chain (a.b.c), on its last part.
                if (i + 1 < to && _tokens[i + 1].Kind == SqlTokenKind.Dot)
                {
                    continue;
                }

                int nameLength = Normalize(i, name);
                var normalized = name[..nameLength];
                if (IsStatisticsView(normalized))
                {
                    result.Statistics = true;
                }

                int chainStart = ChainStart(i, from);
                Clause clause = clauses[depth];
                int column = _names.ColumnRule(normalized);
                column = column >= 0 ? column : ColumnAliasRule(normalized);
                var relationKind = AliasKind.Relation;
                int relation = _names.RelationRule(normalized);
                if (relation < 0 && chainStart == i)
                {
                    relation = RelationAliasRule(normalized, out relationKind);
                }

                // q.column where q is the result of a function over masked values: every column of it holds them.
                if (column < 0 && chainStart < i && QualifierRule(i - 2, qualifier) is var computed and >= 0)
                {
                    column = computed;
                }

                if (relation >= 0)
                {
                    ddlRelation = First(ddlRelation, relation);
                }

                if (aliasList[depth] || IsDefinition(i, clause))
                {
                    continue; // names given to columns, items and CTEs, not uses
                }

                if ((clause is Clause.From && !inCall[depth]) || clause is Clause.Target)
                {
                    // A relation in FROM/JOIN is read (a source of a write); the target of INSERT/UPDATE/DELETE is not.
                    if (relation >= 0 && clause == Clause.From && !afterTargetKeyword)
                    {
                        source = First(source, relation);
                    }

                    afterTargetKeyword = false;
                    continue;
                }

                afterTargetKeyword = false;
                if (clause is Clause.From)
                {
                    clause = Clause.Other; // an argument of a function called in FROM: a value read in an expression
                }

                if (column >= 0)
                {
                    Use(column, chainStart, i, from, to, clause, ownSelect[depth], depth, compared[depth], wholeRow: false, ref result, ref referenced,
                        ref source, ref predicate, ref topBare);
                }

                if (relation >= 0)
                {
                    Use(relation, chainStart, i, from, to, clause, ownSelect[depth], depth, compared[depth], wholeRow: true, ref result,
                        ref referenced, ref source, ref predicate, ref topBare);
                }
            }

            if (_aliasOverflow && source >= 0)
            {
                // Too many aliases to follow: assume every computed column, expression and predicate uses masked values.
                referenced = First(referenced, source);
                result.InExpression = First(result.InExpression, source);
                result.InPredicate = First(result.InPredicate, source);
                predicate = First(predicate, source);
            }

            // Columns of set operations and merged columns of FULL joins are computed, also from bare columns or *.
            if ((setOperation || fullJoin) && source >= 0)
            {
                referenced = First(referenced, source);
            }

            if (referenced >= 0)
            {
                result.Referenced = First(result.Referenced, referenced);
                if (setOperation)
                {
                    result.InExpression = First(result.InExpression, referenced); // UNION columns are computed
                    if (comparingSetOperation)
                    {
                        result.InPredicate = First(result.InPredicate, referenced); // INTERSECT/EXCEPT/UNION compare values
                        predicate = First(predicate, referenced);
                    }
                }
            }

            // ORDER BY 1 of a masked column, also of one * expanded.
            int ordered = First(referenced, topBare);
            if (positional && (ordered >= 0 || (star && source >= 0)))
            {
                result.InPredicate = First(result.InPredicate, ordered >= 0 ? ordered : source);
                predicate = First(predicate, ordered >= 0 ? ordered : source);
            }

            int reads = referenced >= 0 ? referenced : source >= 0 ? source : predicate;
            if (writes && source >= 0)
            {
                result.Stored = First(result.Stored, source);
            }

            if (ddl && ddlRelation >= 0)
            {
                result.Stored = First(result.Stored, ddlRelation);
            }

            if (sink && reads >= 0)
            {
                result.Stored = First(result.Stored, reads); // set_config, pg_notify, large objects of masked values
            }

            if (reads >= 0)
            {
                result.Reads = First(result.Reads, reads);
            }

            if (defines && (referenced >= 0 || source >= 0))
            {
                result.Defined = First(result.Defined, referenced >= 0 ? referenced : source);
            }
        }

        /// <summary>A masked column or whole row used at tokens [chainStart, end] in a clause.</summary>
        /// <remarks>
        /// <paramref name="compared"/>: the use is inside a parenthesis opened in a predicate.
        /// A bare column at the outermost select list goes to the client as it is, masked by its origin, and feeds no
        /// other column (a select list cannot use its siblings); anywhere deeper (a subquery, a CTE, a function called in
        /// FROM) it may feed an expression outside, so the statement's computed columns are masked.
        /// </remarks>
        private readonly void Use(int rule, int chainStart, int end, int from, int to, Clause clause, bool selectList, int depth, bool compared,
            bool wholeRow, ref MaskAnalysis result, ref int referenced, ref int source, ref int predicate, ref int topBare)
        {
            if (compared)
            {
                // A subquery inside WHERE, ON, ORDER BY, LIMIT...: what it reads is compared there (x IN (SELECT ssn ...)).
                result.InPredicate = First(result.InPredicate, rule);
                predicate = First(predicate, rule);
            }

            switch (clause)
            {
                case Clause.Predicate:
                    result.InPredicate = First(result.InPredicate, rule);
                    predicate = First(predicate, rule);
                    if (wholeRow)
                    {
                        referenced = First(referenced, rule);
                    }

                    return;
                case Clause.Set:
                    // SET column = ...: a target; anything else in SET is a value being written.
                    bool target = chainStart > from && (Keyword(chainStart - 1) == Kw.Set || _tokens[chainStart - 1].Kind == SqlTokenKind.Comma)
                                  && end + 1 < to && _tokens[end + 1].Kind == SqlTokenKind.Operator && _text[_tokens[end + 1].Start] == (byte)'=';
                    if (!target)
                    {
                        referenced = First(referenced, rule);
                        source = First(source, rule);
                    }

                    return;
                default:
                    source = First(source, rule);
                    if (wholeRow || !selectList || !IsBareItem(chainStart, end, from, to))
                    {
                        result.InExpression = First(result.InExpression, rule);
                        referenced = First(referenced, rule);
                    }
                    else if (depth > 0)
                    {
                        referenced = First(referenced, rule);
                    }
                    else
                    {
                        topBare = First(topBare, rule);
                    }

                    return;
            }
        }

        /// <summary>A select-list item that is only the column: after SELECT/DISTINCT/ALL/RETURNING/comma, before comma/FROM/INTO/AS/alias/end.</summary>
        private readonly bool IsBareItem(int chainStart, int end, int from, int to)
        {
            if (chainStart <= from)
            {
                return false;
            }

            SqlToken before = _tokens[chainStart - 1];
            bool starts = before.Kind == SqlTokenKind.Comma
                          || (before.Kind == SqlTokenKind.Identifier && (Keyword(chainStart - 1) is Kw.Select or Kw.All or Kw.Returning
                                                                         || IsWord(chainStart - 1, "distinct"u8)))
                          || (before.Kind == SqlTokenKind.CloseParen && _match[chainStart - 1] > 0 && Keyword(_match[chainStart - 1] - 1) == Kw.On);
            if (!starts)
            {
                return false;
            }

            if (end + 1 >= to)
            {
                return true;
            }

            SqlToken after = _tokens[end + 1];
            return after.Kind switch
            {
                SqlTokenKind.Comma or SqlTokenKind.CloseParen => true,
                SqlTokenKind.QuotedIdentifier => true,
                SqlTokenKind.Identifier => Keyword(end + 1) is Kw.From or Kw.Into or Kw.As
                                           || !IsReservedAfterItem(end + 1),
                _ => false,
            };
        }

        /// <summary>Handles clause keywords; true when the token is one (and so not a name).</summary>
        private readonly bool Clauses(int i, Kw first, ref Clause clause, ref bool writes, ref bool setOperation, ref bool afterTargetKeyword)
        {
            switch (Keyword(i))
            {
                case Kw.Select:
                case Kw.Returning:
                    clause = Clause.Select;
                    return true;
                case Kw.From:
                    // DELETE FROM t: the target; otherwise a source.
                    clause = Clause.From;
                    afterTargetKeyword = first == Kw.Delete && i > 0 && Keyword(i - 1) == Kw.Delete;
                    return true;
                case Kw.Join:
                case Kw.Lateral:
                    clause = Clause.From;
                    return true;
                case Kw.Into:
                    writes = true;
                    clause = Clause.Target;
                    return true;
                case Kw.Update:
                    writes = true;
                    clause = Clause.Target;
                    return true;
                case Kw.Insert:
                case Kw.Delete:
                case Kw.Merge:
                case Kw.Create: // also after EXPLAIN ANALYZE, which runs it
                    writes = true;
                    return true;
                case Kw.Table:
                    // CREATE/ALTER/DROP/TRUNCATE [TEMP...] TABLE t names a target; TABLE t as a query (also AS TABLE t) reads t.
                    clause = i > 0 && (Keyword(i - 1) is Kw.Create or Kw.Alter or Kw.Drop or Kw.Truncate or Kw.Temp or Kw.Temporary or Kw.Unlogged
                                           or Kw.Global or Kw.Local or Kw.Lock
                                       || IsWord(i - 1, "foreign"u8))
                        ? Clause.Target
                        : Clause.From;
                    return true;
                case Kw.Where:
                case Kw.On:
                case Kw.Using:
                case Kw.Having:
                case Kw.Group:
                case Kw.Order:
                case Kw.Window:
                    clause = Clause.Predicate;
                    return true;
                case Kw.Set:
                    clause = Clause.Set;
                    return true;
                case Kw.Values:
                    clause = Clause.Other;
                    return true;
                case Kw.Limit:
                case Kw.Offset:
                    clause = Clause.Predicate; // the number of rows returned can depend on a value
                    return true;
                case Kw.Union:
                case Kw.Except:
                case Kw.Intersect:
                    setOperation = true;
                    clause = Clause.Other;
                    return true;
                case Kw.With:
                case Kw.As:
                case Kw.Only:
                case Kw.Not:
                case Kw.Or:
                case Kw.All:
                    return true;
                default:
                    return false;
            }
        }

        /// <summary>
        /// A parenthesis that opens the arguments of a function called in FROM (<c>FROM f(x)</c>, <c>, LATERAL f(x)</c>,
        /// <c>JOIN schema.f(x)</c>): the names in it are values read, not relations.
        /// </summary>
        private readonly bool IsCallInFrom(int open, int from, Clause clause)
        {
            if (clause != Clause.From || open - 1 < from || !IsName(open - 1) || Keyword(open - 1) != Kw.None)
            {
                return false;
            }

            int start = ChainStart(open - 1, from);
            if (start - 1 < from)
            {
                return true;
            }

            SqlToken before = _tokens[start - 1];
            return before.Kind is SqlTokenKind.Comma or SqlTokenKind.OpenParen || Keyword(start - 1) is Kw.From or Kw.Join or Kw.Lateral
                   || IsWord(start - 1, "rows"u8);
        }

        /// <summary>
        /// A name being given, not used: after AS, a select-list item's alias without AS, a CTE's name
        /// (<c>name [(columns)] AS [NOT] [MATERIALIZED] (</c>).
        /// </summary>
        private readonly bool IsDefinition(int i, Clause clause)
        {
            if (i > 0 && Keyword(i - 1) == Kw.As)
            {
                return true;
            }

            if (clause == Clause.Select && i > 0 && IsItemAlias(i))
            {
                return true;
            }

            int k = i + 1;
            if (k < _tokens.Length && _tokens[k].Kind == SqlTokenKind.OpenParen && _match[k] < _tokens.Length)
            {
                k = _match[k] + 1;
            }

            if (k >= _tokens.Length || Keyword(k) != Kw.As)
            {
                return false;
            }

            for (k++; k < _tokens.Length && (IsWord(k, "materialized"u8) || Keyword(k) == Kw.Not); k++)
            {
            }

            return k < _tokens.Length && _tokens[k].Kind == SqlTokenKind.OpenParen;
        }

        /// <summary><c>alias(</c> after a relation or <c>AS</c>: a column alias list.</summary>
        private readonly bool IsAliasListParen(int open, int from)
        {
            if (open - 2 < from || !IsName(open - 1) || Keyword(open - 1) != Kw.None)
            {
                return false;
            }

            SqlToken before = _tokens[open - 2];
            return Keyword(open - 2) == Kw.As || before.Kind is SqlTokenKind.CloseParen or SqlTokenKind.QuotedIdentifier
                   || (before.Kind == SqlTokenKind.Identifier && Keyword(open - 2) == Kw.None);
        }

        /// <summary>An unqualified <c>*</c> standing as a select-list item (not <c>count(*)</c> nor a product).</summary>
        private readonly bool IsSelectStar(int i, int from, int to)
        {
            if (i - 1 < from)
            {
                return false;
            }

            bool starts = _tokens[i - 1].Kind == SqlTokenKind.Comma || Keyword(i - 1) is Kw.Select or Kw.All or Kw.Returning || IsWord(i - 1, "distinct"u8);
            return starts && (i + 1 >= to || _tokens[i + 1].Kind is SqlTokenKind.Comma or SqlTokenKind.CloseParen || Keyword(i + 1) is Kw.From or Kw.Into);
        }

        /// <summary>The rule of a qualifier that is the result of a function over masked values (<see cref="AliasKind.Computed"/>).</summary>
        private readonly int QualifierRule(int qualifier, Span<byte> name)
        {
            if (qualifier < 0 || !IsName(qualifier))
            {
                return -1;
            }

            int rule = RelationAliasRule(name[..Normalize(qualifier, name)], out var kind);
            return kind == AliasKind.Computed ? rule : -1;
        }

        /// <summary>CREATE [OR REPLACE] FUNCTION|PROCEDURE.</summary>
        private readonly bool CreatesRoutine(int from, int to)
        {
            for (int i = from + 1; i < Math.Min(to, from + 4); i++)
            {
                if (Keyword(i) is Kw.Function or Kw.Procedure)
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>DECLARE name [BINARY] [INSENSITIVE] [[NO] SCROLL] CURSOR.</summary>
        private readonly bool IsBinaryCursor(int from, int to)
        {
            for (int i = from + 2; i < to && !IsWord(i, "cursor"u8); i++)
            {
                if (Keyword(i) == Kw.Binary)
                {
                    return true;
                }
            }

            return false;
        }

        private readonly bool HasWord(int from, int to, ReadOnlySpan<byte> word)
        {
            for (int i = from; i < to; i++)
            {
                if (IsWord(i, word))
                {
                    return true;
                }
            }

            return false;
        }

        // ---- code bodies -------------------------------------------------------------------------------------

        /// <summary>
        /// DO and CREATE FUNCTION/PROCEDURE: the body (the strings of DO, the strings after AS) is read as SQL. A masked
        /// name in it is a read of masked values into code (<see cref="MaskAnalysis.Stored"/>); dynamic SQL (EXECUTE),
        /// functions that run SQL from text, and languages other than SQL and PL/pgSQL cannot be read
        /// (<see cref="MaskAnalysis.Opaque"/>). Strings inside the body are data (messages, literals), or SQL that only
        /// EXECUTE or such functions can run.
        /// </summary>
        private readonly void CodeBodies(int from, int to, bool isDo, ref MaskAnalysis result)
        {
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            for (int i = from; i < to; i++)
            {
                if (Keyword(i) == Kw.Language && i + 1 < to)
                {
                    var language = IsStringToken(_tokens[i + 1].Kind) ? Inside(_text, _tokens[i + 1]) : name[..Normalize(i + 1, name)];
                    if (!language.SequenceEqual("sql"u8) && !language.SequenceEqual("plpgsql"u8))
                    {
                        result.Opaque = true;
                    }

                    i++;
                    continue;
                }

                // DO 'body'; CREATE FUNCTION ... AS 'body' (a second string after it is a C function's symbol: LANGUAGE c).
                if (IsStringToken(_tokens[i].Kind) && (isDo || (i > from && Keyword(i - 1) == Kw.As)))
                {
                    Body(Inside(_text, _tokens[i]), ref result);
                }
            }
        }

        private readonly void Body(ReadOnlySpan<byte> body, ref MaskAnalysis result)
        {
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            var lexer = new SqlLexer<PostgresDialect>(body, _settings);
            SqlToken previous = default;
            while (lexer.Next(out SqlToken token))
            {
                switch (token.Kind)
                {
                    case SqlTokenKind.Error:
                    case SqlTokenKind.UnicodeQuotedIdentifier:
                        result.Opaque = true;
                        return;
                    case SqlTokenKind.Identifier:
                    case SqlTokenKind.QuotedIdentifier:
                    {
                        var normalized = name[..SqlNames.Normalize(body, token, name)];
                        if (token.Kind == SqlTokenKind.Identifier && SqlKeywords.Lookup(body.Slice(token.Start, token.Length)) == Kw.Execute)
                        {
                            result.Opaque = true; // dynamic SQL
                        }

                        int rule = _names.ColumnRule(normalized);
                        rule = rule >= 0 ? rule : _names.RelationRule(normalized);
                        rule = rule >= 0 ? rule : AliasRule(normalized, out _);
                        if (rule >= 0)
                        {
                            result.Stored = First(result.Stored, rule);
                        }

                        break;
                    }

                    case SqlTokenKind.OpenParen when previous.Kind is SqlTokenKind.Identifier or SqlTokenKind.QuotedIdentifier:
                    {
                        var called = name[..SqlNames.Normalize(body, previous, name)];
                        result.Opaque |= IsOpaqueFunction(called) || IsSink(called);
                        break;
                    }
                }

                previous = token;
            }

            if (lexer.Error != SqlLexError.None)
            {
                result.Opaque = true;
            }
        }

        private static bool IsStringToken(SqlTokenKind kind) =>
            kind is SqlTokenKind.String or SqlTokenKind.EscapeString or SqlTokenKind.DollarString or SqlTokenKind.UnicodeString;

        /// <summary>A string token's contents: between its quotes, or between its dollar tags.</summary>
        private static ReadOnlySpan<byte> Inside(ReadOnlySpan<byte> text, SqlToken token)
        {
            var raw = text.Slice(token.Start, token.Length);
            if (token.Kind == SqlTokenKind.DollarString)
            {
                int tag = raw[1..].IndexOf((byte)'$') + 2;
                return raw.Length >= 2 * tag ? raw[tag..^tag] : [];
            }

            int open = raw.IndexOf((byte)'\'');
            return open >= 0 && raw.Length - open >= 2 ? raw[(open + 1)..^1] : [];
        }

        // ---- COPY --------------------------------------------------------------------------------------------

        /// <summary>COPY relation [(columns)] TO STDOUT, or COPY (query) TO ...: decided as a whole.</summary>
        private void Copy(int from, int to, ref MaskAnalysis result)
        {
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            int i = from + 1;
            if (!CopiesOut(from, to) && !LoadsFromClient(from, to))
            {
                result.Opaque = true; // COPY ... FROM a server file or program: it could read the files masked tables are stored in
            }

            if (i < to && _tokens[i].Kind == SqlTokenKind.OpenParen)
            {
                // A query: its columns have no origin the COPY reports; any masked name in it makes it unmaskable.
                int rule = -1;
                for (int j = i; j < to; j++)
                {
                    if (IsName(j))
                    {
                        rule = First(rule, NameRule(j, name));
                    }
                }

                if (rule >= 0 && CopiesOut(from, to))
                {
                    result.CopyUnmaskable = First(result.CopyUnmaskable, rule);
                }

                return;
            }

            // COPY [schema.]relation [(columns)] TO|FROM ...
            byte[]? schema = null;
            byte[]? relation = null;
            while (i < to && IsName(i))
            {
                int length = Normalize(i, name);
                schema = relation;
                relation = name[..length].ToArray();
                if (i + 1 < to && _tokens[i + 1].Kind == SqlTokenKind.Dot)
                {
                    i += 2;
                    continue;
                }

                i++;
                break;
            }

            if (relation is null)
            {
                return;
            }

            int relationRule = _names.RelationRule(relation);
            if (relationRule < 0 || !CopiesOut(from, to))
            {
                return;
            }

            List<byte[]>? columns = null;
            if (i < to && _tokens[i].Kind == SqlTokenKind.OpenParen)
            {
                columns = [];
                for (i++; i < to && _tokens[i].Kind != SqlTokenKind.CloseParen; i++)
                {
                    if (IsName(i))
                    {
                        columns.Add(name[..Normalize(i, name)].ToArray());
                    }
                    else if (_tokens[i].Kind != SqlTokenKind.Comma)
                    {
                        result.CopyUnmaskable = First(result.CopyUnmaskable, relationRule);
                        return;
                    }
                }

                i++;
            }

            // TO STDOUT and nothing after it: the default text format, which the gateway can mask.
            bool plain = i + 2 == to && Keyword(i) == Kw.To && Keyword(i + 1) == Kw.Stdout;
            if (!plain)
            {
                result.CopyUnmaskable = First(result.CopyUnmaskable, relationRule);
                return;
            }

            result.CopyRule = First(result.CopyRule, relationRule);
            result.Reads = First(result.Reads, relationRule);
            if (result.Copy is null)
            {
                result.Copy = new MaskCopyTarget(schema, relation, columns);
            }
            else
            {
                result.CopyUnmaskable = First(result.CopyUnmaskable, relationRule); // two COPYs in one text
            }
        }

        private readonly bool CopiesOut(int from, int to)
        {
            for (int j = from + 1; j < to; j++)
            {
                if (Keyword(j) == Kw.To)
                {
                    return true;
                }

                if (Keyword(j) == Kw.From && _tokens[j - 1].Kind != SqlTokenKind.OpenParen)
                {
                    // COPY t FROM: unless it is inside COPY (query) (checked by depth below), a load.
                    int depth = 0;
                    for (int k = from + 1; k < j; k++)
                    {
                        depth += _tokens[k].Kind == SqlTokenKind.OpenParen ? 1 : _tokens[k].Kind == SqlTokenKind.CloseParen ? -1 : 0;
                    }

                    if (depth == 0)
                    {
                        return false;
                    }
                }
            }

            return false;
        }

        /// <summary>COPY ... FROM STDIN: loaded from the client, who already has the values.</summary>
        private readonly bool LoadsFromClient(int from, int to)
        {
            for (int j = from + 1; j + 1 < to; j++)
            {
                if (Keyword(j) == Kw.From && Keyword(j + 1) == Kw.Stdin)
                {
                    return true;
                }
            }

            return false;
        }

        // ---- helpers -----------------------------------------------------------------------------------------

        private readonly int ChainStart(int last, int from)
        {
            int start = last;
            while (start - 2 >= from && _tokens[start - 1].Kind == SqlTokenKind.Dot && IsName(start - 2))
            {
                start -= 2;
            }

            return start;
        }

        private readonly bool IsName(int i) =>
            _tokens[i].Kind is SqlTokenKind.Identifier or SqlTokenKind.QuotedIdentifier or SqlTokenKind.UnicodeQuotedIdentifier;

        /// <summary>Token <paramref name="i"/> opens a query: SELECT, VALUES, WITH, TABLE, or a nested parenthesis.</summary>
        private readonly bool IsQueryStart(int i) =>
            i < _tokens.Length && (_tokens[i].Kind == SqlTokenKind.OpenParen || Keyword(i) is Kw.Select or Kw.Values or Kw.With or Kw.Table);

        private readonly int Normalize(int i, Span<byte> destination) =>
            _tokens[i].Kind == SqlTokenKind.UnicodeQuotedIdentifier
                ? UnicodeIdentifier(i, destination)
                : SqlNames.Normalize(_text, _tokens[i], destination);

        /// <summary>
        /// A <c>U&amp;"..."</c> identifier as the server reads it (4.1.1): <c>\XXXX</c> and <c>\+XXXXXX</c> escapes (or those of
        /// the escape character a following <c>UESCAPE 'c'</c> names), <c>""</c> as <c>"</c>, case kept, clipped to 63 bytes.
        /// </summary>
        private readonly int UnicodeIdentifier(int i, Span<byte> destination)
        {
            SqlToken token = _tokens[i];
            var body = _text.Slice(token.Start + 3, Math.Max(token.Length - 4, 0));
            byte escape = (byte)'\\';
            if (i + 2 < _tokens.Length && IsWord(i + 1, "uescape"u8) && _tokens[i + 2].Kind == SqlTokenKind.String && _tokens[i + 2].Length == 3)
            {
                escape = _text[_tokens[i + 2].Start + 1];
            }

            int written = 0;
            Span<byte> utf8 = stackalloc byte[4];
            for (int at = 0; at < body.Length && written < SqlNames.PartBuffer;)
            {
                byte b = body[at];
                if (b == escape && at + 1 < body.Length)
                {
                    if (body[at + 1] == escape)
                    {
                        destination[written++] = escape;
                        at += 2;
                        continue;
                    }

                    int digits = body[at + 1] == (byte)'+' ? 6 : 4;
                    int start = at + (digits == 6 ? 2 : 1);
                    if (start + digits <= body.Length
                        && int.TryParse(body.Slice(start, digits), System.Globalization.NumberStyles.HexNumber, null, out int code)
                        && new System.Text.Rune(Math.Clamp(code, 0, 0x10FFFF) is var c && System.Text.Rune.IsValid(c) ? c : 0xFFFD) is var rune)
                    {
                        int length = rune.EncodeToUtf8(utf8);
                        for (int k = 0; k < length && written < SqlNames.PartBuffer; k++)
                        {
                            destination[written++] = utf8[k];
                        }
                    }

                    at = start + digits;
                    continue;
                }

                destination[written++] = b;
                at += b == (byte)'"' ? 2 : 1;
            }

            // truncate_identifier: at most 63 bytes, never ending inside a UTF-8 sequence.
            if (written > SqlNames.MaxIdentifierBytes)
            {
                written = SqlNames.MaxIdentifierBytes;
                while (written > 0 && (destination[written] & 0xC0) == 0x80)
                {
                    written--;
                }
            }

            return written;
        }

        private readonly Kw Keyword(int i) =>
            _tokens[i].Kind == SqlTokenKind.Identifier ? SqlKeywords.Lookup(_text.Slice(_tokens[i].Start, _tokens[i].Length)) : Kw.None;

        private readonly bool IsWord(int i, ReadOnlySpan<byte> lower) =>
            _tokens[i].Kind == SqlTokenKind.Identifier && SqlKeywords.Equals(_text.Slice(_tokens[i].Start, _tokens[i].Length), lower);

        /// <summary>Words that end a select item's alias position (so the item is not `column alias`).</summary>
        private readonly bool IsReservedAfterItem(int i) =>
            Keyword(i) != Kw.None || IsAnyWord(i, s_operatorWords);

        /// <summary>Words that follow a relation in FROM without being its alias.</summary>
        private readonly bool IsReservedAfterRelation(int i) =>
            Keyword(i) != Kw.None || IsAnyWord(i, s_joinWords) || IsAnyWord(i, s_operatorWords);

        /// <summary>Words that start a new select-list item or clause: where an item's tokens end, looking back.</summary>
        private readonly bool IsItemBoundary(int i) =>
            Keyword(i) is Kw.Select or Kw.From or Kw.Where or Kw.Group or Kw.Having or Kw.Order or Kw.Limit or Kw.Offset or Kw.Window or Kw.Union
                or Kw.Intersect or Kw.Except or Kw.On or Kw.Using or Kw.Join or Kw.Into or Kw.Values or Kw.Set or Kw.With or Kw.Returning or Kw.All
            || IsWord(i, "distinct"u8) || IsWord(i, "by"u8);

        private readonly bool IsAnyWord(int i, string[] words)
        {
            if (_tokens[i].Kind != SqlTokenKind.Identifier)
            {
                return false;
            }

            var word = _text.Slice(_tokens[i].Start, _tokens[i].Length);
            foreach (string w in words)
            {
                if (word.Length == w.Length && System.Text.Ascii.EqualsIgnoreCase(word, w))
                {
                    return true;
                }
            }

            return false;
        }

        private static readonly string[] s_operatorWords =
        [
            "and", "is", "in", "like", "ilike", "similar", "between", "collate", "at", "isnull", "notnull", "overlaps", "escape",
            "over", "filter", "within", "then", "else", "end", "when", "by", "desc", "asc", "nulls", "case",
        ];

        private static readonly string[] s_joinWords =
        [
            "inner", "left", "right", "full", "cross", "natural", "outer", "tablesample", "fetch", "for", "when", "then", "and",
        ];

        private static bool IsStatisticsView(ReadOnlySpan<byte> name) =>
            name.SequenceEqual("pg_stats"u8) || name.SequenceEqual("pg_statistic"u8) || name.SequenceEqual("pg_stats_ext"u8)
            || name.SequenceEqual("pg_stats_ext_exprs"u8) || name.SequenceEqual("pg_statistic_ext_data"u8);

        /// <summary>
        /// Functions that read what no statement text shows: SQL given as text, relations given by name or OID,
        /// server files, raw pages, decoded WAL.
        /// </summary>
        private static bool IsOpaqueFunction(ReadOnlySpan<byte> name) =>
            name.StartsWith("query_to_xml"u8) || name.StartsWith("table_to_xml"u8) || name.StartsWith("schema_to_xml"u8)
            || name.StartsWith("database_to_xml"u8) || name.StartsWith("dblink"u8) || name.SequenceEqual("ts_stat"u8) || name.SequenceEqual("ts_rewrite"u8)
            || name.SequenceEqual("pg_read_file"u8) || name.SequenceEqual("pg_read_binary_file"u8) || name.SequenceEqual("lo_import"u8)
            || name.SequenceEqual("get_raw_page"u8) || name.StartsWith("bt_page_items"u8) || name.StartsWith("pg_logical_slot_"u8);

        /// <summary>Functions that put a value where a later statement (or the protocol) shows it unmasked.</summary>
        private static bool IsSink(ReadOnlySpan<byte> name) =>
            name.SequenceEqual("set_config"u8) || name.SequenceEqual("pg_notify"u8) || name.SequenceEqual("lo_from_bytea"u8)
            || name.SequenceEqual("lo_put"u8) || name.SequenceEqual("lowrite"u8) || name.SequenceEqual("pg_logical_emit_message"u8)
            || name.SequenceEqual("pg_file_write"u8);

        private static int First(int current, int rule) => current >= 0 ? current : rule;
    }
}
