namespace Gatehouse.Policy.Sql;

/// <summary>
/// The lexical rules that differ between SQL dialects, as static members so <see cref="SqlLexer{TDialect}"/>
/// is specialised per dialect by the JIT (implement it on a struct): a dialect is a plug-in, not a fork of the
/// lexer. Everything not listed here (identifiers, numbers, operators, '' doubling) is common.
/// </summary>
public interface ISqlDialect
{
    /// <summary>Whether <c>/* /* */ */</c> nests (PostgreSQL yes, MySQL no).</summary>
    static abstract bool NestedBlockComments { get; }

    /// <summary>Deepest block comment nesting accepted; deeper is an error token, not recursion.</summary>
    static abstract int MaxCommentDepth { get; }

    /// <summary>Whether <c>#</c> starts a line comment (MySQL).</summary>
    static abstract bool HashLineComments { get; }

    /// <summary>Whether <c>--</c> must be followed by whitespace to start a comment (MySQL).</summary>
    static abstract bool DashCommentNeedsSpace { get; }

    /// <summary>Whether <c>/*! ... */</c> is executable (MySQL): lexed as <see cref="SqlTokenKind.ExecutableComment"/>.</summary>
    static abstract bool ExecutableComments { get; }

    /// <summary>Whether <c>$tag$...$tag$</c> is a string constant (PostgreSQL).</summary>
    static abstract bool DollarQuotes { get; }

    /// <summary>Whether <c>E'..'</c>, <c>U&amp;'..'</c>, <c>U&amp;".."</c>, <c>B'..'</c>, <c>X'..'</c>, <c>N'..'</c> are recognised (PostgreSQL).</summary>
    static abstract bool PrefixedStrings { get; }

    /// <summary>Whether <c>`...`</c> is a quoted identifier (MySQL).</summary>
    static abstract bool BacktickIdentifiers { get; }

    /// <summary>Whether backslash escapes apply in plain <c>'...'</c> strings under <paramref name="settings"/>.</summary>
    static abstract bool BackslashEscapesInPlainStrings(SqlLexSettings settings);
}

/// <summary>
/// PostgreSQL's lexical rules (docs 4.1 Lexical Structure; src/backend/parser/scan.l), as of PostgreSQL 16:
/// nested block comments, dollar quotes, E/U&amp;/B/X/N prefixes, backslashes in plain strings only when
/// standard_conforming_strings is off.
/// </summary>
public readonly struct PostgresDialect : ISqlDialect
{
    public static bool NestedBlockComments => true;

    // The server itself has no bound; 64 keeps any policy input cheap and is far beyond real use.
    public static int MaxCommentDepth => 64;

    public static bool HashLineComments => false;

    public static bool DashCommentNeedsSpace => false;

    public static bool ExecutableComments => false;

    public static bool DollarQuotes => true;

    public static bool PrefixedStrings => true;

    public static bool BacktickIdentifiers => false;

    public static bool BackslashEscapesInPlainStrings(SqlLexSettings settings) => !settings.StandardConformingStrings;
}
