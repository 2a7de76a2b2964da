using System.Diagnostics;

namespace Gatehouse.Fuzz;

/// <summary>
/// A random campaign of <c>PgPolicyGate</c> conversations without libFuzzer: the seeds mutated (op bytes flipped,
/// inserted, deleted, spliced, truncated) and random bytes. Counts clean runs, stale approval requests (finding 4, fixed: counted so a regression shows) and
/// any other finding, whose input is written to <c>finding-&lt;n&gt;.bin</c> in the current folder.
/// </summary>
internal static class PgGateCampaign
{
    public static int Run(string corpus, int count, int seed)
    {
        var seeds = Directory.EnumerateFiles(Path.Combine(corpus, nameof(FuzzTargets.PgPolicyGate))).Order(StringComparer.Ordinal)
            .Select(File.ReadAllBytes).ToArray();
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        int clean = 0, known = 0, findings = 0, held = 0, approved = 0;
        var kinds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            var input = random.Next(10) == 0 ? Bytes(random, random.Next(1, 200)) : Mutate(random, seeds);
            try
            {
                var stats = PgGateConversation.Run(input, null);
                clean++;
                held += stats.Held;
                approved += stats.Approved;
            }
            catch (FuzzFindingException finding) when (finding.Message.StartsWith(PgGateConversation.StaleApproval, StringComparison.Ordinal))
            {
                known++;
            }
            catch (Exception ex)
            {
                findings++;
                string kind = ex.Message.Split('\n')[0];
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

        Console.WriteLine($"{count} conversations in {clock.Elapsed}: {clean} clean ({held} statements held, {approved} forwarded on approval), "
            + $"{known} stale approval requests (finding 4), {findings} other findings ({kinds.Count} kinds)");
        foreach (var (kind, n) in kinds)
        {
            Console.WriteLine($"  {n} x {kind}");
        }

        return findings == 0 ? 0 : 1;
    }

    private static byte[] Bytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Mutate(Random random, byte[][] seeds)
    {
        var input = seeds[random.Next(seeds.Length)];
        for (int round = 1 + random.Next(6); round > 0; round--)
        {
            var bytes = input;
            int at = random.Next(bytes.Length + 1);
            input = random.Next(6) switch
            {
                0 when bytes.Length > 0 => Mutations.Set(bytes, random.Next(bytes.Length), (byte)random.Next(256)),
                1 when bytes.Length > 1 => Mutations.Set(bytes, 1 + random.Next(bytes.Length - 1), (byte)((bytes[0] & 0xF0) | random.Next(16))),
                2 => [.. bytes[..at], .. Bytes(random, 1 + random.Next(8)), .. bytes[at..]],
                3 when at < bytes.Length => [.. bytes[..at], .. bytes[Math.Min(bytes.Length, at + 1 + random.Next(8))..]],
                4 => Mutations.Splice(random, bytes, seeds[random.Next(seeds.Length)], at, skip: 1, maxRun: 24),
                _ => bytes[..Math.Min(bytes.Length, Math.Max(1, at))],
            };
        }

        return input;
    }
}
