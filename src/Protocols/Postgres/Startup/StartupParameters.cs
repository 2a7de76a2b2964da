using System.Text;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres;

/// <summary>A startup parameter the gateway refuses, with the error to send.</summary>
internal sealed record StartupError(string SqlState, string Message, string? Hint = null);

/// <summary>
/// The StartupMessage's name/value pairs, sorted into: who (user, database), what is passed upstream (an
/// allow-list of session settings), protocol extensions to decline, and what is refused. Anything not on the
/// allow-list is refused rather than passed on: startup parameters set server settings (including the role
/// and, through "options", any setting at all), so an unknown one is a way around the gateway.
/// </summary>
internal sealed class StartupParameters
{
    /// <summary>Session settings a client may set at startup. Compared case-insensitively, as PostgreSQL does.</summary>
    private static readonly HashSet<string> Allowed = new(StringComparer.OrdinalIgnoreCase)
    {
        "application_name", "client_encoding", "DateStyle", "TimeZone", "extra_float_digits", "IntervalStyle",
        "search_path", "lc_messages", "lc_monetary", "lc_numeric", "lc_time", "bytea_output", "statement_timeout",
        "lock_timeout", "idle_in_transaction_session_timeout", "standard_conforming_strings",
    };

    public string? User { get; private set; }

    public string? Database { get; private set; }

    public List<KeyValuePair<string, string>> Forwarded { get; } = [];

    /// <summary>"_pq_." protocol options the client asked for; 3.0 supports none.</summary>
    public List<string> ProtocolOptions { get; } = [];

    public StartupError? Error { get; private set; }

    /// <summary>Parses the pairs after the protocol version: name NUL value NUL ... NUL.</summary>
    public static StartupParameters Parse(ReadOnlySpan<byte> pairs)
    {
        var result = new StartupParameters();
        while (true)
        {
            if (pairs.IsEmpty)
            {
                return result.Fail(SqlState.ProtocolViolation, "invalid startup packet layout: expected terminator as last byte");
            }

            if (pairs[0] == 0)
            {
                if (pairs.Length != 1)
                {
                    return result.Fail(SqlState.ProtocolViolation, "invalid startup packet layout: data after the terminator");
                }

                break;
            }

            int nameEnd = pairs.IndexOf((byte)0);
            if (nameEnd < 0)
            {
                return result.Fail(SqlState.ProtocolViolation, "invalid startup packet layout");
            }

            var rest = pairs[(nameEnd + 1)..];
            int valueEnd = rest.IndexOf((byte)0);
            if (valueEnd < 0)
            {
                return result.Fail(SqlState.ProtocolViolation, "invalid startup packet layout: missing value");
            }

            string name, value;
            try
            {
                name = Strict.GetString(pairs[..nameEnd]);
                value = Strict.GetString(rest[..valueEnd]);
            }
            catch (DecoderFallbackException)
            {
                return result.Fail(SqlState.ProtocolViolation, "startup parameters must be valid UTF-8");
            }

            pairs = rest[(valueEnd + 1)..];
            if (result.Add(name, value) is { } error)
            {
                result.Error = error;
                return result;
            }
        }

        if (string.IsNullOrEmpty(result.User))
        {
            return result.Fail(SqlState.InvalidAuthorization, "no user name in the startup message");
        }

        if (result.Database == "")
        {
            result.Database = null;
        }

        return result;
    }

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private StartupError? Add(string name, string value)
    {
        switch (name)
        {
            case "user":
                User = value;
                return null;
            case "database":
                Database = value;
                return null;
            case "replication":
                // libpq sends replication only when asked; "false" variants mean an ordinary session.
                return value.ToLowerInvariant() is "false" or "off" or "no" or "0"
                    ? null
                    : new StartupError(SqlState.InsufficientPrivilege, "replication connections are not allowed through the gateway");
            case "options":
                return new StartupError(SqlState.InsufficientPrivilege, "the startup parameter \"options\" is not allowed through the gateway",
                    "set session parameters with SET after connecting");
        }

        if (name.StartsWith("_pq_.", StringComparison.Ordinal))
        {
            ProtocolOptions.Add(name);
            return null;
        }

        if (!Allowed.Contains(name))
        {
            return new StartupError(SqlState.InsufficientPrivilege, $"the startup parameter \"{name}\" is not allowed through the gateway",
                "set session parameters with SET after connecting");
        }

        if (name.Equals("search_path", StringComparison.OrdinalIgnoreCase) && PutsCatalogLate(value))
        {
            return new StartupError(SqlState.InsufficientPrivilege,
                "a search_path that puts pg_catalog after another schema is not allowed through the gateway",
                "leave pg_catalog out of search_path, or name it first");
        }

        Forwarded.Add(new(name, value));
        return null;
    }

    /// <summary>
    /// Whether a search_path value names pg_catalog after another schema: unqualified functions and operators would
    /// then resolve to that schema's objects before the built-ins, so a statement's text would no longer say what
    /// it calls (SET search_path in SQL is classified the same way).
    /// </summary>
    private static bool PutsCatalogLate(string value)
    {
        var elements = value.Split(',');
        for (int i = 1; i < elements.Length; i++)
        {
            var element = elements[i].Trim();
            if (element.Length >= 2 && element[0] == '"' && element[^1] == '"')
            {
                if (element[1..^1] == "pg_catalog")
                {
                    return true;
                }
            }
            else if (element.Equals("pg_catalog", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private StartupParameters Fail(string sqlState, string message)
    {
        Error = new StartupError(sqlState, message);
        return this;
    }
}
