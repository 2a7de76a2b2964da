using System.Diagnostics;
using System.Text;

namespace Gatehouse.Fuzz;

/// <summary>
/// A random campaign of the <c>MaskingDetectors</c> target without libFuzzer: the seeds mutated with the pieces
/// detectors look for (digit groups and separators, <c>+</c> and parentheses, <c>@</c>, token prefixes, PEM lines,
/// multi-byte and ill-formed UTF-8) as well as bit flips, deletions and splices, and random bytes. Reports each kind
/// of finding once, with its input written to <c>finding-&lt;n&gt;.bin</c> in the current folder.
/// </summary>
internal static class DetectorCampaign
{
    private static readonly byte[][] Pieces =
    [
        .. new[]
        {
            "4111", "1111", "5555", "3782", "822463", "6011", " ", "-", ".", "  ", "+", "+1 ", "+44 ", "(", ")", "(415) ", "1-800-",
            "555-2671", "123-45-", "6789", "000", "@", "@example.com", "john.doe", "eyJ", "eyJhbGciOiJIUzI1NiJ9.", ".", "-----",
            "-----BEGIN ", "RSA PRIVATE KEY-----", "PRIVATE KEY-----\n", "-----END RSA PRIVATE KEY-----", "CERTIFICATE-----", "AKIA",
            "ASIA", "IOSFODNN7EXAMPLE", "ghp_", "github_pat_", "glpat-", "xoxb-", "sk_live_", "sk_test_", "rk_live_", "AIza", "_",
            "aws_secret_access_key = ", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "DE89", "3704 0044 0532 0130 00", "GB82 WEST ",
            "0123456789", "9999999999999", "é", "日本", "😀",
        }.Select(Encoding.UTF8.GetBytes),
        [0xFF], [0x80], [0xE6, 0x97], [0xC0, 0xAF], [0xF0, 0x9F],
    ];

    public static int Run(string corpus, int count, int seed)
    {
        var seeds = Directory.EnumerateFiles(Path.Combine(corpus, nameof(FuzzTargets.MaskingDetectors))).Order(StringComparer.Ordinal)
            .Select(File.ReadAllBytes).ToArray();
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        int clean = 0;
        long bytes = 0;
        var kinds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            var input = random.Next(16) == 0 ? Random(random, random.Next(2, 300)) : Mutate(random, seeds);
            bytes += input.Length;
            try
            {
                DetectorFuzz.Run(input);
                clean++;
            }
            catch (Exception ex)
            {
                string kind = ex.Message.Split(';')[0];
                kind = kind[..Math.Min(kind.Length, 120)];
                if (kinds.TryAdd(kind, 1))
                {
                    File.WriteAllBytes($"finding-{kinds.Count}.bin", input);
                    Console.WriteLine($"finding {kinds.Count} (input #{i}, {Convert.ToHexString(input)}): {ex.GetType().Name}: {ex.Message.Split('\n')[0]}");
                }
                else
                {
                    kinds[kind]++;
                }
            }
        }

        Console.WriteLine($"{count} values ({bytes / 1024} KiB) in {clock.Elapsed}: {clean} clean, {count - clean} findings ({kinds.Count} kinds)");
        foreach (var (kind, n) in kinds)
        {
            Console.WriteLine($"  {n} x {kind}");
        }

        return kinds.Count == 0 ? 0 : 1;
    }

    private static byte[] Mutate(Random random, byte[][] seeds)
    {
        var input = seeds[random.Next(seeds.Length)];
        for (int round = 1 + random.Next(8); round > 0; round--)
        {
            var b = input;
            int at = 2 + random.Next(Math.Max(1, b.Length - 1));
            at = Math.Min(at, b.Length);
            input = random.Next(9) switch
            {
                0 or 1 or 2 => [.. b[..at], .. Pieces[random.Next(Pieces.Length)], .. b[at..]],
                3 when at < b.Length => [.. b[..at], .. b[Math.Min(b.Length, at + 1 + random.Next(12))..]],
                4 when at < b.Length => Mutations.Set(b, at, (byte)(b[at] ^ (1 << random.Next(8)))),
                5 when at < b.Length => Mutations.Set(b, at, (byte)(random.Next(2) == 0 ? '0' + random.Next(10) : " -.+()@_"[random.Next(8)])),
                6 => Mutations.Splice(random, b, seeds[random.Next(seeds.Length)], at, skip: 2, maxRun: 48),
                7 => Mutations.Set(Mutations.Set(b, 0, (byte)random.Next(256)), 1, random.Next(4) == 0 ? (byte)random.Next(256) : (byte)0xFF),
                _ => b[..Math.Max(2, at)],
            };
        }

        return input;
    }

    private static byte[] Random(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        bytes[1] = 0xFF;
        return bytes;
    }
}
