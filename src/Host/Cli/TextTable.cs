using System.Globalization;

namespace Gatehouse.Host.Cli;

/// <summary>Plain-text tables for the command line: a header row, columns padded to their widest cell.</summary>
internal static class TextTable
{
    public static void Write(TextWriter output, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string?>> rows)
    {
        var all = rows.Select(r => r.Select(c => Clean(c ?? "")).ToArray()).ToList();
        if (all.Count == 0)
        {
            output.WriteLine("  (none)");
            return;
        }

        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Max(r => i < r.Length ? r[i].Length : 0))).ToArray();
        output.WriteLine(Line(headers, widths));
        foreach (var row in all)
        {
            output.WriteLine(Line(row, widths));
        }
    }

    /// <summary>A time as the tables show it: UTC, to the second.</summary>
    public static string Time(DateTimeOffset? time) =>
        time?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "";

    /// <summary>The first line of a text, cut to <paramref name="max"/> characters.</summary>
    public static string Short(string? text, int max)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }

        int newline = text.IndexOfAny(['\r', '\n']);
        bool cut = newline >= 0;
        string line = cut ? text[..newline] : text;
        if (line.Length > max)
        {
            line = line[..(max - 3)];
            cut = true;
        }

        return cut ? line + "..." : line;
    }

    private static string Line(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("  ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();

    // A cell is one line: control characters (a newline in a reason) would break the columns.
    private static string Clean(string text) => string.Create(text.Length, text, static (span, t) =>
    {
        for (int i = 0; i < t.Length; i++)
        {
            span[i] = char.IsControl(t[i]) ? ' ' : t[i];
        }
    });
}
