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

    /// <summary>A masked column is used in WHERE, JOIN ... ON/USING, GROUP BY, ORDER BY or HAVING.</summary>
    public int InPredicate;

    /// <summary>The statement writes (INSERT ... SELECT, CREATE ... AS, SELECT INTO, UPDATE ... SET x = masked)
    /// values read from masked columns or relations with masked columns.</summary>
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
/// it can only over-mask or over-refuse, never under-report. Allocates only for COPY targets and long texts.
/// </summary>
public static class StatementMaskAnalyzer
{
    private const int MaxDepth = 64;
    private const int MaxAliases = 32;
    private const int StackTokens = 512;

    private enum Clause : byte
    {
        Other,
        Select,
        From,
        Target,
        Predicate,
        Set,
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

        try
        {
            Span<byte> aliasBytes = stackalloc byte[MaxAliases * SqlNames.PartBuffer];
            Span<int> aliasRules = stackalloc int[MaxAliases];
            Span<int> aliasStarts = stackalloc int[MaxAliases];
            Span<byte> aliasLengths = stackalloc byte[MaxAliases];
            var walk = new Walk(text, tokens[..count], names, aliasBytes, aliasRules, aliasStarts, aliasLengths);
            walk.Run(ref result);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<SqlToken>.Shared.Return(rented);
            }
        }

        return result;
    }

    private ref struct Walk
    {
        private readonly ReadOnlySpan<byte> _text;
        private readonly ReadOnlySpan<SqlToken> _tokens;
        private readonly MaskedNames _names;

        // Aliases of relations with masked columns: a whole-row reference through them reads masked values.
        private readonly Span<byte> _aliasBytes;
        private readonly Span<int> _aliasRules;
        private readonly Span<int> _aliasStarts;
        private readonly Span<byte> _aliasLengths;
        private int _aliasCount;
        private bool _aliasOverflow;

        public Walk(ReadOnlySpan<byte> text, ReadOnlySpan<SqlToken> tokens, MaskedNames names, Span<byte> aliasBytes, Span<int> aliasRules,
            Span<int> aliasStarts, Span<byte> aliasLengths)
        {
            _text = text;
            _tokens = tokens;
            _names = names;
            _aliasBytes = aliasBytes;
            _aliasRules = aliasRules;
            _aliasStarts = aliasStarts;
            _aliasLengths = aliasLengths;
            _aliasCount = 0;
            _aliasOverflow = false;
        }

        public void Run(ref MaskAnalysis result)
        {
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

        // ---- pass 1: aliases ---------------------------------------------------------------------------------

        private void CollectAliases()
        {
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            for (int i = 0; i < _tokens.Length; i++)
            {
                if (!IsName(i) || (i + 1 < _tokens.Length && _tokens[i + 1].Kind == SqlTokenKind.Dot))
                {
                    continue;
                }

                int rule = _names.RelationRule(name[..Normalize(i, name)]);
                if (rule < 0)
                {
                    continue;
                }

                int j = i + 1;
                if (j < _tokens.Length && Keyword(j) == Kw.As)
                {
                    j++;
                }

                if (j < _tokens.Length && IsName(j) && (_tokens[j].Kind == SqlTokenKind.QuotedIdentifier || !IsReservedAfterRelation(j)))
                {
                    AddAlias(j, rule);
                }
            }
        }

        private void AddAlias(int token, int rule)
        {
            if (_aliasCount == MaxAliases)
            {
                _aliasOverflow = true;
                return;
            }

            int offset = _aliasCount * SqlNames.PartBuffer;
            int length = Normalize(token, _aliasBytes.Slice(offset, SqlNames.PartBuffer));
            _aliasStarts[_aliasCount] = offset;
            _aliasLengths[_aliasCount] = (byte)length;
            _aliasRules[_aliasCount] = rule;
            _aliasCount++;
        }

        private readonly int AliasRule(ReadOnlySpan<byte> name)
        {
            for (int i = 0; i < _aliasCount; i++)
            {
                if (name.SequenceEqual(_aliasBytes.Slice(_aliasStarts[i], _aliasLengths[i])))
                {
                    return _aliasRules[i];
                }
            }

            return -1;
        }

        // ---- pass 2: one statement ---------------------------------------------------------------------------

        private void Statement(int from, int to, ref MaskAnalysis result)
        {
            Span<Clause> clauses = stackalloc Clause[MaxDepth + 1];
            Span<bool> ownSelect = stackalloc bool[MaxDepth + 1]; // SELECT was written at this depth (not inherited into a call)
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            int depth = 0;
            clauses[0] = Clause.Other;
            Kw first = Keyword(from);
            bool writes = first is Kw.Insert or Kw.Update or Kw.Delete or Kw.Merge or Kw.Create or Kw.Alter;
            bool defines = first is Kw.Declare or Kw.Prepare;
            bool setOperation = false;
            int source = -1;
            int referenced = -1;
            int topBare = -1; // masked columns selected bare at the outermost level: masked by origin, feeding nothing else
            bool positional = false;
            bool afterTargetKeyword = false;

            if (first == Kw.Copy)
            {
                Copy(from, to, ref result);
                return;
            }

            for (int i = from; i < to; i++)
            {
                SqlToken token = _tokens[i];
                switch (token.Kind)
                {
                    case SqlTokenKind.OpenParen:
                        if (depth < MaxDepth)
                        {
                            depth++;
                            clauses[depth] = clauses[depth - 1];
                            ownSelect[depth] = false;
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
                        if (Clauses(i, first, ref clauses[depth], ref writes, ref setOperation, ref afterTargetKeyword))
                        {
                            ownSelect[depth] |= clauses[depth] == Clause.Select;
                            continue;
                        }

                        break;
                    case SqlTokenKind.QuotedIdentifier:
                        break;
                    case SqlTokenKind.Operator when _text[token.Start] == (byte)'*' && token.Length == 1 && i - 2 >= from
                                                    && _tokens[i - 1].Kind == SqlTokenKind.Dot && IsName(i - 2):
                    {
                        // qualifier.*: every column of a relation with masked columns, bare or inside an expression.
                        int rule = RelationOrAlias(i - 2, name);
                        if (rule >= 0)
                        {
                            Use(rule, ChainStart(i - 2, from), i, from, to, clauses[depth], ownSelect[depth], depth, wholeRow: false, ref result,
                                ref referenced, ref source, ref topBare);
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

                int length = Normalize(i, name);
                if (IsStatisticsView(name[..length]))
                {
                    result.Statistics = true;
                }

                int chainStart = ChainStart(i, from);
                Clause clause = clauses[depth];
                int column = _names.ColumnRule(name[..length]);
                int relation = _names.RelationRule(name[..length]);
                if (relation < 0 && chainStart == i)
                {
                    relation = AliasRule(name[..length]);
                }

                if (clause is Clause.From or Clause.Target)
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
                if (column >= 0)
                {
                    Use(column, chainStart, i, from, to, clause, ownSelect[depth], depth, wholeRow: false, ref result, ref referenced, ref source,
                        ref topBare);
                }

                if (relation >= 0)
                {
                    Use(relation, chainStart, i, from, to, clause, ownSelect[depth], depth, wholeRow: true, ref result, ref referenced, ref source,
                        ref topBare);
                }
            }

            if (_aliasOverflow && referenced < 0 && source >= 0)
            {
                referenced = source;
            }

            if (setOperation)
            {
                referenced = First(referenced, topBare); // UNION columns are computed, even from bare ones
            }

            if (referenced >= 0)
            {
                result.Referenced = First(result.Referenced, referenced);
                if (setOperation)
                {
                    result.InExpression = First(result.InExpression, referenced);
                }
            }

            if (positional && First(referenced, topBare) >= 0)
            {
                result.InPredicate = First(result.InPredicate, First(referenced, topBare)); // ORDER BY 1 of a masked column
            }

            if (writes && source >= 0)
            {
                result.Stored = First(result.Stored, source);
            }

            int reads = referenced >= 0 ? referenced : source >= 0 ? source : result.InPredicate;
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
        /// A bare column at the outermost select list goes to the client as it is, masked by its origin, and feeds no
        /// other column (a select list cannot use its siblings); anywhere deeper (a subquery, a CTE) it may feed an
        /// expression outside, so the statement's computed columns are masked.
        /// </remarks>
        private readonly void Use(int rule, int chainStart, int end, int from, int to, Clause clause, bool selectList, int depth, bool wholeRow,
            ref MaskAnalysis result, ref int referenced, ref int source, ref int topBare)
        {
            switch (clause)
            {
                case Clause.Predicate:
                    result.InPredicate = First(result.InPredicate, rule);
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
                                                                         || IsWord(chainStart - 1, "distinct"u8)));
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
                    writes = true;
                    return true;
                case Kw.Table:
                    clause = first is Kw.Create or Kw.Alter or Kw.Drop or Kw.Truncate ? Clause.Target : Clause.From;
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
                case Kw.Limit:
                case Kw.Offset:
                    clause = Clause.Other;
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

        /// <summary>COPY relation [(columns)] TO STDOUT, or COPY (query) TO ...: decided as a whole.</summary>
        private void Copy(int from, int to, ref MaskAnalysis result)
        {
            Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
            int i = from + 1;
            if (i < to && _tokens[i].Kind == SqlTokenKind.OpenParen)
            {
                // A query: its columns have no origin the COPY reports; any masked name in it makes it unmaskable.
                int rule = -1;
                for (int j = i; j < to; j++)
                {
                    if (IsName(j))
                    {
                        int length = Normalize(j, name);
                        int found = _names.ColumnRule(name[..length]);
                        found = found >= 0 ? found : _names.RelationRule(name[..length]);
                        rule = First(rule, found >= 0 ? found : AliasRule(name[..length]));
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

        // ---- helpers -----------------------------------------------------------------------------------------

        private readonly int RelationOrAlias(int token, Span<byte> name)
        {
            int length = Normalize(token, name);
            int rule = _names.RelationRule(name[..length]);
            return rule >= 0 ? rule : AliasRule(name[..length]);
        }

        private readonly int ChainStart(int last, int from)
        {
            int start = last;
            while (start - 2 >= from && _tokens[start - 1].Kind == SqlTokenKind.Dot && IsName(start - 2))
            {
                start -= 2;
            }

            return start;
        }

        private readonly bool IsName(int i) => _tokens[i].Kind is SqlTokenKind.Identifier or SqlTokenKind.QuotedIdentifier;

        private readonly int Normalize(int i, Span<byte> destination) => SqlNames.Normalize(_text, _tokens[i], destination);

        private readonly Kw Keyword(int i) =>
            _tokens[i].Kind == SqlTokenKind.Identifier ? SqlKeywords.Lookup(_text.Slice(_tokens[i].Start, _tokens[i].Length)) : Kw.None;

        private readonly bool IsWord(int i, ReadOnlySpan<byte> lower) =>
            _tokens[i].Kind == SqlTokenKind.Identifier && SqlKeywords.Equals(_text.Slice(_tokens[i].Start, _tokens[i].Length), lower);

        /// <summary>Words that end a select item's alias position (so the item is not `column alias`).</summary>
        private readonly bool IsReservedAfterItem(int i) =>
            Keyword(i) != Kw.None || IsAnyWord(i, s_operatorWords);

        /// <summary>Words that follow a relation in FROM without being its alias.</summary>
        private readonly bool IsReservedAfterRelation(int i) =>
            Keyword(i) != Kw.None || IsAnyWord(i, s_joinWords);

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
            "over", "filter", "within", "then", "else", "end", "when", "by", "desc", "asc", "nulls",
        ];

        private static readonly string[] s_joinWords =
        [
            "inner", "left", "right", "full", "cross", "natural", "outer", "tablesample", "fetch", "for", "when", "then", "and",
        ];

        private static bool IsStatisticsView(ReadOnlySpan<byte> name) =>
            name.SequenceEqual("pg_stats"u8) || name.SequenceEqual("pg_statistic"u8) || name.SequenceEqual("pg_stats_ext"u8)
            || name.SequenceEqual("pg_stats_ext_exprs"u8) || name.SequenceEqual("pg_statistic_ext_data"u8);

        private static int First(int current, int rule) => current >= 0 ? current : rule;
    }
}
