using System.Net;
using System.Net.Sockets;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>
/// A loopback TCP forwarder that records every byte the upstream (the gateway) sends to its clients: tests point
/// a real client at it and assert on exactly what that client received, whatever the client shows or hides.
/// </summary>
public sealed class ByteTap : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly MemoryStream _received = new();
    private readonly List<Task> _pumps = [];
    private readonly Task _accept;

    public ByteTap(int targetPort)
    {
        _target = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accept = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Everything sent to clients so far, over every connection.</summary>
    public byte[] Received()
    {
        lock (_received)
        {
            return _received.ToArray();
        }
    }

    /// <summary>Forgets what was recorded.</summary>
    public void Clear()
    {
        lock (_received)
        {
            _received.SetLength(0);
        }
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var upstream = new TcpClient();
                await upstream.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                lock (_pumps)
                {
                    _pumps.Add(PumpAsync(client.GetStream(), upstream.GetStream(), record: false, client, upstream));
                    _pumps.Add(PumpAsync(upstream.GetStream(), client.GetStream(), record: true, client, upstream));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool record, TcpClient a, TcpClient b)
    {
        var buffer = new byte[65536];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
            {
                if (record)
                {
                    lock (_received)
                    {
                        _received.Write(buffer, 0, read);
                    }
                }

                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            a.Close();
            b.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accept;
        Task[] pumps;
        lock (_pumps)
        {
            pumps = [.. _pumps];
        }

        await Task.WhenAll(pumps);
        _stop.Dispose();
    }
}
