using System.Text;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Tests.Policy;

public sealed class ObjectPatternTests
{
    [Theory]
    [InlineData("payments", null, "payments")]
    [InlineData("Payments", null, "payments")]
    [InlineData("PUBLIC.PAYMENTS", "public", "payments")]
    [InlineData("\"Payments\"", null, "Payments")]
    [InlineData("\"public\".\"payments\"", "public", "payments")]
    [InlineData("\"a\"\"b\"", null, "a\"b")]
    [InlineData("\"a.b\"", null, "a.b")]
    [InlineData("app.public.payments", "public", "payments")]
    [InlineData("public /* c */ . -- x\n payments", "public", "payments")]
    [InlineData("ÄBC", null, "Äbc")]
    [InlineData("\"ÄBC\"", null, "ÄBC")]
    public void Names_are_normalized_as_postgresql_does(string sql, string? schema, string name)
    {
        Assert.Equal((schema, name), Normalize(sql));
    }

    [Fact]
    public void Long_identifiers_are_truncated_to_63_bytes_without_splitting_a_character()
    {
        string seventy = new('a', 70);
        Assert.Equal((null, new string('a', 63)), Normalize(seventy));
        Assert.Equal((null, new string('a', 63)), Normalize($"\"{seventy}\""));
        Assert.Equal((null, new string('a', 63)), Normalize(seventy.ToUpperInvariant()));

        // 62 ASCII bytes and a 2-byte character: byte 63 would cut the character, so the name keeps 62 bytes.
        string split = new string('a', 62) + "é" + "tail";
        Assert.Equal((null, new string('a', 62)), Normalize(split));
        string fits = new string('a', 61) + "é" + "tail";
        Assert.Equal((null, new string('a', 61) + "é"), Normalize(fits));
    }

    [Theory]
    [InlineData("U&\"x\"")]
    [InlineData("a.")]
    [InlineData("a.'b'")]
    [InlineData("")]
    public void Ranges_that_are_not_a_plain_name_are_refused(string sql)
    {
        Span<byte> schema = stackalloc byte[SqlNames.PartBuffer];
        Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
        Assert.False(SqlNames.TryNormalize(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default, schema, out _, name, out _));
    }

    [Theory]
    [InlineData("public.payments", "public", "payments", true)]
    [InlineData("public.payments", null, "payments", true)]
    [InlineData("public.payments", "archive", "payments", false)]
    [InlineData("public.payments", "public", "payment", false)]
    [InlineData("payments", "anything", "payments", true)]
    [InlineData("PAYMENTS", "public", "payments", true)]
    [InlineData("\"Payments\"", "public", "payments", false)]
    [InlineData("\"Payments\"", "public", "Payments", true)]
    [InlineData("billing.*", null, "anything", true)]
    [InlineData("billing.*", "billing", "x", true)]
    [InlineData("billing.*", "public", "x", false)]
    [InlineData("*.payments", "any", "payments", true)]
    [InlineData("dblink*", "public", "dblink_exec", true)]
    [InlineData("dblink*", null, "dblink", true)]
    [InlineData("dblink*", null, "xdblink", false)]
    [InlineData("*link*", null, "dblink_exec", true)]
    [InlineData("a*b*c", null, "aXXbYYc", true)]
    [InlineData("a*b*c", null, "aXXbYY", false)]
    [InlineData("\"a*\"", null, "ab", false)]
    [InlineData("\"a*\"", null, "a*", true)]
    [InlineData("pg_catalog.pg_read_file", null, "pg_read_file", true)]
    [InlineData("pg_catalog.pg_read_file", "pg_catalog", "pg_read_file", true)]
    [InlineData("\"MixedCase\".t", "MixedCase", "t", true)]
    [InlineData("\"MixedCase\".t", "mixedcase", "t", false)]
    public void Patterns_match_normalized_names(string pattern, string? schema, string name, bool matches)
    {
        ObjectPattern? compiled = ObjectPattern.Parse(pattern, out string? error);
        Assert.True(compiled is not null, error);
        Assert.Equal(matches, compiled.Matches(schema is not null, Encoding.UTF8.GetBytes(schema ?? ""), Encoding.UTF8.GetBytes(name)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a..b")]
    [InlineData("a.")]
    [InlineData(".a")]
    [InlineData("a b")]
    [InlineData("a-b")]
    [InlineData("\"unterminated")]
    [InlineData("\"\"")]
    [InlineData("\"a\"b")]
    [InlineData("db.schema.table")]
    [InlineData("a\0b")]
    public void Patterns_that_are_not_names_are_refused(string pattern)
    {
        Assert.Null(ObjectPattern.Parse(pattern, out string? error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void A_pattern_part_longer_than_an_identifier_is_refused()
    {
        Assert.Null(ObjectPattern.Parse(new string('a', 64), out string? error));
        Assert.Contains("63-byte", error);
        Assert.NotNull(ObjectPattern.Parse(new string('a', 63), out _));
    }

    private static (string? Schema, string Name) Normalize(string sql)
    {
        Span<byte> schema = stackalloc byte[SqlNames.PartBuffer];
        Span<byte> name = stackalloc byte[SqlNames.PartBuffer];
        Assert.True(SqlNames.TryNormalize(Encoding.UTF8.GetBytes(sql), SqlLexSettings.Default, schema, out int schemaLength, name, out int nameLength));
        return (schemaLength < 0 ? null : Encoding.UTF8.GetString(schema[..schemaLength]), Encoding.UTF8.GetString(name[..nameLength]));
    }
}
