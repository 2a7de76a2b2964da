namespace Gatehouse.Policy.Sql;

/// <summary>One statement of a multi-statement text: a byte range without the terminating ";".</summary>
/// <param name="HasError">The lexer failed inside this statement (it then runs to the end of the text).</param>
public readonly record struct SqlStatementRange(int Start, int Length, bool HasError)
{
    public int End => Start + Length;
}

/// <summary>
/// Splits a simple-query text at top-level ";" (not inside strings, comments, dollar quotes or parentheses,
/// nor inside a <c>BEGIN ATOMIC ... END</c> SQL-standard function body, 41.5 / CREATE FUNCTION), skipping empty
/// statements. Zero allocation: use it as an enumerator (<c>foreach (var r in new SqlSplitter&lt;PostgresDialect&gt;(...))</c>).
/// After a lexer error the rest of the text is one statement with <see cref="SqlStatementRange.HasError"/>.
/// </summary>
public ref struct SqlSplitter<TDialect>
    where TDialect : struct, ISqlDialect
{
    private SqlLexer<TDialect> _lexer;
    private readonly int _length;
    private bool _done;

    public SqlSplitter(ReadOnlySpan<byte> text, SqlLexSettings settings)
    {
        _lexer = new SqlLexer<TDialect>(text, settings);
        _length = text.Length;
        _done = false;
        Current = default;
        Text = text;
    }

    /// <summary>The text being split.</summary>
    public ReadOnlySpan<byte> Text { get; }

    public SqlStatementRange Current { get; private set; }

    public readonly SqlSplitter<TDialect> GetEnumerator() => this;

    public bool MoveNext()
    {
        while (!_done)
        {
            int start = -1;
            int end = -1;
            int depth = 0;
            int atomic = 0;
            bool create = false;
            bool routine = false;
            int words = 0;
            bool previousBegin = false;
            bool first = true;
            while (true)
            {
                if (!_lexer.Next(out SqlToken t))
                {
                    _done = true;
                    break;
                }

                if (t.Kind == SqlTokenKind.Error)
                {
                    Current = new SqlStatementRange(start < 0 ? t.Start : start, _length - (start < 0 ? t.Start : start), true);
                    _done = true;
                    return true;
                }

                if (t.Kind == SqlTokenKind.Semicolon && depth <= 0 && atomic == 0)
                {
                    break;
                }

                if (start < 0)
                {
                    start = t.Start;
                }

                end = t.End;
                switch (t.Kind)
                {
                    case SqlTokenKind.OpenParen:
                        depth++;
                        break;
                    case SqlTokenKind.CloseParen:
                        depth--;
                        break;
                    case SqlTokenKind.Identifier:
                        ReadOnlySpan<byte> word = Text.Slice(t.Start, t.Length);
                        if (first)
                        {
                            create = SqlKeywords.Equals(word, "create"u8);
                        }
                        else if (create && depth == 0 && words < 4)
                        {
                            // As psql does: CREATE [OR REPLACE] FUNCTION|PROCEDURE are the only commands with BEGIN ATOMIC.
                            bool routineWord = SqlKeywords.Equals(word, "function"u8) || SqlKeywords.Equals(word, "procedure"u8);
                            routine |= (words == 1 && routineWord) || (words == 3 && routineWord);
                        }

                        if (routine && depth == 0)
                        {
                            // Only CREATE FUNCTION/PROCEDURE can contain BEGIN ATOMIC; CASE ... END nests inside it.
                            if (previousBegin && atomic == 0 && SqlKeywords.Equals(word, "atomic"u8))
                            {
                                atomic = 1;
                            }
                            else if (atomic > 0 && SqlKeywords.Equals(word, "case"u8))
                            {
                                atomic++;
                            }
                            else if (atomic > 0 && SqlKeywords.Equals(word, "end"u8))
                            {
                                atomic--;
                            }
                        }

                        previousBegin = SqlKeywords.Equals(word, "begin"u8);
                        if (depth == 0)
                        {
                            words++;
                        }

                        break;
                }

                if (t.Kind != SqlTokenKind.Identifier)
                {
                    previousBegin = false;
                }

                first = false;
            }

            if (start >= 0)
            {
                Current = new SqlStatementRange(start, end - start, false);
                return true;
            }
        }

        return false;
    }
}
