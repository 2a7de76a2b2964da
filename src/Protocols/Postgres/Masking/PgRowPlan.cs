using System.Buffers;
using Gatehouse.Policy.Masking;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>How one result column's values are treated.</summary>
internal struct PgFieldPlan
{
    /// <summary>The rule that masks every value of the column; null when values are only scanned (or passed).</summary>
    public MaskingRule? Rule;

    /// <summary>Run the value detectors over each value.</summary>
    public bool Scan;

    /// <summary>What the value's bytes are.</summary>
    public PgValueType Type;
}

/// <summary>What a value's bytes are, for rewriting it.</summary>
internal enum PgValueType : byte
{
    /// <summary>Binary data of a type other than text: not scanned; a masked value becomes NULL.</summary>
    Other,

    /// <summary>The text format of a type other than text (numbers, dates...): scanned; a masked value becomes NULL.</summary>
    Characters,

    /// <summary>A text type, in either format (the same characters): scanned; a masked value takes the rule's style.</summary>
    Text,

    /// <summary>JSON text: a masked value becomes a JSON string.</summary>
    Json,

    /// <summary>jsonb in binary format: a version byte (1), then JSON text.</summary>
    JsonbBinary,
}

/// <summary>
/// The mask plan of one result shape (one RowDescription): per column, the masking rule by origin and whether the
/// detectors scan it. Reused: rebuilding it for every query allocates nothing once it has grown to the widest row.
/// </summary>
internal sealed class PgRowPlan
{
    private PgFieldPlan[] _fields = new PgFieldPlan[16];

    /// <summary>The number of columns.</summary>
    public int Count { get; private set; }

    /// <summary>Some column is masked or scanned: rows must be read.</summary>
    public bool NeedsWork { get; private set; }

    public ReadOnlySpan<PgFieldPlan> Fields => _fields.AsSpan(0, Count);

    /// <summary>A plan for rows without columns (NoData).</summary>
    public void Clear()
    {
        Count = 0;
        NeedsWork = false;
    }

    /// <summary>
    /// Builds the plan from a validated RowDescription body. A column of a table the catalog does not know is
    /// planned as computed (the session waited for one reload first: <see cref="NamesUnknownTable"/>).
    /// </summary>
    /// <param name="referencedRule">
    /// The rule of the masked names the statement used (-1: none): computed columns are masked by it.
    /// </param>
    public void Build(in ReadOnlySequence<byte> body, SessionMasking rules, PgMaskIndex? index, int referencedRule)
    {
        var reader = new SequenceReader<byte>(body);
        reader.TryReadBigEndian(out short count);
        int columns = (ushort)count;
        if (_fields.Length < columns)
        {
            _fields = new PgFieldPlan[Math.Max(columns, _fields.Length * 2)];
        }

        bool scan = !rules.Scanner.IsEmpty;
        MaskingRule? computed = referencedRule >= 0 ? rules.RuleOfTag(referencedRule) : null;
        bool needsWork = false;
        for (int i = 0; i < columns; i++)
        {
            reader.TryAdvanceTo(0); // the column label: whatever the query called it
            reader.TryReadBigEndian(out int tableOid);
            reader.TryReadBigEndian(out short attnum);
            reader.TryReadBigEndian(out int typeOid);
            reader.Advance(2 + 4);
            reader.TryReadBigEndian(out short format);

            MaskingRule? rule = null;
            if (tableOid != 0 && index is not null)
            {
                // Attribute number 0 is a whole-row value: the relation's masked columns are in it.
                rule = index.Column((uint)tableOid, attnum);
                if (rule is null && !index.Knows((uint)tableOid))
                {
                    rule = computed; // a table the catalog does not know (it was reloaded once for it): computed
                }
                else if (rule is null && attnum <= 0)
                {
                    rule = computed; // a whole row, or a system column: computed
                }
            }
            else if (tableOid == 0 || rules.ColumnRules.Count > 0)
            {
                // A computed column, or a column whose origin cannot be checked without a catalog.
                rule = computed;
            }

            var type = TypeOf((uint)typeOid, format, index?.Catalog);
            _fields[i] = new PgFieldPlan
            {
                Rule = rule,
                Scan = scan && rule is null && type != PgValueType.Other,
                Type = type,
            };
            needsWork |= rule is not null || _fields[i].Scan;
        }

        Count = columns;
        NeedsWork = needsWork;
    }

    /// <summary>Whether a validated RowDescription body names a table the catalog does not know (created since it was read).</summary>
    public static bool NamesUnknownTable(in ReadOnlySequence<byte> body, PgMaskIndex index)
    {
        var reader = new SequenceReader<byte>(body);
        reader.TryReadBigEndian(out short count);
        for (int i = 0; i < (ushort)count; i++)
        {
            reader.TryAdvanceTo(0);
            reader.TryReadBigEndian(out int tableOid);
            reader.Advance(2 + 4 + 2 + 4 + 2);
            if (tableOid != 0 && !index.Knows((uint)tableOid))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>What a value's bytes are, from its type and format (0 text, 1 binary).</summary>
    public static PgValueType TypeOf(uint typeOid, short format, PgCatalogSnapshot? catalog)
    {
        bool json = typeOid is PgCatalogSnapshot.JsonTypeOid or PgCatalogSnapshot.JsonbTypeOid || catalog?.IsJsonType(typeOid) == true;
        if (json)
        {
            return format == 0 || typeOid == PgCatalogSnapshot.JsonTypeOid ? PgValueType.Json
                : typeOid == PgCatalogSnapshot.JsonbTypeOid ? PgValueType.JsonbBinary : PgValueType.Other;
        }

        // "char" is one byte in binary format: a mask does not fit it, so it is treated like a number (NULL).
        if (typeOid != CharTypeOid && (IsBuiltinText(typeOid) || catalog?.IsTextType(typeOid) == true))
        {
            return PgValueType.Text;
        }

        return format == 0 ? PgValueType.Characters : PgValueType.Other;
    }

    /// <summary>The single-byte type <c>"char"</c>.</summary>
    private const uint CharTypeOid = 18;

    /// <summary>text, varchar, bpchar, name, unknown: the same characters in both formats.</summary>
    private static bool IsBuiltinText(uint typeOid) => typeOid is 25 or 1043 or 1042 or 19 or PgCatalogSnapshot.UnknownTypeOid;
}
