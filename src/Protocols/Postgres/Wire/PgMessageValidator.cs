using System.Buffers;
using System.Buffers.Binary;

namespace Gatehouse.Protocols.Postgres.Wire;

/// <summary>
/// Structural validation of every protocol 3.0 message body: counts, lengths and terminators must describe the
/// body exactly, no more and no less. A proxy that forwards what it did not validate lets a peer smuggle bytes
/// past inspection. Errors are constant strings (no allocation, no echo of peer bytes).
/// </summary>
public static class PgMessageValidator
{
    /// <summary>Validates a frontend message body (the bytes after code and length).</summary>
    public static bool ValidateFrontend(byte code, in ReadOnlySequence<byte> body, out string? error)
    {
        var r = new SequenceReader<byte>(body);
        error = null;
        bool ok = (FrontendCode)code switch
        {
            FrontendCode.Query => CString(ref r) && r.End,
            FrontendCode.Parse => CString(ref r) && CString(ref r) && Int32Array(ref r) && r.End,
            FrontendCode.Bind => ValidateBind(ref r),
            FrontendCode.Describe or FrontendCode.Close => PortalOrStatement(ref r) && CString(ref r) && r.End,
            FrontendCode.Execute => CString(ref r) && r.TryReadBigEndian(out int _) && r.End,
            FrontendCode.Sync or FrontendCode.Flush or FrontendCode.Terminate or FrontendCode.CopyDone => r.End,
            FrontendCode.CopyData => true,
            FrontendCode.CopyFail => CString(ref r) && r.End,
            FrontendCode.FunctionCall => ValidateFunctionCall(ref r),
            _ => Fail(out error, "unknown or unexpected message type"),
        };
        if (!ok)
        {
            error ??= "malformed message body";
        }

        return ok;
    }

    /// <summary>Validates a backend message body received during the relay phase.</summary>
    public static bool ValidateBackend(byte code, in ReadOnlySequence<byte> body, out string? error)
    {
        // Rows are most of the traffic and almost always sit in one segment: walk them over a span.
        if (code == (byte)BackendCode.DataRow && body.IsSingleSegment)
        {
            error = null;
            if (ValidateDataRow(body.FirstSpan))
            {
                return true;
            }

            error = "malformed message body";
            return false;
        }

        var r = new SequenceReader<byte>(body);
        error = null;
        bool ok = (BackendCode)code switch
        {
            BackendCode.DataRow => ValidateDataRow(ref r),
            BackendCode.RowDescription => ValidateRowDescription(ref r),
            BackendCode.CommandComplete => CString(ref r) && r.End,
            BackendCode.ReadyForQuery => r.TryRead(out byte status) && status is (byte)'I' or (byte)'T' or (byte)'E' && r.End,
            BackendCode.ParseComplete or BackendCode.BindComplete or BackendCode.CloseComplete or BackendCode.NoData
                or BackendCode.EmptyQueryResponse or BackendCode.PortalSuspended or BackendCode.CopyDone => r.End,
            BackendCode.ErrorResponse or BackendCode.NoticeResponse => ValidateFields(ref r),
            BackendCode.ParameterStatus => CString(ref r) && CString(ref r) && r.End,
            BackendCode.ParameterDescription => Int32Array(ref r) && r.End,
            BackendCode.CopyData => true,
            BackendCode.CopyInResponse or BackendCode.CopyOutResponse => ValidateCopyResponse(ref r),
            BackendCode.NotificationResponse => r.TryReadBigEndian(out int _) && CString(ref r) && CString(ref r) && r.End,
            BackendCode.FunctionCallResponse => Value(ref r) && r.End,
            _ => Fail(out error, "unknown or unexpected message type"),
        };
        if (!ok)
        {
            error ??= "malformed message body";
        }

        return ok;
    }

    private static bool Fail(out string? error, string message)
    {
        error = message;
        return false;
    }

    /// <summary>A NUL-terminated string inside the body.</summary>
    internal static bool CString(ref SequenceReader<byte> r) => r.TryAdvanceTo(0, advancePastDelimiter: true);

    private static bool PortalOrStatement(ref SequenceReader<byte> r) => r.TryRead(out byte kind) && kind is (byte)'S' or (byte)'P';

    /// <summary>
    /// A count. The protocol calls it Int16, but PostgreSQL reads it unsigned (pq_getmsgint(msg, 2)) and clients
    /// send up to 65535 parameters (libpq's PQ_QUERY_PARAM_MAX_LIMIT), so it is read as UInt16.
    /// </summary>
    private static bool Count(ref SequenceReader<byte> r, out int count)
    {
        bool ok = r.TryReadBigEndian(out short raw);
        count = (ushort)raw;
        return ok;
    }

    /// <summary>A count followed by that many Int32 values.</summary>
    private static bool Int32Array(ref SequenceReader<byte> r) =>
        Count(ref r, out int n) && r.Remaining >= n * 4L && Advance(ref r, n * 4L);

    /// <summary>A count followed by that many Int16 format codes, each 0 (text) or 1 (binary).</summary>
    private static bool FormatCodes(ref SequenceReader<byte> r)
    {
        if (!Count(ref r, out int n) || r.Remaining < n * 2L)
        {
            return false;
        }

        for (int i = 0; i < n; i++)
        {
            r.TryReadBigEndian(out short format);
            if (format is not (0 or 1))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>An Int32 length (-1 for NULL) followed by that many bytes.</summary>
    private static bool Value(ref SequenceReader<byte> r) =>
        r.TryReadBigEndian(out int length) && (length == -1 || (length >= 0 && r.Remaining >= length && Advance(ref r, length)));

    private static bool Values(ref SequenceReader<byte> r)
    {
        if (!Count(ref r, out int n))
        {
            return false;
        }

        for (int i = 0; i < n; i++)
        {
            if (!Value(ref r))
            {
                return false;
            }
        }

        return true;
    }

    private static bool ValidateBind(ref SequenceReader<byte> r) =>
        CString(ref r) && CString(ref r) && FormatCodes(ref r) && Values(ref r) && FormatCodes(ref r) && r.End;

    private static bool ValidateFunctionCall(ref SequenceReader<byte> r) =>
        r.TryReadBigEndian(out int _) && FormatCodes(ref r) && Values(ref r) && r.TryReadBigEndian(out short format)
        && format is 0 or 1 && r.End;

    private static bool ValidateDataRow(ref SequenceReader<byte> r)
    {
        if (!Count(ref r, out int n))
        {
            return false;
        }

        for (int i = 0; i < n; i++)
        {
            if (!Value(ref r))
            {
                return false;
            }
        }

        return r.End;
    }

    /// <summary>DataRow over one span: Int16 count, then per column Int32 length (-1 for NULL) and the bytes.</summary>
    internal static bool ValidateDataRow(ReadOnlySpan<byte> body)
    {
        if (body.Length < 2)
        {
            return false;
        }

        int count = BinaryPrimitives.ReadUInt16BigEndian(body);
        int at = 2;
        for (int i = 0; i < count; i++)
        {
            if (body.Length - at < 4)
            {
                return false;
            }

            int length = BinaryPrimitives.ReadInt32BigEndian(body[at..]);
            at += 4;
            if (length == -1)
            {
                continue;
            }

            if (length < 0 || length > body.Length - at)
            {
                return false;
            }

            at += length;
        }

        return at == body.Length;
    }

    private static bool ValidateRowDescription(ref SequenceReader<byte> r)
    {
        if (!Count(ref r, out int n))
        {
            return false;
        }

        // Each field: name, table OID (4), column number (2), type OID (4), type size (2), type modifier (4), format (2).
        for (int i = 0; i < n; i++)
        {
            if (!CString(ref r) || r.Remaining < 18)
            {
                return false;
            }

            r.Advance(16);
            r.TryReadBigEndian(out short format);
            if (format is not (0 or 1))
            {
                return false;
            }
        }

        return r.End;
    }

    /// <summary>Error and notice fields: (code byte, string)* then a terminating zero byte.</summary>
    private static bool ValidateFields(ref SequenceReader<byte> r)
    {
        while (r.TryRead(out byte fieldCode))
        {
            if (fieldCode == 0)
            {
                return r.End;
            }

            if (!CString(ref r))
            {
                return false;
            }
        }

        return false;
    }

    private static bool ValidateCopyResponse(ref SequenceReader<byte> r) =>
        r.TryRead(out byte overall) && overall is 0 or 1 && FormatCodes(ref r) && r.End;

    private static bool Advance(ref SequenceReader<byte> r, long count)
    {
        r.Advance(count);
        return true;
    }
}
