namespace Gatehouse.Benchmarks;

/// <summary>
/// Counts the bytes each benchmark allocates per invocation, exactly (the allocation counter of the thread), after
/// the code has had time to reach its optimized tier. BenchmarkDotNet divides by the operations and rounds, so a
/// 24-byte allocation per 103 messages would read "0 B" there; here it reads 24.
/// </summary>
internal static class AllocationCheck
{
    private const int Measured = 20_000;

    public static int Run()
    {
        int failures = 0;
        var validators = new PgValidatorBenchmarks();
        foreach (var message in PgValidatorBenchmarks.BackendMessages())
        {
            failures += Measure($"ValidateBackend({message})", PgValidatorBenchmarks.Repeats, () => validators.ValidateBackend(message));
        }

        foreach (var message in PgValidatorBenchmarks.FrontendMessages())
        {
            failures += Measure($"ValidateFrontend({message})", PgValidatorBenchmarks.Repeats, () => validators.ValidateFrontend(message));
        }

        foreach (bool segmented in new[] { false, true })
        {
            var relay = new PgRelayBenchmarks { Segmented = segmented };
            relay.Setup();
            failures += Measure($"BackendSelect100Rows(Segmented={segmented})", PgRelayBenchmarks.SelectMessages, relay.BackendSelect100Rows);
            failures += Measure($"FrontendPgbenchExtended(Segmented={segmented})", PgRelayBenchmarks.ExtendedMessages, relay.FrontendPgbenchExtended);
            failures += Measure($"FrontendSimpleQuery(Segmented={segmented})", PgRelayBenchmarks.SimpleMessages, relay.FrontendSimpleQuery);
            relay.Cleanup();
        }

        foreach (bool policy in new[] { false, true })
        {
            var gate = new PgPolicyGateBenchmarks { Policy = policy };
            gate.Setup();
            failures += Measure($"NpgsqlUnnamed(Policy={policy})", PgPolicyGateBenchmarks.UnnamedMessages, gate.NpgsqlUnnamed);
            failures += Measure($"PgbenchPrepared(Policy={policy})", PgPolicyGateBenchmarks.PreparedMessages, gate.PgbenchPrepared);
            failures += Measure($"SimpleQuery(Policy={policy})", PgPolicyGateBenchmarks.SimpleMessages, gate.SimpleQuery);
            gate.Cleanup();
        }

        foreach (string role in PolicyBenchmarks.Roles())
        {
            foreach (string statement in PolicyBenchmarks.Statements())
            {
                var decide = new PolicyBenchmarks { Role = role, Statement = statement };
                decide.Setup();
                failures += Measure($"PolicyDecide({role}, {statement})", 1, decide.Decide);
            }
        }

        var detectors = new DetectorBenchmarks();
        detectors.Setup();
        failures += Measure("DetectorsLongText(64 KiB)", 1, detectors.LongText);
        failures += Measure($"DetectorsShortCells({DetectorBenchmarks.Cells})", DetectorBenchmarks.Cells, detectors.ShortCells);
        failures += Measure($"DetectorsCellsWithMatches({DetectorBenchmarks.Cells})", DetectorBenchmarks.Cells, detectors.CellsWithMatches);
        failures += Measure($"DetectorsShortCellsCustom({DetectorBenchmarks.Cells})", DetectorBenchmarks.Cells, detectors.ShortCellsCustom);

        foreach (string mode in new[] { "none", "detectors", "masked" })
        {
            var masking = new PgMaskingBenchmarks { Mode = mode };
            masking.Setup();
            failures += Measure($"MaskingDataRows(Mode={mode})", PgMaskingBenchmarks.Rows, masking.DataRows);
            masking.Cleanup();
        }

        var catalog = new PgCatalogBenchmarks();
        failures += Measure("CatalogResolveFields", PgCatalogBenchmarks.Fields, catalog.ResolveFields);

        foreach (string payload in new[] { "rows", "random" })
        {
            var recording = new RecordingBenchmarks { Payload = payload };
            recording.Setup();
            failures += Measure($"RecordingAppend(Payload={payload})", RecordingBenchmarks.Events, recording.Append);
            failures += Measure($"RecordingTapRelay(Payload={payload})", RecordingBenchmarks.Events, recording.TapRelay);
            recording.Cleanup();
        }

        return failures == 0 ? 0 : 1;
    }

    private static int Measure<T>(string name, int messages, Func<T> invoke)
    {
        // Warm up past tiered compilation (tier 0, then the optimized tier compiled in the background).
        for (int round = 0; round < 5; round++)
        {
            for (int i = 0; i < 2_000; i++)
            {
                invoke();
            }

            Thread.Sleep(50);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Measured; i++)
        {
            invoke();
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        double perInvoke = (double)allocated / Measured;
        Console.WriteLine($"{name,-48} {perInvoke,10:0.###} B/invocation {perInvoke / messages,10:0.####} B/message");
        return allocated == 0 ? 0 : 1;
    }
}
