// Gatehouse fuzz targets (see fuzz/README.md). Usage:
//   Gatehouse.Fuzz <target>                          run <target> under libFuzzer (started by libfuzzer-dotnet)
//   Gatehouse.Fuzz replay <target> <file|dir>...     run inputs once, without a fuzzer (reproduce a crash)
//   Gatehouse.Fuzz write-seeds <corpus-dir>          regenerate the seed corpus (fuzz/corpus) from PgSeeds
//   Gatehouse.Fuzz trace <file>                      print a PgPolicyGate input's conversation, message by message
//   Gatehouse.Fuzz campaign <corpus-dir> <count> [seed]  run <count> random and mutated PgPolicyGate conversations (no libFuzzer)
//   Gatehouse.Fuzz campaign <corpus-dir> <count> <seed> MaskingDetectors   the same for the value detectors
// Targets: PgFrontendMessages, PgBackendMessages, PgStartupPacket, PgRelay, SqlText, PgPolicyGate, MaskingDetectors.
//
// Fuzzing with libFuzzer (Linux):
//   dotnet tool install --global SharpFuzz.CommandLine       # provides the `sharpfuzz` instrumenter (2.3.0, as the SharpFuzz pin)
//   dotnet publish fuzz/Gatehouse.Fuzz -c Release -o artifacts/fuzz
//   sharpfuzz artifacts/fuzz/Gatehouse.Protocols.dll         # instruments the code under test, in place
//   sharpfuzz artifacts/fuzz/Gatehouse.Engine.dll
//   sharpfuzz artifacts/fuzz/Gatehouse.Policy.dll
//   # libfuzzer-dotnet, the bridge from libFuzzer to a .NET process: a release from
//   # https://github.com/Metalnem/libfuzzer-dotnet/releases, or: clang -fsanitize=fuzzer libfuzzer-dotnet.cc -o libfuzzer-dotnet
//   mkdir -p artifacts/corpus/PgRelay                         # libFuzzer adds new inputs to the first folder
//   ./libfuzzer-dotnet --target_path=artifacts/fuzz/Gatehouse.Fuzz --target_arg=PgRelay \
//       artifacts/corpus/PgRelay fuzz/corpus/PgRelay -timeout=10
// A crash leaves crash-<sha1> in the current folder: replay it with an uninstrumented build to see the exception.
using Gatehouse.Fuzz;
using SharpFuzz;

if (args is [var name] && FuzzTargets.Find(name) is { } target)
{
    // Outside libFuzzer, SharpFuzz would read its first argument (here the target name) as an input file.
    if (Environment.GetEnvironmentVariable("__LIBFUZZER_SHM_ID") is null)
    {
        Console.Error.WriteLine($"not started by libfuzzer-dotnet: to run inputs without a fuzzer, use: replay {name} <file|dir>...");
        return 2;
    }

    Fuzzer.LibFuzzer.Run(target);
    return 0;
}

if (args is ["replay", var replayName, .. var paths] && paths.Length > 0 && FuzzTargets.Find(replayName) is { } replayTarget)
{
    return Replay(replayTarget, paths);
}

if (args is ["write-seeds", var corpus])
{
    foreach (var (targetName, seedName, data) in PgSeeds.All())
    {
        var folder = Path.Combine(corpus, targetName);
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, seedName + ".bin"), data);
    }

    Console.WriteLine($"seeds written to {Path.GetFullPath(corpus)}");
    return 0;
}

if (args is ["trace", var traced])
{
    var trace = new System.Text.StringBuilder();
    try
    {
        var stats = FuzzTargets.PgPolicyGateTrace(File.ReadAllBytes(traced), trace);
        Console.Write(trace);
        Console.WriteLine(stats);
        return 0;
    }
    catch (FuzzFindingException finding)
    {
        Console.Write(trace);
        Console.WriteLine($"FINDING: {finding.Message}");
        return 1;
    }
}

if (args is ["campaign", var campaignCorpus, var countText, .. var rest] && int.TryParse(countText, out int campaignCount))
{
    int campaignSeed = rest.Length > 0 ? int.Parse(rest[0], System.Globalization.CultureInfo.InvariantCulture) : 1;
    return rest is [_, var campaignTarget] && string.Equals(campaignTarget, nameof(FuzzTargets.MaskingDetectors), StringComparison.OrdinalIgnoreCase)
        ? DetectorCampaign.Run(campaignCorpus, campaignCount, campaignSeed)
        : PgGateCampaign.Run(campaignCorpus, campaignCount, campaignSeed);
}

Console.Error.WriteLine("usage: Gatehouse.Fuzz <target> | replay <target> <file|dir>... | write-seeds <corpus-dir> | trace <file>");
Console.Error.WriteLine("targets: " + string.Join(", ", FuzzTargets.All.Select(t => t.Name)));
return 2;

static int Replay(ReadOnlySpanAction target, string[] paths)
{
    var files = paths.SelectMany<string, string>(p => Directory.Exists(p) ? Directory.EnumerateFiles(p).Order(StringComparer.Ordinal) : [p]);
    int failed = 0;
    foreach (var file in files)
    {
        try
        {
            target(File.ReadAllBytes(file));
            Console.WriteLine($"ok    {file}");
        }
        catch (Exception ex)
        {
            failed++;
            Console.WriteLine($"CRASH {file}: {ex}");
        }
    }

    return failed == 0 ? 0 : 1;
}
