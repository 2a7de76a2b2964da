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
}
