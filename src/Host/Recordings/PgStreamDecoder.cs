using System.Buffers.Binary;
using System.Text;

namespace Gatehouse.Host.Recordings;

/// <summary>
/// Decodes the PostgreSQL 3.0 backend messages (<c>Byte1 type, Int32 length, body</c>) of a byte stream that
/// arrives in chunks cut anywhere: the concatenated ServerMessage payloads of a recording, which are exactly the
/// bytes the client received (docs/recording-format.md, "PostgreSQL sessions"). A message split across chunks is
/// kept until its last byte arrives.
/// </summary>
/// <remarks>
/// A stream that is not a sequence of valid backend messages (an unknown type byte, a length below 4 or above
/// <see cref="MaxMessageLength"/>, a body that does not parse as its type says) stops the decoder with
/// <see cref="Error"/> set, saying what and where; it never throws for its input, and never waits for more than
/// the length a message announces. After an error it decodes nothing until <see cref="Reset"/> (the stream cannot
/// be trusted to be in step any more: a reader resynchronises at a place it knows to be a message start).
/// DataRow values are decoded with the column formats of the last RowDescription.
/// </remarks>
public sealed class PgStreamDecoder
{
    /// <summary>The largest message accepted by default: 1 GiB, the server's own limit on a field or row.</summary>
    public const int DefaultMaxMessageLength = 1 << 30;

    private byte[] _buffer = new byte[4096];
    private int _start;
    private int _end;
    private long _offset;
    private IReadOnlyList<short> _formats = [];

    /// <param name="maxMessageLength">Longest message accepted (length word included); a longer one is an error.</param>
    public PgStreamDecoder(int maxMessageLength = DefaultMaxMessageLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageLength, 5);
        MaxMessageLength = maxMessageLength;
    }

    /// <summary>The longest message accepted.</summary>
    public int MaxMessageLength { get; }

    /// <summary>Stream offset of the next message: bytes of the stream decoded into whole messages (or skipped by <see cref="Reset"/>).</summary>
    public long Offset => _offset;

    /// <summary>Bytes received but not decoded yet: the start of a message whose end has not arrived.</summary>
    public int Pending => _end - _start;

    /// <summary>Why decoding stopped, with the stream offset; null while the stream decodes.</summary>
    public string? Error { get; private set; }

    /// <summary>
    /// Adds the next chunk of the stream and appends every message it completes to <paramref name="output"/>.
    /// Returns how many were appended. After an error, the chunk is ignored.
    /// </summary>
    public int Decode(ReadOnlySpan<byte> chunk, List<PgBackendMessage> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (Error is not null)
        {
            return 0;
        }

        int before = output.Count;
        while (true)
        {
            if (_end > _start)
            {
                // A message started in an earlier chunk: complete its length word, then its body, from this chunk.
                if (_end - _start < 5)
                {
                    int headerTake = Math.Min(5 - (_end - _start), chunk.Length);
                    Append(chunk[..headerTake]);
                    chunk = chunk[headerTake..];
                    if (_end - _start < 5)
                    {
                        break;
                    }
                }

                int need = NeededFor(_buffer.AsSpan(_start, _end - _start));
                if (need < 0)
                {
                    break;
                }

                int take = Math.Min(need - (_end - _start), chunk.Length);
                Append(chunk[..take]);
                chunk = chunk[take..];
                if (_end - _start < need || !Emit(_buffer.AsSpan(_start, need), output))
                {
                    break;
                }

                _start += need;
                if (_start == _end)
                {
                    _start = _end = 0;
                }

                continue;
            }

            if (chunk.IsEmpty)
            {
                break;
            }

            int length = NeededFor(chunk);
            if (length < 0)
            {
                break;
            }

            if (length == 0 || chunk.Length < length)
            {
                Append(chunk);
                break;
            }

            if (!Emit(chunk[..length], output))
            {
                break;
            }

            chunk = chunk[length..];
        }

        return output.Count - before;
    }

    /// <summary>
    /// Says whether the stream ended cleanly: null when it did, else why not (an error, or a message cut off at
    /// the end: the recording stopped in the middle of it).
    /// </summary>
    public string? Complete()
    {
        if (Error is not null)
        {
            return Error;
        }

        if (_end > _start)
        {
            char code = (char)_buffer[_start];
            string what = _end - _start >= 5
                ? $"{PgMessageNames.Backend(code)} message of {1 + BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start + 1))} bytes"
                : $"{PgMessageNames.Backend(code)} message";
            return $"the stream ends inside a {what} at stream offset {_offset} ({_end - _start} bytes of it were received)";
        }

        return null;
    }

    /// <summary>
    /// Forgets buffered bytes and any error, and expects a message to start with the next chunk (after a gap in
    /// the stream, at a chunk that is known or guessed to start a message). Column formats are forgotten too.
    /// </summary>
    /// <param name="skipped">Bytes known to be missing from the stream, for <see cref="Offset"/>.</param>
    public void Reset(long skipped = 0)
    {
        _offset += _end - _start + skipped;
        _start = _end = 0;
        _formats = [];
        Error = null;
    }

    /// <summary>
    /// The length of the message at the start of <paramref name="bytes"/>: 0 when its length word has not all
    /// arrived, -1 after setting <see cref="Error"/> when it cannot be a backend message.
    /// </summary>
    private int NeededFor(ReadOnlySpan<byte> bytes)
    {
        if (!PgMessageNames.IsBackend(bytes[0]))
        {
            Error = $"byte 0x{bytes[0]:x2} at stream offset {_offset} is not the type of a PostgreSQL backend message: the stream is not in step";
            return -1;
        }

        if (bytes.Length < 5)
        {
            return 0;
        }

        int length = BinaryPrimitives.ReadInt32BigEndian(bytes[1..]);
        if (length < 4 || length > MaxMessageLength - 1)
        {
            Error = $"the {PgMessageNames.Backend((char)bytes[0])} message at stream offset {_offset} has length {length}, "
                    + $"outside 4 to {MaxMessageLength - 1}: the stream is not in step";
            return -1;
        }

        return length + 1;
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return;
        }

        if (_buffer.Length - _end < bytes.Length)
        {
            int used = _end - _start;
            if (_buffer.Length - used < bytes.Length || _start == 0)
            {
                var larger = new byte[Math.Max(_buffer.Length * 2, used + bytes.Length)];
                _buffer.AsSpan(_start, used).CopyTo(larger);
                _buffer = larger;
            }
            else
            {
                _buffer.AsSpan(_start, used).CopyTo(_buffer);
            }

            _start = 0;
            _end = used;
        }

        bytes.CopyTo(_buffer.AsSpan(_end));
        _end += bytes.Length;
    }

    /// <summary>Parses one whole message; false (with <see cref="Error"/> set) when its body is malformed.</summary>
    private bool Emit(ReadOnlySpan<byte> message, List<PgBackendMessage> output)
    {
        try
        {
            var decoded = Parse(message, _offset);
            if (decoded is PgRowDescription description)
            {
                _formats = description.Columns.Select(c => c.Format).ToArray();
            }

            output.Add(decoded);
            _offset += message.Length;
            return true;
        }
        catch (MalformedMessageException ex)
        {
            Error = $"the {PgMessageNames.Backend((char)message[0])} message at stream offset {_offset} is malformed: {ex.Message}";
            return false;
        }
    }

    private PgBackendMessage Parse(ReadOnlySpan<byte> message, long offset)
    {
        char code = (char)message[0];
        var body = new BodyReader(message[5..]);
        int length = message.Length;
        PgBackendMessage result;
        switch (code)
        {
            case 'T':
            {
                var columns = new PgColumn[body.Count("column")];
                for (int i = 0; i < columns.Length; i++)
                {
                    columns[i] = new PgColumn(body.CString(), body.Int32(), body.Int16(), body.Int32(), body.Int16(), body.Int32(), body.Int16());
                }

                result = new PgRowDescription { Code = code, Offset = offset, Length = length, Columns = columns };
                break;
            }

            case 'D':
            {
                var values = new string?[body.Count("column")];
                for (int i = 0; i < values.Length; i++)
                {
                    int size = body.Int32();
                    if (size == -1)
                    {
                        continue;
                    }

                    var value = body.Bytes(size);
                    bool binary = i < _formats.Count ? _formats[i] == 1 : _formats.Count == 1 && _formats[0] == 1;
                    values[i] = binary ? PgText.Hex(value) : PgText.TextValue(value);
                }

                result = new PgDataRow { Code = code, Offset = offset, Length = length, Values = values };
                break;
            }

            case 'C':
                result = new PgCommandComplete { Code = code, Offset = offset, Length = length, Tag = body.CString() };
                break;

            case 'E' or 'N':
            {
                var fields = new Dictionary<char, string>();
                while (true)
                {
                    byte field = body.Byte();
                    if (field == 0)
                    {
                        break;
                    }

                    fields[(char)field] = body.CString();
                }

                result = new PgNoticeMessage
                {
                    Code = code,
                    Offset = offset,
                    Length = length,
                    Severity = fields.GetValueOrDefault('V') ?? fields.GetValueOrDefault('S') ?? "",
                    SqlState = fields.GetValueOrDefault('C') ?? "",
                    Message = fields.GetValueOrDefault('M') ?? "",
                    Detail = fields.GetValueOrDefault('D'),
                    Hint = fields.GetValueOrDefault('H'),
                    Fields = fields,
                };
                break;
            }

            case 'Z':
            {
                byte status = body.Byte();
                if (status is not ((byte)'I' or (byte)'T' or (byte)'E'))
                {
                    throw new MalformedMessageException($"transaction status 0x{status:x2} is not I, T or E");
                }

                result = new PgReadyForQuery { Code = code, Offset = offset, Length = length, Status = (char)status };
                break;
            }

            case 'G' or 'H' or 'W':
            {
                byte format = body.Byte();
                var formats = new short[body.Count("column")];
                for (int i = 0; i < formats.Length; i++)
                {
                    formats[i] = body.Int16();
                }

                result = new PgCopyResponse { Code = code, Offset = offset, Length = length, Format = format, ColumnFormats = formats };
                break;
            }

            case 'd':
                result = new PgCopyData { Code = code, Offset = offset, Length = length, Data = PgText.Utf8OrHex(body.Rest()) };
                break;

            case 'S':
                result = new PgParameterStatus { Code = code, Offset = offset, Length = length, Parameter = body.CString(), Value = body.CString() };
                break;

            case 't':
            {
                var oids = new int[body.Count("parameter")];
                for (int i = 0; i < oids.Length; i++)
                {
                    oids[i] = body.Int32();
                }

                result = new PgParameterDescription { Code = code, Offset = offset, Length = length, TypeOids = oids };
                break;
            }

            case 'A':
                result = new PgNotification { Code = code, Offset = offset, Length = length, ProcessId = body.Int32(), Channel = body.CString(), Payload = body.CString() };
                break;

            case 'V':
            {
                int size = body.Int32();
                string? value = size == -1 ? null : PgText.Utf8OrHex(body.Bytes(size));
                result = new PgFunctionCallResponse { Code = code, Offset = offset, Length = length, Value = value };
                break;
            }

            case 'K':
            {
                int processId = body.Int32();
                // The secret key: 4 bytes in protocol 3.0, up to 256 in 3.2. Read past it, never kept.
                if (body.Rest().Length is < 4 or > 256)
                {
                    throw new MalformedMessageException("the secret key is not 4 to 256 bytes");
                }

                result = new PgBackendKeyData { Code = code, Offset = offset, Length = length, ProcessId = processId };
                break;
            }

            case 'R':
            {
                int authentication = body.Int32();
                body.Rest(); // SASL data, salts: not shown
                result = new PgAuthentication { Code = code, Offset = offset, Length = length, AuthenticationCode = authentication };
                break;
            }

            case 'v':
            {
                int minor = body.Int32();
                int count = body.Int32();
                if (count < 0 || count > body.Remaining)
                {
                    throw new MalformedMessageException($"option count {count} does not fit the message");
                }

                var options = new string[count];
                for (int i = 0; i < count; i++)
                {
                    options[i] = body.CString();
                }

                result = new PgNegotiateProtocolVersion { Code = code, Offset = offset, Length = length, MinorVersion = minor, UnrecognizedOptions = options };
                break;
            }

            default:
                // ParseComplete, BindComplete, CloseComplete, NoData, PortalSuspended, EmptyQueryResponse, CopyDone: no body.
                result = new PgSimpleMessage { Code = code, Offset = offset, Length = length };
                break;
        }

        if (body.Remaining != 0)
        {
            throw new MalformedMessageException($"{body.Remaining} bytes are left after its last field");
        }

        return result;
    }

    private sealed class MalformedMessageException(string message) : Exception(message);

    /// <summary>Reads a message body field by field; running past its end is a malformed message.</summary>
    private ref struct BodyReader(ReadOnlySpan<byte> body)
    {
        private ReadOnlySpan<byte> _rest = body;

        public readonly int Remaining => _rest.Length;

        public byte Byte() => Bytes(1)[0];

        public short Int16() => BinaryPrimitives.ReadInt16BigEndian(Bytes(2));

        public int Int32() => BinaryPrimitives.ReadInt32BigEndian(Bytes(4));

        /// <summary>An Int16 count of <paramref name="what"/> (columns, parameters); a negative one is malformed.</summary>
        public int Count(string what)
        {
            int count = Int16();
            return count >= 0 ? count : throw new MalformedMessageException($"negative {what} count {count}");
        }

        public ReadOnlySpan<byte> Bytes(int count)
        {
            if (count < 0 || count > _rest.Length)
            {
                throw new MalformedMessageException(count < 0
                    ? $"a field has negative length {count}"
                    : $"a field of {count} bytes runs past its end ({_rest.Length} bytes left)");
            }

            var bytes = _rest[..count];
            _rest = _rest[count..];
            return bytes;
        }

        public string CString()
        {
            int zero = _rest.IndexOf((byte)0);
            if (zero < 0)
            {
                throw new MalformedMessageException("a string has no terminating zero");
            }

            string text = PgText.Utf8OrHex(_rest[..zero]);
            _rest = _rest[(zero + 1)..];
            return text;
        }

        public ReadOnlySpan<byte> Rest()
        {
            var rest = _rest;
            _rest = default;
            return rest;
        }
    }
}

/// <summary>
/// The frontend messages in a ClientMessage record (whole messages, docs/recording-format.md): what a replay and
/// the digest need of Describe, Execute, Close, Sync, Flush, CopyData, CopyDone, CopyFail and Terminate.
/// </summary>
/// <param name="Code">The type byte.</param>
/// <param name="Kind">For Describe and Close: <c>S</c> statement or <c>P</c> portal.</param>
/// <param name="Name">The statement or portal name (Describe, Close, Execute).</param>
/// <param name="MaxRows">Execute's row limit (0: all).</param>
/// <param name="Text">CopyFail's message; CopyData's data (UTF-8 or <c>\x</c> hex).</param>
/// <param name="Length">Bytes of the whole message.</param>
public sealed record PgFrontendMessage(char Code, char? Kind, string? Name, int? MaxRows, string? Text, int Length)
{
    /// <summary>The message's name (<c>Execute</c>, <c>Sync</c>, ...).</summary>
    public string MessageName => PgMessageNames.Frontend(Code);

    /// <summary>
    /// Splits a ClientMessage payload into messages. Bytes that do not form whole messages of known types end the
    /// list and are described by <paramref name="problem"/>.
    /// </summary>
    public static List<PgFrontendMessage> Split(ReadOnlySpan<byte> payload, out string? problem)
    {
        var messages = new List<PgFrontendMessage>();
        problem = null;
        while (!payload.IsEmpty)
        {
            char code = (char)payload[0];
            if (payload.Length < 5)
            {
                problem = $"{payload.Length} bytes at the end are not a whole message";
                break;
            }

            int length = BinaryPrimitives.ReadInt32BigEndian(payload[1..]);
            if (length < 4 || length > payload.Length - 1 || !PgMessageNames.IsFrontend(payload[0]))
            {
                problem = $"{payload.Length} bytes starting with 0x{payload[0]:x2} are not a whole frontend message";
                break;
            }

            var body = payload.Slice(5, length - 4);
            messages.Add(Decode(code, body, length + 1));
            payload = payload[(length + 1)..];
        }

        return messages;
    }

    private static PgFrontendMessage Decode(char code, ReadOnlySpan<byte> body, int length)
    {
        switch (code)
        {
            case 'D' or 'C' when body.Length >= 2:
                return new PgFrontendMessage(code, (char)body[0], CString(body[1..]), null, null, length);
            case 'E':
            {
                string name = CString(body);
                // The row limit follows the name's NUL (counted in bytes: a name that is not UTF-8 decodes longer).
                int nul = body.IndexOf((byte)0);
                int at = nul < 0 ? body.Length + 1 : nul + 1;
                int? maxRows = body.Length >= at + 4 ? BinaryPrimitives.ReadInt32BigEndian(body[at..]) : null;
                return new PgFrontendMessage(code, null, name, maxRows, null, length);
            }

            case 'd':
                return new PgFrontendMessage(code, null, null, null, PgText.Utf8OrHex(body), length);
            case 'f':
                return new PgFrontendMessage(code, null, null, null, CString(body), length);
            default:
                return new PgFrontendMessage(code, null, null, null, null, length);
        }
    }

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        int zero = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(zero < 0 ? bytes : bytes[..zero]);
    }
}
