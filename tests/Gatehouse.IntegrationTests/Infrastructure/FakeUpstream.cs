using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>
/// A fake PostgreSQL server built from the gateway's own codecs (<see cref="PgHandshakeIO"/> to read, <see cref="PgWriter"/>
/// to write): it logs anyone in without a password (AuthenticationOk, ParameterStatus, BackendKeyData,
/// ReadyForQuery), then answers the first request (a Query, or extended messages up to Sync) with a well-formed
/// start of a result followed by <see cref="BadFrame"/>, a message of the test's choosing.
/// </summary>
public sealed class FakeUpstream : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private int _requestsAnswered;

    public FakeUpstream(byte[] badFrame)
    {
        BadFrame = badFrame;
        _listener.Start();
        _acceptLoop = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public byte[] BadFrame { get; }

    /// <summary>How many requests the fake answered with <see cref="BadFrame"/>.</summary>
    public int RequestsAnswered => Volatile.Read(ref _requestsAnswered);

    private async Task AcceptLoopAsync()
    {
        var sessions = new List<Task>();
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                sessions.Add(ServeAsync(socket));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }

        await Task.WhenAll(sessions.Select(s => s.ContinueWith(_ => { }, TaskScheduler.Default)));
    }

    private async Task ServeAsync(Socket socket)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        var input = PipeReader.Create(stream);
        var ct = _stop.Token;
        try
        {
            var startup = await PgHandshakeIO.ReadStartupPacketAsync(input, 10_000, ct);
            if (startup is null)
            {
                return;
            }

            var output = new ArrayBufferWriter<byte>();
            PgWriter.WriteAuthentication(output, AuthenticationCode.Ok);
            foreach (var (name, value) in new[]
                     {
                         ("server_version", "15.0"), ("server_encoding", "UTF8"), ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY"),
                         ("TimeZone", "UTC"), ("integer_datetimes", "on"), ("standard_conforming_strings", "on"),
                     })
            {
                output.Write(PgFrames.Typed('S', [.. PgFrames.CString(name), .. PgFrames.CString(value)]));
            }

            PgWriter.WriteBackendKeyData(output, 4242, 123456);
            PgWriter.WriteReadyForQuery(output, (byte)'I');
            await stream.WriteAsync(output.WrittenMemory, ct);

            var seen = new List<byte>();
            while (true)
            {
                var message = await PgHandshakeIO.ReadMessageAsync(input, 1 << 20, ct);
                if (message is null || message.Value.Code == (byte)'X')
                {
                    return;
                }

                seen.Add(message.Value.Code);
                if (message.Value.Code is not ((byte)'S' or (byte)'Q'))
                {
                    continue;
                }

                output.Clear();
                if (seen.Contains((byte)'P'))
                {
                    output.Write(PgFrames.Typed('1', []));
                }

                if (seen.Contains((byte)'B'))
                {
                    output.Write(PgFrames.Typed('2', []));
                }

                // One int4 column "n" in text format, then the test's message, then the rest of a normal answer.
                output.Write(PgFrames.Typed('T', [0, 1, .. PgFrames.CString("n"), 0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0]));
                output.Write(BadFrame);
                output.Write(PgFrames.Typed('C', PgFrames.CString("SELECT 1")));
                PgWriter.WriteReadyForQuery(output, (byte)'I');
                Interlocked.Increment(ref _requestsAnswered);
                await stream.WriteAsync(output.WrittenMemory, ct);
                seen.Clear();
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            await input.CompleteAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _acceptLoop;
        _stop.Dispose();
    }
}
