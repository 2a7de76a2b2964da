using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Security.Cryptography;
using Gatehouse.Host.Cli;
using Gatehouse.Host.Review;

namespace Gatehouse.Tests.Review;

/// <summary>
/// The HTML review in a real browser: headless Chromium (Debian's <c>chromium</c>, installed by scripts/test.sh)
/// renders the page to a screenshot and dumps the DOM after the page's script ran. Without Chromium the test fails
/// and says how to install it; it never skips.
/// </summary>
public sealed class ReviewHtmlChromiumTests : IAsyncLifetime
{
    private ReviewScenario _scenario = null!;
    private string _folder = null!;

    public async Task InitializeAsync()
    {
        _scenario = await ReviewScenario.CreateAsync();
        _folder = Path.Combine(Path.GetTempPath(), $"gatehouse-review-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        Directory.CreateDirectory(_folder);
    }

    public async Task DisposeAsync()
    {
        await _scenario.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Chromium_renders_the_timeline_and_tables_and_the_payload_in_a_statement_stays_text()
    {
        string chromium = FindChromium();
        var report = await _scenario.BuildAsync();
        string page = Path.Combine(_folder, "review.html");
        await File.WriteAllTextAsync(page, ReviewCommand.Render(report, "html"));
        string url = new Uri(page).AbsoluteUri;

        // The DOM after the page's script ran.
        var (dom, domError) = await RunAsync(chromium, ["--dump-dom", url]);
        Assert.True(dom.Contains("data-ready=\"true\"", StringComparison.Ordinal), $"the page's script did not run; chromium said:\n{domError}");
        Assert.Contains("3 identities, 4 sessions. Click a session", dom, StringComparison.Ordinal);
        foreach (var identity in new[] { "alice", "bob", "carol" })
        {
            Assert.Contains($"<h2>{identity}</h2>", dom, StringComparison.Ordinal);
        }

        Assert.Equal(4, Occurrences(dom, "<tr class=\"session-row"));
        Assert.Contains(">101</a>", dom, StringComparison.Ordinal);
        Assert.Contains(">run_a/2</a>", dom, StringComparison.Ordinal);
        Assert.Contains("DAMAGED: not trustworthy", dom, StringComparison.Ordinal);
        Assert.Equal(3, Occurrences(dom, "<svg class=\"timeline\""));

        // The attacker's markup is text: no element, no attribute set by it, the title untouched.
        int body = dom.IndexOf("<body", StringComparison.Ordinal);
        Assert.Equal("<body data-ready=\"true\">", dom[body..(dom.IndexOf('>', body) + 1)]);
        Assert.DoesNotContain("<img", dom, StringComparison.Ordinal);
        Assert.DoesNotContain("<b>bold</b>", dom, StringComparison.Ordinal);
        Assert.Contains("&lt;img src=x onerror=", dom, StringComparison.Ordinal);
        Assert.Contains("<title>Gatehouse access review 2030-01-02T09:00:00Z to 2030-01-02T15:00:00Z</title>", dom, StringComparison.Ordinal);
        Assert.Equal(1, Occurrences(dom, "<script>"));

        // The screenshot: the requested size, and not blank.
        string shot = Path.Combine(_folder, "review.png");
        var (_, shotError) = await RunAsync(chromium, [$"--screenshot={shot}", "--window-size=1400,1000", url]);
        Assert.True(File.Exists(shot), $"chromium wrote no screenshot; it said:\n{shotError}");
        var png = Png.Read(await File.ReadAllBytesAsync(shot));
        Assert.Equal((1400, 1000), (png.Width, png.Height));
        Assert.True(png.DistinctColors >= 16, $"the screenshot has {png.DistinctColors} colours: blank?");
        Assert.True(png.NonBackgroundShare > 0.02, $"only {png.NonBackgroundShare:P1} of the screenshot differs from its background: blank?");

        // To look at the page and the screenshot: GATEHOUSE_TEST_ARTIFACTS=/some/folder.
        if (Environment.GetEnvironmentVariable("GATEHOUSE_TEST_ARTIFACTS") is { Length: > 0 } keep)
        {
            Directory.CreateDirectory(keep);
            File.Copy(page, Path.Combine(keep, "review.html"), overwrite: true);
            File.Copy(shot, Path.Combine(keep, "review.png"), overwrite: true);
        }
    }

    /// <summary>Chromium on PATH, or a failure that says how to get it.</summary>
    private static string FindChromium()
    {
        foreach (var folder in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var name in new[] { "chromium", "chromium-browser" })
            {
                string candidate = Path.Combine(folder, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        Assert.Fail("chromium is not installed, and this test renders the HTML review in it: apt-get install -y chromium (scripts/test.sh installs it)");
        return "";
    }

    private async Task<(string Stdout, string Stderr)> RunAsync(string chromium, string[] arguments)
    {
        var start = new ProcessStartInfo(chromium)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
                     $"--user-data-dir={Path.Combine(_folder, "profile")}",
                 }.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"chromium did not finish within 120 s: {string.Join(' ', arguments)}");
        }

        string output = await stdout;
        string error = await stderr;
        Assert.True(process.ExitCode == 0, $"chromium exited with {process.ExitCode}:\n{error}");
        return (output, error);
    }

    private static int Occurrences(string text, string part)
    {
        int count = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>Just enough of PNG to check a screenshot: the header's size, and the pixels (8-bit, not interlaced) for variety.</summary>
    private sealed record Png(int Width, int Height, int DistinctColors, double NonBackgroundShare)
    {
        public static Png Read(byte[] file)
        {
            Assert.True(file.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "not a PNG file");
            int width = 0, height = 0, channels = 0;
            using var idat = new MemoryStream();
            for (int at = 8; at + 8 <= file.Length;)
            {
                int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
                string type = System.Text.Encoding.ASCII.GetString(file, at + 4, 4);
                var data = file.AsSpan(at + 8, length);
                if (type == "IHDR")
                {
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    Assert.Equal(8, data[8]); // bit depth
                    Assert.Equal(0, data[12]); // no interlace
                    channels = data[9] switch { 0 => 1, 2 => 3, 4 => 2, 6 => 4, _ => throw new InvalidDataException($"PNG colour type {data[9]}") };
                }
                else if (type == "IDAT")
                {
                    idat.Write(data);
                }
                else if (type == "IEND")
                {
                    break;
                }

                at += 12 + length;
            }

            idat.Position = 0;
            using var inflated = new MemoryStream();
            using (var z = new ZLibStream(idat, CompressionMode.Decompress))
            {
                z.CopyTo(inflated);
            }

            byte[] raw = inflated.ToArray();
            int stride = width * channels;
            Assert.Equal((stride + 1) * height, raw.Length);
            var pixels = new byte[stride * height];
            for (int y = 0; y < height; y++)
            {
                byte filter = raw[y * (stride + 1)];
                var line = raw.AsSpan((y * (stride + 1)) + 1, stride);
                var row = pixels.AsSpan(y * stride, stride);
                var up = y == 0 ? null : pixels.AsSpan((y - 1) * stride, stride).ToArray();
                for (int x = 0; x < stride; x++)
                {
                    int a = x >= channels ? row[x - channels] : 0;
                    int b = up?[x] ?? 0;
                    int c = x >= channels && up is not null ? up[x - channels] : 0;
                    row[x] = (byte)(line[x] + filter switch
                    {
                        0 => 0,
                        1 => a,
                        2 => b,
                        3 => (a + b) / 2,
                        4 => Paeth(a, b, c),
                        _ => throw new InvalidDataException($"PNG filter {filter}"),
                    });
                }
            }

            var counts = new Dictionary<int, int>();
            for (int i = 0; i < pixels.Length; i += channels)
            {
                int rgb = channels >= 3 ? (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2] : pixels[i];
                counts[rgb] = counts.GetValueOrDefault(rgb) + 1;
            }

            int background = counts.Values.Max();
            return new Png(width, height, counts.Count, 1 - ((double)background / (width * height)));
        }

        private static int Paeth(int a, int b, int c)
        {
            int p = a + b - c;
            int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
            return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        }
    }
}
