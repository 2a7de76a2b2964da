namespace Gatehouse.Policy.Sql;

/// <summary>
/// A zero-allocation SQL lexer over UTF-8 bytes following the server's rules (PostgreSQL: docs 4.1 Lexical
/// Structure and src/backend/parser/scan.l). Whitespace and comments are skipped. Malformed input (an
/// unterminated string, quoted identifier, dollar quote or comment; comments nested deeper than the dialect's
/// bound; a NUL byte; trailing junk after a number or parameter) yields one <see cref="SqlTokenKind.Error"/>
/// token and then the end: never an exception, never recursion.
/// </summary>
public ref struct SqlLexer<TDialect>
    where TDialect : struct, ISqlDialect
{
    private readonly ReadOnlySpan<byte> _text;
    private readonly bool _backslashInPlain;
    private int _pos;
    private SqlLexError _error;

    public SqlLexer(ReadOnlySpan<byte> text, SqlLexSettings settings)
    {
        _text = text;
        _backslashInPlain = TDialect.BackslashEscapesInPlainStrings(settings);
        _pos = 0;
        _error = SqlLexError.None;

        // A query string is a C string (53.7 Message Formats, Query): an embedded NUL makes the server reject
        // the whole message, so nothing in it is a statement.
        if (text.Contains((byte)0))
        {
            _error = SqlLexError.NulByte;
        }
    }

    /// <summary>Byte offset where the next token search starts.</summary>
    public readonly int Position => _pos;

    /// <summary>Why the last token was an error, or <see cref="SqlLexError.None"/>.</summary>
    public readonly SqlLexError Error => _error;

    /// <summary>Reads the next token; false (with an <see cref="SqlTokenKind.End"/> token) at the end or after an error.</summary>
    public bool Next(out SqlToken token)
    {
        if (_pos == int.MaxValue)
        {
            token = new SqlToken(SqlTokenKind.End, _text.Length, 0);
            return false;
        }

        if (_error != SqlLexError.None)
        {
            token = Fail(0);
            return true;
        }

        if (!SkipTrivia(out int errorStart))
        {
            token = Fail(errorStart);
            return true;
        }

        ReadOnlySpan<byte> s = _text;
        if (_pos >= s.Length)
        {
            token = new SqlToken(SqlTokenKind.End, s.Length, 0);
            return false;
        }

        int start = _pos;
        byte c = s[start];
        byte n1 = At(start + 1);
        switch (c)
        {
            case (byte)';': return Single(SqlTokenKind.Semicolon, out token);
            case (byte)'(': return Single(SqlTokenKind.OpenParen, out token);
            case (byte)')': return Single(SqlTokenKind.CloseParen, out token);
            case (byte)',': return Single(SqlTokenKind.Comma, out token);
            case (byte)'[':
            case (byte)']':
                return Single(SqlTokenKind.Punctuation, out token);
            case (byte)':':
                if (n1 == (byte)':' || n1 == (byte)'=')
                {
                    return Emit(SqlTokenKind.Operator, start, start + 2, out token);
                }

                return Single(SqlTokenKind.Punctuation, out token);
            case (byte)'.':
                if (SqlChars.IsDigit(n1))
                {
                    return Number(start, out token);
                }

                return Single(SqlTokenKind.Dot, out token);
            case (byte)'\'':
                return Quoted(start, start + 1, _backslashInPlain ? SqlTokenKind.EscapeString : SqlTokenKind.String, _backslashInPlain, true, out token);
            case (byte)'"':
                return QuotedIdentifier(start, start + 1, (byte)'"', SqlTokenKind.QuotedIdentifier, out token);
            case (byte)'`' when TDialect.BacktickIdentifiers:
                return QuotedIdentifier(start, start + 1, (byte)'`', SqlTokenKind.QuotedIdentifier, out token);
            case (byte)'$':
                return Dollar(start, out token);
            case (byte)'/' when TDialect.ExecutableComments && n1 == (byte)'*':
                int close = s[(start + 2)..].IndexOf("*/"u8);
                return close < 0
                    ? Fail(SqlLexError.UnterminatedComment, start, out token)
                    : Emit(SqlTokenKind.ExecutableComment, start, start + 2 + close + 2, out token);
            case 0:
                _error = SqlLexError.NulByte;
                token = Fail(start);
                return true;
        }

        if (TDialect.PrefixedStrings && n1 == (byte)'\'')
        {
            switch (c | 0x20)
            {
                // 4.1.2.2 String Constants with C-Style Escapes: E'...' always takes backslash escapes.
                case 'e': return Quoted(start, start + 2, SqlTokenKind.EscapeString, true, true, out token);

                // 4.1.2.5 Bit-String Constants: no escapes and no '' doubling (scan.l xb/xh states).
                case 'b': return Quoted(start, start + 2, SqlTokenKind.BitString, false, false, out token);
                case 'x': return Quoted(start, start + 2, SqlTokenKind.HexString, false, false, out token);

                // N'...' is a plain string constant of type national character.
                case 'n': return Quoted(start, start + 2, _backslashInPlain ? SqlTokenKind.EscapeString : SqlTokenKind.String, _backslashInPlain, true, out token);
            }
        }

        if (TDialect.PrefixedStrings && (c | 0x20) == 'u' && n1 == (byte)'&')
        {
            // 4.1.2.3 String Constants with Unicode Escapes, 4.1.1 U&"..." identifiers.
            byte n2 = At(start + 2);
            if (n2 == (byte)'\'')
            {
                // scan.l xusstart: with standard_conforming_strings off the server rejects U&'...' outright.
                return _backslashInPlain
                    ? Fail(SqlLexError.UnsafeUnicodeString, start, out token)
                    : Quoted(start, start + 3, SqlTokenKind.UnicodeString, false, true, out token);
            }

            if (n2 == (byte)'"')
            {
                return QuotedIdentifier(start, start + 3, (byte)'"', SqlTokenKind.UnicodeQuotedIdentifier, out token);
            }
        }

        if (SqlChars.IsIdentStart(c))
        {
            int i = start + 1;
            while (i < s.Length && SqlChars.IsIdentCont(s[i]))
            {
                i++;
            }

            return Emit(SqlTokenKind.Identifier, start, i, out token);
        }

        if (SqlChars.IsDigit(c))
        {
            return Number(start, out token);
        }

        if (SqlChars.IsOpChar(c))
        {
            return Operator(start, out token);
        }

        return Single(SqlTokenKind.Other, out token);
    }

    private readonly byte At(int i) => (uint)i < (uint)_text.Length ? _text[i] : (byte)0;

    private SqlToken Fail(int start)
    {
        int from = Math.Min(start, _text.Length);
        _pos = int.MaxValue;
        return new SqlToken(SqlTokenKind.Error, from, _text.Length - from);
    }

    private bool Single(SqlTokenKind kind, out SqlToken token) => Emit(kind, _pos, _pos + 1, out token);

    private bool Emit(SqlTokenKind kind, int start, int end, out SqlToken token)
    {
        _pos = end;
        token = new SqlToken(kind, start, end - start);
        return true;
    }

    private bool Fail(SqlLexError error, int start, out SqlToken token)
    {
        _error = error;
        token = Fail(start);
        return true;
    }

    // Skips whitespace and comments. False when a comment is malformed (the error is recorded).
    private bool SkipTrivia(out int errorStart)
    {
        ReadOnlySpan<byte> s = _text;
        errorStart = 0;
        while (_pos < s.Length)
        {
            byte c = s[_pos];
            if (SqlChars.IsSpace(c))
            {
                _pos++;
                continue;
            }

            if (c == (byte)'-' && At(_pos + 1) == (byte)'-' && (!TDialect.DashCommentNeedsSpace || SqlChars.IsSpace(At(_pos + 2)) || _pos + 2 >= s.Length))
            {
                SkipLine();
                continue;
            }

            if (c == (byte)'#' && TDialect.HashLineComments)
            {
                SkipLine();
                continue;
            }

            if (c == (byte)'/' && At(_pos + 1) == (byte)'*')
            {
                if (TDialect.ExecutableComments && At(_pos + 2) == (byte)'!')
                {
                    return true;
                }

                int end = BlockCommentEnd(_pos);
                if (end < 0)
                {
                    errorStart = _pos;
                    return false;
                }

                _pos = end;
                continue;
            }

            break;
        }

        return true;
    }

    private void SkipLine()
    {
        ReadOnlySpan<byte> s = _text;
        int i = _pos + 2;
        while (i < s.Length && s[i] != (byte)'\n' && s[i] != (byte)'\r')
        {
            i++;
        }

        _pos = i;
    }

    // scan.l xc state: "/*" nests, "*/" closes, everything else is content. Iterative with a depth counter.
    private int BlockCommentEnd(int start)
    {
        ReadOnlySpan<byte> s = _text;
        int depth = 1;
        int i = start + 2;
        while (i < s.Length - 1)
        {
            byte c = s[i];
            if (c == (byte)'/' && s[i + 1] == (byte)'*' && TDialect.NestedBlockComments)
            {
                if (++depth > TDialect.MaxCommentDepth)
                {
                    _error = SqlLexError.CommentTooDeep;
                    return -1;
                }

                i += 2;
            }
            else if (c == (byte)'*' && s[i + 1] == (byte)'/')
            {
                i += 2;
                if (--depth == 0)
                {
                    return i;
                }
            }
            else
            {
                i++;
            }
        }

        _error = SqlLexError.UnterminatedComment;
        return -1;
    }

    // A quoted string body starting at bodyStart, with the continuation rule of 4.1.2.1: two constants separated
    // only by whitespace containing a newline are one constant, and the continuation keeps the escape mode
    // (scan.l xqs state returns to the state before the quote), so E'a'\n'\'' is one string.
    private bool Quoted(int start, int bodyStart, SqlTokenKind kind, bool backslash, bool doubling, out SqlToken token)
    {
        ReadOnlySpan<byte> s = _text;
        int i = bodyStart;
        while (i < s.Length)
        {
            byte c = s[i];
            if (c == 0)
            {
                return Fail(SqlLexError.NulByte, start, out token);
            }

            if (c == (byte)'\\' && backslash)
            {
                i += 2;
                continue;
            }

            if (c == (byte)'\'')
            {
                if (doubling && At(i + 1) == (byte)'\'')
                {
                    i += 2;
                    continue;
                }

                i++;
                int next = ContinuationQuote(i);
                if (next < 0)
                {
                    return Emit(kind, start, i, out token);
                }

                i = next + 1;
                continue;
            }

            i++;
        }

        return Fail(SqlLexError.UnterminatedString, start, out token);
    }

    // scan.l quotecontinue: {horiz_whitespace}*{newline}{special_whitespace}*{quote}; returns the quote's index or -1.
    private readonly int ContinuationQuote(int i)
    {
        ReadOnlySpan<byte> s = _text;
        bool newline = false;
        while (i < s.Length)
        {
            byte c = s[i];
            if (c == (byte)' ' || c == (byte)'\t' || c == (byte)'\f' || (newline && c == (byte)'\v'))
            {
                i++;
            }
            else if (c == (byte)'\n' || c == (byte)'\r')
            {
                newline = true;
                i++;
            }
            else if (c == (byte)'-' && At(i + 1) == (byte)'-')
            {
                while (i < s.Length && s[i] != (byte)'\n' && s[i] != (byte)'\r')
                {
                    i++;
                }
            }
            else
            {
                return c == (byte)'\'' && newline ? i : -1;
            }
        }

        return -1;
    }

    private bool QuotedIdentifier(int start, int bodyStart, byte quote, SqlTokenKind kind, out SqlToken token)
    {
        ReadOnlySpan<byte> s = _text;
        int i = bodyStart;
        while (i < s.Length)
        {
            byte c = s[i];
            if (c == quote)
            {
                if (At(i + 1) == quote)
                {
                    i += 2;
                    continue;
                }

                // 4.1.1: a delimited identifier cannot be empty.
                return i == bodyStart
                    ? Fail(SqlLexError.ZeroLengthIdentifier, start, out token)
                    : Emit(kind, start, i + 1, out token);
            }

            if (c == 0)
            {
                return Fail(SqlLexError.NulByte, start, out token);
            }

            i++;
        }

        return Fail(SqlLexError.UnterminatedQuotedIdentifier, start, out token);
    }

    // "$": a parameter ($1), a dollar quote ($$ or $tag$, 4.1.2.4; the tag follows identifier rules without "$"
    // and cannot start with a digit), or a lone "$" (scan.l dolqfailed: the grammar rejects it).
    private bool Dollar(int start, out SqlToken token)
    {
        ReadOnlySpan<byte> s = _text;
        byte n1 = At(start + 1);
        if (SqlChars.IsDigit(n1))
        {
            int i = start + 1;
            while (i < s.Length && SqlChars.IsDigit(s[i]))
            {
                i++;
            }

            // scan.l param_junk (PostgreSQL 15+): "$1abc" is an error, not "$1 abc".
            return i < s.Length && SqlChars.IsIdentStart(s[i])
                ? Fail(SqlLexError.TrailingJunk, start, out token)
                : Emit(SqlTokenKind.Parameter, start, i, out token);
        }

        if (!TDialect.DollarQuotes)
        {
            return Single(SqlTokenKind.Other, out token);
        }

        int tagEnd = start + 1;
        if (n1 != (byte)'$')
        {
            if (!SqlChars.IsIdentStart(n1))
            {
                return Single(SqlTokenKind.Other, out token);
            }

            tagEnd++;
            while (tagEnd < s.Length && SqlChars.IsIdentStart(s[tagEnd]) | SqlChars.IsDigit(s[tagEnd]))
            {
                tagEnd++;
            }

            if (tagEnd >= s.Length || s[tagEnd] != (byte)'$')
            {
                return Single(SqlTokenKind.Other, out token);
            }
        }

        ReadOnlySpan<byte> delimiter = s[start..(tagEnd + 1)];
        int bodyStart = tagEnd + 1;
        int close = s[bodyStart..].IndexOf(delimiter);
        if (close < 0)
        {
            return Fail(SqlLexError.UnterminatedDollarQuote, start, out token);
        }

        int end = bodyStart + close + delimiter.Length;
        return s[start..end].Contains((byte)0)
            ? Fail(SqlLexError.NulByte, start, out token)
            : Emit(SqlTokenKind.DollarString, start, end, out token);
    }

    // 4.1.2.6 Numeric Constants (PostgreSQL 16: 0x/0o/0b and "_" separators). Trailing identifier characters
    // are an error (scan.l integer_junk/numeric_junk/real_junk), so "123abc" is never "123 AS abc".
    private bool Number(int start, out SqlToken token)
    {
        ReadOnlySpan<byte> s = _text;
        int i = start;
        byte n1 = At(start + 1);
        if (s[start] == (byte)'0' && ((n1 | 0x20) == 'x' || (n1 | 0x20) == 'o' || (n1 | 0x20) == 'b'))
        {
            i += 2;
            while (i < s.Length && (SqlChars.IsDigit(s[i]) || s[i] == (byte)'_' || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
            {
                i++;
            }
        }
        else
        {
            i = Digits(i);
            if (At(i) == (byte)'.' && At(i + 1) != (byte)'.')
            {
                i = Digits(i + 1);
            }

            if ((At(i) | 0x20) == 'e')
            {
                int j = i + 1;
                if (At(j) == (byte)'+' || At(j) == (byte)'-')
                {
                    j++;
                }

                if (SqlChars.IsDigit(At(j)))
                {
                    i = Digits(j);
                }
            }
        }

        return i < s.Length && SqlChars.IsIdentStart(s[i])
            ? Fail(SqlLexError.TrailingJunk, start, out token)
            : Emit(SqlTokenKind.Number, start, i, out token);
    }

    private readonly int Digits(int i)
    {
        ReadOnlySpan<byte> s = _text;
        while (i < s.Length && (SqlChars.IsDigit(s[i]) || s[i] == (byte)'_'))
        {
            i++;
        }

        return i;
    }

    // 4.1.3 Operators: a run of operator characters, cut before "--" or "/*", and a trailing "+" or "-" is
    // dropped unless the operator contains one of ~ ! @ # % ^ & | ` ? (scan.l {operator} rule).
    private bool Operator(int start, out SqlToken token)
    {
        ReadOnlySpan<byte> s = _text;
        int i = start + 1;
        while (i < s.Length && SqlChars.IsOpChar(s[i]))
        {
            if ((s[i] == (byte)'-' && At(i + 1) == (byte)'-') || (s[i] == (byte)'/' && At(i + 1) == (byte)'*'))
            {
                break;
            }

            if (TDialect.HashLineComments && s[i] == (byte)'#')
            {
                break;
            }

            i++;
        }

        int end = i;
        if (end - start > 1 && s[start..end].IndexOfAny(SqlChars.KeepsTrailingSign) < 0)
        {
            while (end - start > 1 && (s[end - 1] == (byte)'+' || s[end - 1] == (byte)'-'))
            {
                end--;
            }
        }

        return Emit(SqlTokenKind.Operator, start, end, out token);
    }
}

/// <summary>Character classes of scan.l shared by the lexer and its callers.</summary>
internal static class SqlChars
{
    /// <summary>Operator characters that keep a trailing "+" or "-" on a multi-character operator.</summary>
    internal static readonly System.Buffers.SearchValues<byte> KeepsTrailingSign = System.Buffers.SearchValues.Create("~!@#%^&|`?"u8);

    /// <summary>scan.l space: [ \t\n\r\f\v].</summary>
    internal static bool IsSpace(byte c) => c == (byte)' ' || (c >= (byte)'\t' && c <= (byte)'\r');

    internal static bool IsDigit(byte c) => (uint)(c - '0') <= 9;

    /// <summary>scan.l ident_start: ASCII letters, "_", and every byte of a multi-byte UTF-8 character.</summary>
    internal static bool IsIdentStart(byte c) => (uint)((c | 0x20) - 'a') <= 'z' - 'a' || c == (byte)'_' || c >= 0x80;

    /// <summary>scan.l ident_cont: ident_start, digits and "$".</summary>
    internal static bool IsIdentCont(byte c) => IsIdentStart(c) || IsDigit(c) || c == (byte)'$';

    internal static bool IsOpChar(byte c) => c switch
    {
        (byte)'~' or (byte)'!' or (byte)'@' or (byte)'#' or (byte)'^' or (byte)'&' or (byte)'|' or (byte)'`' or (byte)'?'
            or (byte)'+' or (byte)'-' or (byte)'*' or (byte)'/' or (byte)'%' or (byte)'<' or (byte)'>' or (byte)'=' => true,
        _ => false,
    };
}
