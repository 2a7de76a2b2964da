// Gatehouse micro benchmarks (BenchmarkDotNet, MemoryDiagnoser; results read per message). Run all:
//   dotnet run -c Release --project bench/Gatehouse.Benchmarks -- --filter '*'
// A quick pass: add --job short. One class: --filter '*PgRelay*'.
// Exact allocation per invocation, without BenchmarkDotNet's rounding to whole bytes per operation:
//   dotnet run -c Release --project bench/Gatehouse.Benchmarks -- --alloc-check
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using Gatehouse.Benchmarks;

if (args is ["--alloc-check"])
{
    return AllocationCheck.Run();
}

// Building the generated benchmark project compiles the whole src/ graph with analyzers: allow more than the default 2 minutes.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, ManualConfig.Create(DefaultConfig.Instance).WithBuildTimeout(TimeSpan.FromMinutes(10)));
return 0;
