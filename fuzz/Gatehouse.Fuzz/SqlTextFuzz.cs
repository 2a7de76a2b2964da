using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Fuzz;

/// <summary>
/// The <c>SqlText</c> target: <see cref="SqlLexer{TDialect}"/>, <see cref="SqlSplitter{TDialect}"/>,
/// <see cref="SqlClassifier"/> and <see cref="SessionPolicy.Decide"/> over one text. Input: a settings byte (bit 0
/// set: standard_conforming_strings off), then the SQL bytes (at most <see cref="MaxText"/>; the rest is ignored).
/// </summary>
/// <remarks>
/// Oracles. Lexer: tokens in order, inside the text, non-empty (an Error token may only end the text), at most one
/// Error and nothing after it, only whitespace and whole comments between tokens (read independently, so no code
/// is ever skipped as a comment), each token shaped as its kind says. Splitter: ranges in order, inside the text,
/// starting and ending on tokens, covering every token but the separating ";"; only the last may have an error, and
/// it has one iff the lexer failed. Classifier: objects inside their statement, a non-empty statement has a class,
/// objects do not change the class, a statement with a lexer error is Unknown, ClassifyScript is the union of the
/// statements. Everything twice gives the same. Comments are whitespace: a <c>/**/</c> inserted or a run of
/// whitespace replaced by <c>\n--x\n</c> between two tokens changes no class, shape or COPY detail (of the
/// statement and of the script). Policy: a statement with a class outside the role is never allowed, and a text
/// whose statements are all inside it is allowed (a role without rules).
/// </remarks>
internal static class SqlTextFuzz
{
    public const int MaxText = 64 * 1024;

    private const int ObjectSlots = 8;

    private const StatementClass Dangerous = StatementClass.Write | StatementClass.Ddl | StatementClass.Privilege | StatementClass.Admin
        | StatementClass.OpaqueCode | StatementClass.FileAccess | StatementClass.Unknown;

    public static void Run(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        var settings = new SqlLexSettings(StandardConformingStrings: (data[0] & 1) == 0);
        var text = data[1..];
        if (text.Length > MaxText)
        {
            text = text[..MaxText];
        }

        var first = Analysis.Of(text, settings);
        var again = Analysis.Of(text, settings);
        Expect(first.SameAs(again), "a second run over the same text gave different tokens, ranges or classes", text);

        CommentsAreWhitespace(text, settings, first);
        PolicyAgrees(text, settings, first);
    }

    // ---- One pass, with the structural oracles ----------------------------------------------------------------

    private sealed class Analysis
    {
        public List<SqlToken> Tokens { get; } = [];

        public List<SqlStatementRange> Ranges { get; } = [];

        public List<SqlStatementInfo> Infos { get; } = [];

        public List<SqlObjectRef> Objects { get; } = [];

        public SqlLexError LexError { get; private set; }

        public SqlScriptInfo Script { get; private set; }

        public static Analysis Of(ReadOnlySpan<byte> text, SqlLexSettings settings)
        {
            var a = new Analysis();
            a.Lex(text, settings);
            a.Split(text, settings);
            a.Classify(text, settings);
            return a;
        }

        public bool SameAs(Analysis other) =>
            Tokens.SequenceEqual(other.Tokens) && Ranges.SequenceEqual(other.Ranges) && Infos.SequenceEqual(other.Infos)
            && Objects.SequenceEqual(other.Objects) && LexError == other.LexError && Script == other.Script;

        private void Lex(ReadOnlySpan<byte> text, SqlLexSettings settings)
        {
            var lexer = new SqlLexer<PostgresDialect>(text, settings);
            int previousEnd = 0;
            bool error = false;
            while (true)
            {
                bool more = lexer.Next(out SqlToken t);
                if (!more)
                {
                    Expect(t.Kind == SqlTokenKind.End && t.Start == text.Length && t.Length == 0,
                        $"the lexer ended with {t} on a text of {text.Length} bytes", text);
                    Expect(!lexer.Next(out SqlToken after) && after.Kind == SqlTokenKind.End, "the lexer went on after its end", text);
                    break;
                }

                Expect(!error, $"the lexer gave {t} after an Error token", text);
                Expect(t.Kind != SqlTokenKind.End, $"the lexer returned true with {t}", text);
                Expect(t.Start >= previousEnd && t.Length >= 0 && t.End <= text.Length,
                    $"{t} is out of order or outside the text (previous token ended at {previousEnd}, text {text.Length} bytes)", text);
                Expect(Tokens.Count <= text.Length, "the lexer gives more tokens than the text has bytes", text);
                Expect(IsTrivia(text[previousEnd..t.Start]),
                    $"bytes {previousEnd}..{t.Start} before {t} are not only whitespace and comments: the lexer skipped code", text);
                if (t.Kind == SqlTokenKind.Error)
                {
                    Expect(t.End == text.Length, $"the Error token {t} does not run to the end of the text", text);
                    Expect(lexer.Error != SqlLexError.None, $"the Error token {t} without a reason", text);
                    error = true;
                    LexError = lexer.Error;
                }
                else
                {
                    Expect(t.Length > 0, $"the empty token {t}", text);
                    Expect(lexer.Error == SqlLexError.None, $"{t} with the lexer error {lexer.Error}", text);
                    Shaped(t, text, settings);
                }

                Tokens.Add(t);
                previousEnd = t.End;
            }

            if (!error)
            {
                Expect(IsTrivia(text[previousEnd..]), $"bytes {previousEnd}..{text.Length} after the last token are not only whitespace and comments", text);
            }
        }

        private void Split(ReadOnlySpan<byte> text, SqlLexSettings settings)
        {
            int previousEnd = 0;
            foreach (SqlStatementRange r in new SqlSplitter<PostgresDialect>(text, settings))
            {
                Expect(Ranges.Count == 0 || !Ranges[^1].HasError, $"the splitter gave {r} after a range with an error", text);
                Expect(r.Start >= previousEnd && r.Length > 0 && r.End <= text.Length,
                    $"{r} is out of order, empty or outside the text (previous range ended at {previousEnd})", text);
                Ranges.Add(r);
                previousEnd = r.End;
            }

            bool lexFailed = Tokens.Count > 0 && Tokens[^1].Kind == SqlTokenKind.Error;
            Expect(lexFailed == (Ranges.Count > 0 && Ranges[^1].HasError),
                $"the lexer {(lexFailed ? "failed" : "did not fail")} but the last range says {(Ranges.Count > 0 && Ranges[^1].HasError ? "error" : "no error")}", text);

            // Every token is inside a range, except the ";" that separate them; ranges start and end on tokens.
            int range = 0;
            foreach (SqlToken t in Tokens)
            {
                while (range < Ranges.Count && Ranges[range].End <= t.Start)
                {
                    range++;
                }

                bool inside = range < Ranges.Count && Ranges[range].Start <= t.Start && t.End <= Ranges[range].End;
                Expect(inside || t.Kind == SqlTokenKind.Semicolon, $"{t} is in no statement range: the splitter dropped code", text);
            }

            foreach (SqlStatementRange r in Ranges)
            {
                Expect(Tokens.Exists(t => t.Start == r.Start), $"{r} does not start on a token", text);
                Expect(r.HasError || Tokens.Exists(t => t.End == r.End), $"{r} does not end on a token", text);
            }
        }

        private void Classify(ReadOnlySpan<byte> text, SqlLexSettings settings)
        {
            Span<SqlObjectRef> objects = stackalloc SqlObjectRef[ObjectSlots];
            StatementClass union = StatementClass.None;
            StatementShape shapes = StatementShape.None;
            CopyDetail copies = CopyDetail.None;
            foreach (SqlStatementRange r in Ranges)
            {
                var statement = text.Slice(r.Start, r.Length);
                SqlStatementInfo info = SqlClassifier.Classify(statement, settings, objects);
                Expect(info.Class != StatementClass.None, $"the statement {r} has no class", text);
                Expect(info.ObjectCount >= 0 && info.ObjectCount <= ObjectSlots && (!info.ObjectsTruncated || info.ObjectCount == ObjectSlots),
                    $"the statement {r} reports {info.ObjectCount} objects (truncated: {info.ObjectsTruncated}) in {ObjectSlots} slots", text);
                Expect(!r.HasError || (info.Class & StatementClass.Unknown) != 0, $"the statement {r} has a lexer error but is classified {info.Class}", text);
                for (int i = 0; i < info.ObjectCount; i++)
                {
                    SqlObjectRef o = objects[i];
                    Expect(o.Start >= 0 && o.Length > 0 && o.Start + o.Length <= statement.Length && o.Parts >= 1,
                        $"the object {o} lies outside its statement {r}", text);
                    Expect(IsIdentStart(statement[o.Start]) || statement[o.Start] == (byte)'"',
                        $"the object {o} of the statement {r} does not start with a name", text);
                    Objects.Add(o);
                }

                SqlStatementInfo bare = SqlClassifier.Classify(statement, settings, []);
                Expect(bare.Class == info.Class && bare.Shape == info.Shape && bare.Copy == info.Copy,
                    $"the statement {r} is {info.Class}/{info.Shape}/{info.Copy} with object slots, {bare.Class}/{bare.Shape}/{bare.Copy} without", text);

                Infos.Add(info);
                union |= info.Class | (r.HasError ? StatementClass.Unknown : StatementClass.None);
                shapes |= info.Shape;
                copies |= info.Copy;
            }

            Script = SqlClassifier.ClassifyScript(text, settings);
            Expect(Script == new SqlScriptInfo(union, shapes, copies, Ranges.Count),
                $"ClassifyScript says {Script}, its statements say {new SqlScriptInfo(union, shapes, copies, Ranges.Count)}", text);
        }
    }

    // ---- Metamorphic: comments are whitespace -----------------------------------------------------------------

    /// <summary>
    /// Between two tokens separated by whitespace only, a comment changes nothing: <c>/**/</c> inserted after the
    /// first whitespace byte, or the whole run replaced by <c>\n--x\n</c>. Not between two quoted strings: a newline
    /// there continues the first string (4.1.2.1), which is a change of meaning, not of layout. Up to three places
    /// per text, spread over it.
    /// </summary>
    private static void CommentsAreWhitespace(ReadOnlySpan<byte> text, SqlLexSettings settings, Analysis original)
    {
        var tokens = original.Tokens;
        Span<int> picks = stackalloc int[3];
        int count = 0;
        int candidates = 0;
        for (int i = 0; i + 1 < tokens.Count; i++)
        {
            if (Boundary(text, tokens[i], tokens[i + 1]))
            {
                candidates++;
            }
        }

        if (candidates == 0)
        {
            return;
        }

        // The first, the middle and the last boundary.
        int[] wanted = [0, candidates / 2, candidates - 1];
        for (int i = 0, seen = 0; i + 1 < tokens.Count && count < picks.Length; i++)
        {
            if (!Boundary(text, tokens[i], tokens[i + 1]))
            {
                continue;
            }

            if (Array.IndexOf(wanted, seen) >= 0 && (count == 0 || picks[count - 1] != i))
            {
                picks[count++] = i;
            }

            seen++;
        }

        foreach (int i in picks[..count])
        {
            SqlToken left = tokens[i];
            SqlToken right = tokens[i + 1];
            Same(text, settings, original, [.. text[..(left.End + 1)], .. "/**/"u8, .. text[(left.End + 1)..]], left.End + 1, 4, "/**/");
            Same(text, settings, original, [.. text[..left.End], .. "\n--x\n"u8, .. text[right.Start..]], left.End, 5 - (right.Start - left.End), "\\n--x\\n");
        }
    }

    private static bool Boundary(ReadOnlySpan<byte> text, SqlToken left, SqlToken right)
    {
        if (left.Kind == SqlTokenKind.Error || right.Kind == SqlTokenKind.Error || right.Start == left.End)
        {
            return false;
        }

        foreach (byte b in text[left.End..right.Start])
        {
            if (!IsSpace(b))
            {
                return false;
            }
        }

        return !(text[left.End - 1] == (byte)'\'' && text[right.Start] == (byte)'\'');
    }

    /// <summary><paramref name="changed"/> is <paramref name="text"/> with <paramref name="delta"/> bytes more at <paramref name="at"/>.</summary>
    private static void Same(ReadOnlySpan<byte> text, SqlLexSettings settings, Analysis original, byte[] changed, int at, int delta, string comment)
    {
        var script = SqlClassifier.ClassifyScript(changed, settings);
        if (script != original.Script)
        {
            bool evaded = (original.Script.Class & Dangerous) != 0 && (script.Class & Dangerous) == 0;
            Fail($"{(evaded ? "EVASION: " : "")}a {comment} comment at byte {at} changed the script from {original.Script} to {script}", text, changed);
        }

        // The statement around the comment, on its own.
        for (int r = 0; r < original.Ranges.Count; r++)
        {
            SqlStatementRange range = original.Ranges[r];
            if (range.Start < at && at < range.End)
            {
                var info = SqlClassifier.Classify(changed.AsSpan(range.Start, range.Length + delta), settings, []);
                SqlStatementInfo before = original.Infos[r];
                if (info.Class != before.Class || info.Shape != before.Shape || info.Copy != before.Copy)
                {
                    bool evaded = (before.Class & Dangerous) != 0 && (info.Class & Dangerous) == 0;
                    Fail($"{(evaded ? "EVASION: " : "")}a {comment} comment at byte {at} changed the statement {range} from "
                         + $"{before.Class}/{before.Shape}/{before.Copy} to {info.Class}/{info.Shape}/{info.Copy}", text, changed);
                }
            }
        }
    }

    // ---- Policy ---------------------------------------------------------------------------------------------

    /// <summary>
    /// The reader role (read only, no rules): a text is allowed iff each statement is only Read. The writer role
    /// (rules with shapes, tables and functions): a statement with a class outside the role is never allowed.
    /// </summary>
    private static void PolicyAgrees(ReadOnlySpan<byte> text, SqlLexSettings settings, Analysis a)
    {
        var reader = FuzzPolicies.Reader;
        var writer = FuzzPolicies.Writer;
        bool allRead = true;
        bool outsideWriter = false;
        for (int r = 0; r < a.Ranges.Count; r++)
        {
            SqlStatementRange range = a.Ranges[r];
            StatementClass cls = a.Infos[r].Class | (range.HasError ? StatementClass.Unknown : StatementClass.None);
            var statement = text.Slice(range.Start, range.Length);
            if ((cls & ~reader.AllowedClasses) != 0)
            {
                allRead = false;
                Expect(!reader.DecideStatement(statement, settings).IsAllowed, $"the reader role allowed the statement {range} of class {cls}", text);
            }

            if ((cls & ~writer.AllowedClasses) != 0)
            {
                outsideWriter = true;
                Expect(!writer.DecideStatement(statement, settings).IsAllowed, $"the writer role allowed the statement {range} of class {cls}", text);
            }
        }

        var decision = reader.Decide(text, settings);
        Expect(decision.IsAllowed == allRead,
            $"the reader role decided {decision.Action} ({reader.Rule(decision.Rule).Name}) on a text whose statements are {(allRead ? "all read" : "not all read")}", text);
        Expect(!outsideWriter || !writer.Decide(text, settings).IsAllowed, "the writer role allowed a text with a statement of a class outside it", text);
    }

    // ---- Independent character rules (docs 4.1; scan.l) ------------------------------------------------------

    /// <summary>Whitespace and whole comments only: <c>--</c> to the end of the line, nested <c>/* */</c>.</summary>
    private static bool IsTrivia(ReadOnlySpan<byte> gap)
    {
        int i = 0;
        while (i < gap.Length)
        {
            if (IsSpace(gap[i]))
            {
                i++;
            }
            else if (gap[i] == (byte)'-' && i + 1 < gap.Length && gap[i + 1] == (byte)'-')
            {
                while (i < gap.Length && gap[i] is not ((byte)'\n' or (byte)'\r'))
                {
                    i++;
                }
            }
            else if (gap[i] == (byte)'/' && i + 1 < gap.Length && gap[i + 1] == (byte)'*')
            {
                int depth = 0;
                do
                {
                    if (i + 1 < gap.Length && gap[i] == (byte)'/' && gap[i + 1] == (byte)'*')
                    {
                        depth++;
                        i += 2;
                    }
                    else if (i + 1 < gap.Length && gap[i] == (byte)'*' && gap[i + 1] == (byte)'/')
                    {
                        depth--;
                        i += 2;
                    }
                    else if (i < gap.Length)
                    {
                        i++;
                    }
                    else
                    {
                        return false; // An unterminated comment between tokens.
                    }
                }
                while (depth > 0);
            }
            else
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The token's bytes fit its kind.</summary>
    private static void Shaped(SqlToken t, ReadOnlySpan<byte> text, SqlLexSettings settings)
    {
        var s = text.Slice(t.Start, t.Length);
        bool ok = t.Kind switch
        {
            SqlTokenKind.Semicolon => s.SequenceEqual(";"u8),
            SqlTokenKind.OpenParen => s.SequenceEqual("("u8),
            SqlTokenKind.CloseParen => s.SequenceEqual(")"u8),
            SqlTokenKind.Comma => s.SequenceEqual(","u8),
            SqlTokenKind.Dot => s.SequenceEqual("."u8),
            SqlTokenKind.Punctuation => s.Length == 1 && s[0] is (byte)'[' or (byte)']' or (byte)':',
            SqlTokenKind.Identifier => IsIdentStart(s[0]) && AllIdentCont(s),
            SqlTokenKind.QuotedIdentifier => s.Length >= 3 && s[0] == (byte)'"' && s[^1] == (byte)'"',
            SqlTokenKind.UnicodeQuotedIdentifier => s.Length >= 5 && (s[0] | 0x20) == 'u' && s[1] == (byte)'&' && s[2] == (byte)'"' && s[^1] == (byte)'"',
            SqlTokenKind.String => s.Length >= 2 && s[^1] == (byte)'\'' && (s[0] == (byte)'\'' || ((s[0] | 0x20) == 'n' && s[1] == (byte)'\'')),
            SqlTokenKind.EscapeString => s.Length >= 2 && s[^1] == (byte)'\''
                && (((s[0] | 0x20) == 'e' && s[1] == (byte)'\'')
                    || (!settings.StandardConformingStrings && (s[0] == (byte)'\'' || ((s[0] | 0x20) == 'n' && s[1] == (byte)'\'')))),
            SqlTokenKind.UnicodeString => settings.StandardConformingStrings && s.Length >= 4 && (s[0] | 0x20) == 'u' && s[1] == (byte)'&' && s[2] == (byte)'\'' && s[^1] == (byte)'\'',
            SqlTokenKind.BitString => s.Length >= 3 && (s[0] | 0x20) == 'b' && s[1] == (byte)'\'' && s[^1] == (byte)'\'',
            SqlTokenKind.HexString => s.Length >= 3 && (s[0] | 0x20) == 'x' && s[1] == (byte)'\'' && s[^1] == (byte)'\'',
            SqlTokenKind.DollarString => DollarQuoted(s),
            SqlTokenKind.Number => IsDigit(s[0]) || (s[0] == (byte)'.' && s.Length > 1 && IsDigit(s[1])),
            SqlTokenKind.Parameter => s.Length >= 2 && s[0] == (byte)'$' && AllDigits(s[1..]),
            SqlTokenKind.Operator => (AllOperator(s) && s.IndexOf("--"u8) < 0 && s.IndexOf("/*"u8) < 0) || s.SequenceEqual("::"u8) || s.SequenceEqual(":="u8),
            SqlTokenKind.Other => s.Length == 1,
            _ => false,
        };
        Expect(ok, $"{t} does not look like a {t.Kind}: \"{System.Text.Encoding.UTF8.GetString(s)}\"", text);
    }

    private static bool DollarQuoted(ReadOnlySpan<byte> s)
    {
        if (s.Length < 4 || s[0] != (byte)'$')
        {
            return false;
        }

        int tag = s[1..].IndexOf((byte)'$') + 2;
        return tag >= 2 && s.Length >= 2 * tag && s[..tag].SequenceEqual(s[^tag..]);
    }

    private static bool IsSpace(byte c) => c is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f' or (byte)'\v';

    private static bool IsDigit(byte c) => c is >= (byte)'0' and <= (byte)'9';

    private static bool IsIdentStart(byte c) => c is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or (byte)'_' or >= 0x80;

    private static bool AllIdentCont(ReadOnlySpan<byte> s)
    {
        foreach (byte c in s)
        {
            if (!(IsIdentStart(c) || IsDigit(c) || c == (byte)'$'))
            {
                return false;
            }
        }

        return true;
    }

    private static bool AllDigits(ReadOnlySpan<byte> s)
    {
        foreach (byte c in s)
        {
            if (!IsDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    private static bool AllOperator(ReadOnlySpan<byte> s)
    {
        foreach (byte c in s)
        {
            if ("~!@#^&|`?+-*/%<>="u8.IndexOf(c) < 0)
            {
                return false;
            }
        }

        return true;
    }

    // ---- Findings -------------------------------------------------------------------------------------------

    private static void Expect(bool condition, string finding, ReadOnlySpan<byte> text)
    {
        if (!condition)
        {
            Fail(finding, text, null);
        }
    }

    private static void Fail(string finding, ReadOnlySpan<byte> text, byte[]? changed)
    {
        throw new FuzzFindingException($"{finding}; text ({text.Length} bytes): {Show(text)}{(changed is null ? "" : $"; changed: {Show(changed)}")}");

        static string Show(ReadOnlySpan<byte> bytes)
        {
            const int Shown = 400;
            var head = bytes[..Math.Min(bytes.Length, Shown)];
            string escaped = System.Text.Encoding.UTF8.GetString(head).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal);
            return $"\"{escaped}\"{(bytes.Length > Shown ? "..." : "")}";
        }
    }
}
