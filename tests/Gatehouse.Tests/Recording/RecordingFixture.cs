using System.Diagnostics;
using Gatehouse.Engine.Recording;

namespace Gatehouse.Tests.Recording;

/// <summary>A temporary recording directory, a key, and helpers to make and inspect recordings.</summary>
internal sealed class RecordingFixture : IDisposable
{
    public static readonly RecordingKey Key = new("test-key-1", Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());

    public RecordingFixture()
    {
        Directory = Path.Combine(Path.GetTempPath(), "gatehouse-recording-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public RecordingOptions Options(int blockSize = 4096, int maxBuffered = 1024 * 1024, int flushMs = 50, RecordingKey? key = null) => new()
    {
        Directory = Directory,
        Key = key ?? Key,
        BlockSize = blockSize,
        MaxBufferedBytes = maxBuffered,
        FlushInterval = TimeSpan.FromMilliseconds(flushMs),
        GatewayVersion = "test",
    };

    public static RecordingSessionInfo Session(string id) => new(id, "postgresql")
    {
        Identity = "alice",
        Connection = "orders",
        ClientAddress = "192.0.2.7:51234",
        StartTime = new DateTimeOffset(2025, 3, 14, 15, 9, 26, TimeSpan.Zero),
    };

    /// <summary>Deterministic protocol-looking payloads, 20 to 220 bytes.</summary>
    public static List<(RecordKind Kind, RecordDirection Direction, byte[] Payload)> Events(int count, int seed = 7)
    {
        var random = new Random(seed);
        var events = new List<(RecordKind, RecordDirection, byte[])>(count);
        for (int i = 0; i < count; i++)
        {
            bool client = i % 3 == 0;
            var payload = new byte[random.Next(20, 220)];
            for (int j = 0; j < payload.Length; j++)
            {
                payload[j] = (byte)(j % 7 == 0 ? random.Next(256) : 'a' + (i + j) % 26);
            }

            payload[0] = client ? (byte)'Q' : (byte)'D';
            events.Add((client ? RecordKind.ClientMessage : RecordKind.ServerMessage,
                client ? RecordDirection.ClientToServer : RecordDirection.ServerToClient, payload));
        }

        return events;
    }

    /// <summary>Records <paramref name="count"/> events into a sealed recording and returns its path.</summary>
    public async Task<string> RecordAsync(string sessionId, int count = 300, RecordingOptions? options = null)
    {
        await using var service = new RecordingService(options ?? Options());
        var writer = service.Start(Session(sessionId));
        foreach (var (kind, direction, payload) in Events(count))
        {
            Assert.Equal(RecordingStatus.Recorded, writer.Append(kind, direction, payload));
        }

        await writer.DisposeAsync();
        Assert.Equal(RecordingWriterState.Closed, writer.State);
        return writer.Path!;
    }

    public static async Task<List<RecordingEvent>> ReadAllAsync(string path, RecordingKey? key = null, RecordingReaderOptions? options = null)
    {
        await using var reader = RecordingReader.Open(path, key ?? Key, options);
        var events = new List<RecordingEvent>();
        await foreach (var e in reader.ReadEventsAsync())
        {
            events.Add(e);
        }

        return events;
    }

    /// <summary>Runs the stock lz4 tool; fails (never skips) when it is not installed.</summary>
    public static (int ExitCode, byte[] Stdout, string Stderr) Lz4(params string[] arguments)
        => Run("lz4", "install it (apt-get install lz4) or run scripts/test.sh, which does", null, arguments);

    /// <summary>Runs a program; fails (never skips) when it is not installed, saying how to install it.</summary>
    public static (int ExitCode, byte[] Stdout, string Stderr) Run(string program, string install, byte[]? stdin, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Assert.Fail($"the {program} command is not installed ({ex.Message}): {install}");
            throw;
        }

        using (process)
        {
            using var stdout = new MemoryStream();
            var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
            if (stdin is not null)
            {
                process.StandardInput.BaseStream.Write(stdin);
                process.StandardInput.Close();
            }

            string stderr = process.StandardError.ReadToEnd();
            copy.GetAwaiter().GetResult();
            process.WaitForExit();
            return (process.ExitCode, stdout.ToArray(), stderr);
        }
    }

    /// <summary>The repository's root (where Engine.sln is).</summary>
    public static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Engine.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("no Engine.sln above " + AppContext.BaseDirectory);
    }

    /// <summary>Walks a decompressed block as docs/recording-format.md describes its records.</summary>
    public static List<(RecordKind Kind, int RecordOffset, int PayloadOffset, int PayloadLength)> Records(ReadOnlySpan<byte> plain)
    {
        var records = new List<(RecordKind, int, int, int)>();
        int position = 0;
        while (position < plain.Length)
        {
            int start = position;
            var kind = (RecordKind)plain[position];
            position += 2;
            while (plain[position++] >= 0x80)
            {
            }

            ulong length = 0;
            int shift = 0;
            byte b;
            do
            {
                b = plain[position++];
                length |= (ulong)(b & 0x7F) << shift;
                shift += 7;
            }
            while (b >= 0x80);

            records.Add((kind, start, position, (int)length));
            position += (int)length;
        }

        return records;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
