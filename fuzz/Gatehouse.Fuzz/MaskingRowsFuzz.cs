using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using Gatehouse.Engine.Relay;
using Gatehouse.Policy.Masking;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;
using Gatehouse.Protocols.Postgres;
using Gatehouse.Protocols.Postgres.Masking;
using Microsoft.Extensions.Logging.Abstractions;

namespace Gatehouse.Fuzz;

/// <summary>
/// The <c>MaskingRows</c> target: a result shape and rows through <see cref="PgSessionMasking"/>, and a statement
/// text through <see cref="StatementMaskAnalyzer"/>. Input: a control byte (bits 0-2: columns - 1; bit 3: the
/// statement referenced a masked name), per column a byte (bits 0-1: origin: computed, the masked column, an
/// unmasked column, a table the catalog does not know; bits 2-3: type: text, int4, json, jsonb; bit 4: binary),
/// then cells (a length byte, 0xFF for NULL, then that many bytes; rows wrap every column count), and after a
/// 0xFE 0xFE separator, SQL text for the analyzer.
/// </summary>
/// <remarks>
/// Oracles. Rows: a row is forwarded untouched or rewritten as a well-formed DataRow with the same column count;
/// NULL stays NULL; a column neither masked nor scanned is copied byte for byte; a value of the masked column (or
/// of a computed column of a statement that referenced a masked name) never survives: it becomes NULL or the
/// style's form; a scanned text value holds no detector match afterwards; nothing is forwarded untouched that
/// had a masked value or a match. Analyzer: never throws, rule indexes are -1 or a rule's, and twice is the same.
/// </remarks>
internal static class MaskingRowsFuzz
{
    private const uint Table = 16390;
    private const uint Unknown = 99999;

    private static Setup? s_setup;

    /// <summary>Seeds: shapes of every origin, type and format, with sensitive and ordinary values and NULLs, and statements.</summary>
    public static IEnumerable<(string Name, byte[] Data)> Seeds()
    {
        static byte[] Cell(string text) => [(byte)Encoding.UTF8.GetByteCount(text), .. Encoding.UTF8.GetBytes(text)];
        byte[] values = [.. Cell("123-45-6789"), .. Cell("4111 1111 1111 1111"), 0xFF, .. Cell("plain text"), .. Cell("mail jane@example.com now"),
            .. Cell("42"), .. Cell("{\"k\": \"AKIAIOSFODNN7EXAMPLE\"}"), 0xFF];
        yield return ("text-origins", [3, 0b00001, 0b00010, 0b00000, 0b00011, .. values]);
        yield return ("referenced", [3 | 8, 0b00001, 0b00010, 0b00000, 0b00011, .. values]);
        yield return ("types-formats", [7, 0b00101, 0b10110, 0b01010, 0b11110, 0b10001, 0b00100, 0b11000, 0b01110, .. values, .. values]);
        byte[] json = Encoding.UTF8.GetBytes("\"ssn 123-45-6789\"");
        yield return ("jsonb-binary", [1 | 8, 0b11100, 0b11110, (byte)(1 + json.Length), 1, .. json, 0xFF]);
        yield return ("analyzer", [0, 0b00010, .. Cell("x"), 0xFE, 0xFE,
            .. Encoding.UTF8.GetBytes("SELECT upper(secret), row_to_json(t), x.* FROM t x WHERE secret = 1 UNION SELECT secret FROM t; COPY t TO STDOUT")]);
    }

    public static void Run(ReadOnlySpan<byte> data) => Count(data);

    /// <summary>Runs an input; returns the whole rows it held and how many of them were rewritten (seed checks).</summary>
    public static (int Rows, int Rewritten) Count(ReadOnlySpan<byte> data)
    {
        var setup = s_setup ??= new Setup();
        int separator = data.IndexOf([(byte)0xFE, (byte)0xFE]);
        var rows = separator < 0 ? data : data[..separator];
        var counts = Rows(setup, rows);
        if (separator >= 0)
        {
            Analyze(setup, data[(separator + 2)..]);
        }

        return counts;
    }

    private static (int Rows, int Rewritten) Rows(Setup setup, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return (0, 0);
        }

        int columns = (data[0] & 7) + 1;
        bool referenced = (data[0] & 8) != 0;
        if (data.Length < 1 + columns)
        {
            return (0, 0);
        }

        var shape = data.Slice(1, columns).ToArray();
        var masking = new PgSessionMasking(setup.Rules, setup.Catalog);
        masking.QueryRows(new ReadOnlySequence<byte>(RowDescription(shape)), referenced ? setup.ColumnRule.Index : -1);

        var cells = new List<byte[]?>();
        var rest = data[(1 + columns)..];
        while (!rest.IsEmpty)
        {
            int length = rest[0];
            rest = rest[1..];
            if (length == 0xFF)
            {
                cells.Add(null);
                continue;
            }

            length = Math.Min(length, rest.Length);
            cells.Add(rest[..length].ToArray());
            rest = rest[length..];
        }

        var pipe = new Pipe();
        int whole = 0;
        int rewritten = 0;
        for (int start = 0; start + columns <= cells.Count; start += columns)
        {
            var row = cells.GetRange(start, columns);
            byte[] frame = DataRow(row);
            var action = masking.OnDataRow(new ReadOnlySequence<byte>(frame), pipe.Writer, out string? fault);
            Expect(action is FrameAction.Forward or FrameAction.Handled, $"a row that fits its plan was refused: {fault}");
            pipe.Writer.FlushAsync().AsTask().GetAwaiter().GetResult();
            byte[] written = [];
            if (pipe.Reader.TryRead(out var result))
            {
                written = result.Buffer.ToArray();
                pipe.Reader.AdvanceTo(result.Buffer.End);
            }

            byte[] output = action == FrameAction.Forward ? frame : written;
            Expect(action == FrameAction.Handled || written.Length == 0, "a forwarded row also wrote bytes");
            Check(setup, shape, referenced, row, output, action == FrameAction.Forward);
            whole++;
            rewritten += action == FrameAction.Handled ? 1 : 0;
        }

        return (whole, rewritten);
    }

    private static void Check(Setup setup, byte[] shape, bool referenced, List<byte[]?> row, byte[] output, bool forwarded)
    {
        Expect(output.Length >= 7 && output[0] == (byte)'D', "not a DataRow");
        Expect(BinaryPrimitives.ReadInt32BigEndian(output.AsSpan(1)) == output.Length - 1, "the DataRow length is wrong");
        Expect(BinaryPrimitives.ReadInt16BigEndian(output.AsSpan(5)) == row.Count, "the column count changed");
        int at = 7;
        Span<DetectorMatch> matches = stackalloc DetectorMatch[64];
        for (int i = 0; i < row.Count; i++)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(output.AsSpan(at));
            at += 4;
            byte[]? value = length < 0 ? null : output.AsSpan(at, length).ToArray();
            at += Math.Max(length, 0);
            Expect(row[i] is not null || value is null, "a NULL became a value");
            if (row[i] is null)
            {
                continue;
            }

            int origin = shape[i] & 3;
            int type = (shape[i] >> 2) & 3;
            bool binary = (shape[i] & 16) != 0;
            bool masked = origin == 1 || (referenced && origin is 0 or 3);
            if (masked)
            {
                Expect(!forwarded, "a row with a masked value was forwarded untouched");
                Expect(value is null || value.AsSpan().IndexOf(MaskText.Redaction) >= 0 || value.Length == MaskText.HashLength + (type >= 2 ? 2 : 0),
                    "a masked value kept a form that is not the style's");
                continue;
            }

            bool scanned = !binary || type != 1;
            if (!scanned)
            {
                Expect(value!.AsSpan().SequenceEqual(row[i]), "a column neither masked nor scanned changed");
                continue;
            }

            if (value is not null && (type == 0 || (type >= 2)))
            {
                var text = type == 3 && binary && value.Length > 0 ? value.AsSpan(1) : value.AsSpan();
                Expect(setup.Rules.Scanner.Scan(text, matches) == 0, "a detector still matches a rewritten value");
            }
        }

        Expect(at == output.Length, "bytes after the last column");
    }

    private static void Analyze(Setup setup, ReadOnlySpan<byte> text)
    {
        var settings = new SqlLexSettings(StandardConformingStrings: true);
        var first = StatementMaskAnalyzer.Analyze(text, settings, setup.Names);
        var again = StatementMaskAnalyzer.Analyze(text, settings, setup.Names);
        Expect(first.Referenced == again.Referenced && first.InExpression == again.InExpression && first.InPredicate == again.InPredicate
               && first.Stored == again.Stored && first.CopyRule == again.CopyRule && first.CopyUnmaskable == again.CopyUnmaskable,
            "the analysis of the same text differs");
        foreach (int rule in new[] { first.Referenced, first.InExpression, first.InPredicate, first.Stored, first.Defined, first.CopyRule, first.CopyUnmaskable, first.Reads })
        {
            Expect(rule is -1 or 0, $"rule index {rule} is no rule's");
        }
    }

    private static byte[] RowDescription(byte[] shape)
    {
        var body = new List<byte>();
        body.AddRange(PgMessages.Int16(shape.Length));
        for (int i = 0; i < shape.Length; i++)
        {
            int origin = shape[i] & 3;
            int type = (shape[i] >> 2) & 3;
            uint table = origin switch { 0 => 0, 3 => Unknown, _ => Table };
            short attnum = (short)(origin switch { 1 => 1, 2 => 2, 3 => 1, _ => 0 });
            int typeOid = type switch { 0 => 25, 1 => 23, 2 => 114, _ => 3802 };
            body.AddRange(PgMessages.CString($"c{i}"));
            body.AddRange(PgMessages.Int32((int)table));
            body.AddRange(PgMessages.Int16(attnum));
            body.AddRange(PgMessages.Int32(typeOid));
            body.AddRange(PgMessages.Int16(-1));
            body.AddRange(PgMessages.Int32(-1));
            body.AddRange(PgMessages.Int16((shape[i] & 16) != 0 ? 1 : 0));
        }

        return PgMessages.Message('T', [.. body]);
    }

    private static byte[] DataRow(List<byte[]?> row)
    {
        var body = new List<byte>(PgMessages.Int16(row.Count));
        foreach (var cell in row)
        {
            body.AddRange(cell is null ? PgMessages.Int32(-1) : PgMessages.Value(cell));
        }

        return PgMessages.Message('D', [.. body]);
    }

    private static void Expect(bool condition, string what)
    {
        if (!condition)
        {
            throw new FuzzFindingException("MaskingRows: " + what);
        }
    }

    /// <summary>A catalog with one table (secret masked, plain not), rules with keep_last 4 and the card, ssn and email detectors.</summary>
    private sealed class Setup
    {
        public Setup()
        {
            var policy = PolicyCompiler.Compile(new PolicyModel("fuzz", default)
            {
                Roles = [new PolicyRoleModel("app", ["all"])],
                Bindings = [new PolicyBindingModel("app", default) { Identities = ["alice"], Connections = ["*"] }],
                Masking = new PolicyMaskingModel(default)
                {
                    Rules =
                    [
                        new PolicyMaskRuleModel("secret", default) { Columns = ["public.t.secret"], Style = "keep_last", Keep = "4" },
                        new PolicyMaskRuleModel("detectors", default) { Detect = ["card", "ssn", "email", "aws_key", "jwt"] },
                    ],
                },
            });
            Rules = policy.Masking.For("alice", [], "app", "fuzz")!;
            ColumnRule = Rules.ColumnRules[0];
            var snapshot = new PgCatalogSnapshot(1, DateTimeOffset.UtcNow, [new PgRelation(Table, "public", "t", 'r', ["secret", "plain"])], [25], [114, 3802]);
            Catalog = new PgCatalogCache(new PgConnectionTarget { Name = "fuzz", Host = "127.0.0.1", Database = "fuzz", User = "fuzz" }, new PgCatalogOptions(),
                NullLogger.Instance, TimeProvider.System, new FixedSource(snapshot));
            Catalog.GetAsync(CancellationToken.None).GetAwaiter().GetResult();
            Names = new MaskedNames([(Encoding.UTF8.GetBytes("secret"), 0)], [(Encoding.UTF8.GetBytes("t"), 0)]);
        }

        public SessionMasking Rules { get; }

        public MaskingRule ColumnRule { get; }

        public PgCatalogCache Catalog { get; }

        public MaskedNames Names { get; }
    }

    private sealed class FixedSource(PgCatalogSnapshot snapshot) : IPgCatalogSource
    {
        public Task<PgCatalogSnapshot> LoadAsync(long version, CancellationToken cancellationToken) => Task.FromResult(snapshot);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
