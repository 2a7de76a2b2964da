namespace Gatehouse.Policy.Sql;

/// <summary>Built-in functions whose call changes the class of a statement (docs 9.27 System Administration Functions, 35 Large Objects).</summary>
internal static class SqlFunctions
{
    private const int MaxLength = 40;

    /// <summary>
    /// The classes a call to <paramref name="name"/> adds. Unquoted names fold to lower case; a quoted name
    /// must match exactly, so <c>"PG_READ_FILE"</c> is some other (user) function.
    /// </summary>
    public static StatementClass Risk(ReadOnlySpan<byte> name, bool quoted, out bool isSetConfig)
    {
        isSetConfig = false;
        Span<char> buffer = stackalloc char[MaxLength];
        if (!SqlKeywords.TryLower(name, buffer, out int length) || (quoted && name.IndexOfAnyInRange((byte)'A', (byte)'Z') >= 0))
        {
            return StatementClass.None;
        }

        ReadOnlySpan<char> n = buffer[..length];
        if (n.SequenceEqual("set_config"))
        {
            // The classifier decides Session or Privilege from the first argument.
            isSetConfig = true;
            return StatementClass.None;
        }

        // Large objects live in the database but lo_import/lo_export move them to and from server files;
        // loread/lowrite are the server-side spellings of lo_read/lo_write.
        if (n.StartsWith("lo_") || n.SequenceEqual("loread") || n.SequenceEqual("lowrite")
            || n.StartsWith("pg_ls_") || n.StartsWith("pg_file_") || n.StartsWith("pg_read_")
            || n.SequenceEqual("pg_stat_file") || n.SequenceEqual("pg_logdir_ls"))
        {
            return StatementClass.FileAccess;
        }

        // Functions that run SQL given as text: the statement inside is invisible to this classifier.
        if (n.StartsWith("query_to_xml") || n.StartsWith("dblink"))
        {
            return StatementClass.OpaqueCode;
        }

        if (n.SequenceEqual("pg_reload_conf") || n.SequenceEqual("pg_terminate_backend") || n.SequenceEqual("pg_cancel_backend")
            || n.SequenceEqual("pg_rotate_logfile") || n.SequenceEqual("pg_promote") || n.SequenceEqual("pg_switch_wal")
            || n.SequenceEqual("pg_create_restore_point") || n.StartsWith("pg_backup_"))
        {
            return StatementClass.Admin;
        }

        return StatementClass.None;
    }
}
