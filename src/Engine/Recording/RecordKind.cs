namespace Gatehouse.Engine.Recording;

/// <summary>
/// What a record in a session recording is (the first byte of every record; docs/recording-format.md). Values below
/// <see cref="SessionStart"/> frame the recording and are written by this library only; the others are session events.
/// A reader skips kinds it does not know: every record carries its length.
/// </summary>
public enum RecordKind : byte
{
    /// <summary>The file header: format version, session id, key id, chain nonce, start time. First record of block 0.</summary>
    Header = 0x01,

    /// <summary>The seal that ends every block: index, stream offset, hash chain link and keyed signature.</summary>
    Seal = 0x02,

    /// <summary>Written by crash recovery into the block that seals a recording its writer did not finish (JSON).</summary>
    Recovery = 0x03,

    /// <summary>Session metadata as a UTF-8 JSON object (session id, identity, connection, protocol, addresses, version).</summary>
    SessionStart = 0x10,

    /// <summary>Raw protocol bytes sent by the client (after masking; the caller removes secrets).</summary>
    ClientMessage = 0x11,

    /// <summary>Raw protocol bytes sent by the server (after masking).</summary>
    ServerMessage = 0x12,

    /// <summary>A statement as decided: text and decoded parameters (fields: <see cref="StatementFields"/>).</summary>
    Statement = 0x13,

    /// <summary>A policy decision: allowed, denied, held, approved... with rule and approver (<see cref="DecisionFields"/>).</summary>
    Decision = 0x14,

    /// <summary>What a statement returned: command tag, rows, columns (<see cref="ResultMetaFields"/>).</summary>
    ResultMeta = 0x15,

    /// <summary>An error, with the side it came from in the record's direction (<see cref="ErrorFields"/>).</summary>
    Error = 0x16,

    /// <summary>Why and how the session ended (<see cref="SessionEndFields"/>).</summary>
    SessionEnd = 0x17,
}

/// <summary>Which way the bytes of a record went. Events the gateway makes itself (decisions, ends) use <see cref="None"/>.</summary>
public enum RecordDirection : byte
{
    /// <summary>Not a message between peers (metadata, decisions, framing records).</summary>
    None = 0,

    /// <summary>From the client, relayed to the server.</summary>
    ClientToServer = 1,

    /// <summary>From the server, relayed to the client.</summary>
    ServerToClient = 2,

    /// <summary>Made by the gateway and sent to the client (a refusal, a substitute answer).</summary>
    GatewayToClient = 3,

    /// <summary>Made by the gateway and sent to the server (a substitute message, the upstream login).</summary>
    GatewayToServer = 4,
}
