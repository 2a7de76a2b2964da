using System.Buffers;
using System.Runtime.InteropServices;
using Gatehouse.Policy.Rules;
using Gatehouse.Policy.Sql;

namespace Gatehouse.Protocols.Postgres.Policy;

/// <summary>How the text of a statement was lexed, fixed when the server received it.</summary>
internal enum PgLexMode : byte
{
    /// <summary>standard_conforming_strings on (the default).</summary>
    Standard,

    /// <summary>standard_conforming_strings off: backslashes escape in plain strings.</summary>
    Backslash,

    /// <summary>The setting may have changed in a request still in flight: decide under both, strictest wins.</summary>
    Either,
}

/// <summary>
/// A decision the relay acts on: the action, and the rule that made it (with its precompiled message), or null
/// when allowed. Taken from the session's policy, or one of the protocol's own refusals.
/// </summary>
internal readonly record struct PgVerdict(PolicyAction Action, PolicyRuleInfo? Rule)
{
    public static PgVerdict Allowed => default;

    public bool IsAllowed => Action == PolicyAction.Allow;

    public static PgVerdict Strictest(PgVerdict a, PgVerdict b) => b.Action > a.Action ? b : a;
}

/// <summary>
/// The text of a prepared statement as the server parsed it, in a pooled buffer, with the verdict of the policy
/// version that last decided it: after a policy reload the next Bind decides the text again.
/// </summary>
internal sealed class PgStatementText
{
    private byte[] _buffer = [];

    public int Length { get; private set; }

    public PgLexMode Mode { get; private set; }

    public long PolicyVersion { get; set; }

    public PgVerdict Verdict { get; set; }

    /// <summary>How the text uses masked names, as of <see cref="PolicyVersion"/>.</summary>
    public Gatehouse.Policy.Masking.MaskAnalysis Masks { get; set; } = Gatehouse.Policy.Masking.MaskAnalysis.None;

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, Length);

    public void Set(ReadOnlySpan<byte> text, PgLexMode mode)
    {
        if (_buffer.Length < text.Length)
        {
            Release();
            _buffer = ArrayPool<byte>.Shared.Rent(text.Length);
        }

        text.CopyTo(_buffer);
        Length = text.Length;
        Mode = mode;
        PolicyVersion = 0;
    }

    public void Release()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = [];
        Length = 0;
    }
}

/// <summary>
/// A prepared statement name and what the server may hold under it: the text whose Parse the server confirmed,
/// and how many Parses of the name are still in flight (any of which may succeed).
/// </summary>
internal sealed class PgPreparedStatement(byte[] name)
{
    public byte[] Name { get; } = name;

    public PgStatementText? Confirmed { get; set; }

    public int PendingParses { get; set; }

    public bool IsUnused => Confirmed is null && PendingParses == 0;
}

/// <summary>
/// The session's prepared statements by name, looked up by the name's bytes without allocating. Hashing is
/// randomised per process (<see cref="HashCode"/>), so a client cannot choose colliding names.
/// </summary>
internal sealed class PgPreparedStatements
{
    private readonly Dictionary<byte[], PgPreparedStatement> _named = new(NameComparer.Instance);
    private readonly Dictionary<byte[], PgPreparedStatement>.AlternateLookup<ReadOnlySpan<byte>> _lookup;

    public PgPreparedStatements()
    {
        _lookup = _named.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>The unnamed statement ("").</summary>
    public PgPreparedStatement Unnamed { get; } = new([]);

    public int NamedCount => _named.Count;

    public PgPreparedStatement? Find(ReadOnlySpan<byte> name) =>
        name.IsEmpty ? Unnamed : _lookup.TryGetValue(name, out var statement) ? statement : null;

    public PgPreparedStatement GetOrAdd(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty)
        {
            return Unnamed;
        }

        ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(_lookup, name, out _);
        return slot ??= new PgPreparedStatement(name.ToArray());
    }

    /// <summary>Forgets a named statement the server no longer holds and no Parse in flight may create.</summary>
    public void RemoveIfUnused(PgPreparedStatement statement)
    {
        if (statement.IsUnused && statement.Name.Length > 0)
        {
            _named.Remove(statement.Name);
        }
    }

    public IEnumerable<PgPreparedStatement> All => _named.Values.Append(Unnamed);

    private sealed class NameComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly NameComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode(obj.AsSpan());

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = default(HashCode);
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}
