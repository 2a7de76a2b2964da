namespace Gatehouse.Policy.Masking;

/// <summary>A detector to run, as the policy compiler asks for it.</summary>
/// <param name="Kind">What to look for.</param>
/// <param name="Tag">
/// The caller's value (a rule index), returned with every match the detector finds. When one kind is listed more
/// than once, its matches carry the tag of the first listing.
/// </param>
/// <param name="Pattern">
/// The regular expression of a <see cref="DetectorKind.Custom"/> detector (see <see cref="ValueScanner.ValidatePattern"/>);
/// null for the built-in kinds.
/// </param>
public sealed record DetectorSpec(DetectorKind Kind, int Tag, string? Pattern = null);
