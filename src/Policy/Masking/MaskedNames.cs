namespace Gatehouse.Policy.Masking;

/// <summary>
/// The names a statement can use to reach masked values, for one rule set over one catalog: column names of masked
/// columns, and relation names (tables and views) that hold masked columns, normalized as PostgreSQL normalizes
/// identifiers. A name maps to the first rule that masks something under it. Lookups allocate nothing.
/// </summary>
public sealed class MaskedNames
{
    private readonly ByteNameMap _columns;
    private readonly ByteNameMap _relations;

    public MaskedNames(IEnumerable<(byte[] Name, int Rule)> columns, IEnumerable<(byte[] Name, int Rule)> relations)
    {
        _columns = new ByteNameMap(columns);
        _relations = new ByteNameMap(relations);
    }

    /// <summary>Nothing is masked by origin.</summary>
    public static MaskedNames Empty { get; } = new([], []);

    public bool IsEmpty => _columns.Count == 0 && _relations.Count == 0;

    /// <summary>The rule of a masked column of that name in any relation; -1 when none.</summary>
    public int ColumnRule(ReadOnlySpan<byte> name) => _columns.Find(name);

    /// <summary>The rule of a relation of that name (in any schema) with masked columns; -1 when none.</summary>
    public int RelationRule(ReadOnlySpan<byte> name) => _relations.Find(name);

    /// <summary>A small immutable hash map from byte strings to ints (FNV-1a, open addressing).</summary>
    private sealed class ByteNameMap
    {
        private readonly byte[][] _keys;
        private readonly int[] _values;
        private readonly int _mask;

        public ByteNameMap(IEnumerable<(byte[] Name, int Rule)> entries)
        {
            var unique = new Dictionary<string, (byte[] Name, int Rule)>(StringComparer.Ordinal);
            foreach (var (name, rule) in entries)
            {
                string key = Convert.ToHexString(name);
                if (!unique.TryGetValue(key, out var existing) || rule < existing.Rule)
                {
                    unique[key] = (name, rule);
                }
            }

            Count = unique.Count;
            int size = 8;
            while (size < unique.Count * 2)
            {
                size <<= 1;
            }

            _keys = new byte[size][];
            _values = new int[size];
            _mask = size - 1;
            foreach (var (name, rule) in unique.Values)
            {
                int slot = (int)Hash(name) & _mask;
                while (_keys[slot] is not null)
                {
                    slot = (slot + 1) & _mask;
                }

                _keys[slot] = name;
                _values[slot] = rule;
            }
        }

        public int Count { get; }

        public int Find(ReadOnlySpan<byte> name)
        {
            if (Count == 0)
            {
                return -1;
            }

            int slot = (int)Hash(name) & _mask;
            while (_keys[slot] is { } key)
            {
                if (name.SequenceEqual(key))
                {
                    return _values[slot];
                }

                slot = (slot + 1) & _mask;
            }

            return -1;
        }

        private static uint Hash(ReadOnlySpan<byte> name)
        {
            uint hash = 2166136261;
            foreach (byte b in name)
            {
                hash = (hash ^ b) * 16777619;
            }

            return hash ^ (hash >> 15);
        }
    }
}
