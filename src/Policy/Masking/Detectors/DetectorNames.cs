namespace Gatehouse.Policy.Masking;

/// <summary>
/// The names of the built-in detectors in policy files: <c>card</c>, <c>ssn</c>, <c>email</c>, <c>phone</c>,
/// <c>iban</c>, <c>aws_key</c>, <c>secret_token</c>, <c>jwt</c>, <c>pem_private_key</c>. Names are exact (ordinal,
/// lower case), as every other name in a policy file. A custom detector is written as a pattern, not by name, so
/// <c>custom</c> is not one of them (<see cref="NameOf"/> still names it, for messages).
/// </summary>
public static class DetectorNames
{
    private static readonly string[] Names =
    [
        "card", "ssn", "email", "phone", "iban", "aws_key", "secret_token", "jwt", "pem_private_key",
    ];

    /// <summary>Every built-in detector name, in <see cref="DetectorKind"/> order.</summary>
    public static IReadOnlyList<string> All { get; } = Array.AsReadOnly(Names);

    /// <summary>Reads a built-in detector name; false for anything else (including <c>custom</c>).</summary>
    public static bool TryParse(string name, out DetectorKind kind)
    {
        ArgumentNullException.ThrowIfNull(name);
        int index = Array.IndexOf(Names, name);
        kind = index < 0 ? default : (DetectorKind)index;
        return index >= 0;
    }

    /// <summary>The policy-file name of a kind (<c>custom</c> for <see cref="DetectorKind.Custom"/>).</summary>
    public static string NameOf(DetectorKind kind) => kind switch
    {
        DetectorKind.Custom => "custom",
        _ when (uint)kind < (uint)Names.Length => Names[(int)kind],
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a detector kind"),
    };
}
