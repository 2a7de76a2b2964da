using System.Buffers.Binary;
using System.Buffers.Text;
using System.Text;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// Reads the fields of one backend message body (DataRow, RowDescription, ErrorResponse) on the catalog
/// connection. Every read is bounds-checked; a body that does not hold what it says throws
/// <see cref="PgCatalogException"/>.
/// </summary>
internal ref struct PgBodyReader(ReadOnlySpan<byte> body)
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    private readonly ReadOnlySpan<byte> _body = body;
    private int _at;

    public readonly bool End => _at == _body.Length;

    public short ReadInt16()
    {
        var value = BinaryPrimitives.ReadInt16BigEndian(Take(2));
        return value;
    }

    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

    public ReadOnlySpan<byte> ReadCString()
    {
        int end = _body[_at..].IndexOf((byte)0);
        if (end < 0)
        {
            throw Malformed();
        }

        var value = _body.Slice(_at, end);
        _at += end + 1;
        return value;
    }

    /// <summary>A DataRow field: false for NULL.</summary>
    public bool TryReadField(out ReadOnlySpan<byte> value)
    {
        int length = ReadInt32();
        if (length < 0)
        {
            value = default;
            return false;
        }

        value = Take(length);
        return true;
    }

    /// <summary>A DataRow field that must not be NULL.</summary>
    public ReadOnlySpan<byte> ReadField() => TryReadField(out var value) ? value : throw Malformed();

    /// <summary>A text-format field holding an OID (unsigned 32-bit).</summary>
    public uint ReadOidField() => Utf8Parser.TryParse(ReadField(), out uint value, out int used) && used > 0 ? value : throw Malformed();

    /// <summary>A text-format field holding a smallint or an integer that fits one (attribute numbers).</summary>
    public short ReadInt16Field() => Utf8Parser.TryParse(ReadField(), out short value, out int used) && used > 0 ? value : throw Malformed();

    /// <summary>A text-format field holding one ASCII character ("char" columns such as relkind).</summary>
    public char ReadCharField()
    {
        var field = ReadField();
        return field.Length == 1 && field[0] < 0x80 ? (char)field[0] : throw Malformed();
    }

    /// <summary>A text-format field as a string (names arrive in UTF-8: the connection asks for it).</summary>
    public string ReadStringField() => Utf8.GetString(ReadField());

    public static string Decode(ReadOnlySpan<byte> value) => Utf8.GetString(value);

    /// <summary>The SQLSTATE and primary message of an ErrorResponse body; never its detail, which can quote data.</summary>
    public static (string SqlState, string Message) ReadError(ReadOnlySpan<byte> body)
    {
        string sqlState = "?????";
        string message = "";
        var reader = new PgBodyReader(body);
        while (reader._at < body.Length && body[reader._at] != 0)
        {
            byte field = body[reader._at++];
            var value = reader.ReadCString();
            if (field == (byte)'C')
            {
                sqlState = Utf8.GetString(value);
            }
            else if (field == (byte)'M')
            {
                message = Utf8.GetString(value);
            }
        }

        return (sqlState, message);
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count > _body.Length - _at)
        {
            throw Malformed();
        }

        var value = _body.Slice(_at, count);
        _at += count;
        return value;
    }

    private static PgCatalogException Malformed() => new("the upstream server sent a malformed message on the catalog connection");
}
