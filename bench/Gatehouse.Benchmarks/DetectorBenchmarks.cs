using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Gatehouse.Policy.Masking;

namespace Gatehouse.Benchmarks;

/// <summary>
/// Value detectors (<see cref="ValueScanner.Scan"/>) with every built-in kind enabled, over text a result set
/// carries (<see cref="BenchCells"/>). Each operation is one cell (or the whole long text); the <c>MB/s</c> column
/// is the bytes of an operation divided by its mean time, in 10^6 bytes per second. Targets: 0 B, and 1 GB/s or
/// more per core on text without matches, both long (<see cref="LongText"/>, 64 KiB) and in short cells
/// (<see cref="ShortCells"/>: 20 to 200 bytes, the per-call cost included). <see cref="CellsWithMatches"/> has a
/// sensitive value in one cell in three; <see cref="ShortCellsCustom"/> adds one custom pattern to the built-ins,
/// which costs a UTF-16 copy and a regex run per cell.
/// <para>
/// Measured on the shared 2-core VM (AMD EPYC 2.1 GHz, AVX-512, other builds running; default job), all 0 B:
/// LongText 28.2 µs (2,326 MB/s), ShortCells 40.5 ns per 52-byte cell (1,289 MB/s), CellsWithMatches 82 ns
/// (691 MB/s), ShortCellsCustom 131 ns (400 MB/s). With AVX-512 off (AVX2, short job): 2,435, 1,426, 766 and 393 MB/s.
/// With 128-bit vectors only (AVX2 off, as on SSE-only x64; Arm64 AdvSimd takes the same code): 1,702, 899, 494 and
/// 280 MB/s.
/// </para>
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ThroughputConfig))]
public class DetectorBenchmarks
{
    public const int Cells = 1000;

    private readonly DetectorMatch[] _matches = new DetectorMatch[32];
    private ValueScanner _scanner = ValueScanner.Empty;
    private ValueScanner _withCustom = ValueScanner.Empty;
    private byte[] _long = [];
    private byte[][] _clean = [];
    private byte[][] _matching = [];

    public const int LongLength = 64 * 1024;

    /// <summary>
    /// Bytes per operation of each benchmark, for the MB/s column. The column is computed in the host process, not
    /// the one that ran the benchmark, so this regenerates the (seeded, identical) texts.
    /// </summary>
    private static readonly Lazy<Dictionary<string, double>> BytesPerOperation = new(() =>
    {
        double clean = BenchCells.Clean(Cells).Average(c => c.Length);
        return new(StringComparer.Ordinal)
        {
            [nameof(LongText)] = LongLength,
            [nameof(ShortCells)] = clean,
            [nameof(ShortCellsCustom)] = clean,
            [nameof(CellsWithMatches)] = BenchCells.WithMatches(Cells).Average(c => c.Length),
        };
    });

    [GlobalSetup]
    public void Setup()
    {
        var specs = Enum.GetValues<DetectorKind>().Where(k => k != DetectorKind.Custom).Select(k => new DetectorSpec(k, (int)k)).ToArray();
        _scanner = ValueScanner.Create(specs);
        _withCustom = ValueScanner.Create([.. specs, new DetectorSpec(DetectorKind.Custom, 99, @"\bEMP-\d{6}\b")]);
        _long = BenchCells.LongText(LongLength);
        _clean = BenchCells.Clean(Cells);
        _matching = BenchCells.WithMatches(Cells);

        // Text "without matches" must really have none, or the figure measures something else.
        if (_scanner.Scan(_long, _matches) != 0 || _clean.Any(c => _withCustom.Scan(c, _matches) != 0))
        {
            throw new InvalidOperationException("the clean benchmark text has a match");
        }

        if (_matching.Count(c => _scanner.Scan(c, _matches) > 0) < Cells / 3)
        {
            throw new InvalidOperationException("the matching cells do not all match");
        }
    }

    /// <summary>64 KiB of ordinary text without matches, in one value.</summary>
    [Benchmark]
    public int LongText() => _scanner.Scan(_long, _matches);

    /// <summary>1,000 ordinary cells without matches; per cell.</summary>
    [Benchmark(OperationsPerInvoke = Cells)]
    public int ShortCells() => ScanAll(_scanner, _clean);

    /// <summary>1,000 cells, one in three with a sensitive value; per cell.</summary>
    [Benchmark(OperationsPerInvoke = Cells)]
    public int CellsWithMatches() => ScanAll(_scanner, _matching);

    /// <summary>As <see cref="ShortCells"/>, with a custom pattern as well.</summary>
    [Benchmark(OperationsPerInvoke = Cells)]
    public int ShortCellsCustom() => ScanAll(_withCustom, _clean);

    private int ScanAll(ValueScanner scanner, byte[][] cells)
    {
        int found = 0;
        foreach (byte[] cell in cells)
        {
            found += scanner.Scan(cell, _matches);
        }

        return found;
    }

    private sealed class ThroughputConfig : ManualConfig
    {
        public ThroughputConfig() => AddColumn(new ThroughputColumn());
    }

    /// <summary>Bytes per operation over mean time per operation, in MB/s.</summary>
    private sealed class ThroughputColumn : IColumn
    {
        public string Id => nameof(ThroughputColumn);

        public string ColumnName => "MB/s";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => "Bytes scanned per second, in 10^6 (bytes of an operation / mean time of an operation)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var report = summary[benchmarkCase];
            string name = benchmarkCase.Descriptor.WorkloadMethod.Name;
            if (report?.ResultStatistics is not { } statistics || !BytesPerOperation.Value.TryGetValue(name, out double bytes))
            {
                return "-";
            }

            // Mean is in nanoseconds per operation: bytes per ns * 1000 = MB/s.
            return (bytes / statistics.Mean * 1000).ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
        }

        public bool IsAvailable(Summary summary) => true;

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    }
}
