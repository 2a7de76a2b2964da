using System.Buffers;
using static Gatehouse.Fuzz.PgMessages;

namespace Gatehouse.Benchmarks;

/// <summary>
/// Typical protocol 3.0 traffic for the benchmarks, built with the fuzz project's byte-by-byte message builder
/// (linked in, so there is one independent builder).
/// </summary>
internal static class PgWire
{
    public const string PgbenchSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";

    public static byte[] Repeat(int count, params byte[][] frames) => Concat([.. Enumerable.Repeat(Concat(frames), count)]);

    // Frontend, as libpq sends them for pgbench -S (-M extended / prepared) and psql.

    public static byte[] Query() => Message('Q', CString("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"));

    public static byte[] Parse() => Message('P', CString(""), CString(PgbenchSelect), Int16(1), Int32(23));

    /// <summary>Bind of one int parameter in text (libpq sends no parameter formats), one text result format.</summary>
    public static byte[] Bind() => Message('B', CString(""), CString("P0_1"), Int16(0), Int16(1), Value(Text("12345")), Int16(1), Int16(0));

    public static byte[] Execute() => Message('E', CString(""), Int32(0));

    public static byte[] Sync() => Message('S');

    // Backend: a 5-column result.

    public static byte[] RowDescription() => Message('T', Int16(5),
        Field("aid", 1, 23, 4), Field("bid", 2, 23, 4), Field("abalance", 3, 23, 4), Field("updated", 4, 1184, 8), Field("filler", 5, 25, -1));

    /// <summary>Five text columns, 109 bytes of body: two ints, a balance, a timestamp, a short text.</summary>
    public static byte[] DataRow(int aid) => Message('D', Int16(5),
        Value(Text(aid.ToString("D5", System.Globalization.CultureInfo.InvariantCulture))),
        Value(Text("1")),
        Value(Text("-2870")),
        Value(Text("2024-05-01 12:34:56.789+00")),
        Value(Text("Lorem ipsum dolor sit amet, consectetur adipiscing")));

    public static byte[] CommandComplete(int rows) => Message('C', CString($"SELECT {rows}"));

    public static byte[] ReadyForQuery() => Message('Z', [(byte)'I']);

    private static byte[] Field(string name, int column, int typeOid, int typeSize) =>
        Concat(CString(name), Int32(16390), Int16(column), Int32(typeOid), Int16(typeSize), Int32(-1), Int16(0));

    /// <summary>The bytes as one segment, or split in two at <paramref name="at"/> (a read that ended there).</summary>
    public static ReadOnlySequence<byte> Sequence(byte[] bytes, int? at = null)
    {
        if (at is not { } split)
        {
            return new ReadOnlySequence<byte>(bytes);
        }

        var first = new Segment(bytes.AsMemory(0, split), null);
        var second = new Segment(bytes.AsMemory(split), first);
        return new ReadOnlySequence<byte>(first, 0, second, second.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, Segment? previous)
        {
            Memory = memory;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }
}
