namespace Gatehouse.Policy.Sql;

/// <summary>What a token is. Comments and whitespace are never tokens: the server discards them too.</summary>
public enum SqlTokenKind : byte
{
    /// <summary>No more input.</summary>
    End,

    /// <summary>Malformed input (see <see cref="SqlLexError"/>); the lexer stops after it.</summary>
    Error,

    /// <summary>Unquoted identifier or keyword (PostgreSQL does not distinguish them lexically).</summary>
    Identifier,

    /// <summary><c>"..."</c> (or a dialect's backtick identifier).</summary>
    QuotedIdentifier,

    /// <summary><c>U&amp;"..."</c>: its name is only known after escape processing.</summary>
    UnicodeQuotedIdentifier,

    /// <summary><c>'...'</c> and <c>N'...'</c>.</summary>
    String,

    /// <summary><c>E'...'</c> (or a plain string read with backslash escapes, standard_conforming_strings off).</summary>
    EscapeString,

    /// <summary><c>U&amp;'...'</c>.</summary>
    UnicodeString,

    /// <summary><c>B'...'</c>.</summary>
    BitString,

    /// <summary><c>X'...'</c>.</summary>
    HexString,

    /// <summary><c>$$...$$</c> or <c>$tag$...$tag$</c>.</summary>
    DollarString,

    /// <summary>Integer or numeric constant.</summary>
    Number,

    /// <summary>Positional parameter <c>$1</c>.</summary>
    Parameter,

    /// <summary>Operator such as <c>+</c>, <c>&lt;&gt;</c>, <c>::</c>.</summary>
    Operator,

    /// <summary><c>;</c></summary>
    Semicolon,

    /// <summary><c>(</c></summary>
    OpenParen,

    /// <summary><c>)</c></summary>
    CloseParen,

    /// <summary><c>,</c></summary>
    Comma,

    /// <summary><c>.</c></summary>
    Dot,

    /// <summary><c>[</c>, <c>]</c> or <c>:</c>.</summary>
    Punctuation,

    /// <summary>A dialect's executable comment (MySQL <c>/*! ... */</c>): code the server runs, never a comment.</summary>
    ExecutableComment,

    /// <summary>A byte the grammar has no use for (a lone <c>$</c>, <c>\</c>, <c>{</c>): the server reports a syntax error.</summary>
    Other,
}

/// <summary>Why the lexer produced an <see cref="SqlTokenKind.Error"/> token.</summary>
public enum SqlLexError : byte
{
    None,
    UnterminatedString,
    UnterminatedQuotedIdentifier,
    UnterminatedDollarQuote,
    UnterminatedComment,
    CommentTooDeep,
    TrailingJunk,
    ZeroLengthIdentifier,
    NulByte,
    UnsafeUnicodeString,
}

/// <summary>A token: a kind and a byte range of the lexed text.</summary>
public readonly record struct SqlToken(SqlTokenKind Kind, int Start, int Length)
{
    public int End => Start + Length;
}

/// <summary>Session settings that change where tokens end.</summary>
/// <param name="StandardConformingStrings">
/// PostgreSQL's <c>standard_conforming_strings</c> (on by default since 9.1). When off, backslash escapes apply
/// in plain <c>'...'</c> strings (4.1.2.2 String Constants with C-Style Escapes), so <c>'\''</c> is one string.
/// </param>
public readonly record struct SqlLexSettings(bool StandardConformingStrings)
{
    /// <summary>The server default: standard_conforming_strings on.</summary>
    public static SqlLexSettings Default => new(true);
}
