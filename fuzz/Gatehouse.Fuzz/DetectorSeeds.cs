using System.Text;

namespace Gatehouse.Fuzz;

/// <summary>
/// Seeds of the <c>MaskingDetectors</c> target: a control byte, a byte of kinds (0xFF: all), then a value of the
/// kinds result rows carry, with sensitive values of every kind, near misses, multi-byte and ill-formed UTF-8.
/// <c>clean-*</c> seeds have no match; every other seed has at least one (checked by FuzzSmokeTests).
/// </summary>
internal static class DetectorSeeds
{
    private const string Jwt =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    public static IEnumerable<(string Name, byte[] Data)> All()
    {
        yield return ("cards", Seed(7, "Visa 4111 1111 1111 1111 exp 12/25, amex 3782 822463 10005, 5555555555554444; bad 4111111111111112"));
        yield return ("ssn-phone", Seed(7, "ssn 123-45-6789 (not 666-12-3456), call +1 (415) 555-2671 or 1-800-555-0199, fax 415.555.2672"));
        yield return ("iban-email", Seed(7, "IBAN: GB82 WEST 1234 5698 7654 32 or DE89370400440532013000; mail jane.doe+x@mail.example.co.uk."));
        yield return ("tokens", Seed(7,
            "AKIAIOSFODNN7EXAMPLE ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d glpat-Sc7Tvo-hBKqFYY-kv5ZJ xoxb-268465632122-3307924402685-NKu8iS2G8NP "
            + "sk_live_zzzgEOzdmenCkhvMdgaKjIg8 AIzaksnRH9ucAUsdMlHUvTCQCyEZDz-TddJ8HyS aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        yield return ("jwt-pem", Seed(7, "Bearer " + Jwt + "\n-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n-----END RSA PRIVATE KEY-----\n"));
        yield return ("unicode-custom", Seed(7 | 8, "Größe 42 → 4111 1111 1111 1111 ✓ 日本語 josé.garcía@example.com 😀 EMP-123456😀+44 20 7946 0958"));
        yield return ("ill-formed", [7 | 8, 0xFF, .. "a"u8, 0x80, .. "12"u8, 0xE6, 0x97, .. " 123-45-6789 "u8, 0xC0, 0xAF, .. "4111111111111111"u8]);
        yield return ("small-room", Seed(1, "4111111111111111 5555555555554444 378282246310005 john@example.com"));
        yield return ("long-cell", Seed(7, string.Concat(Enumerable.Repeat("Stainless steel bottle, 750 ml, order 100234, 2024-03-15 14:22:01. ", 20)) + "jane@example.com"));
        yield return ("clean-cells", Seed(7,
            "Margaret Hamilton | 1600 Amphitheatre Parkway, Mountain View, CA 94043 | 2024-03-15 14:22:01.123456+00 | ORD-2024-000123 | "
            + "$1,234.56 | 123e4567-e89b-12d3-a456-426614174000 | 192.168.100.200 | ISBN 978-3-16-148410-0 | Lat +40.689247"));
        yield return ("clean-near-misses", Seed(7,
            "4111 1111-1111 1111 | 000-12-3456 | +1234567 | DE88 3704 0044 0532 0130 00 | AKIAIOSFODNN7EXAMPL | eyJhbGciOiJIUzI1NiJ9 | "
            + "-----BEGIN CERTIFICATE----- | john@localhost | 100 200 300 400 509 | 1700000000004"));
    }

    private static byte[] Seed(byte control, string text) => [control, 0xFF, .. Encoding.UTF8.GetBytes(text)];
}
