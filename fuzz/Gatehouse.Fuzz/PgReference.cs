using System.Buffers.Binary;

namespace Gatehouse.Fuzz;

/// <summary>
/// A second, deliberately naive reading of the protocol 3.0 message bodies (PostgreSQL docs, "Message Formats"),
/// over one contiguous span, to compare the gateway's validator with. It accepts what the validator promises to
/// accept: every count, length and terminator describes the body exactly, and format codes are 0 or 1.
/// Counts are read as PostgreSQL reads them (pq_getmsgint: unsigned 16-bit), so a difference on counts of 32768
/// and more shows up here (only with bodies of 64 KiB and more).
/// </summary>
internal static class PgReference
{
    public static bool Frontend(byte code, ReadOnlySpan<byte> body)
    {
        var r = new Reader(body);
        return (char)code switch
        {
            'Q' => r.CString() && r.End,
            'P' => r.CString() && r.CString() && r.Count(out int n) && r.Skip(4L * n) && r.End,
            'B' => r.CString() && r.CString() && r.Formats() && r.Values() && r.Formats() && r.End,
            'D' or 'C' => r.Byte(out byte kind) && kind is (byte)'S' or (byte)'P' && r.CString() && r.End,
            'E' => r.CString() && r.Skip(4) && r.End,
            'S' or 'H' or 'X' or 'c' => r.End,
            'd' => true,
            'f' => r.CString() && r.End,
            'F' => r.Skip(4) && r.Formats() && r.Values() && r.Format() && r.End,
            _ => false,
        };
    }

    public static bool Backend(byte code, ReadOnlySpan<byte> body)
    {
        var r = new Reader(body);
        return (char)code switch
        {
            'D' => r.Values() && r.End,
            'T' => RowDescription(ref r),
            'C' => r.CString() && r.End,
            'Z' => r.Byte(out byte status) && status is (byte)'I' or (byte)'T' or (byte)'E' && r.End,
            '1' or '2' or '3' or 'n' or 'I' or 's' or 'c' => r.End,
            'E' or 'N' => Fields(ref r),
            'S' => r.CString() && r.CString() && r.End,
            't' => r.Count(out int n) && r.Skip(4L * n) && r.End,
            'd' => true,
            'G' or 'H' => r.Byte(out byte overall) && overall is 0 or 1 && r.Formats() && r.End,
            'A' => r.Skip(4) && r.CString() && r.CString() && r.End,
            'V' => r.Value() && r.End,
            _ => false,
        };
    }

    private static bool RowDescription(ref Reader r)
    {
        if (!r.Count(out int n))
        {
            return false;
        }

        for (int i = 0; i < n; i++)
        {
            // Name, table OID (4), column number (2), type OID (4), type size (2), type modifier (4), format code (2).
            if (!r.CString() || !r.Skip(16) || !r.Format())
            {
                return false;
            }
        }

        return r.End;
    }

    private static bool Fields(ref Reader r)
    {
        while (r.Byte(out byte field))
        {
            if (field == 0)
            {
                return r.End;
            }

            if (!r.CString())
            {
                return false;
            }
        }

        return false;
    }

    private ref struct Reader(ReadOnlySpan<byte> body)
    {
        private ReadOnlySpan<byte> _rest = body;

        public readonly bool End => _rest.IsEmpty;

        public bool Byte(out byte value)
        {
            value = 0;
            if (_rest.IsEmpty)
            {
                return false;
            }

            value = _rest[0];
            _rest = _rest[1..];
            return true;
        }

        public bool Skip(long count)
        {
            if (count < 0 || count > _rest.Length)
            {
                return false;
            }

            _rest = _rest[(int)count..];
            return true;
        }

        public bool CString()
        {
            int nul = _rest.IndexOf((byte)0);
            return nul >= 0 && Skip(nul + 1);
        }

        /// <summary>An Int16 count, unsigned as the server reads it.</summary>
        public bool Count(out int count)
        {
            count = 0;
            if (_rest.Length < 2)
            {
                return false;
            }

            count = BinaryPrimitives.ReadUInt16BigEndian(_rest);
            _rest = _rest[2..];
            return true;
        }

        public bool Format()
        {
            if (_rest.Length < 2)
            {
                return false;
            }

            short format = BinaryPrimitives.ReadInt16BigEndian(_rest);
            _rest = _rest[2..];
            return format is 0 or 1;
        }

        public bool Formats()
        {
            if (!Count(out int n))
            {
                return false;
            }

            for (int i = 0; i < n; i++)
            {
                if (!Format())
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>Int32 length (-1 for NULL), then that many bytes.</summary>
        public bool Value()
        {
            if (_rest.Length < 4)
            {
                return false;
            }

            int length = BinaryPrimitives.ReadInt32BigEndian(_rest);
            _rest = _rest[4..];
            return length == -1 || Skip(length);
        }

        public bool Values()
        {
            if (!Count(out int n))
            {
                return false;
            }

            for (int i = 0; i < n; i++)
            {
                if (!Value())
                {
                    return false;
                }
            }

            return true;
        }
    }
}
