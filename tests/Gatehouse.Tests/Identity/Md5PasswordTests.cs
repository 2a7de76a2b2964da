using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using Gatehouse.Policy.Identity;

namespace Gatehouse.Tests.Identity;

[SuppressMessage("Security", "CA5351:Do Not Use Broken Cryptographic Algorithms", Justification = "Recomputes PostgreSQL's md5 scheme independently.")]
public sealed class Md5PasswordTests
{
    private static readonly byte[] Salt = [0x01, 0x02, 0x03, 0x04];

    // PostgreSQL 15.18, SET password_encryption = 'md5'; ALTER ROLE postgres PASSWORD 'postgres';
    // stores this in pg_authid: "md5" + hex(md5("postgres" + "postgres")).
    private const string PostgresStoredHash = "md53175bce1d3201d16594cebf9d7eb3f9d";

    // Computed outside .NET (Python hashlib): "md5" + md5(b"3175bce1d3201d16594cebf9d7eb3f9d" + bytes([1, 2, 3, 4])).hexdigest()
    private const string PostgresResponse = "md568be9ed08db75f318087ab337aaea044";

    [Fact]
    public void MatchesTheResponseForPostgresPostgres()
    {
        string response = Md5Password.Compute("postgres", "postgres", Salt);

        Assert.Equal(PostgresResponse, response);
        Assert.Equal(35, response.Length);
        Assert.StartsWith("md5", response, StringComparison.Ordinal);
    }

    [Fact]
    public void MatchesAStepByStepComputationFromPostgresStoredHash()
    {
        // hex(md5(password + user)) is what PostgreSQL stored; the response salts that.
        string inner = Convert.ToHexStringLower(MD5.HashData("postgrespostgres"u8));
        Assert.Equal(PostgresStoredHash, "md5" + inner);
        string expected = "md5" + Convert.ToHexStringLower(MD5.HashData([.. Encoding.ASCII.GetBytes(inner), .. Salt]));

        Assert.Equal(expected, Md5Password.Compute("postgres", "postgres", Salt));
    }

    [Fact]
    public void SpanOverloadWritesTheSameAsciiBytes()
    {
        Span<byte> destination = stackalloc byte[40];
        destination.Fill(0xEE);

        Md5Password.Compute("postgres"u8, "postgres"u8, Salt, destination);

        Assert.Equal(PostgresResponse, Encoding.ASCII.GetString(destination[..35]));
        Assert.True(destination[35..].IndexOfAnyExcept((byte)0xEE) < 0, "nothing past 35 bytes is written");
    }

    [Fact]
    public void OutputIsLowerCaseHex()
    {
        string response = Md5Password.Compute("alice", "Secret!", [0xFF, 0x00, 0x7F, 0x80]);

        Assert.Matches("^md5[0-9a-f]{32}$", response);
    }

    [Fact]
    public void UserAndSaltMatter()
    {
        string baseline = Md5Password.Compute("postgres", "postgres", Salt);

        Assert.NotEqual(baseline, Md5Password.Compute("postgre", "spostgres", Salt));
        Assert.NotEqual(baseline, Md5Password.Compute("postgres", "postgres", [0x01, 0x02, 0x03, 0x05]));
    }

    [Fact]
    public void LongAndNonAsciiInputsAreHashedAsUtf8()
    {
        string password = new string('p', 1000) + "\u00e9";
        byte[] passwordBytes = Encoding.UTF8.GetBytes(password);
        byte[] userBytes = Encoding.UTF8.GetBytes("j\u00fcrgen");
        string inner = Convert.ToHexStringLower(MD5.HashData([.. passwordBytes, .. userBytes]));
        string expected = "md5" + Convert.ToHexStringLower(MD5.HashData([.. Encoding.ASCII.GetBytes(inner), .. Salt]));

        Assert.Equal(expected, Md5Password.Compute("j\u00fcrgen", password, Salt));
    }

    [Fact]
    public void EmptyUserAndPasswordWork()
    {
        string inner = Convert.ToHexStringLower(MD5.HashData(ReadOnlySpan<byte>.Empty));
        string expected = "md5" + Convert.ToHexStringLower(MD5.HashData([.. Encoding.ASCII.GetBytes(inner), .. Salt]));

        Assert.Equal(expected, Md5Password.Compute("", "", Salt));
    }

    [Fact]
    public void RefusesBadSaltAndShortDestination()
    {
        Assert.Throws<ArgumentException>(() => Md5Password.Compute("u", "p", [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => Md5Password.Compute("u", "p", [1, 2, 3, 4, 5]));
        Assert.Throws<ArgumentException>(() => Md5Password.Compute("u"u8, "p"u8, Salt, new byte[34]));
    }
}
