namespace Gatehouse.Policy.Masking;

/// <summary>A match a built-in pass found, before the scanner gives it its tag.</summary>
internal readonly struct Hit(int start, int length, DetectorKind kind)
{
    public int Start { get; } = start;

    public int Length { get; } = length;

    public DetectorKind Kind { get; } = kind;
}
