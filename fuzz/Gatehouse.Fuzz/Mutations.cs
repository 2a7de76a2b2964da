namespace Gatehouse.Fuzz;

/// <summary>Byte mutations the built-in campaigns share.</summary>
internal static class Mutations
{
    /// <summary>A copy with one byte changed.</summary>
    public static byte[] Set(byte[] bytes, int at, byte value)
    {
        var copy = (byte[])bytes.Clone();
        copy[at] = value;
        return copy;
    }

    /// <summary>
    /// A run of up to <paramref name="maxRun"/> bytes of <paramref name="other"/> (from offset <paramref name="skip"/>
    /// on, past its header) inserted at <paramref name="at"/>.
    /// </summary>
    public static byte[] Splice(Random random, byte[] bytes, byte[] other, int at, int skip, int maxRun)
    {
        int from = random.Next(skip, Math.Max(skip + 1, other.Length));
        int to = Math.Min(other.Length, from + random.Next(1, maxRun));
        return from >= to ? bytes : [.. bytes[..at], .. other[from..to], .. bytes[at..]];
    }
}
