namespace Gatehouse.Policy.Masking;

/// <summary>
/// The searches of the built-in detectors, in the order they run. Detectors that start from the same bytes share
/// one: <see cref="Numeric"/> serves card, SSN, phone and IBAN; <see cref="AccessKeys"/> AWS key ids and Google API
/// keys; the token passes the <see cref="DetectorKind.SecretToken"/> formats by their distinctive bytes.
/// </summary>
internal enum BuiltInPass : byte
{
    Numeric,
    Email,
    AccessKeys,
    Underscore,
    GitLab,
    Slack,
    Jwt,
    Pem,
}
