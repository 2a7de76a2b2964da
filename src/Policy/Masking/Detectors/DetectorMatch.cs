namespace Gatehouse.Policy.Masking;

/// <summary>A sensitive range found by a <see cref="ValueScanner"/>, in bytes of the UTF-8 value it scanned.</summary>
/// <param name="Start">Byte offset of the first byte of the match.</param>
/// <param name="Length">Number of bytes (never 0).</param>
/// <param name="Tag">The <see cref="DetectorSpec.Tag"/> of the detector that found it.</param>
public readonly record struct DetectorMatch(int Start, int Length, int Tag)
{
    /// <summary>Byte offset just past the match.</summary>
    public int End => Start + Length;
}
