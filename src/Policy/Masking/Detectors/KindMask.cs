namespace Gatehouse.Policy.Masking;

/// <summary>A set of detector kinds, one bit per <see cref="DetectorKind"/>.</summary>
[Flags]
internal enum KindMask : ushort
{
    None = 0,
    Card = 1 << DetectorKind.Card,
    Ssn = 1 << DetectorKind.Ssn,
    Email = 1 << DetectorKind.Email,
    Phone = 1 << DetectorKind.Phone,
    Iban = 1 << DetectorKind.Iban,
    AwsKey = 1 << DetectorKind.AwsKey,
    SecretToken = 1 << DetectorKind.SecretToken,
    Jwt = 1 << DetectorKind.Jwt,
    PemPrivateKey = 1 << DetectorKind.PemPrivateKey,
}

