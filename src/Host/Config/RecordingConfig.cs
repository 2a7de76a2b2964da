using System.Security.Cryptography;
using System.Text;
using Gatehouse.Engine.Recording;
using Gatehouse.Engine.Secrets;

namespace Gatehouse.Host.Config;

/// <summary>
/// The <c>recording</c> section (docs/configuration.md#recording): where session recordings go, the key that signs
/// them, what a session does when recording cannot keep up, and how long recordings are kept. On by default: a
/// gateway records every session unless the config says <c>recording: off</c>.
/// </summary>
/// <param name="Directory">The recordings folder (full path).</param>
public sealed record RecordingConfig(string Directory)
{
    /// <summary>The folder when the config does not say: next to the config file.</summary>
    public const string DefaultDirectory = "recordings";

    /// <summary>The generated key's file name when no key is configured: next to the state database.</summary>
    public const string DefaultKeyFile = "gatehouse.recording.key";

    /// <summary>False only with <c>recording: off</c>: sessions then run unrecorded (an explicit opt-out, logged at start).</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>The signing key (<c>key: { env | file | value }</c>); null: <see cref="GeneratedKeyFile"/>.</summary>
    public SecretReference? Key { get; init; }

    /// <summary>Where the key is kept when none is configured: created (32 random bytes, hex, mode 0600) on first start.</summary>
    public string? GeneratedKeyFile { get; init; }

    /// <summary>What a session does when its recording cannot keep up (default: pause until it can).</summary>
    public RecordingBackpressure OnBackpressure { get; init; } = RecordingBackpressure.Pause;

    /// <summary>Recordings older than this are deleted (<c>retention.max_age</c>); null keeps them.</summary>
    public TimeSpan? MaxAge { get; init; }

    /// <summary>The oldest recordings are deleted beyond this total (<c>retention.max_size</c>); null: no limit.</summary>
    public long? MaxTotalBytes { get; init; }

    /// <summary>fsync after every write pass (<c>flush_to_disk</c>); see <see cref="RecordingOptions.FlushToDisk"/>.</summary>
    public bool FlushToDisk { get; init; }

    /// <summary>How often retention runs.</summary>
    public TimeSpan RetentionInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The signing key: the configured secret, or the generated key file (created when <paramref name="create"/> and
    /// missing). The key id written into recordings is a fingerprint (the first 8 bytes of its SHA-256, hex), so a
    /// reader can tell which key a recording needs without the key being named anywhere.
    /// </summary>
    /// <exception cref="InvalidOperationException">The key cannot be read, is too short, or is missing and not created.</exception>
    public RecordingKey LoadKey(bool create)
    {
        string text;
        if (Key is not null)
        {
            try
            {
                text = Key.Resolve();
            }
            catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"cannot read the recording key ({Key}): {ex.Message}", ex);
            }
        }
        else
        {
            string file = GeneratedKeyFile ?? throw new InvalidOperationException("no recording key is configured");
            if (!File.Exists(file))
            {
                if (!create)
                {
                    throw new InvalidOperationException($"the recording key file {file} does not exist (the gateway creates it on its first start)");
                }

                CreateKeyFile(file);
            }

            try
            {
                text = File.ReadAllText(file);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"cannot read the recording key file {file}: {ex.Message}", ex);
            }
        }

        byte[] secret = Encoding.UTF8.GetBytes(text.Trim());
        if (secret.Length < RecordingKey.MinimumLength)
        {
            throw new InvalidOperationException($"the recording key is shorter than {RecordingKey.MinimumLength} bytes; use 32 random bytes (openssl rand -hex 32)");
        }

        string id = Convert.ToHexStringLower(SHA256.HashData(secret).AsSpan(0, 8));
        try
        {
            return new RecordingKey(id, secret);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    private static void CreateKeyFile(string file)
    {
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using var stream = new FileStream(file, options);
            stream.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) + "\n"));
        }
        catch (IOException) when (File.Exists(file))
        {
            // Another process created it first: use theirs.
        }
    }
}
