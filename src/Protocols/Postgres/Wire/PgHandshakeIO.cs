using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Gatehouse.Engine.Sessions;

namespace Gatehouse.Protocols.Postgres.Wire;

/// <summary>A message read during the handshake: its code (0 for untyped startup packets) and its body.</summary>
internal readonly record struct HandshakeMessage(byte Code, byte[] Body);

/// <summary>
/// Reads whole messages during the handshake, when each one decides what comes next. Bodies are copied out
/// (a handful per session); the relay phase never comes through here.
/// </summary>
internal static class PgHandshakeIO
{
    /// <summary>Reads an untyped startup-phase packet (Int32 length including itself, then the body).</summary>
    public static ValueTask<HandshakeMessage?> ReadStartupPacketAsync(PipeReader input, int maxLength, CancellationToken cancellationToken) =>
        ReadAsync(input, typed: false, maxLength, cancellationToken);

    /// <summary>Reads a typed message (Byte1 code, Int32 length including itself, then the body).</summary>
    public static ValueTask<HandshakeMessage?> ReadMessageAsync(PipeReader input, int maxLength, CancellationToken cancellationToken) =>
        ReadAsync(input, typed: true, maxLength, cancellationToken);

    /// <summary>True when bytes beyond what was consumed are already buffered (checked before a TLS upgrade).</summary>
    public static bool HasBufferedBytes(PipeReader input)
    {
        if (!input.TryRead(out var result))
        {
            return false;
        }

        bool any = !result.Buffer.IsEmpty;
        input.AdvanceTo(result.Buffer.Start);
        return any;
    }

    /// <summary>Reads the single-byte answer to an SSLRequest ('S' or 'N'), or an error message start ('E').</summary>
    public static async ValueTask<byte> ReadByteAsync(PipeReader input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (!result.Buffer.IsEmpty)
            {
                byte value = result.Buffer.FirstSpan[0];
                input.AdvanceTo(result.Buffer.GetPosition(1));
                return value;
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                throw new PgHandshakeException(SqlState.ConnectionFailure, "the connection closed during the handshake", peerClosed: true);
            }
        }
    }

    private static async ValueTask<HandshakeMessage?> ReadAsync(PipeReader input, bool typed, int maxLength, CancellationToken cancellationToken)
    {
        int headerLength = typed ? 5 : 4;
        var header = new byte[5];
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length >= headerLength)
            {
                buffer.Slice(0, headerLength).CopyTo(header);
                byte code = typed ? header[0] : (byte)0;
                int length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(headerLength - 4));

                // The length counts itself; the startup packet also carries at least its request code.
                int minimum = typed ? 4 : 8;
                if (length < minimum || length > maxLength)
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                    throw new PgHandshakeException(SqlState.ProtocolViolation,
                        length > maxLength ? "handshake message too large" : "invalid handshake message length");
                }

                int total = length + (typed ? 1 : 0);
                if (buffer.Length >= total)
                {
                    var body = buffer.Slice(headerLength, total - headerLength).ToArray();
                    input.AdvanceTo(buffer.GetPosition(total));
                    return new HandshakeMessage(code, body);
                }
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                if (buffer.IsEmpty)
                {
                    return null;
                }

                throw new PgHandshakeException(SqlState.ProtocolViolation, "the connection closed in the middle of a handshake message", peerClosed: true);
            }
        }
    }
}

/// <summary>
/// A handshake that cannot go on: the SQLSTATE and message to send to the client (when it can still hear us).
/// Thrown once per failed session, on the handshake path only.
/// </summary>
internal sealed class PgHandshakeException(string sqlState, string message, bool peerClosed = false, string? detail = null, string? hint = null,
    SessionEndReason reason = SessionEndReason.ClientProtocolViolation)
    : Exception(message)
{
    public string SqlState { get; } = sqlState;

    /// <summary>True when the client is gone: there is nobody to send the error to.</summary>
    public bool PeerClosed { get; } = peerClosed;

    public SessionEndReason Reason { get; } = peerClosed ? SessionEndReason.ClientDisconnected : reason;

    public string? Detail { get; } = detail;

    public string? Hint { get; } = hint;
}
