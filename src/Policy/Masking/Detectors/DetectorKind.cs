namespace Gatehouse.Policy.Masking;

/// <summary>
/// What a value detector looks for in a text value. The built-in kinds are named in policy files by
/// <see cref="DetectorNames"/>; <see cref="Custom"/> is a regular expression from the policy file.
/// </summary>
public enum DetectorKind : byte
{
    /// <summary>A payment card number: 13 to 19 digits, optionally grouped, passing the Luhn check.</summary>
    Card,

    /// <summary>A US Social Security number, <c>ddd-dd-dddd</c> or <c>ddd dd dddd</c>, outside the unissued ranges.</summary>
    Ssn,

    /// <summary>An e-mail address, <c>local@domain.tld</c>.</summary>
    Email,

    /// <summary>A phone number: E.164 with <c>+</c>, or a North American form with separators.</summary>
    Phone,

    /// <summary>An IBAN (ISO 13616), compact or in groups of four, passing the mod-97 check.</summary>
    Iban,

    /// <summary>An AWS access key id (<c>AKIA...</c> and the other documented prefixes).</summary>
    AwsKey,

    /// <summary>A token of a common service (GitHub, GitLab, Slack, Stripe, Google API), or a labelled AWS secret key.</summary>
    SecretToken,

    /// <summary>A compact JWS (a JSON Web Token): <c>eyJ...</c>, three base64url parts separated by dots.</summary>
    Jwt,

    /// <summary>A PEM private key block, from <c>-----BEGIN ... PRIVATE KEY-----</c> to its END line (or the end of the value).</summary>
    PemPrivateKey,

    /// <summary>A regular expression from the policy file (<see cref="DetectorSpec.Pattern"/>).</summary>
    Custom,
}
