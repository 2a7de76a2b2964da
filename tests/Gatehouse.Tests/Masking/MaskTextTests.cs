using System.Text;
using Gatehouse.Policy.Masking;

namespace Gatehouse.Tests.Masking;

public sealed class MaskTextTests
{
    private static readonly byte[] Key = MaskText.DeriveKey(Encoding.UTF8.GetBytes("a-long-enough-masking-key"));

    private static string Mask(MaskStyle style, string value)
    {
        byte[] input = Encoding.UTF8.GetBytes(value);
        var output = new byte[MaskText.MaxLength(style, input.Length)];
        int written = MaskText.Write(style, input, Key, output);
        return Encoding.UTF8.GetString(output, 0, written);
    }

    [Theory]
    [InlineData("123-45-6789", "****6789")]
    [InlineData("4111 1111 1111 1111", "****1111")]
    [InlineData("12345678", "****")] // not more than twice the kept characters: nothing kept
    [InlineData("123456789", "****6789")]
    [InlineData("Grüße aus Köln", "****Köln")] // characters, not bytes
    public void Keep_last_keeps_characters_only_of_long_enough_values(string value, string masked) =>
        Assert.Equal(masked, Mask(new MaskStyle(MaskStyleKind.KeepLast, 4), value));

    [Fact]
    public void Redaction_hides_the_length()
    {
        Assert.Equal("****", Mask(MaskStyle.Redact, "a"));
        Assert.Equal("****", Mask(MaskStyle.Redact, new string('x', 500)));
    }

    [Fact]
    public void The_keyed_hash_is_deterministic_per_key_and_value()
    {
        var hash = new MaskStyle(MaskStyleKind.Hash);
        string a = Mask(hash, "123-45-6789");
        Assert.Equal(MaskText.HashLength, a.Length);
        Assert.Matches("^[0-9a-f]{16}$", a);
        Assert.Equal(a, Mask(hash, "123-45-6789"));
        Assert.NotEqual(a, Mask(hash, "123-45-6780"));
        Assert.DoesNotContain("6789", a, StringComparison.Ordinal);
    }

    [Fact]
    public void SipHash_matches_the_reference_vectors()
    {
        // The reference implementation's vectors: key 00..0f, messages 00, 00 01, ... (Aumasson and Bernstein).
        byte[] key = [.. Enumerable.Range(0, 16).Select(i => (byte)i)];
        Assert.Equal(0x726fdb47dd0e0e31UL, SipHash.Hash24(key, []));
        Assert.Equal(0xa129ca6149be45e5UL, SipHash.Hash24(key, [.. Enumerable.Range(0, 15).Select(i => (byte)i)]));
    }

    [Fact]
    public void Masking_a_value_allocates_nothing()
    {
        byte[] value = Encoding.UTF8.GetBytes("4111 1111 1111 1111");
        var output = new byte[64];
        var styles = new[] { MaskStyle.Redact, new MaskStyle(MaskStyleKind.KeepLast, 4), new MaskStyle(MaskStyleKind.Hash) };
        foreach (var style in styles)
        {
            MaskText.Write(style, value, Key, output);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            foreach (var style in styles)
            {
                MaskText.Write(style, value, Key, output);
            }
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
