using System.Security.Cryptography;

namespace Gatehouse.Policy.Access;

/// <summary>
/// Ids people type: a kind prefix and 10 random characters from an alphabet without look-alikes
/// (<c>ar_7k2m9qxw4d</c>): 50 bits, so collisions are not a practical concern for a gateway's lifetime of requests.
/// </summary>
public static class StateIds
{
    /// <summary>An access request.</summary>
    public const string AccessRequest = "ar";

    /// <summary>A grant.</summary>
    public const string Grant = "gr";

    /// <summary>A held statement's approval request.</summary>
    public const string Approval = "ap";

    private const string Alphabet = "23456789abcdefghjkmnpqrstuvwxyz"; // no 0/o, 1/l/i

    /// <summary>A new id: <paramref name="prefix"/>, an underscore, 10 random characters.</summary>
    public static string New(string prefix)
    {
        Span<char> chars = stackalloc char[10];
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = Alphabet[RandomNumberGenerator.GetInt32(Alphabet.Length)];
        }

        return $"{prefix}_{chars}";
    }

    /// <summary>Whether <paramref name="id"/> is well-formed (any prefix): ids from URLs are checked before a lookup.</summary>
    public static bool IsWellFormed(string? id) =>
        id is { Length: > 3 and <= 64 } && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');
}
