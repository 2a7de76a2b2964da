using System.Buffers;

namespace Gatehouse.Protocols.Postgres.Wire;

/// <summary>
/// Reads a Bind body that <see cref="PgMessageValidator"/> has accepted (PostgreSQL docs, Bind): portal, statement,
/// then the parameters one at a time with their formats, then the result formats. Format codes: none means text for
/// every parameter, one applies to all, else one per parameter (counts are unsigned). Works on the frame as the pipe
/// holds it, one or several segments, without copying.
/// </summary>
internal ref struct PgBindReader
{
    private SequenceReader<byte> _reader;
    private readonly ReadOnlySequence<byte> _formats;
    private readonly int _formatCount;
    private int _index;

    public PgBindReader(in ReadOnlySequence<byte> body)
    {
        _reader = new SequenceReader<byte>(body);
        _reader.TryReadTo(out ReadOnlySequence<byte> portal, 0);
        _reader.TryReadTo(out ReadOnlySequence<byte> statement, 0);
        Portal = portal;
        Statement = statement;
        _reader.TryReadBigEndian(out short formatCount);
        _formatCount = (ushort)formatCount;
        _formats = _reader.UnreadSequence.Slice(0, 2 * _formatCount);
        _reader.Advance(2 * _formatCount);
        _reader.TryReadBigEndian(out short parameterCount);
        ParameterCount = (ushort)parameterCount;
    }

    /// <summary>The portal's name (empty for the unnamed portal).</summary>
    public ReadOnlySequence<byte> Portal { get; }

    /// <summary>The prepared statement's name (empty for the unnamed statement).</summary>
    public ReadOnlySequence<byte> Statement { get; }

    public int ParameterCount { get; }

    /// <summary>The next parameter: its format code (0 text, 1 binary) and value; false after the last.</summary>
    public bool TryReadParameter(out short format, out bool isNull, out ReadOnlySequence<byte> value)
    {
        format = 0;
        isNull = false;
        value = default;
        if (_index >= ParameterCount)
        {
            return false;
        }

        // A count that fits neither rule is the server's to refuse; here it only labels the value.
        int at = _formatCount switch { 0 => -1, 1 => 0, _ => _index < _formatCount ? _index : -1 };
        if (at >= 0)
        {
            var reader = new SequenceReader<byte>(_formats.Slice(2 * at, 2));
            reader.TryReadBigEndian(out format);
        }

        _index++;
        _reader.TryReadBigEndian(out int length);
        if (length < 0)
        {
            isNull = true;
            return true;
        }

        value = _reader.UnreadSequence.Slice(0, length);
        _reader.Advance(length);
        return true;
    }

    /// <summary>Whether any result column is asked for in binary format (reads past the parameters left).</summary>
    public bool AsksBinaryResults()
    {
        while (TryReadParameter(out _, out _, out _))
        {
        }

        _reader.TryReadBigEndian(out short resultCount);
        for (int i = 0; i < (ushort)resultCount; i++)
        {
            if (_reader.TryReadBigEndian(out short format) && format != 0)
            {
                return true;
            }
        }

        return false;
    }
}
