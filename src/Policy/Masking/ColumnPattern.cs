using Gatehouse.Policy.Rules;

namespace Gatehouse.Policy.Masking;

/// <summary>
/// A compiled <c>columns:</c> pattern of a masking rule: <c>schema.table.column</c> or <c>table.column</c> (any
/// schema), each part normalized as PostgreSQL normalizes identifiers, <c>*</c> outside quotes matching any run of
/// bytes (<c>public.*.ssn</c>, <c>*.customers.*</c>, <c>"Billing".cards.pan</c>). Matched against the catalog's
/// names, so it names the column where it is stored, whatever a query calls it.
/// </summary>
public sealed class ColumnPattern
{
    private readonly byte[]? _schema;
    private readonly byte[] _table;
    private readonly byte[] _column;

    private ColumnPattern(string text, byte[]? schema, byte[] table, byte[] column)
    {
        Text = text;
        _schema = schema;
        _table = table;
        _column = column;
    }

    /// <summary>As written in the policy.</summary>
    public string Text { get; }

    /// <summary>The column part has no wildcard: its normalized name, for the statement analysis.</summary>
    internal byte[] Column => _column;

    /// <summary>Parses a pattern; null and an error message when it is not one.</summary>
    public static ColumnPattern? Parse(string text, out string? error)
    {
        if (ObjectPattern.ParseParts(text, out error) is not { } parts)
        {
            return null;
        }

        if (parts.Count is < 2 or > 3)
        {
            error = $"'{text}': a column pattern is schema.table.column or table.column (globs with *)";
            return null;
        }

        byte[]? schema = parts.Count == 3 ? parts[0] : null;
        if (schema is [ObjectPattern.Wildcard])
        {
            schema = null;
        }

        return new ColumnPattern(text, schema, parts[^2], parts[^1]);
    }

    /// <summary>Whether a stored column (its catalog names, UTF-8) matches.</summary>
    public bool Matches(ReadOnlySpan<byte> schema, ReadOnlySpan<byte> table, ReadOnlySpan<byte> column) =>
        ObjectPattern.Glob(_column, column) && ObjectPattern.Glob(_table, table) && (_schema is null || ObjectPattern.Glob(_schema, schema));
}
