using System.Buffers;
using BenchmarkDotNet.Attributes;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Benchmarks;

/// <summary>
/// Structural validation of single messages, the per-message cost every relayed frame pays. Each invocation
/// validates the same message <see cref="Repeats"/> times, so the table reads per message.
/// </summary>
[MemoryDiagnoser]
public class PgValidatorBenchmarks
{
    public const int Repeats = 100;

    public static IEnumerable<PgMessage> BackendMessages() =>
    [
        new("DataRow (5 cols)", PgWire.DataRow(12345), false),
        new("RowDescription (5)", PgWire.RowDescription(), false),
        new("CommandComplete", PgWire.CommandComplete(100), false),
        new("ReadyForQuery", PgWire.ReadyForQuery(), false),
    ];

    public static IEnumerable<PgMessage> FrontendMessages() =>
    [
        new("Query", PgWire.Query(), true),
        new("Parse", PgWire.Parse(), true),
        new("Bind (1 param)", PgWire.Bind(), true),
        new("Execute", PgWire.Execute(), true),
        new("Sync", PgWire.Sync(), true),
    ];

    [Benchmark(OperationsPerInvoke = Repeats)]
    [ArgumentsSource(nameof(BackendMessages))]
    public bool ValidateBackend(PgMessage message)
    {
        byte code = message.Code;
        var body = message.Body;
        bool ok = true;
        for (int i = 0; i < Repeats; i++)
        {
            ok &= PgMessageValidator.ValidateBackend(code, body, out _);
        }

        return ok;
    }

    [Benchmark(OperationsPerInvoke = Repeats)]
    [ArgumentsSource(nameof(FrontendMessages))]
    public bool ValidateFrontend(PgMessage message)
    {
        byte code = message.Code;
        var body = message.Body;
        bool ok = true;
        for (int i = 0; i < Repeats; i++)
        {
            ok &= PgMessageValidator.ValidateFrontend(code, body, out _);
        }

        return ok;
    }
}

/// <summary>One message: its code and its body (the bytes after code and length), checked valid when made.</summary>
public sealed class PgMessage
{
    private readonly string _name;

    internal PgMessage(string name, byte[] frame, bool frontend)
    {
        _name = name;
        Code = frame[0];
        Body = new ReadOnlySequence<byte>(frame, 5, frame.Length - 5);
        bool valid = frontend
            ? PgMessageValidator.ValidateFrontend(Code, Body, out _)
            : PgMessageValidator.ValidateBackend(Code, Body, out _);
        if (!valid)
        {
            throw new InvalidOperationException($"the benchmark message {name} does not validate");
        }
    }

    public byte Code { get; }

    public ReadOnlySequence<byte> Body { get; }

    public override string ToString() => _name;
}
