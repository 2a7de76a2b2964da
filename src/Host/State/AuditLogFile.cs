using System.Text.Json;
using Gatehouse.Policy.Access;

namespace Gatehouse.Host.State;

/// <summary>
/// The audit trail as an append-only JSON-lines file (<c>state.audit_log</c>) that log shippers can tail: one object
/// per event, written by the audit writer's background task after each batch, flushed to disk per batch. The file
/// is only ever appended to (opened with FileMode.Append, mode 0600); rotation is the shipper's (copytruncate is
/// safe: every batch is one write). Statement texts and tokens are never in an event, so never in the file.
/// </summary>
public sealed class AuditLogFile : IDisposable
{
    private readonly FileStream _file;
    private readonly MemoryStream _batch = new();
    private readonly Utf8JsonWriter _json;

    public AuditLogFile(string path)
    {
        Path = path;
        var options = new FileStreamOptions
        {
            Mode = FileMode.Append,
            Access = FileAccess.Write,
            Share = FileShare.ReadWrite | FileShare.Delete, // shippers read it; rotation may move it
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        _file = new FileStream(path, options);
        _json = new Utf8JsonWriter(_batch, new JsonWriterOptions { SkipValidation = true });
    }

    public string Path { get; }

    /// <summary>Appends the events as JSON lines, in one write, and flushes them to disk.</summary>
    public void Append(IReadOnlyList<AuditEvent> events)
    {
        _batch.SetLength(0);
        foreach (var e in events)
        {
            _json.Reset();
            _json.WriteStartObject();
            _json.WriteString("at"u8, e.At.ToUniversalTime());
            _json.WriteString("kind"u8, e.Kind);
            Optional("identity"u8, e.Identity);
            Optional("connection"u8, e.Connection);
            if (e.SessionId is { } session)
            {
                _json.WriteNumber("session"u8, session);
            }

            Optional("subject"u8, e.Subject);
            Optional("actor"u8, e.Actor);
            Optional("detail"u8, e.Detail);
            _json.WriteEndObject();
            _json.Flush();
            _batch.WriteByte((byte)'\n');
        }

        _file.Write(_batch.GetBuffer(), 0, (int)_batch.Length);
        _file.Flush(flushToDisk: true);
    }

    private void Optional(ReadOnlySpan<byte> name, string? value)
    {
        if (value is not null)
        {
            _json.WriteString(name, value);
        }
    }

    public void Dispose()
    {
        _json.Dispose();
        _file.Dispose();
        _batch.Dispose();
    }
}
