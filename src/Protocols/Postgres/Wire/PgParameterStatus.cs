using System.Buffers;

namespace Gatehouse.Protocols.Postgres.Wire;

/// <summary>Reads the server settings the gateway tracks from ParameterStatus ('S') bodies: name NUL value NUL.</summary>
internal static class PgParameterStatus
{
    private static ReadOnlySpan<byte> StandardConformingStrings => "standard_conforming_strings\0"u8;

    /// <summary>
    /// True when the body reports standard_conforming_strings; <paramref name="on"/> is its value. The SQL lexer
    /// depends on it: with it off, backslashes escape quotes in plain string literals.
    /// </summary>
    public static bool TryReadStandardConformingStrings(in ReadOnlySequence<byte> body, out bool on)
    {
        var reader = new SequenceReader<byte>(body);
        if (!reader.IsNext(StandardConformingStrings, advancePast: true))
        {
            on = false;
            return false;
        }

        on = reader.IsNext("on\0"u8);
        return true;
    }

    private static ReadOnlySpan<byte> ClientEncoding => "client_encoding\0"u8;

    /// <summary>
    /// True when the body reports client_encoding; <paramref name="safe"/> tells whether every byte below 0x80 in
    /// that encoding is the ASCII character, so the SQL lexer can work on the bytes as sent. The client-only
    /// encodings SJIS, SHIFT_JIS_2004, BIG5, GBK, UHC, GB18030 and JOHAB are not: a backslash or other ASCII byte can
    /// be the second byte of a character there, and the server converts the text before lexing it.
    /// </summary>
    public static bool TryReadClientEncoding(in ReadOnlySequence<byte> body, out bool safe)
    {
        var reader = new SequenceReader<byte>(body);
        if (!reader.IsNext(ClientEncoding, advancePast: true))
        {
            safe = false;
            return false;
        }

        safe = !(reader.IsNext("SJIS\0"u8) || reader.IsNext("SHIFT_JIS_2004\0"u8) || reader.IsNext("BIG5\0"u8)
                 || reader.IsNext("GBK\0"u8) || reader.IsNext("UHC\0"u8) || reader.IsNext("GB18030\0"u8)
                 || reader.IsNext("JOHAB\0"u8));
        return true;
    }
}
