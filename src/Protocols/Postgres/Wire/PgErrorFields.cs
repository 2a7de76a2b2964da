namespace Gatehouse.Protocols.Postgres.Wire;

/// <summary>
/// The fields of a validated ErrorResponse or NoticeResponse (a whole message, code and length included): each a
/// field code and its text, up to the terminating zero. A <c>foreach</c> over it allocates nothing.
/// </summary>
internal readonly ref struct PgErrorFields(ReadOnlySpan<byte> message)
{
    private readonly ReadOnlySpan<byte> _message = message;

    public Enumerator GetEnumerator() => new(_message);

    /// <summary>Whether a field of that code is present.</summary>
    public bool Has(byte code)
    {
        foreach (var field in this)
        {
            if (field.Code == code)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The text of the first field of that code; empty when there is none.</summary>
    public ReadOnlySpan<byte> Get(byte code)
    {
        foreach (var field in this)
        {
            if (field.Code == code)
            {
                return field.Text;
            }
        }

        return default;
    }

    public readonly ref struct Field(byte code, ReadOnlySpan<byte> text)
    {
        public byte Code { get; } = code;

        public ReadOnlySpan<byte> Text { get; } = text;
    }

    public ref struct Enumerator(ReadOnlySpan<byte> message)
    {
        private readonly ReadOnlySpan<byte> _message = message;
        private int _next = 5;

        public Field Current { get; private set; }

        public bool MoveNext()
        {
            if (_next >= _message.Length || _message[_next] == 0)
            {
                return false;
            }

            var text = _message[(_next + 1)..];
            text = text[..text.IndexOf((byte)0)];
            Current = new Field(_message[_next], text);
            _next += text.Length + 2;
            return true;
        }
    }
}
