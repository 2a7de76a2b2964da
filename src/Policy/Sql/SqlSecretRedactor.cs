using System.Buffers;
using System.Text;

namespace Gatehouse.Policy.Sql;

/// <summary>
/// Removes passwords from statement text before it is recorded: the string after a <c>PASSWORD</c> keyword or option
/// (<c>ALTER ROLE ... PASSWORD '...'</c>, <c>OPTIONS (password '...')</c>) becomes <c>'****'</c>, and a
/// <c>password=...</c> inside any string (a connection string given to dblink or a foreign server) becomes
/// <c>password=****</c>. Text without the word "password" is returned as it is, without lexing or allocating.
/// </summary>
public static class SqlSecretRedactor
{
    private static ReadOnlySpan<byte> Word => "password"u8;

    /// <summary>The text with passwords redacted: <paramref name="text"/> itself when it has none.</summary>
    public static ReadOnlySpan<byte> Redact(ReadOnlySpan<byte> text, SqlLexSettings settings, ref byte[]? buffer)
    {
        if (!MentionsPassword(text))
        {
            return text;
        }

        var output = new ArrayBufferWriter<byte>(text.Length + 16);
        var lexer = new SqlLexer<PostgresDialect>(text, settings);
        int copied = 0;
        bool afterPasswordWord = false;
        while (lexer.Next(out var token) && token.Kind is not (SqlTokenKind.End or SqlTokenKind.Error))
        {
            var bytes = text.Slice(token.Start, token.Length);
            bool isString = token.Kind is SqlTokenKind.String or SqlTokenKind.EscapeString or SqlTokenKind.UnicodeString or SqlTokenKind.DollarString;
            if (isString && afterPasswordWord)
            {
                output.Write(text[copied..token.Start]);
                output.Write("'****'"u8);
                copied = token.End;
            }
            else if (isString && MentionsPassword(bytes))
            {
                output.Write(text[copied..token.Start]);
                RedactAssignments(bytes, output);
                copied = token.End;
            }

            afterPasswordWord = token.Kind == SqlTokenKind.Identifier && Ascii.EqualsIgnoreCase(bytes, Word)
                                || (afterPasswordWord && token.Kind == SqlTokenKind.Operator && bytes.SequenceEqual("="u8));
        }

        if (copied == 0)
        {
            return text;
        }

        output.Write(text[copied..]);
        if (buffer is null || buffer.Length < output.WrittenCount)
        {
            buffer = new byte[output.WrittenCount];
        }

        output.WrittenSpan.CopyTo(buffer);
        return buffer.AsSpan(0, output.WrittenCount);
    }

    /// <summary>A value (a string token, or a parameter) with every <c>password=VALUE</c> made <c>password=****</c>.</summary>
    public static void RedactAssignments(ReadOnlySpan<byte> value, IBufferWriter<byte> output)
    {
        int i = 0;
        while (i < value.Length)
        {
            int at = IndexOfWord(value[i..]);
            if (at < 0)
            {
                break;
            }

            int end = i + at + Word.Length;
            int cursor = end;
            while (cursor < value.Length && value[cursor] == (byte)' ')
            {
                cursor++;
            }

            if (cursor >= value.Length || value[cursor] != (byte)'=')
            {
                output.Write(value[i..end]);
                i = end;
                continue;
            }

            cursor++;
            while (cursor < value.Length && value[cursor] == (byte)' ')
            {
                cursor++;
            }

            // The value runs to the next space, or to the quote that ends it (libpq's quoted values included).
            int valueEnd = cursor;
            byte quote = cursor < value.Length && value[cursor] is (byte)'\'' or (byte)'"' ? value[cursor] : (byte)0;
            if (quote != 0)
            {
                int close = value[(cursor + 1)..].IndexOf(quote);
                valueEnd = close < 0 ? value.Length : cursor + 1 + close;
            }
            else
            {
                while (valueEnd < value.Length && value[valueEnd] is not ((byte)' ' or (byte)'\'' or (byte)'"' or (byte)';' or (byte)'&'))
                {
                    valueEnd++;
                }
            }

            output.Write(value[i..cursor]);
            output.Write("****"u8);
            i = quote != 0 && valueEnd < value.Length && value[valueEnd] == quote ? valueEnd + 1 : valueEnd;
        }

        output.Write(value[i..]);
    }

    /// <summary>Whether the bytes contain "password" in any letter case.</summary>
    public static bool MentionsPassword(ReadOnlySpan<byte> text) => IndexOfWord(text) >= 0;

    private static int IndexOfWord(ReadOnlySpan<byte> text)
    {
        int from = 0;
        while (true)
        {
            int w = text[from..].IndexOfAny((byte)'w', (byte)'W');
            if (w < 0)
            {
                return -1;
            }

            int start = from + w - 4;
            if (start >= 0 && start + Word.Length <= text.Length && Ascii.EqualsIgnoreCase(text.Slice(start, Word.Length), Word))
            {
                return start;
            }

            from += w + 1;
        }
    }
}
