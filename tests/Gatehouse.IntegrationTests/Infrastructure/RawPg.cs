using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Gatehouse.IntegrationTests.Infrastructure;

/// <summary>A typed protocol message as read off the wire (Byte1 code, then the body after the length).</summary>
public readonly record struct PgMessage(byte Code, byte[] Body)
{
    public char Type => (char)Code;

    /// <summary>The fields of an ErrorResponse or NoticeResponse, by field code ('C' SQLSTATE, 'M' message, 'V' severity).</summary>
    public IReadOnlyDictionary<char, string> Fields
    {
        get
        {
            var fields = new Dictionary<char, string>();
            int at = 0;
            while (at < Body.Length && Body[at] != 0)
            {
                char code = (char)Body[at++];
                int end = Array.IndexOf(Body, (byte)0, at);
                if (end < 0)
                {
                    break;
                }

                fields[code] = Encoding.UTF8.GetString(Body, at, end - at);
                at = end + 1;
            }

            return fields;
        }
    }

    public string? SqlState => Fields.GetValueOrDefault('C');

    public string? MessageText => Fields.GetValueOrDefault('M');

    public override string ToString() => Code == (byte)'E' || Code == (byte)'N'
        ? $"{Type} {string.Join(" ", Fields.Select(f => $"{f.Key}={f.Value}"))}"
        : $"{Type} ({Body.Length} bytes)";
}

/// <summary>Frontend messages built byte by byte, for tests that must send exactly what a driver would not.</summary>
public static class PgFrames
{
    public static byte[] Startup(params (string Name, string Value)[] parameters) => Startup(3 << 16, parameters);

    /// <summary>A StartupMessage with any protocol version (major in the high 16 bits, minor in the low).</summary>
    public static byte[] Startup(int version, params (string Name, string Value)[] parameters)
    {
        var body = new List<byte>();
        foreach (var (name, value) in parameters)
        {
            body.AddRange(Encoding.UTF8.GetBytes(name));
            body.Add(0);
            body.AddRange(Encoding.UTF8.GetBytes(value));
            body.Add(0);
        }

        body.Add(0);
        var frame = new byte[8 + body.Count];
        BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(4), version);
        body.CopyTo(frame, 8);
        return frame;
    }

    /// <summary>The 16-byte CancelRequest: length 16, code 80877102, process id, secret key.</summary>
    public static byte[] CancelRequest(int processId, int secretKey)
    {
        var frame = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(frame, 16);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(4), 80877102);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(8), processId);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(12), secretKey);
        return frame;
    }

    /// <summary>A typed message whose length field is computed from the body.</summary>
    public static byte[] Typed(char code, ReadOnlySpan<byte> body)
    {
        var frame = new byte[5 + body.Length];
        frame[0] = (byte)code;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), 4 + body.Length);
        body.CopyTo(frame.AsSpan(5));
        return frame;
    }

    public static byte[] CString(string value) => [.. Encoding.UTF8.GetBytes(value), 0];

    public static byte[] Query(string sql) => Typed('Q', CString(sql));

    /// <summary>Parse of an unnamed statement without parameter types.</summary>
    public static byte[] Parse(string sql) => Typed('P', [.. CString(""), .. CString(sql), 0, 0]);

    /// <summary>Bind of the unnamed portal to the unnamed statement: no parameters, default result formats.</summary>
    public static byte[] Bind() => Typed('B', [.. CString(""), .. CString(""), 0, 0, 0, 0, 0, 0]);

    public static byte[] Execute() => Typed('E', [.. CString(""), 0, 0, 0, 0]);

    public static byte[] Sync() => Typed('S', []);

    public static byte[] Terminate() => Typed('X', []);

    public static byte[] CopyData(string text) => Typed('d', Encoding.UTF8.GetBytes(text));

    public static byte[] CopyDone() => Typed('c', []);

    public static byte[] Password(string secret) => Typed('p', CString(secret));
}

/// <summary>
/// A raw TCP client of the gateway that speaks the protocol by hand: it can log in (SCRAM-SHA-256 or cleartext,
/// no TLS), then send anything, well-formed or not, and read each message the gateway answers.
/// </summary>
public sealed class RawPgConnection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawPgConnection(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>The BackendKeyData the gateway issued at login.</summary>
    public int ProcessId { get; private set; }

    public int SecretKey { get; private set; }

    /// <summary>The NegotiateProtocolVersion the gateway sent during login, if any.</summary>
    public PgMessage? NegotiateProtocolVersion { get; private set; }

    public static async Task<RawPgConnection> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(GatewayHost.Localhost, port);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }

        return new RawPgConnection(tcp);
    }

    public async Task SendAsync(params byte[][] frames)
    {
        foreach (var frame in frames)
        {
            await _stream.WriteAsync(frame);
        }

        await _stream.FlushAsync();
    }

    /// <summary>Reads one typed message; null when the gateway closed the connection (or reset it).</summary>
    public async Task<PgMessage?> ReadMessageAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        var header = new byte[5];
        if (!await ReadExactlyOrEndAsync(header, cts.Token))
        {
            return null;
        }

        int length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(1));
        if (length < 4 || length > 64 * 1024 * 1024)
        {
            throw new InvalidDataException($"implausible message length {length} for message type '{(char)header[0]}'");
        }

        var body = new byte[length - 4];
        if (!await ReadExactlyOrEndAsync(body, cts.Token))
        {
            throw new EndOfStreamException($"connection closed inside a '{(char)header[0]}' message");
        }

        return new PgMessage(header[0], body);
    }

    /// <summary>Reads messages up to and including ReadyForQuery.</summary>
    public async Task<List<PgMessage>> ReadUntilReadyAsync(TimeSpan? timeout = null)
    {
        var messages = new List<PgMessage>();
        while (true)
        {
            var message = await ReadMessageAsync(timeout) ??
                          throw new EndOfStreamException($"connection closed before ReadyForQuery; got: {string.Join(", ", messages)}");
            messages.Add(message);
            if (message.Code == (byte)'Z')
            {
                return messages;
            }
        }
    }

    /// <summary>Reads every message until the gateway closes the connection; throws if it does not within the timeout.</summary>
    public async Task<List<PgMessage>> ReadUntilClosedAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        var messages = new List<PgMessage>();
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"the gateway did not close the connection; got: {string.Join(", ", messages)}");
            }

            PgMessage? message;
            try
            {
                message = await ReadMessageAsync(left);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the gateway did not close the connection; got: {string.Join(", ", messages)}");
            }

            if (message is null)
            {
                return messages;
            }

            messages.Add(message.Value);
        }
    }

    /// <summary>
    /// Logs in. Returns null on success (after ReadyForQuery), or the ErrorResponse the gateway refused with.
    /// </summary>
    public Task<PgMessage?> LoginAsync(string user, string database, string secret) =>
        LoginAsync(PgFrames.Startup(("user", user), ("database", database)), secret);

    /// <summary>
    /// Logs in with a startup packet of the caller's making. <paramref name="beforeProof"/> runs just before the
    /// client sends its proof (SCRAM client-final or the cleartext password), so a test can act mid-login.
    /// </summary>
    public async Task<PgMessage?> LoginAsync(byte[] startup, string secret, Func<Task>? beforeProof = null)
    {
        await SendAsync(startup);
        ScramClient? scram = null;
        while (true)
        {
            var message = await ReadMessageAsync() ?? throw new EndOfStreamException("the gateway closed the connection during login");
            switch (message.Type)
            {
                case 'R':
                    int code = BinaryPrimitives.ReadInt32BigEndian(message.Body);
                    var payload = message.Body.AsSpan(4);
                    switch (code)
                    {
                        case 0:
                        case 12:
                            break;
                        case 3:
                            if (beforeProof is not null)
                            {
                                await beforeProof();
                            }

                            await SendAsync(PgFrames.Password(secret));
                            break;
                        case 10:
                            scram = new ScramClient(secret);
                            var first = Encoding.UTF8.GetBytes(scram.ClientFirst);
                            var body = new byte[14 + 4 + first.Length];
                            Encoding.ASCII.GetBytes("SCRAM-SHA-256\0").CopyTo(body, 0);
                            BinaryPrimitives.WriteInt32BigEndian(body.AsSpan(14), first.Length);
                            first.CopyTo(body, 18);
                            await SendAsync(PgFrames.Typed('p', body));
                            break;
                        case 11:
                            var final = scram!.ClientFinal(Encoding.UTF8.GetString(payload));
                            if (beforeProof is not null)
                            {
                                await beforeProof();
                            }

                            await SendAsync(PgFrames.Typed('p', Encoding.UTF8.GetBytes(final)));
                            break;
                        default:
                            throw new InvalidDataException($"unexpected authentication request {code}");
                    }

                    break;
                case 'K':
                    ProcessId = BinaryPrimitives.ReadInt32BigEndian(message.Body);
                    SecretKey = BinaryPrimitives.ReadInt32BigEndian(message.Body.AsSpan(4));
                    break;
                case 'S':
                case 'N':
                    break;
                case 'v':
                    NegotiateProtocolVersion = message;
                    break;
                case 'Z':
                    return null;
                case 'E':
                    return message;
                default:
                    throw new InvalidDataException($"unexpected message during login: {message}");
            }
        }
    }

    private async Task<bool> ReadExactlyOrEndAsync(byte[] buffer, CancellationToken ct)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(buffer.AsMemory(read), ct);
            }
            catch (IOException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
            {
                n = 0;
            }

            if (n == 0)
            {
                if (read == 0)
                {
                    return false;
                }

                throw new EndOfStreamException("connection closed in the middle of a message");
            }

            read += n;
        }

        return true;
    }

    public ValueTask DisposeAsync()
    {
        _stream.Dispose();
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>The client side of SCRAM-SHA-256 (RFC 5802) without channel binding, as libpq does it without TLS.</summary>
    private sealed class ScramClient(string password)
    {
        private readonly string _nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));

        private string ClientFirstBare => $"n=,r={_nonce}";

        public string ClientFirst => "n,," + ClientFirstBare;

        public string ClientFinal(string serverFirst)
        {
            var attributes = serverFirst.Split(',').ToDictionary(a => a[0], a => a[2..]);
            var salt = Convert.FromBase64String(attributes['s']);
            int iterations = int.Parse(attributes['i'], System.Globalization.CultureInfo.InvariantCulture);
            var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
            var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
            var storedKey = SHA256.HashData(clientKey);
            var withoutProof = $"c=biws,r={attributes['r']}";
            var authMessage = Encoding.UTF8.GetBytes($"{ClientFirstBare},{serverFirst},{withoutProof}");
            var signature = HMACSHA256.HashData(storedKey, authMessage);
            for (int i = 0; i < clientKey.Length; i++)
            {
                clientKey[i] ^= signature[i];
            }

            return $"{withoutProof},p={Convert.ToBase64String(clientKey)}";
        }
    }
}
