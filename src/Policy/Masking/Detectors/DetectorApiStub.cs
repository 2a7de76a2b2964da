// Placeholder until the detector library lands; replaced by it.
namespace Gatehouse.Policy.Masking;

public enum DetectorKind : byte { Card, Ssn, Email, Phone, Iban, AwsKey, SecretToken, Jwt, PemPrivateKey, Custom }

public sealed record DetectorSpec(DetectorKind Kind, int Tag, string? Pattern = null);

public readonly record struct DetectorMatch(int Start, int Length, int Tag);

public static class DetectorNames
{
    private static readonly string[] s_names = ["card", "ssn", "email", "phone", "iban", "aws_key", "secret_token", "jwt", "pem_private_key"];

    public static IReadOnlyList<string> All => s_names;

    public static bool TryParse(string name, out DetectorKind kind)
    {
        int i = Array.IndexOf(s_names, name);
        kind = (DetectorKind)Math.Max(i, 0);
        return i >= 0;
    }

    public static string NameOf(DetectorKind kind) => kind == DetectorKind.Custom ? "custom" : s_names[(int)kind];
}

public sealed class ValueScanner
{
    private ValueScanner(bool empty) => IsEmpty = empty;

    public static ValueScanner Empty { get; } = new(true);

    public bool IsEmpty { get; }

    public static ValueScanner Create(IEnumerable<DetectorSpec> specs) => new(!specs.Any());

    public static string? ValidatePattern(string pattern) => null;

    public int Scan(ReadOnlySpan<byte> utf8, Span<DetectorMatch> matches) => 0;
}
