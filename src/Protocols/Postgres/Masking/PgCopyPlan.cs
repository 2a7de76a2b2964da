using System.Text;
using Gatehouse.Policy.Masking;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// The mask plan of one <c>COPY ... TO STDOUT</c>: per copied column, the rule that masks it (text format, one row
/// per CopyData, as the server sends it). Built once per COPY.
/// </summary>
internal sealed class PgCopyPlan
{
    private PgCopyPlan(bool binary, MaskingRule?[] columns, MaskingRule? everyColumn = null)
    {
        Binary = binary;
        Columns = columns;
        EveryColumn = everyColumn;
        TextColumns = new bool[columns.Length];
        Array.Fill(TextColumns, true);
        NeedsColumns = everyColumn is not null || Array.Exists(columns, c => c is not null);
    }

    /// <summary>
    /// Set when the copied relation cannot be told apart (an unqualified name that schemas with different columns
    /// hold): every field of every row is masked by this rule, whatever the number of fields.
    /// </summary>
    public MaskingRule? EveryColumn { get; }

    /// <summary>Binary COPY: never of masked columns (refused before it ran); rows pass.</summary>
    public bool Binary { get; }

    /// <summary>The masking rule of each copied column, in copy order; null entries are only scanned.</summary>
    public MaskingRule?[] Columns { get; }

    /// <summary>Whether a masked column can hold the style's text (else it becomes \N).</summary>
    public bool[] TextColumns { get; }

    /// <summary>Some column is masked: rows are split into fields.</summary>
    public bool NeedsColumns { get; }

    /// <summary>
    /// The plan for a COPY of <paramref name="target"/> (null: a COPY with nothing masked by column, scanned only).
    /// A relation name that several schemas hold, with different columns, masks every column (which of them the
    /// server copies depends on its search_path).
    /// </summary>
    public static PgCopyPlan Create(MaskCopyTarget? target, bool binary, SessionMasking rules, PgMaskIndex? index)
    {
        if (target is null || index is null)
        {
            return new PgCopyPlan(binary, []);
        }

        var candidates = index.Catalog.Relations.Where(r =>
            Encoding.UTF8.GetBytes(r.Name).AsSpan().SequenceEqual(target.Relation)
            && (target.Schema is null || Encoding.UTF8.GetBytes(r.Schema).AsSpan().SequenceEqual(target.Schema))).ToList();
        if (candidates.Count == 0)
        {
            return new PgCopyPlan(binary, []);
        }

        List<string> names;
        if (target.Columns is { } listed)
        {
            names = [.. listed.Select(c => Encoding.UTF8.GetString(c))];
        }
        else
        {
            names = ColumnNames(candidates[0]);
            if (candidates.Skip(1).Any(c => !ColumnNames(c).SequenceEqual(names)))
            {
                return new PgCopyPlan(binary, [], everyColumn: rules.ColumnRules[0]);
            }
        }

        var columns = new MaskingRule?[names.Count];
        for (int i = 0; i < names.Count; i++)
        {
            foreach (var relation in candidates)
            {
                for (short attnum = 1; attnum <= relation.ColumnCount && columns[i] is null; attnum++)
                {
                    if (relation.ColumnName(attnum) == names[i])
                    {
                        columns[i] = index.Column(relation.Oid, attnum);
                    }
                }
            }
        }

        return new PgCopyPlan(binary, columns);
    }

    private static List<string> ColumnNames(PgRelation relation)
    {
        var names = new List<string>();
        for (short attnum = 1; attnum <= relation.ColumnCount; attnum++)
        {
            if (relation.ColumnName(attnum) is { } name)
            {
                names.Add(name);
            }
        }

        return names;
    }
}
