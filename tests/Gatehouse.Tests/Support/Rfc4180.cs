using System.Text;
using Xunit;

namespace Gatehouse.Tests.Support;

/// <summary>
/// A strict RFC 4180 reader, to check the review's CSV independently of its writer: rows end with CRLF (the last one
/// too), fields may be quoted with doubled quotes inside, and a line break outside quotes is an error. Compiled into
/// both test projects.
/// </summary>
internal static class Rfc4180
{
    public static List<string[]> Parse(string text)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                row.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add([.. row]);
                row.Clear();
                i++;
            }
            else
            {
                Assert.False(c is '\r' or '\n', $"a bare line break at {i}");
                field.Append(c);
            }
        }

        Assert.True(row.Count == 0 && field.Length == 0 && !quoted, "the CSV does not end with CRLF");
        return rows;
    }
}
