using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Gatehouse.Fuzz;
using Gatehouse.Policy.Sql;
using Gatehouse.Protocols.Postgres;
using Gatehouse.Protocols.Postgres.Wire;
using SharpFuzz;

namespace Gatehouse.Tests.Fuzz;

/// <summary>
/// A bounded, deterministic fuzz of every target in fuzz/Gatehouse.Fuzz: the seed corpus, then random bytes and
/// mutated seeds (bit flips, truncations, length and count fields overwritten with edge values, splices). No
/// exception may escape; the targets' own oracles turn a wrong verdict into an exception. The real fuzzing runs
/// under libFuzzer (fuzz/README.md); this keeps the targets and the corpus from rotting between campaigns.
/// </summary>
public sealed class FuzzSmokeTests
{
    private const int RandomInputs = 20_000;

    private static readonly int[] InterestingInt32 =
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -2, int.MinValue, int.MaxValue, int.MaxValue - 1, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
        256 * 1024 + 1, 64 * 1024 * 1024, (64 * 1024 * 1024) + 1, 256 * 1024 * 1024, (256 * 1024 * 1024) + 1,
    ];

    private static readonly short[] InterestingInt16 = [0, 1, 2, 3, -1, -2, short.MaxValue, short.MinValue, 0x00FF, 0x0100];


    public static TheoryData<string> Targets()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in FuzzTargets.All)
        {
            data.Add(name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void EverySeedRunsClean(string target)
    {
        var run = FuzzTargets.Find(target)!;
        var seeds = LoadSeeds(target);

        Assert.True(seeds.Count >= 3, $"fuzz/corpus/{target} holds {seeds.Count} seeds");
        foreach (var (file, data) in seeds)
        {
            RunOne(run, target, data, $"seed {file}");
        }
    }

    /// <summary>The seeds are valid traffic: a seed the validator refuses would start the fuzzer on the error path.</summary>
    [Theory]
    [MemberData(nameof(Targets))]
    public void EverySeedIsValidTraffic(string target)
    {
        foreach (var (file, data) in LoadSeeds(target))
        {
            switch (target)
            {
                case nameof(FuzzTargets.PgFrontendMessages) or nameof(FuzzTargets.PgBackendMessages):
                    bool frontend = target == nameof(FuzzTargets.PgFrontendMessages);
                    foreach (int at in FrameStarts(data, 0, records: false))
                    {
                        AssertValid(frontend, data, at, file);
                    }

                    break;
                case nameof(FuzzTargets.PgRelay):
                    foreach (int at in FrameStarts(data, 1, records: true))
                    {
                        AssertValid(frontend: (data[at - 1] & 1) == 0, data, at, file);
                    }

                    break;
                case nameof(FuzzTargets.SqlText):
                    // The error-* seeds start the fuzzer on the lexer's error paths; the others are clean SQL.
                    Assert.True(data.Length >= 2 && data[0] is 0 or 1, $"{file}: not a settings byte and a text");
                    Assert.True(file.StartsWith("error-", StringComparison.Ordinal) == LexFails(data.AsSpan(1), new SqlLexSettings(data[0] == 0)),
                        $"{file}: the lexer {(file.StartsWith("error-", StringComparison.Ordinal) ? "accepts" : "rejects")} it");
                    break;
                case nameof(FuzzTargets.PgPolicyGate):
                    // A conversation that reaches the server and back, with a refusal iff the seed is named denied-*.
                    var stats = FuzzTargets.PgPolicyGateStats(data);
                    bool denied = file.StartsWith("denied-", StringComparison.Ordinal);
                    Assert.True(stats.ReadyForQuery >= 3 && stats.ServerMessages > stats.ReadyForQuery, $"{file}: {stats}");
                    Assert.True(denied == stats.Refused > 0 && (!denied || stats.PolicyErrors > 0), $"{file}: {stats}");
                    break;
                case nameof(FuzzTargets.MaskingDetectors):
                    // A control byte, the kinds, a value: matches iff the seed is not named clean-*.
                    Assert.True(data.Length > 2 && data[1] == 0xFF, $"{file}: not a control byte, all kinds and a value");
                    Assert.True(file.StartsWith("clean-", StringComparison.Ordinal) == (FuzzTargets.MaskingDetectorsMatches(data.AsSpan(2)) == 0),
                        $"{file}: {FuzzTargets.MaskingDetectorsMatches(data.AsSpan(2))} matches");
                    break;
                case nameof(FuzzTargets.PgStartupPacket):
                    Assert.Equal(BinaryPrimitives.ReadInt32BigEndian(data), data.Length);
                    Assert.Equal(3 << 16, BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4)));
                    var parsed = StartupParameters.Parse(data.AsSpan(8));
                    Assert.True(file.StartsWith("refused-", StringComparison.Ordinal) == parsed.Error is not null,
                        $"{file}: {parsed.Error?.Message ?? "accepted"}");
                    break;
                default:
                    Assert.Fail($"no seed check for {target}");
                    break;
            }
        }
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void RandomAndMutatedInputsRunClean(string target) => RandomAndMutated(target);

    private static void RandomAndMutated(string target)
    {
        var run = FuzzTargets.Find(target)!;
        var seeds = LoadSeeds(target).Select(s => s.Data).ToArray();
        var random = new Random(0x6A7E + target.Length);
        var clock = Stopwatch.StartNew();

        for (int i = 0; i < RandomInputs; i++)
        {
            bool mutated = random.Next(8) != 0;
            var input = mutated ? Mutate(random, seeds, target) : RandomBytes(random, random.Next(0, 300));
            RunOne(run, target, input, $"input #{i} ({(mutated ? "mutated seed" : "random bytes")})");
        }

        // A budget, not a benchmark: the targets together should stay within a few seconds.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{target}: {RandomInputs} inputs took {clock.Elapsed}");
    }

    private static void RunOne(ReadOnlySpanAction run, string target, byte[] input, string what)
    {
        try
        {
            run(input);
        }
        catch (Exception ex)
        {
            Assert.Fail($"{target} failed on {what}, {input.Length} bytes: {Convert.ToHexString(input)}{Environment.NewLine}{ex}");
        }
    }

    // ---- Inputs ---------------------------------------------------------------------------------------------

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Mutate(Random random, byte[][] seeds, string target)
    {
        var input = seeds[random.Next(seeds.Length)];
        int rounds = 1 + random.Next(4);
        for (int round = 0; round < rounds; round++)
        {
            input = MutateOnce(random, input, seeds, target);
        }

        return input;
    }

    private static byte[] MutateOnce(Random random, byte[] input, byte[][] seeds, string target)
    {
        var bytes = (byte[])input.Clone();
        switch (random.Next(9))
        {
            case 0 when bytes.Length > 0: // Bit flips.
                for (int flips = 1 + random.Next(8); flips > 0; flips--)
                {
                    int bit = random.Next(bytes.Length * 8);
                    bytes[bit / 8] ^= (byte)(1 << (bit % 8));
                }

                return bytes;
            case 1 when bytes.Length > 0: // A byte set to an edge value (a NUL moves a terminator).
                bytes[random.Next(bytes.Length)] = (byte)(random.Next(4) switch { 0 => 0, 1 => 0xFF, 2 => 0x80, _ => random.Next(256) });
                return bytes;
            case 2: // Truncation.
                return bytes[..random.Next(bytes.Length + 1)];
            case 3: // A frame's length field overwritten.
            {
                var lengths = LengthFields(bytes, target);
                if (lengths.Count == 0)
                {
                    return bytes;
                }

                int at = lengths[random.Next(lengths.Count)];
                int actual = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at));
                int value = random.Next(3) == 0 ? actual + random.Next(-3, 4) : InterestingInt32[random.Next(InterestingInt32.Length)];
                BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(at), value);
                return bytes;
            }

            case 4 when bytes.Length >= 2: // A count, a format code or half a length overwritten.
                BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(random.Next(bytes.Length - 1)), InterestingInt16[random.Next(InterestingInt16.Length)]);
                return bytes;
            case 5 when bytes.Length >= 4: // A value length or an OID overwritten anywhere.
                BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(random.Next(bytes.Length - 3)), InterestingInt32[random.Next(InterestingInt32.Length)]);
                return bytes;
            case 6: // Random bytes inserted.
            {
                int at = random.Next(bytes.Length + 1);
                return [.. bytes[..at], .. RandomBytes(random, 1 + random.Next(16)), .. bytes[at..]];
            }

            case 7 when bytes.Length > 0: // A range deleted.
            {
                int at = random.Next(bytes.Length);
                int count = 1 + random.Next(Math.Min(16, bytes.Length - at));
                return [.. bytes[..at], .. bytes[(at + count)..]];
            }

            case 8: // Spliced with a piece of another seed (whole frames, as often as not).
            {
                var other = seeds[random.Next(seeds.Length)];
                int from = random.Next(other.Length + 1);
                int to = from + random.Next(other.Length - from + 1);
                int at = random.Next(bytes.Length + 1);
                return [.. bytes[..at], .. other[from..to], .. bytes[at..]];
            }

            default:
                return bytes;
        }
    }

    /// <summary>Where the Int32 length fields are, as far as the input still parses.</summary>
    private static List<int> LengthFields(byte[] input, string target) => target switch
    {
        nameof(FuzzTargets.SqlText) or nameof(FuzzTargets.PgPolicyGate) or nameof(FuzzTargets.MaskingDetectors) => [], // text and ops: no frames
        nameof(FuzzTargets.PgStartupPacket) => input.Length >= 4 ? [0] : [],
        nameof(FuzzTargets.PgRelay) => [.. FrameStarts(input, 1, records: true).Select(at => at + 1)],
        _ => [.. FrameStarts(input, 0, records: false).Select(at => at + 1)],
    };

    /// <summary>The offsets of whole frames: a stream of frames, or (records) a direction byte before each frame.</summary>
    private static List<int> FrameStarts(byte[] input, int offset, bool records)
    {
        var starts = new List<int>();
        int at = offset + (records ? 1 : 0);
        while (at + 5 <= input.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(input.AsSpan(at + 1));
            if (length < 4 || at + 1L + length > input.Length)
            {
                break;
            }

            starts.Add(at);
            at += 1 + length + (records ? 1 : 0);
        }

        return starts;
    }

    private static void AssertValid(bool frontend, byte[] data, int at, string file)
    {
        byte code = data[at];
        int length = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(at + 1));
        var body = new ReadOnlySequence<byte>(data, at + 5, length - 4);
        bool valid = frontend
            ? PgMessageValidator.ValidateFrontend(code, body, out string? error)
            : PgMessageValidator.ValidateBackend(code, body, out error);
        Assert.True(valid, $"{file}: {(frontend ? "frontend" : "backend")} '{(char)code}' at {at}: {error}");
    }

    private static bool LexFails(ReadOnlySpan<byte> text, SqlLexSettings settings)
    {
        var lexer = new SqlLexer<PostgresDialect>(text, settings);
        while (lexer.Next(out var token))
        {
            if (token.Kind == SqlTokenKind.Error)
            {
                return true;
            }
        }

        return false;
    }

    // ---- Corpus ---------------------------------------------------------------------------------------------

    private static List<(string File, byte[] Data)> LoadSeeds(string target)
    {
        var folder = Path.Combine(RepositoryRoot(), "fuzz", "corpus", target);
        Assert.True(Directory.Exists(folder), $"no seed corpus at {folder}");
        return [.. Directory.EnumerateFiles(folder).Order(StringComparer.Ordinal).Select(f => (Path.GetFileName(f), File.ReadAllBytes(f)))];
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Engine.sln above {AppContext.BaseDirectory}");
    }
}
