using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Gatehouse.Protocols.Postgres.Wire;

/// <summary>
/// Writes the messages the gateway itself produces: to clients (handshake, errors), to the server (startup,
/// authentication, cancel, the Describe masking sends for a portal), and as a client of its own on the catalog
/// connection (Query, Parse, Bind, Describe, Execute, Sync). Lengths are computed from their terms before writing, as
/// the protocol requires the length up front.
/// </summary>
public static class PgWriter
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    // SQL the gateway sends itself: text that cannot be encoded is an error, never silently replaced.
    private static readonly UTF8Encoding QueryText = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>ErrorResponse ('E') or NoticeResponse ('N') with severity, SQLSTATE, message and optional detail and hint.</summary>
    public static void WriteError(IBufferWriter<byte> output, string severity, string sqlState, string message,
        string? detail = null, string? hint = null, byte code = (byte)BackendCode.ErrorResponse)
    {
        // Fields: S (localized severity), V (severity, never localized), C, M, D, H; then a terminating zero.
        int length = 4 + Field(severity) * 2 + Field(sqlState) + Field(message)
                     + (detail is null ? 0 : Field(detail)) + (hint is null ? 0 : Field(hint)) + 1;
        var span = Begin(output, code, length);
        int at = 5;
        at = PutField(span, at, (byte)'S', severity);
        at = PutField(span, at, (byte)'V', severity);
        at = PutField(span, at, (byte)'C', sqlState);
        at = PutField(span, at, (byte)'M', message);
        if (detail is not null)
        {
            at = PutField(span, at, (byte)'D', detail);
        }

        if (hint is not null)
        {
            at = PutField(span, at, (byte)'H', hint);
        }

        span[at++] = 0;
        output.Advance(at);

        static int Field(string value) => 1 + Utf8.GetByteCount(value) + 1;
    }

    /// <summary>ErrorResponse from UTF-8 parts, without allocating (policy errors on the relay path).</summary>
    public static void WriteError(IBufferWriter<byte> output, ReadOnlySpan<byte> severity, ReadOnlySpan<byte> sqlState, ReadOnlySpan<byte> message)
    {
        int length = 4 + (severity.Length + 2) * 2 + sqlState.Length + 2 + message.Length + 2 + 1;
        var span = Begin(output, (byte)BackendCode.ErrorResponse, length);
        int at = 5;
        at = PutField(span, at, (byte)'S', severity);
        at = PutField(span, at, (byte)'V', severity);
        at = PutField(span, at, (byte)'C', sqlState);
        at = PutField(span, at, (byte)'M', message);
        span[at++] = 0;
        output.Advance(at);
    }

    /// <summary>A FATAL ErrorResponse: the session ends after it.</summary>
    public static void WriteFatal(IBufferWriter<byte> output, string sqlState, string message, string? detail = null, string? hint = null) =>
        WriteError(output, "FATAL", sqlState, message, detail, hint);

    /// <summary>AuthenticationX ('R') with an optional payload (salt, SASL data, mechanism list).</summary>
    public static void WriteAuthentication(IBufferWriter<byte> output, AuthenticationCode code, ReadOnlySpan<byte> payload = default)
    {
        var span = Begin(output, (byte)BackendCode.Authentication, 4 + 4 + payload.Length);
        BinaryPrimitives.WriteInt32BigEndian(span[5..], (int)code);
        payload.CopyTo(span[9..]);
        output.Advance(9 + payload.Length);
    }

    public static void WriteBackendKeyData(IBufferWriter<byte> output, int processId, int secretKey)
    {
        var span = Begin(output, (byte)BackendCode.BackendKeyData, 12);
        BinaryPrimitives.WriteInt32BigEndian(span[5..], processId);
        BinaryPrimitives.WriteInt32BigEndian(span[9..], secretKey);
        output.Advance(13);
    }

    public static void WriteReadyForQuery(IBufferWriter<byte> output, byte transactionStatus)
    {
        var span = Begin(output, (byte)BackendCode.ReadyForQuery, 5);
        span[5] = transactionStatus;
        output.Advance(6);
    }

    /// <summary>NegotiateProtocolVersion ('v'): the newest minor version we speak and the options we did not recognise.</summary>
    public static void WriteNegotiateProtocolVersion(IBufferWriter<byte> output, int minorVersion, IReadOnlyList<string> unrecognized)
    {
        int length = 4 + 4 + 4;
        foreach (var option in unrecognized)
        {
            length += Utf8.GetByteCount(option) + 1;
        }

        var span = Begin(output, (byte)BackendCode.NegotiateProtocolVersion, length);
        BinaryPrimitives.WriteInt32BigEndian(span[5..], minorVersion);
        BinaryPrimitives.WriteInt32BigEndian(span[9..], unrecognized.Count);
        int at = 13;
        foreach (var option in unrecognized)
        {
            at = PutCString(span, at, option);
        }

        output.Advance(at);
    }

    /// <summary>StartupMessage (untyped): protocol 3.0 and name/value pairs.</summary>
    public static void WriteStartup(IBufferWriter<byte> output, IEnumerable<KeyValuePair<string, string>> parameters)
    {
        int length = 4 + 4 + 1;
        foreach (var (name, value) in parameters)
        {
            length += Utf8.GetByteCount(name) + 1 + Utf8.GetByteCount(value) + 1;
        }

        var span = output.GetSpan(length);
        BinaryPrimitives.WriteInt32BigEndian(span, length);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], StartupCodes.Protocol30);
        int at = 8;
        foreach (var (name, value) in parameters)
        {
            at = PutCString(span, at, name);
            at = PutCString(span, at, value);
        }

        span[at++] = 0;
        output.Advance(at);
    }

    /// <summary>An untyped 8-byte request: SSLRequest, GSSENCRequest.</summary>
    public static void WriteRequestCode(IBufferWriter<byte> output, int requestCode)
    {
        var span = output.GetSpan(8);
        BinaryPrimitives.WriteInt32BigEndian(span, 8);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], requestCode);
        output.Advance(8);
    }

    public static void WriteCancelRequest(IBufferWriter<byte> output, int processId, int secretKey)
    {
        var span = output.GetSpan(16);
        BinaryPrimitives.WriteInt32BigEndian(span, 16);
        BinaryPrimitives.WriteInt32BigEndian(span[4..], StartupCodes.CancelRequest);
        BinaryPrimitives.WriteInt32BigEndian(span[8..], processId);
        BinaryPrimitives.WriteInt32BigEndian(span[12..], secretKey);
        output.Advance(16);
    }

    /// <summary>PasswordMessage ('p') carrying a NUL-terminated password (cleartext or md5 hash).</summary>
    public static void WritePassword(IBufferWriter<byte> output, ReadOnlySpan<byte> password)
    {
        var span = Begin(output, (byte)FrontendCode.Password, 4 + password.Length + 1);
        password.CopyTo(span[5..]);
        span[5 + password.Length] = 0;
        output.Advance(6 + password.Length);
    }

    /// <summary>SASLInitialResponse ('p'): mechanism name, then the length-prefixed client-first message.</summary>
    public static void WriteSaslInitialResponse(IBufferWriter<byte> output, string mechanism, ReadOnlySpan<byte> data)
    {
        int nameLength = Utf8.GetByteCount(mechanism) + 1;
        var span = Begin(output, (byte)FrontendCode.Password, 4 + nameLength + 4 + data.Length);
        int at = PutCString(span, 5, mechanism);
        BinaryPrimitives.WriteInt32BigEndian(span[at..], data.Length);
        data.CopyTo(span[(at + 4)..]);
        output.Advance(at + 4 + data.Length);
    }

    /// <summary>SASLResponse ('p'): the raw SASL message.</summary>
    public static void WriteSaslResponse(IBufferWriter<byte> output, ReadOnlySpan<byte> data)
    {
        var span = Begin(output, (byte)FrontendCode.Password, 4 + data.Length);
        data.CopyTo(span[5..]);
        output.Advance(5 + data.Length);
    }

    // ---- The gateway as a client of its own (the catalog connection): query messages ------------------------

    /// <summary>Query ('Q'): one or more statements as a simple query.</summary>
    public static void WriteQuery(IBufferWriter<byte> output, string sql)
    {
        int text = QueryText.GetByteCount(sql);
        // Length (4), the text and its terminator.
        var span = Begin(output, (byte)FrontendCode.Query, 4 + text + 1);
        int at = PutQueryText(span, 5, sql);
        output.Advance(at);
    }

    /// <summary>Parse ('P') without parameter types (the server infers them).</summary>
    public static void WriteParse(IBufferWriter<byte> output, string statement, string sql)
    {
        // Length (4), statement name and terminator, text and terminator, parameter type count (2).
        var span = Begin(output, (byte)FrontendCode.Parse, 4 + QueryText.GetByteCount(statement) + 1 + QueryText.GetByteCount(sql) + 1 + 2);
        int at = PutQueryText(span, 5, statement);
        at = PutQueryText(span, at, sql);
        BinaryPrimitives.WriteInt16BigEndian(span[at..], 0);
        output.Advance(at + 2);
    }

    /// <summary>Bind ('B') of a statement to the unnamed portal, with one text parameter and text results.</summary>
    public static void WriteBind(IBufferWriter<byte> output, string statement, ReadOnlySpan<byte> textParameter)
    {
        // Length (4), portal "" (1), statement and terminator, format code count 0 (2), parameter count 1 (2),
        // its length (4) and bytes, result format code count 0 (2).
        int length = 4 + 1 + QueryText.GetByteCount(statement) + 1 + 2 + 2 + 4 + textParameter.Length + 2;
        var span = Begin(output, (byte)FrontendCode.Bind, length);
        span[5] = 0;
        int at = PutQueryText(span, 6, statement);
        BinaryPrimitives.WriteInt16BigEndian(span[at..], 0);
        BinaryPrimitives.WriteInt16BigEndian(span[(at + 2)..], 1);
        BinaryPrimitives.WriteInt32BigEndian(span[(at + 4)..], textParameter.Length);
        textParameter.CopyTo(span[(at + 8)..]);
        at += 8 + textParameter.Length;
        BinaryPrimitives.WriteInt16BigEndian(span[at..], 0);
        output.Advance(at + 2);
    }

    /// <summary>
    /// Describe ('D') of a prepared statement ('S') or a portal ('P'), by its name's bytes. The relay sends one itself
    /// for a portal the client executes without describing it (masking needs its columns).
    /// </summary>
    public static void WriteDescribe(IBufferWriter<byte> output, byte kind, ReadOnlySpan<byte> name)
    {
        // Length (4), kind (1), name and terminator.
        var span = Begin(output, (byte)FrontendCode.Describe, 4 + 1 + name.Length + 1);
        span[5] = kind;
        name.CopyTo(span[6..]);
        span[6 + name.Length] = 0;
        output.Advance(5 + 1 + name.Length + 1);
    }

    /// <summary>Execute ('E') of the unnamed portal, all rows.</summary>
    public static void WriteExecute(IBufferWriter<byte> output)
    {
        // Length (4), portal "" (1), row limit 0 = all (4).
        var span = Begin(output, (byte)FrontendCode.Execute, 4 + 1 + 4);
        span[5] = 0;
        BinaryPrimitives.WriteInt32BigEndian(span[6..], 0);
        output.Advance(10);
    }

    /// <summary>Sync ('S'): ends an extended-query pipeline; the server answers ReadyForQuery.</summary>
    public static void WriteSync(IBufferWriter<byte> output)
    {
        Begin(output, (byte)FrontendCode.Sync, 4);
        output.Advance(5);
    }

    public static void WriteTerminate(IBufferWriter<byte> output)
    {
        Begin(output, (byte)FrontendCode.Terminate, 4);
        output.Advance(5);
    }

    /// <summary>Gets room for a whole message and writes its code and length (which counts itself, not the code).</summary>
    private static Span<byte> Begin(IBufferWriter<byte> output, byte code, int length)
    {
        var span = output.GetSpan(length + 1);
        span[0] = code;
        BinaryPrimitives.WriteInt32BigEndian(span[1..], length);
        return span;
    }

    private static int PutField(Span<byte> span, int at, byte code, string value)
    {
        span[at++] = code;
        return PutCString(span, at, value);
    }

    private static int PutField(Span<byte> span, int at, byte code, ReadOnlySpan<byte> value)
    {
        span[at++] = code;
        value.CopyTo(span[at..]);
        at += value.Length;
        span[at++] = 0;
        return at;
    }

    private static int PutQueryText(Span<byte> span, int at, string value)
    {
        at += QueryText.GetBytes(value, span[at..]);
        span[at++] = 0;
        return at;
    }

    private static int PutCString(Span<byte> span, int at, string value)
    {
        at += Utf8.GetBytes(value, span[at..]);
        span[at++] = 0;
        return at;
    }
}
