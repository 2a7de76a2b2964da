using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Gatehouse.Protocols.Postgres.Cancel;

/// <summary>Where a cancel request for one session must go, with the upstream's own keys.</summary>
internal sealed record CancelTarget(PgConnectionTarget Connection, int UpstreamProcessId, int UpstreamSecretKey)
{
    /// <summary>Runs when a valid CancelRequest for the session arrives, before it is forwarded upstream.</summary>
    public Action? Cancelled { get; set; }
}

/// <summary>
/// Maps the BackendKeyData the gateway gave each client to that session's upstream keys. Clients never see the
/// upstream's keys, so a client can cancel only its own session's query, and only through the gateway. Keys are
/// random (not sequential) so that one session's key says nothing about another's.
/// </summary>
internal sealed class CancelRegistry
{
    private readonly ConcurrentDictionary<int, (int SecretKey, CancelTarget Target)> _byProcessId = new();

    /// <summary>Issues a fresh (process id, secret key) pair for a session and remembers where it leads.</summary>
    public (int ProcessId, int SecretKey) Register(CancelTarget target)
    {
        int secretKey = RandomNumberGenerator.GetInt32(int.MinValue, int.MaxValue);
        while (true)
        {
            // Positive process ids, as real servers use; collisions are retried.
            int processId = RandomNumberGenerator.GetInt32(1, int.MaxValue);
            if (_byProcessId.TryAdd(processId, (secretKey, target)))
            {
                return (processId, secretKey);
            }
        }
    }

    public void Unregister(int processId) => _byProcessId.TryRemove(processId, out _);

    /// <summary>Finds the target for a cancel request; the key is compared in constant time.</summary>
    public bool TryResolve(int processId, int secretKey, out CancelTarget? target)
    {
        target = null;
        if (!_byProcessId.TryGetValue(processId, out var entry))
        {
            return false;
        }

        // Constant-time comparison: a timing difference must not help guess a key.
        Span<byte> expected = stackalloc byte[4];
        Span<byte> actual = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(expected, entry.SecretKey);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(actual, secretKey);
        if (!CryptographicOperations.FixedTimeEquals(expected, actual))
        {
            return false;
        }

        target = entry.Target;
        return true;
    }
}
