using System.Text;
using Gatehouse.Policy.Masking;

namespace Gatehouse.Tests.Masking;

/// <summary>
/// The value detectors, one table per kind. A case is a text with its expected matches between « and » (the marks
/// are removed before scanning and the expected byte offsets computed from the UTF-8 without them), so every
/// case asserts exact starts and lengths, and a case without marks asserts that nothing is found.
/// </summary>
public sealed class DetectorTests
{
    private const string Jwt =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

    private const string RsaKey =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n-----END RSA PRIVATE KEY-----";

    private const string Certificate =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAV2gAwIBAgIUJ8Ykz2Kx3QdYbM0ZPr7Oq1eGKXgwDQYJKoZIhvcNAQEL\nBQAwETEPMA0GA1UEAwwGdGVzdGNhMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAw\n-----END CERTIFICATE-----";

    // ---- Tables ---------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("«4111111111111111»")]
    [InlineData("Visa «4111 1111 1111 1111» exp 12/25")]
    [InlineData("«4111-1111-1111-1111»")]
    [InlineData("mc=«5555555555554444»;")]
    [InlineData("«5105 1051 0510 5100»")]
    [InlineData("2-series «2223003122003222»")]
    [InlineData("amex «3782 822463 10005» ok")]
    [InlineData("«371449635398431»")]
    [InlineData("diners «3056 930902 5904»")]
    [InlineData("discover «6011-0009-9013-9424»")]
    [InlineData("19 digits «6011 0009 9013 9424 124»")]
    [InlineData("«6011000990139424124»")]
    [InlineData("13 digits «4222222222222»")]
    [InlineData("jcb «3530111333300000».")]
    [InlineData("qty 2 «4111 1111 1111 1111»")]
    [InlineData("«4111 1111 1111 1111» 2025")]
    [InlineData("(card «4111111111111111»)")]
    [InlineData("«4111111111111111»,«5555555555554444»")]
    [InlineData("\"«4012888888881881»\"")]
    [InlineData("4111111111111112")] // Luhn fails
    [InlineData("4111 1111 1111 1112")]
    [InlineData("411111111111111")] // 15 digits, Luhn fails
    [InlineData("0000000000000000")] // Luhn passes; no issuer starts with 0
    [InlineData("1700000000004")] // epoch milliseconds that pass Luhn: 13 digits starting with 1
    [InlineData("2024031512345672")] // a date-based id that passes Luhn: no network issues 2024
    [InlineData("41111111111111111111")] // 20 digits
    [InlineData("x4111111111111111")]
    [InlineData("4111111111111111x")]
    [InlineData("100 200 300 400 509")] // passes Luhn: a list of numbers, not a card shape
    [InlineData("4111 1111-1111 1111")] // mixed separators
    [InlineData("4111  1111 1111 1111")]
    [InlineData("4111.1111.1111.1111")]
    [InlineData("2024-01-15 10:23:45")]
    public void Card_numbers(string marked) => AssertMatches(DetectorKind.Card, marked);

    [Theory]
    [InlineData("«123-45-6789»")]
    [InlineData("ssn «078-05-1120» on file")]
    [InlineData("«123 45 6789»")]
    [InlineData("«899-99-9999»")]
    [InlineData("«123-45-6789»,«234-56-7890»")]
    [InlineData("000-12-3456")]
    [InlineData("666-12-3456")]
    [InlineData("900-12-3456")]
    [InlineData("999-12-3456")]
    [InlineData("123-00-4567")]
    [InlineData("123-45-0000")]
    [InlineData("123-45 6789")]
    [InlineData("123456789")]
    [InlineData("1123-45-6789")]
    [InlineData("123-45-67890")]
    [InlineData("12-123-45-6789")]
    [InlineData("123-45-6789-1")]
    [InlineData("a123-45-6789")]
    [InlineData("123-45-6789b")]
    [InlineData("12-34-5678")]
    public void Social_security_numbers(string marked) => AssertMatches(DetectorKind.Ssn, marked);

    [Theory]
    [InlineData("«john.doe@example.com»")]
    [InlineData("Contact: «jane+tag@mail.example.co.uk».")]
    [InlineData("(«a_b%c-d@sub-domain.example.org»)")]
    [InlineData("mailto:«x@y.io»")]
    [InlineData("<«first.last@example.travel»>")]
    [InlineData("«john@example.com».123")]
    [InlineData("«ops@example.com»,«dev@example.com»")]
    [InlineData("..«x@example.com»")] // leading dots are not part of the address
    [InlineData("«josé.garcía@example.com»")]
    [InlineData("«user@bücher.de»")]
    [InlineData("john@localhost")]
    [InlineData("@example.com")]
    [InlineData("john@example.c")]
    [InlineData("john@-example.com")]
    [InlineData("john@example..com")]
    [InlineData("john@.com")]
    [InlineData("john@example.com1")]
    [InlineData("a @ b.com")]
    [InlineData("user@123.456")]
    [InlineData("price: 3 @ 4.50")]
    public void Email_addresses(string marked) => AssertMatches(DetectorKind.Email, marked);

    [Theory]
    [InlineData("«+1 415 555 2671»")]
    [InlineData("call «+44 20 7946 0958» now")]
    [InlineData("«+4915123456789»")]
    [InlineData("«+49 (0)30 1234567»")]
    [InlineData("«+33.1.23.45.67.89»")]
    [InlineData("tel:«+1-415-555-2671»")]
    [InlineData("«+1 (415) 555-2671»")]
    [InlineData("«(415) 555-2671»")]
    [InlineData("«(415)555-2671»")]
    [InlineData("«415-555-2671»")]
    [InlineData("«415.555.2671»")]
    [InlineData("«415 555 2671»")]
    [InlineData("«1-800-555-0199»")]
    [InlineData("«1 (800) 555-0199»")]
    [InlineData("home «415-555-2671», work «(650) 555-0100»")]
    [InlineData("4155552671")] // bare digits
    [InlineData("+1234567")] // 7 digits
    [InlineData("+1234567890123456")] // 16 digits
    [InlineData("+40.689247")] // a signed decimal
    [InlineData("415-555-26710")]
    [InlineData("12-415-555-2671")]
    [InlineData("415-555.2671")]
    [InlineData("1+12345678")]
    [InlineData("x415-555-2671")]
    [InlineData("415-555-2671-1")]
    [InlineData("123-45-6789")] // an SSN
    [InlineData("4111 1111 1111 1111")] // a card
    [InlineData("2024-01-15")]
    [InlineData("2024-03-15T14:22:01.123+00:00")]
    public void Phone_numbers(string marked) => AssertMatches(DetectorKind.Phone, marked);

    [Theory]
    [InlineData("«DE89 3704 0044 0532 0130 00»")]
    [InlineData("«DE89370400440532013000»")]
    [InlineData("IBAN: «GB82 WEST 1234 5698 7654 32», BIC NWBKGB2L")]
    [InlineData("«FR14 2004 1010 0505 0001 3M02 606»")]
    [InlineData("«NL91 ABNA 0417 1643 00»")]
    [InlineData("«BE68 5390 0754 7034» EURO")] // a word that looks like a group
    [InlineData("«CH93 0076 2011 6238 5295 7»")]
    [InlineData("«ES91 2100 0418 4502 0005 1332»")]
    [InlineData("«IT60 X054 2811 1010 0000 0123 456»")]
    [InlineData("«NO93 8601 1117 947»")]
    [InlineData("«PL61 1090 1014 0000 0712 1981 2874»")]
    [InlineData("«MT84 MALT 0110 0001 2345 MTLC AST0 01S»")]
    [InlineData("«SN31A01200012345678901234567»")] // outside the registry: any length
    [InlineData("«DE89370400440532013000»;«GB82WEST12345698765432»")]
    [InlineData("DE88 3704 0044 0532 0130 00")] // check digits wrong
    [InlineData("GB82 WEST 1234 5698 7654 33")]
    [InlineData("de89 3704 0044 0532 0130 00")]
    [InlineData("XDE89370400440532013000")]
    [InlineData("DE89370400440532013000X")]
    [InlineData("DE5137040044053201300")] // passes mod 97, but a German IBAN has 22 characters
    [InlineData("ZZ22370400440532013000")] // passes mod 97, no such country
    [InlineData("DE89 3704")]
    [InlineData("DE89 37040044 0532 0130 00")]
    public void Ibans(string marked) => AssertMatches(DetectorKind.Iban, marked);

    [Theory]
    [InlineData("«AKIAIOSFODNN7EXAMPLE»")]
    [InlineData("key=«ASIA4WXFOGO6MVN6A6WF»")]
    [InlineData("\"«AROA4WXFOGO6MVN6A6WF»\"")]
    [InlineData("«AKIAIOSFODNN7EXAMPLE» «ASIA4WXFOGO6MVN6A6WF»")]
    [InlineData("AKIAIOSFODNN7EXAMPL")] // 19
    [InlineData("AKIAIOSFODNN7EXAMPLEX")] // 21
    [InlineData("XAKIAIOSFODNN7EXAMPLE")]
    [InlineData("AKIA1OSFODNN7EXAMPLE")] // 1 is not base32
    [InlineData("AKIAiosfodnn7example")]
    [InlineData("AXYAIOSFODNN7EXAMPLE")] // no such prefix
    [InlineData("ABCDEFGHIJKLMNOPQRST")]
    public void Aws_access_key_ids(string marked) => AssertMatches(DetectorKind.AwsKey, marked);

    [Theory]
    [InlineData("token «ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d»")]
    [InlineData("«gho_KLzdocJ2isAjIhKtJ0RlgLKOmxgJTeKdNnFR»")]
    [InlineData("GITHUB_TOKEN=«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»")]
    [InlineData("«glpat-Sc7Tvo-hBKqFYY-kv5ZJ»")]
    [InlineData("SLACK=«xoxb-268465632122-3307924402685-NKu8iS2G8NPRVdD53X83RZJz»")]
    [InlineData("«sk_live_zzzgEOzdmenCkhvMdgaKjIg8»")]
    [InlineData("«rk_live_xNbe3nNyjOq9wMxEhh2FDEEt»")]
    [InlineData("«sk_test_4eC39HqLyjWDarjtT1zdp7dc»")]
    [InlineData("key=«AIzaksnRH9ucAUsdMlHUvTCQCyEZDz-TddJ8HyS»&q=1")]
    [InlineData("aws_secret_access_key = «wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY»")]
    [InlineData("AWS_SECRET_ACCESS_KEY: \"«wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY»\"")]
    [InlineData("ghp_short")]
    [InlineData("ghx_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d")]
    [InlineData("xghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d")]
    [InlineData("ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8")] // 35
    [InlineData("github_pat_short_token")]
    [InlineData("glpat-short")]
    [InlineData("xoxz-268465632122-3307924402685")]
    [InlineData("xoxb-12345")]
    [InlineData("sk_live_short")]
    [InlineData("sk_prod_zzzgEOzdmenCkhvMdgaKjIg8")]
    [InlineData("AIzaShortKey")]
    [InlineData("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYX")] // 41
    [InlineData("aws_secret_access_key = short")]
    [InlineData("my_variable_name and snake_case_words")]
    public void Service_tokens_and_labelled_aws_secrets(string marked) => AssertMatches(DetectorKind.SecretToken, marked);

    [Theory]
    [InlineData("«" + Jwt + "»")]
    [InlineData("Authorization: Bearer «" + Jwt + "»")]
    [InlineData("{\"token\":\"«" + Jwt + "»\"}")]
    [InlineData("unsigned «eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.»")]
    [InlineData("jwe «eyJhbGciOiJSU0EtT0FFUCJ9.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZ.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TAL.XFBoMYUZodetZdvTiFvSkQ» end")]
    [InlineData("«" + Jwt + "» «" + Jwt + "»")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx")]
    [InlineData("xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig")]
    [InlineData("eyJabc.eyJzdWIiOiIxMjM0.signature")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.short.signature")]
    public void Json_web_tokens(string marked) => AssertMatches(DetectorKind.Jwt, marked);

    [Theory]
    [InlineData("«" + RsaKey + "»")]
    [InlineData("key: «" + RsaKey + "»\nnext line")]
    [InlineData("«-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----»")]
    [InlineData("«-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\\n-----END EC PRIVATE KEY-----»\\n")]
    [InlineData("«-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----»")]
    [InlineData("«-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQww\n-----END ENCRYPTED PRIVATE KEY-----»")]
    [InlineData("«-----BEGIN DSA PRIVATE KEY-----\nMIIBuwIBAAKBgQD\n-----END DSA PRIVATE KEY-----»")]
    [InlineData("truncated «-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf»")]
    [InlineData("mismatched «-----BEGIN RSA PRIVATE KEY-----\nMIIBOg\n-----END CERTIFICATE-----\ntail»")]
    [InlineData(Certificate)]
    [InlineData("-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n-----END PUBLIC KEY-----")]
    [InlineData("-----BEGIN RSA PUBLIC KEY-----\nMEgCQQCo9+BpMRYQ/dL3DS2CyJxRF+j6\n-----END RSA PUBLIC KEY-----")]
    [InlineData("----- BEGIN PRIVATE KEY -----")]
    public void Pem_private_keys_but_not_certificates(string marked) => AssertMatches(DetectorKind.PemPrivateKey, marked);

    /// <summary>A certificate followed by a private key (a bundle): only the key is matched.</summary>
    [Fact]
    public void A_certificate_before_a_key_is_not_masked()
    {
        AssertMatches(DetectorKind.PemPrivateKey, Certificate + "\n«" + RsaKey + "»\n");
    }

    /// <summary>Ordinary cells of the kinds a database returns: no detector may fire on any of them.</summary>
    [Theory]
    [InlineData("Margaret Hamilton")]
    [InlineData("1600 Amphitheatre Parkway, Mountain View, CA 94043")]
    [InlineData("Flat 4B, 221 Baker Street, London NW1 6XE, United Kingdom")]
    [InlineData("Stainless steel water bottle, 750 ml, keeps drinks cold for 24 hours. SKU WB-750-SS-BLK")]
    [InlineData("2024-03-15 14:22:01.123456+00")]
    [InlineData("2024-03-15T14:22:01Z")]
    [InlineData("Thu, 14 Mar 2024 09:30:00 GMT")]
    [InlineData("ORD-2024-000123")]
    [InlineData("order 100234 shipped in 3 parcels, total $1,234.56 (EUR 1.134,20)")]
    [InlineData("1700000000004")]
    [InlineData("1767225600000123")]
    [InlineData("123e4567-e89b-12d3-a456-426614174000")]
    [InlineData("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("192.168.100.200")]
    [InlineData("v1.24.3-rc.1+build.20240315")]
    [InlineData("ISBN 978-3-16-148410-0")]
    [InlineData("https://example.com/catalog/items?page=2&sort=price_asc")]
    [InlineData("SGVsbG8gV29ybGQhIFRoaXMgaXMgYmFzZTY0Lg==")]
    [InlineData("The Apollo Guidance Computer (AGC) was developed at MIT. Apollo 11 landed on 20 July 1969.")]
    [InlineData("Temperature: -12.5 C, humidity 45 %, wind 12 km/h NNE")]
    [InlineData("Lat +40.689247, Lon -74.044502")]
    [InlineData("{\"id\": 42, \"name\": \"widget\", \"price\": 19.99, \"tags\": [\"a\", \"b\"]}")]
    [InlineData("Zürich, Genève, Łódź, 東京都千代田区, Москва")]
    [InlineData("snake_case_identifier and kebab-case-identifier")]
    [InlineData("Invoice INV-000045 due 2024-04-30, amount 1250.00")]
    [InlineData("+49 30")]
    [InlineData("Call extension 4412 or 4413 between 9 and 5")]
    public void Ordinary_data_has_no_matches(string text)
    {
        Assert.Empty(Find(AllBuiltIns(), Encoding.UTF8.GetBytes(text)));
    }

    // ---- Merging several detectors --------------------------------------------------------------------------

    [Fact]
    public void Matches_of_all_kinds_come_in_order_with_their_tags()
    {
        var scanner = AllBuiltIns();
        string text = "«john@example.com» paid with «4111 1111 1111 1111», ssn «123-45-6789», call «+1 415 555 2671», "
            + "iban «DE89 3704 0044 0532 0130 00», key «AKIAIOSFODNN7EXAMPLE», token «ghp_u8jzPde0IgxLd6GncfBAepfJBd0Kh8oOOL8d», "
            + "jwt «" + Jwt + "», «" + RsaKey + "»";
        var (bytes, expected) = Parse(text);

        var found = Find(scanner, bytes);

        Assert.Equal(expected, found.Select(m => (m.Start, m.Length)).ToList());
        Assert.Equal(
            new[] { DetectorKind.Email, DetectorKind.Card, DetectorKind.Ssn, DetectorKind.Phone, DetectorKind.Iban, DetectorKind.AwsKey, DetectorKind.SecretToken, DetectorKind.Jwt, DetectorKind.PemPrivateKey }
                .Select(Tag),
            found.Select(m => m.Tag));
    }

    [Fact]
    public void Adjacent_matches_at_the_start_and_end_are_exact()
    {
        byte[] text = "4111111111111111 john@example.com"u8.ToArray();
        var found = Find(AllBuiltIns(), text);

        Assert.Equal([new DetectorMatch(0, 16, Tag(DetectorKind.Card)), new DetectorMatch(17, 16, Tag(DetectorKind.Email))], found);
    }

    [Fact]
    public void On_overlap_the_earlier_match_wins()
    {
        // The custom pattern starts one byte before the card and covers it: one match, the custom one.
        var scanner = ValueScanner.Create([new DetectorSpec(DetectorKind.Card, 1), new DetectorSpec(DetectorKind.Custom, 2, "[0-9 ]{10,}")]);
        var found = Find(scanner, "x 4111 1111 1111 1111 y"u8.ToArray());

        Assert.Equal([new DetectorMatch(1, 21, 2)], found);
    }

    [Fact]
    public void On_the_same_start_the_longer_match_wins_then_the_first_listed()
    {
        byte[] text = "4111111111111111"u8.ToArray();
        var longer = ValueScanner.Create([new DetectorSpec(DetectorKind.Custom, 1, "4111"), new DetectorSpec(DetectorKind.Card, 2)]);
        var same = ValueScanner.Create([new DetectorSpec(DetectorKind.Custom, 1, "[0-9]+"), new DetectorSpec(DetectorKind.Card, 2)]);
        var sameCardFirst = ValueScanner.Create([new DetectorSpec(DetectorKind.Card, 2), new DetectorSpec(DetectorKind.Custom, 1, "[0-9]+")]);

        Assert.Equal([new DetectorMatch(0, 16, 2)], Find(longer, text));
        Assert.Equal([new DetectorMatch(0, 16, 1)], Find(same, text));
        Assert.Equal([new DetectorMatch(0, 16, 2)], Find(sameCardFirst, text));
    }

    [Fact]
    public void A_kind_listed_twice_carries_the_first_tag()
    {
        var scanner = ValueScanner.Create([new DetectorSpec(DetectorKind.Email, 7), new DetectorSpec(DetectorKind.Email, 8)]);

        Assert.Equal([new DetectorMatch(0, 16, 7)], Find(scanner, "john@example.com"u8.ToArray()));
    }

    [Fact]
    public void A_card_after_a_plus_sign_is_a_card_when_cards_are_detected_else_a_phone_number()
    {
        byte[] text = "+378282246310005"u8.ToArray(); // 15 digits: a valid E.164 length and an Amex test number
        var both = ValueScanner.Create([new DetectorSpec(DetectorKind.Phone, 1), new DetectorSpec(DetectorKind.Card, 2)]);
        var phoneOnly = ValueScanner.Create([new DetectorSpec(DetectorKind.Phone, 1)]);

        Assert.Equal([new DetectorMatch(1, 15, 2)], Find(both, text));
        Assert.Equal([new DetectorMatch(0, 16, 1)], Find(phoneOnly, text));
    }

    [Fact]
    public void More_matches_than_room_returns_minus_one()
    {
        var scanner = ValueScanner.Create([new DetectorSpec(DetectorKind.Card, 1)]);
        byte[] text = "4111111111111111 5555555555554444 378282246310005"u8.ToArray();
        var matches = new DetectorMatch[3];

        Assert.Equal(3, scanner.Scan(text, matches));
        Assert.Equal(-1, scanner.Scan(text, matches.AsSpan(0, 2)));
        Assert.Equal(-1, scanner.Scan(text, []));
        Assert.Equal(0, scanner.Scan("no cards here"u8, []));
    }

    [Fact]
    public void Offsets_are_bytes_with_multi_byte_text_around_matches()
    {
        string text = "Ünïcödé → «4111 1111 1111 1111» ✓ 日本語 «jane@example.com» 😀 «123-45-6789»😀«+44 20 7946 0958»";
        var (bytes, expected) = Parse(text);

        var found = Find(AllBuiltIns(), bytes);

        Assert.Equal(expected, found.Select(m => (m.Start, m.Length)).ToList());
        Assert.Equal(
            ["4111 1111 1111 1111", "jane@example.com", "123-45-6789", "+44 20 7946 0958"],
            found.Select(m => Encoding.UTF8.GetString(bytes, m.Start, m.Length)));
    }

    [Fact]
    public void A_match_deep_in_a_long_value_is_found()
    {
        var text = new StringBuilder();
        while (text.Length < 100_000)
        {
            text.Append("Stainless steel water bottle, 750 ml, order 100234, 2024-03-15 14:22:01. ");
        }

        text.Append("«jane@example.com» and «4111111111111111»");
        var (bytes, expected) = Parse(text.ToString());

        Assert.Equal(expected, Find(AllBuiltIns(), bytes).Select(m => (m.Start, m.Length)).ToList());
    }

    /// <summary>
    /// Each kind's value at every offset from 0 to 200 of a longer value: across the 64-byte blocks of the vector
    /// prefilters, their overlaps and the end of the value, and on both sides of the length where the scanner stops
    /// using the one-sweep prefilter. The value must be found exactly there, and the fuzz target's oracles must hold
    /// (the same matches as the reference without prefilters, 128-bit and 256-bit vectors agreeing).
    /// </summary>
    [Theory]
    [InlineData("4111 1111 1111 1111")]
    [InlineData("4222222222222")]
    [InlineData("123-45-6789")]
    [InlineData("jane.doe@example.com")]
    [InlineData("+44 (0)20 7946 0958")]
    [InlineData("1 (800) 555-0199")]
    [InlineData("415.555.2671")]
    [InlineData("GB82 WEST 1234 5698 7654 32")]
    [InlineData("AKIAIOSFODNN7EXAMPLE")]
    [InlineData("AIzaksnRH9ucAUsdMlHUvTCQCyEZDz-TddJ8HyS")]
    [InlineData("glpat-Sc7Tvo-hBKqFYY-kv5ZJ")]
    [InlineData("xoxb-268465632122-3307924402685")]
    [InlineData("sk_live_zzzgEOzdmenCkhvMdgaKjIg8")]
    [InlineData("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.")]
    [InlineData("-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----")]
    public void A_value_is_found_at_every_offset_of_a_longer_value(string value)
    {
        const string Filler = "Stainless steel water bottle, 750 ml, order 100234 of 2024-03-15 14:22:01, Größe 42. ";
        var scanner = AllBuiltIns();
        byte[] sensitive = Encoding.UTF8.GetBytes(value);
        for (int offset = 0; offset <= 200; offset++)
        {
            foreach (int after in new[] { 0, 1, 40, 120 })
            {
                byte[] before = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(Filler, 3)))[..offset];
                if (offset > 0)
                {
                    before[^1] = (byte)' ';
                }

                byte[] text = [.. before, .. sensitive, .. Encoding.UTF8.GetBytes(" " + Filler + Filler)[..after]];
                var found = Find(scanner, text);

                Assert.True(found.Count == 1 && found[0].Start == offset && found[0].Length == sensitive.Length,
                    $"\"{value}\" at {offset} of {text.Length} bytes: [{string.Join(", ", found)}]");
                Gatehouse.Fuzz.FuzzTargets.MaskingDetectors([0x07, 0xFF, .. text]);
            }
        }
    }

    // ---- Custom patterns ------------------------------------------------------------------------------------

    [Theory]
    [InlineData(@"EMP-\d{6}", "employee «EMP-123456» ok, «EMP-654321»")]
    [InlineData(@"Größe\s*\d+", "die «Größe 42» ist «Größe7»")]
    [InlineData(@"[^\x00-\x7F]+", "abc«日本語»def«é»")]
    [InlineData("(?:😀)+", "a«😀😀»b«😀»")]
    [InlineData(@"\bPROJECT-[A-Z]+\b", "«PROJECT-ORION», PROJECT-ORIONx, xPROJECT-ORION")]
    [InlineData(@"\d*", "ab«12»cd«3»")] // empty matches are ignored
    [InlineData("(?i)secret", "«SECRET» and «secret» and «SeCrEt»")]
    [InlineData(@"ü\d", "Ünïcödé ü x«ü2» «ü3»")]
    public void Custom_patterns_match_with_byte_offsets(string pattern, string marked)
    {
        var scanner = ValueScanner.Create([new DetectorSpec(DetectorKind.Custom, 9, pattern)]);
        var (bytes, expected) = Parse(marked);

        var found = Find(scanner, bytes);

        Assert.Equal(expected, found.Select(m => (m.Start, m.Length)).ToList());
        Assert.All(found, m => Assert.Equal(9, m.Tag));
    }

    [Fact]
    public void A_custom_match_inside_a_surrogate_pair_covers_the_whole_character()
    {
        // The pattern matches the high surrogate of U+1F600 only (a UTF-16 code unit); the match is the 4 bytes.
        var scanner = ValueScanner.Create([new DetectorSpec(DetectorKind.Custom, 1, "\uD83D")]);

        Assert.Equal([new DetectorMatch(1, 4, 1)], Find(scanner, Encoding.UTF8.GetBytes("a😀b")));
    }

    [Fact]
    public void Custom_patterns_see_ill_formed_utf8_as_replacement_characters_and_offsets_stay_exact()
    {
        var scanner = ValueScanner.Create([new DetectorSpec(DetectorKind.Custom, 1, @"\d+"), new DetectorSpec(DetectorKind.Custom, 2, "\uFFFD+")]);
        // A lone continuation byte, a truncated 3-byte sequence, an overlong encoding of '/', then digits.
        byte[] text = [(byte)'a', 0x80, (byte)'1', (byte)'2', 0xE6, 0x97, (byte)'3', 0xC0, 0xAF, (byte)'4', (byte)'5'];

        Assert.Equal(
            [new(1, 1, 2), new(2, 2, 1), new(4, 2, 2), new(6, 1, 1), new(7, 2, 2), new(9, 2, 1)],
            Find(scanner, text));
    }

    [Fact]
    public void Custom_patterns_and_built_ins_merge_on_long_non_ascii_values()
    {
        // Longer than the stack buffer for the UTF-16 copy: the pooled path, with a match near the end.
        var text = new StringBuilder();
        while (text.Length < 3000)
        {
            text.Append("Größe 42 – 東京 ");
        }

        text.Append("«EMP-123456» «jane@example.com»");
        var scanner = ValueScanner.Create([new DetectorSpec(DetectorKind.Email, 1), new DetectorSpec(DetectorKind.Custom, 2, @"EMP-\d{6}")]);
        var (bytes, expected) = Parse(text.ToString());

        var found = Find(scanner, bytes);

        Assert.Equal(expected, found.Select(m => (m.Start, m.Length)).ToList());
        Assert.Equal([2, 1], found.Select(m => m.Tag));
    }

    [Theory]
    [InlineData(@"(a)\1")] // backreference
    [InlineData(@"(?=abc)abc")] // lookahead
    [InlineData(@"(?<!x)abc")] // lookbehind
    [InlineData(@"(?>abc)")] // atomic group
    [InlineData(@"(?(a)b|c)")] // conditional
    [InlineData(@"[a-")] // syntax error
    [InlineData(@"a{2,1}")]
    [InlineData("")]
    public void Patterns_the_engine_cannot_run_are_refused_with_a_reason(string pattern)
    {
        string? reason = ValueScanner.ValidatePattern(pattern);

        Assert.False(string.IsNullOrWhiteSpace(reason));
        Assert.DoesNotContain('\n', reason);
        var ex = Assert.Throws<ArgumentException>(() => ValueScanner.Create([new DetectorSpec(DetectorKind.Custom, 0, pattern)]));
        Assert.Contains(reason!, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(@"\d{3}-\d{2}-\d{4}")]
    [InlineData(@"(?i)\bproject-[a-z]+\b")]
    [InlineData(@"[A-Z]{2}\d{6}")]
    [InlineData(@"Größe")]
    public void Valid_patterns_pass(string pattern)
    {
        Assert.Null(ValueScanner.ValidatePattern(pattern));
    }

    [Fact]
    public void Backreferences_are_refused_because_the_engine_does_not_backtrack()
    {
        Assert.Contains("NonBacktracking", ValueScanner.ValidatePattern(@"(a)\1"), StringComparison.Ordinal);
    }

    [Fact]
    public void Specs_that_cannot_be_compiled_are_refused()
    {
        Assert.Throws<ArgumentException>(() => ValueScanner.Create([new DetectorSpec(DetectorKind.Custom, 0)]));
        Assert.Throws<ArgumentException>(() => ValueScanner.Create([new DetectorSpec(DetectorKind.Card, 0, "x")]));
        Assert.Throws<ArgumentException>(() => ValueScanner.Create([new DetectorSpec((DetectorKind)200, 0)]));
    }

    // ---- Names, empty scanner -------------------------------------------------------------------------------

    [Fact]
    public void Names_parse_and_round_trip()
    {
        Assert.Equal(["card", "ssn", "email", "phone", "iban", "aws_key", "secret_token", "jwt", "pem_private_key"], DetectorNames.All);
        foreach (string name in DetectorNames.All)
        {
            Assert.True(DetectorNames.TryParse(name, out var kind));
            Assert.Equal(name, DetectorNames.NameOf(kind));
        }

        Assert.True(DetectorNames.TryParse("pem_private_key", out var pem));
        Assert.Equal(DetectorKind.PemPrivateKey, pem);
        Assert.False(DetectorNames.TryParse("custom", out _));
        Assert.False(DetectorNames.TryParse("Card", out _));
        Assert.False(DetectorNames.TryParse("credit_card", out _));
        Assert.Equal("custom", DetectorNames.NameOf(DetectorKind.Custom));
    }

    [Fact]
    public void The_empty_scanner_finds_nothing()
    {
        Assert.True(ValueScanner.Empty.IsEmpty);
        Assert.True(ValueScanner.Create([]).IsEmpty);
        Assert.False(AllBuiltIns().IsEmpty);
        Assert.Equal(0, ValueScanner.Empty.Scan("4111111111111111 john@example.com"u8, new DetectorMatch[4]));
        Assert.Equal(0, AllBuiltIns().Scan([], new DetectorMatch[4]));
    }

    // ---- Allocation -----------------------------------------------------------------------------------------

    [Fact]
    public void Scanning_allocates_nothing()
    {
        var builtIns = AllBuiltIns();
        var withCustom = ValueScanner.Create([.. AllSpecs(), new DetectorSpec(DetectorKind.Custom, 50, @"EMP-\d{6}"), new DetectorSpec(DetectorKind.Custom, 51, "Größe")]);
        // More detectors than the stack holds: the candidate table is rented.
        var many = ValueScanner.Create([.. AllSpecs(), .. Enumerable.Range(0, 20).Select(i => new DetectorSpec(DetectorKind.Custom, 60 + i, $"K{i}-[0-9]+"))]);
        var longText = new StringBuilder();
        while (longText.Length < 5000)
        {
            longText.Append("Größe 42, order 100234, 2024-03-15, jane@example.com EMP-123456 K3-77 ");
        }

        byte[][] texts =
        [
            "Margaret Hamilton"u8.ToArray(),
            "paid with 4111 1111 1111 1111, ssn 123-45-6789, call +1 415 555 2671"u8.ToArray(),
            Encoding.UTF8.GetBytes("die Größe 42 ist EMP-123456 und 日本語 jane@example.com " + Jwt + " " + RsaKey),
            Encoding.UTF8.GetBytes(longText.ToString()),
        ];
        var matches = new DetectorMatch[64];

        for (int i = 0; i < 2_000; i++)
        {
            ScanAll();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1_000; i++)
        {
            ScanAll();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        void ScanAll()
        {
            foreach (byte[] text in texts)
            {
                builtIns.Scan(text, matches);
                withCustom.Scan(text, matches);
                many.Scan(text, matches);
                many.Scan(text, matches.AsSpan(0, 1));
            }
        }
    }

    // ---- Helpers --------------------------------------------------------------------------------------------

    private static int Tag(DetectorKind kind) => 100 + (int)kind;

    private static IEnumerable<DetectorSpec> AllSpecs() =>
        Enum.GetValues<DetectorKind>().Where(k => k != DetectorKind.Custom).Select(k => new DetectorSpec(k, Tag(k)));

    private static ValueScanner AllBuiltIns() => ValueScanner.Create(AllSpecs());

    private static void AssertMatches(DetectorKind kind, string marked)
    {
        var (bytes, expected) = Parse(marked);
        var found = Find(ValueScanner.Create([new DetectorSpec(kind, Tag(kind))]), bytes);

        Assert.Equal(expected, found.Select(m => (m.Start, m.Length)).ToList());
        Assert.All(found, m => Assert.Equal(Tag(kind), m.Tag));
    }

    private static List<DetectorMatch> Find(ValueScanner scanner, byte[] text)
    {
        var matches = new DetectorMatch[256];
        int count = scanner.Scan(text, matches);
        Assert.True(count >= 0, "more matches than the test's buffer");
        return [.. matches.AsSpan(0, count)];
    }

    /// <summary>The UTF-8 of <paramref name="marked"/> without its « » marks, and the byte ranges they enclose.</summary>
    private static (byte[] Text, List<(int Start, int Length)> Expected) Parse(string marked)
    {
        var bytes = new List<byte>();
        var expected = new List<(int, int)>();
        int open = -1;
        Span<byte> buffer = stackalloc byte[4];
        foreach (Rune rune in marked.EnumerateRunes())
        {
            if (rune.Value == '«')
            {
                open = bytes.Count;
            }
            else if (rune.Value == '»')
            {
                expected.Add((open, bytes.Count - open));
            }
            else
            {
                bytes.AddRange(buffer[..rune.EncodeToUtf8(buffer)]);
            }
        }

        return ([.. bytes], expected);
    }
}
