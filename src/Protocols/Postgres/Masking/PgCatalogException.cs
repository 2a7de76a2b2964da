namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>
/// A catalog load failed. The message says why in words fit for a log line: the step that failed and the
/// upstream's SQLSTATE, never row data or a view's definition.
/// </summary>
internal sealed class PgCatalogException : Exception
{
    public PgCatalogException(string message, Exception? innerException = null, bool connectionLost = false)
        : base(message, innerException)
    {
        ConnectionLost = connectionLost;
    }

    /// <summary>The connection to the upstream broke (closed, reset): a new connection may succeed at once.</summary>
    public bool ConnectionLost { get; }
}
