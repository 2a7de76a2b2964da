using System.Text;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Tests.Sql;

public sealed class SqlLexerTests
{
    private static List<(SqlTokenKind Kind, string Text)> Lex(string sql, bool standardConformingStrings = true)
    {
        byte[] text = Encoding.UTF8.GetBytes(sql);
        var lexer = new SqlLexer<PostgresDialect>(text, new SqlLexSettings(standardConformingStrings));
        var tokens = new List<(SqlTokenKind, string)>();
        while (lexer.Next(out SqlToken token))
        {
            tokens.Add((token.Kind, Encoding.UTF8.GetString(text, token.Start, token.Length)));
        }

        return tokens;
    }

    [Theory]
    [InlineData("abc", SqlTokenKind.Identifier)]
    [InlineData("a$b_1", SqlTokenKind.Identifier)]
    [InlineData("größe", SqlTokenKind.Identifier)]
    [InlineData("\"a\"\"b\"", SqlTokenKind.QuotedIdentifier)]
    [InlineData("U&\"d\\0061t\"", SqlTokenKind.UnicodeQuotedIdentifier)]
    [InlineData("'it''s'", SqlTokenKind.String)]
    [InlineData("E'\\''", SqlTokenKind.EscapeString)]
    [InlineData("e'\\\\'", SqlTokenKind.EscapeString)]
    [InlineData("U&'\\0041'", SqlTokenKind.UnicodeString)]
    [InlineData("B'0101'", SqlTokenKind.BitString)]
    [InlineData("x'1F'", SqlTokenKind.HexString)]
    [InlineData("N'x'", SqlTokenKind.String)]
    [InlineData("$$a'b$$", SqlTokenKind.DollarString)]
    [InlineData("$tag$ $$ $tag$", SqlTokenKind.DollarString)]
    [InlineData("$TAG$ $tag$ $TAG$", SqlTokenKind.DollarString)]
    [InlineData("$12", SqlTokenKind.Parameter)]
    [InlineData("42", SqlTokenKind.Number)]
    [InlineData("3.14e-2", SqlTokenKind.Number)]
    [InlineData(".5", SqlTokenKind.Number)]
    [InlineData("0x_FF", SqlTokenKind.Number)]
    [InlineData("<>", SqlTokenKind.Operator)]
    [InlineData("::", SqlTokenKind.Operator)]
    [InlineData(";", SqlTokenKind.Semicolon)]
    [InlineData("'a'\n  'b'", SqlTokenKind.String)]
    [InlineData("'a' -- c\n'b'", SqlTokenKind.String)]
    public void Lexes_a_single_token(string sql, SqlTokenKind kind)
    {
        var tokens = Lex(sql);
        Assert.Single(tokens);
        Assert.Equal(kind, tokens[0].Kind);
        Assert.Equal(sql, tokens[0].Text);
    }

    [Fact]
    public void Comments_split_words_into_two_identifiers()
    {
        Assert.Equal([(SqlTokenKind.Identifier, "DE"), (SqlTokenKind.Identifier, "LETE")], Lex("DE/**/LETE"));
    }

    [Fact]
    public void A_parameter_is_not_a_dollar_quote()
    {
        Assert.Equal([(SqlTokenKind.Parameter, "$1"), (SqlTokenKind.Semicolon, ";"), (SqlTokenKind.Parameter, "$1")], Lex("$1;$1"));
    }

    [Fact]
    public void A_dollar_tag_cannot_start_with_a_digit()
    {
        var tokens = Lex("$1a$ x $1a$");
        Assert.Equal(SqlTokenKind.Error, tokens[0].Kind);
    }

    [Fact]
    public void Adjacent_strings_without_a_newline_are_two_tokens()
    {
        Assert.Equal([(SqlTokenKind.String, "'a'"), (SqlTokenKind.String, "'b'")], Lex("'a' 'b'"));
    }

    [Fact]
    public void A_continued_escape_string_keeps_its_escapes()
    {
        var tokens = Lex("E'a'\n'\\'' x");
        Assert.Equal((SqlTokenKind.EscapeString, "E'a'\n'\\''"), tokens[0]);
        Assert.Equal((SqlTokenKind.Identifier, "x"), tokens[1]);
    }

    [Fact]
    public void Backslash_escapes_in_plain_strings_follow_standard_conforming_strings()
    {
        Assert.Equal([(SqlTokenKind.String, "'\\'"), (SqlTokenKind.Identifier, "x")], Lex("'\\' x", standardConformingStrings: true));
        Assert.Equal(SqlTokenKind.Error, Lex("'\\' x", standardConformingStrings: false)[0].Kind);
        Assert.Equal([(SqlTokenKind.EscapeString, "'\\''")], Lex("'\\''", standardConformingStrings: false));
    }

    [Fact]
    public void Operators_stop_before_comments_and_drop_a_trailing_sign()
    {
        Assert.Equal([(SqlTokenKind.Number, "1"), (SqlTokenKind.Operator, "+"), (SqlTokenKind.Number, "2")], Lex("1 +-- c\n2"));
        Assert.Equal([(SqlTokenKind.Identifier, "a"), (SqlTokenKind.Operator, "="), (SqlTokenKind.Operator, "-"), (SqlTokenKind.Number, "1")], Lex("a=-1"));
        Assert.Equal([(SqlTokenKind.Identifier, "a"), (SqlTokenKind.Operator, "@-"), (SqlTokenKind.Number, "1")], Lex("a@-1"));
        Assert.Equal([(SqlTokenKind.Operator, "*"), (SqlTokenKind.Number, "1")], Lex("*/* c */1"));
    }

    [Theory]
    [InlineData("'abc", SqlLexError.UnterminatedString)]
    [InlineData("E'\\'", SqlLexError.UnterminatedString)]
    [InlineData("\"abc", SqlLexError.UnterminatedQuotedIdentifier)]
    [InlineData("\"\"", SqlLexError.ZeroLengthIdentifier)]
    [InlineData("$a$ b", SqlLexError.UnterminatedDollarQuote)]
    [InlineData("/* a /* b */", SqlLexError.UnterminatedComment)]
    [InlineData("123abc", SqlLexError.TrailingJunk)]
    [InlineData("$1x", SqlLexError.TrailingJunk)]
    [InlineData("a\0b", SqlLexError.NulByte)]
    public void Malformed_input_is_one_error_token(string sql, SqlLexError error)
    {
        byte[] text = Encoding.UTF8.GetBytes(sql);
        var lexer = new SqlLexer<PostgresDialect>(text, SqlLexSettings.Default);
        SqlToken last = default;
        int errors = 0;
        while (lexer.Next(out SqlToken token))
        {
            last = token;
            errors += token.Kind == SqlTokenKind.Error ? 1 : 0;
        }

        Assert.Equal(1, errors);
        Assert.Equal(SqlTokenKind.Error, last.Kind);
        Assert.Equal(error, lexer.Error);
        Assert.False(lexer.Next(out _));
    }

    [Fact]
    public void Splits_at_top_level_semicolons_only()
    {
        string sql = "SELECT 1; ; SELECT ';' /* ; */ ; DO $$ ; $$ ; CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2);"
            + " CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END ; SELECT 2";
        byte[] text = Encoding.UTF8.GetBytes(sql);
        var parts = new List<string>();
        foreach (SqlStatementRange range in new SqlSplitter<PostgresDialect>(text, SqlLexSettings.Default))
        {
            Assert.False(range.HasError);
            parts.Add(Encoding.UTF8.GetString(text, range.Start, range.Length));
        }

        Assert.Equal(
            [
                "SELECT 1",
                "SELECT ';'",
                "DO $$ ; $$",
                "CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2)",
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END",
                "SELECT 2",
            ],
            parts);
    }

    [Fact]
    public void A_lexer_error_ends_splitting_with_an_error_range()
    {
        byte[] text = Encoding.UTF8.GetBytes("SELECT 1; SELECT 'x; DROP TABLE t");
        var ranges = new List<SqlStatementRange>();
        foreach (SqlStatementRange range in new SqlSplitter<PostgresDialect>(text, SqlLexSettings.Default))
        {
            ranges.Add(range);
        }

        Assert.Equal(2, ranges.Count);
        Assert.False(ranges[0].HasError);
        Assert.True(ranges[1].HasError);
        Assert.Equal(text.Length, ranges[1].End);
    }

    [Fact]
    public void A_dialect_plugs_in_its_own_comment_and_quoting_rules()
    {
        byte[] text = Encoding.UTF8.GetBytes("SELECT `a``b` # comment ; DROP\n/*! DROP TABLE t */ 'x\\'y'");
        var lexer = new SqlLexer<TestMySqlLikeDialect>(text, SqlLexSettings.Default);
        var kinds = new List<SqlTokenKind>();
        while (lexer.Next(out SqlToken token))
        {
            kinds.Add(token.Kind);
        }

        Assert.Equal([SqlTokenKind.Identifier, SqlTokenKind.QuotedIdentifier, SqlTokenKind.ExecutableComment, SqlTokenKind.EscapeString], kinds);
        Assert.Equal(StatementClass.Read | StatementClass.Unknown, SqlClassifier.ClassifyScript<TestMySqlLikeDialect>(text, SqlLexSettings.Default).Class);
    }

    // Not a MySQL implementation: just proof that the rules are supplied by the type parameter.
    private readonly struct TestMySqlLikeDialect : ISqlDialect
    {
        public static bool NestedBlockComments => false;

        public static int MaxCommentDepth => 1;

        public static bool HashLineComments => true;

        public static bool DashCommentNeedsSpace => true;

        public static bool ExecutableComments => true;

        public static bool DollarQuotes => false;

        public static bool PrefixedStrings => false;

        public static bool BacktickIdentifiers => true;

        public static bool BackslashEscapesInPlainStrings(SqlLexSettings settings) => true;
    }
}
