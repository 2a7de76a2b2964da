using System.Text;

namespace Gatehouse.Engine.Recording;

/// <summary>
/// The key that signs recording seals (HMAC-SHA256), with the id written in each recording's header so that a reader
/// knows which key to verify with after a rotation. The key bytes are copied and never printed.
/// </summary>
public sealed class RecordingKey
{
    /// <summary>Shorter keys are refused: below 128 bits an HMAC key can be guessed offline from one recording.</summary>
    public const int MinimumLength = 16;

    private readonly byte[] _secret;

    /// <param name="id">A name for the key (1 to 255 UTF-8 bytes), written in the clear into every recording.</param>
    /// <param name="secret">The key bytes (at least <see cref="MinimumLength"/>; 32 random bytes recommended).</param>
    public RecordingKey(string id, ReadOnlySpan<byte> secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        if (Encoding.UTF8.GetByteCount(id) > 255)
        {
            throw new ArgumentException("A recording key id is at most 255 UTF-8 bytes.", nameof(id));
        }

        if (secret.Length < MinimumLength)
        {
            throw new ArgumentException($"A recording key is at least {MinimumLength} bytes.", nameof(secret));
        }

        Id = id;
        _secret = secret.ToArray();
    }

    /// <summary>The key's name, as written in recording headers.</summary>
    public string Id { get; }

    internal ReadOnlySpan<byte> Secret => _secret;

    /// <summary>The id only: the key bytes never reach a log line.</summary>
    public override string ToString() => $"RecordingKey({Id})";
}
