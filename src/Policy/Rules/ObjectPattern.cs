using System.Text;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Policy.Rules;

/// <summary>
/// A compiled <c>tables:</c> or <c>functions:</c> pattern: <c>[schema.]name</c>, each part normalized exactly as
/// PostgreSQL normalizes an identifier (<see cref="SqlNames"/>), with <c>*</c> outside double quotes matching any
/// run of bytes. Wildcards are stored as byte 0, which no identifier can contain (the server refuses NUL).
/// </summary>
internal sealed class ObjectPattern
{
    internal const byte Wildcard = 0;

    private ObjectPattern(string text, byte[]? schema, byte[] name)
    {
        Text = text;
        Schema = schema;
        Name = name;
        SchemaHasWildcard = schema is not null && Array.IndexOf(schema, Wildcard) >= 0;
        NameHasWildcard = Array.IndexOf(name, Wildcard) >= 0;
    }

    /// <summary>As written in the policy.</summary>
    public string Text { get; }

    /// <summary>The normalized schema part; null when the pattern has none or it is <c>*</c> (any schema).</summary>
    public byte[]? Schema { get; }

    /// <summary>The normalized object name part.</summary>
    public byte[] Name { get; }

    private bool SchemaHasWildcard { get; }

    private bool NameHasWildcard { get; }

    /// <summary>
    /// Whether a referenced name matches. An unqualified reference (<paramref name="qualified"/> false) can
    /// resolve through search_path to any schema, so only the name part is compared: fail closed.
    /// </summary>
    public bool Matches(bool qualified, ReadOnlySpan<byte> schema, ReadOnlySpan<byte> name)
    {
        if (!(NameHasWildcard ? Glob(Name, name) : name.SequenceEqual(Name)))
        {
            return false;
        }

        if (!qualified || Schema is null)
        {
            return true;
        }

        return SchemaHasWildcard ? Glob(Schema, schema) : schema.SequenceEqual(Schema);
    }

    /// <summary>Parses a pattern written like a SQL name; null and an error message when it is not one.</summary>
    public static ObjectPattern? Parse(string text, out string? error)
    {
        if (ParseParts(text, out error) is not { } parts)
        {
            return null;
        }

        if (parts.Count > 2)
        {
            error = $"'{text}': a pattern is name or schema.name (the database is the connection's)";
            return null;
        }

        byte[]? schema = parts.Count == 2 ? parts[0] : null;
        if (schema is [Wildcard])
        {
            schema = null;
        }

        return new ObjectPattern(text, schema, parts[^1]);
    }

    /// <summary>
    /// Splits a pattern written like a dotted SQL name into normalized parts (<c>*</c> outside quotes stored as
    /// <see cref="Wildcard"/>); null and an error message when it is not one.
    /// </summary>
    internal static List<byte[]>? ParseParts(string text, out string? error)
    {
        var parts = new List<byte[]>(3);
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        int i = 0;
        error = null;
        if (Array.IndexOf(utf8, (byte)0) >= 0)
        {
            error = "a name cannot contain a NUL character";
            return null;
        }

        while (true)
        {
            var part = new List<byte>(utf8.Length);
            if (i < utf8.Length && utf8[i] == '"')
            {
                // A quoted part keeps its case; "" is one " and * is a literal star (4.1.1 Identifiers and Key Words).
                i++;
                bool closed = false;
                while (i < utf8.Length)
                {
                    if (utf8[i] == '"')
                    {
                        if (i + 1 < utf8.Length && utf8[i + 1] == '"')
                        {
                            part.Add((byte)'"');
                            i += 2;
                            continue;
                        }

                        closed = true;
                        i++;
                        break;
                    }

                    part.Add(utf8[i++]);
                }

                if (!closed)
                {
                    error = $"'{text}': unterminated quoted name";
                    return null;
                }

                if (part.Count == 0)
                {
                    error = $"'{text}': a quoted name cannot be empty";
                    return null;
                }
            }
            else
            {
                while (i < utf8.Length && utf8[i] != '.')
                {
                    byte b = utf8[i++];
                    if (b == '*')
                    {
                        part.Add(Wildcard);
                    }
                    else if (b >= 0x80 || b == '_' || b == '$' || (uint)(b - '0') <= 9 || (uint)((b | 0x20) - 'a') <= 'z' - 'a')
                    {
                        // Unquoted: ASCII folds to lower case; other bytes stay (UTF-8 server encoding).
                        part.Add(SqlKeywords.Lower(b));
                    }
                    else
                    {
                        error = $"'{text}': '{(char)b}' is not allowed in an unquoted name; quote the name (\"...\") or use * as a wildcard";
                        return null;
                    }
                }

                if (part.Count == 0)
                {
                    error = $"'{text}': empty name part";
                    return null;
                }
            }

            if (part.Count > SqlNames.MaxIdentifierBytes)
            {
                error = $"'{text}': a name part is longer than PostgreSQL's {SqlNames.MaxIdentifierBytes}-byte identifier limit";
                return null;
            }

            parts.Add([.. part]);
            if (i == utf8.Length)
            {
                break;
            }

            if (utf8[i] != '.')
            {
                error = $"'{text}': expected '.' after a quoted name part";
                return null;
            }

            i++;
            if (i == utf8.Length)
            {
                error = $"'{text}': empty name part";
                return null;
            }
        }

        return parts;
    }

    // Glob with Wildcard matching any run of bytes, including none; iterative, with one backtrack point.
    internal static bool Glob(ReadOnlySpan<byte> pattern, ReadOnlySpan<byte> value)
    {
        int p = 0;
        int v = 0;
        int star = -1;
        int mark = 0;
        while (v < value.Length)
        {
            if (p < pattern.Length && pattern[p] != Wildcard && pattern[p] == value[v])
            {
                p++;
                v++;
            }
            else if (p < pattern.Length && pattern[p] == Wildcard)
            {
                star = p++;
                mark = v;
            }
            else if (star >= 0)
            {
                p = star + 1;
                v = ++mark;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == Wildcard)
        {
            p++;
        }

        return p == pattern.Length;
    }
}

/// <summary>
/// Object names as PostgreSQL resolves them (4.1.1 Identifiers and Key Words; scansup.c): an unquoted identifier
/// is folded to lower case (ASCII only: with the UTF-8 server encoding downcase_identifier leaves other bytes
/// alone), a quoted one keeps its case with <c>""</c> read as <c>"</c>, and both are truncated to
/// NAMEDATALEN - 1 = 63 bytes without splitting a character (truncate_identifier, pg_mbcliplen).
/// </summary>
internal static class SqlNames
{
    /// <summary>NAMEDATALEN - 1: the longest identifier the server keeps.</summary>
    public const int MaxIdentifierBytes = 63;

    /// <summary>A buffer size that holds one normalized part plus the byte that decides the clip.</summary>
    public const int PartBuffer = MaxIdentifierBytes + 1;

    /// <summary>
    /// Normalizes the last two parts of a referenced name (a 3-part <c>db.schema.name</c> uses its last two).
    /// False when the range is not a plain dotted name (the caller fails closed).
    /// </summary>
    /// <param name="text">The name's bytes, as reported by <see cref="SqlClassifier"/> (may hold comments between parts).</param>
    /// <param name="schema">Receives the schema part; at least <see cref="PartBuffer"/> bytes.</param>
    /// <param name="schemaLength">The schema part's length, or -1 for an unqualified name.</param>
    /// <param name="name">Receives the last part; at least <see cref="PartBuffer"/> bytes.</param>
    public static bool TryNormalize(ReadOnlySpan<byte> text, SqlLexSettings settings, Span<byte> schema, out int schemaLength,
        Span<byte> name, out int nameLength)
    {
        schemaLength = -1;
        nameLength = 0;
        var lexer = new SqlLexer<PostgresDialect>(text, settings);
        SqlToken previous = default;
        SqlToken last = default;
        int parts = 0;
        bool expectPart = true;
        while (lexer.Next(out SqlToken t))
        {
            if (expectPart && t.Kind is SqlTokenKind.Identifier or SqlTokenKind.QuotedIdentifier)
            {
                previous = last;
                last = t;
                parts++;
                expectPart = false;
            }
            else if (!expectPart && t.Kind == SqlTokenKind.Dot)
            {
                expectPart = true;
            }
            else
            {
                return false;
            }
        }

        if (parts == 0 || expectPart)
        {
            return false;
        }

        nameLength = Normalize(text, last, name);
        if (parts > 1)
        {
            schemaLength = Normalize(text, previous, schema);
        }

        return true;
    }

    /// <summary>Writes one identifier token's normalized bytes; returns the length (at most 63).</summary>
    public static int Normalize(ReadOnlySpan<byte> text, SqlToken token, Span<byte> destination)
    {
        int written = 0;
        if (token.Kind == SqlTokenKind.QuotedIdentifier)
        {
            ReadOnlySpan<byte> body = text.Slice(token.Start + 1, token.Length - 2);
            for (int i = 0; i < body.Length && written < PartBuffer; i++)
            {
                destination[written++] = body[i];
                if (body[i] == '"')
                {
                    i++; // "" inside a quoted identifier is one "
                }
            }
        }
        else
        {
            ReadOnlySpan<byte> word = text.Slice(token.Start, token.Length);
            for (int i = 0; i < word.Length && written < PartBuffer; i++)
            {
                destination[written++] = SqlKeywords.Lower(word[i]);
            }
        }

        return Clip(destination[..written]);
    }

    // truncate_identifier: at most 63 bytes, never ending inside a UTF-8 sequence.
    private static int Clip(ReadOnlySpan<byte> part)
    {
        if (part.Length <= MaxIdentifierBytes)
        {
            return part.Length;
        }

        int cut = MaxIdentifierBytes;
        while (cut > 0 && (part[cut] & 0xC0) == 0x80)
        {
            cut--;
        }

        return cut;
    }
}
