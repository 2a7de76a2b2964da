namespace Gatehouse.Policy.Sql;

/// <summary>What a statement may do. Flags combine: <c>COPY t FROM '/f'</c> is Copy | Write | FileAccess.</summary>
[Flags]
public enum StatementClass : ushort
{
    None = 0,

    /// <summary>SELECT, VALUES, TABLE, SHOW, FETCH, EXPLAIN without ANALYZE, COPY ... TO.</summary>
    Read = 1 << 0,

    /// <summary>INSERT, UPDATE, DELETE, MERGE (also inside a WITH), COPY ... FROM, TRUNCATE, SELECT INTO, REFRESH.</summary>
    Write = 1 << 1,

    /// <summary>CREATE, ALTER, DROP, TRUNCATE, COMMENT, SECURITY LABEL, IMPORT FOREIGN SCHEMA, SELECT INTO.</summary>
    Ddl = 1 << 2,

    /// <summary>GRANT, REVOKE, roles, SET ROLE / SESSION AUTHORIZATION (and their RESET), set_config('role'), OWNER TO.</summary>
    Privilege = 1 << 3,

    /// <summary>VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOAD, ALTER SYSTEM, databases, tablespaces, server signals.</summary>
    Admin = 1 << 4,

    /// <summary>COPY; see <see cref="CopyDetail"/>.</summary>
    Copy = 1 << 5,

    /// <summary>Code whose effect is not visible here: DO, functions, procedures, rules, triggers, PREPARE/EXECUTE, CALL, EXPLAIN ANALYZE of a write, COPY PROGRAM, SQL run from strings (query_to_xml, dblink).</summary>
    OpaqueCode = 1 << 6,

    /// <summary>Server file system: pg_read_file and friends, large objects (lo_*), COPY to/from a file or program.</summary>
    FileAccess = 1 << 7,

    /// <summary>BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION, SET TRANSACTION, LOCK.</summary>
    Transaction = 1 << 8,

    /// <summary>SET, RESET, DISCARD, LISTEN, NOTIFY, DEALLOCATE, CLOSE.</summary>
    Session = 1 << 9,

    /// <summary>Not understood: fail closed.</summary>
    Unknown = 1 << 10,
}

/// <summary>Risky shapes inside a statement.</summary>
[Flags]
public enum StatementShape : byte
{
    None = 0,
    DeleteWithoutWhere = 1 << 0,
    UpdateWithoutWhere = 1 << 1,
    Truncate = 1 << 2,
    Drop = 1 << 3,
}

/// <summary>Direction and endpoint of a COPY (PostgreSQL docs: SQL Commands, COPY).</summary>
[Flags]
public enum CopyDetail : byte
{
    None = 0,

    /// <summary>COPY ... TO: data leaves the server.</summary>
    To = 1 << 0,

    /// <summary>COPY ... FROM: data enters a table.</summary>
    From = 1 << 1,

    /// <summary>STDIN / STDOUT: the data flows over this connection.</summary>
    Client = 1 << 2,

    /// <summary>A server-side file name.</summary>
    File = 1 << 3,

    /// <summary>PROGRAM: a shell command on the server.</summary>
    Program = 1 << 4,
}

/// <summary>What an extracted object name is.</summary>
public enum SqlObjectKind : byte
{
    Relation,
    Function,
}

/// <summary>
/// A referenced object: the byte range of its possibly schema-qualified, possibly quoted name in the classified
/// text (e.g. <c>public."Orders"</c>), and how many dotted parts it has.
/// </summary>
public readonly record struct SqlObjectRef(SqlObjectKind Kind, int Start, int Length, byte Parts);

/// <summary>The classification of one statement.</summary>
/// <param name="ObjectCount">Objects written to the caller's span.</param>
/// <param name="ObjectsTruncated">More objects were referenced than the span could hold.</param>
public readonly record struct SqlStatementInfo(StatementClass Class, StatementShape Shape, CopyDetail Copy, int ObjectCount, bool ObjectsTruncated);

/// <summary>The union over all statements of a multi-statement text.</summary>
public readonly record struct SqlScriptInfo(StatementClass Class, StatementShape Shape, CopyDetail Copy, int StatementCount);
