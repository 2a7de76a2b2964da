namespace Gatehouse.Policy.Sql;

/// <summary>Keywords the classifier acts on. PostgreSQL folds unquoted identifiers to lower case (ASCII only in UTF-8 databases, 4.1.1), quoted ones are never keywords.</summary>
internal enum Kw : byte
{
    None,
    Abort, All, Alter, Analyse, Analyze, As, Atomic, Authorization, Begin, Binary, Call, Checkpoint, Close, Cluster,
    Comment, Commit, Concurrently, Constraint, Copy, Create, Database, Deallocate, Declare, Default, Delete, Discard,
    Do, Drop, End, Event, Except, Execute, Exists, Explain, Extension, Fetch, For, From, Function, Grant, Group, Having,
    If, Import, Insert, Intersect, Into, Join, Language, Lateral, Limit, Listen, Load, Local, Lock, Mapping, Merge,
    Move, Not, Notify, Offset, On, Only, Or, Order, Owned, Owner, Prepare, Prepared, Privileges, Procedure, Program,
    Reassign, Refresh, Reindex, Release, Replace, Reset, Returning, Revoke, Role, Rollback, Routine, Rule, Savepoint,
    Security, Select, Server, Session, SessionAuthorization, Set, Show, Start, Stdin, Stdout, Subscription, System,
    Table, Tablespace, Temp, Temporary, To, Transaction, Trigger, Truncate, Union, Unique, Unlisten, Unlogged, Update,
    User, Using, Vacuum, Values, Verbose, Where, Window, With, Trusted, Procedural, Global, Publication, Transform,
}

internal static class SqlKeywords
{
    private const int MaxLength = 24;

    /// <summary>ASCII case-insensitive equality with a lower-case literal.</summary>
    public static bool Equals(ReadOnlySpan<byte> word, ReadOnlySpan<byte> lower)
    {
        if (word.Length != lower.Length)
        {
            return false;
        }

        for (int i = 0; i < word.Length; i++)
        {
            if (Lower(word[i]) != lower[i])
            {
                return false;
            }
        }

        return true;
    }

    public static byte Lower(byte b) => (uint)(b - 'A') <= 'Z' - 'A' ? (byte)(b | 0x20) : b;

    /// <summary>Writes the ASCII-lower-cased word as chars; false when too long or not ASCII (then it is no keyword).</summary>
    public static bool TryLower(ReadOnlySpan<byte> word, Span<char> destination, out int length)
    {
        length = word.Length;
        if (word.Length > destination.Length)
        {
            return false;
        }

        for (int i = 0; i < word.Length; i++)
        {
            byte b = word[i];
            if (b >= 0x80)
            {
                return false;
            }

            destination[i] = (char)Lower(b);
        }

        return true;
    }

    public static Kw Lookup(ReadOnlySpan<byte> word)
    {
        Span<char> buffer = stackalloc char[MaxLength];
        if (!TryLower(word, buffer, out int length))
        {
            return Kw.None;
        }

        return buffer[..length] switch
        {
            "abort" => Kw.Abort, "all" => Kw.All, "alter" => Kw.Alter, "analyse" => Kw.Analyse, "analyze" => Kw.Analyze,
            "as" => Kw.As, "atomic" => Kw.Atomic, "authorization" => Kw.Authorization, "begin" => Kw.Begin,
            "binary" => Kw.Binary, "call" => Kw.Call, "checkpoint" => Kw.Checkpoint, "close" => Kw.Close,
            "cluster" => Kw.Cluster, "comment" => Kw.Comment, "commit" => Kw.Commit, "concurrently" => Kw.Concurrently,
            "constraint" => Kw.Constraint, "copy" => Kw.Copy, "create" => Kw.Create, "database" => Kw.Database,
            "deallocate" => Kw.Deallocate, "declare" => Kw.Declare, "default" => Kw.Default, "delete" => Kw.Delete,
            "discard" => Kw.Discard, "do" => Kw.Do, "drop" => Kw.Drop, "end" => Kw.End, "event" => Kw.Event,
            "except" => Kw.Except, "execute" => Kw.Execute, "exists" => Kw.Exists, "explain" => Kw.Explain,
            "extension" => Kw.Extension, "fetch" => Kw.Fetch, "for" => Kw.For, "from" => Kw.From,
            "function" => Kw.Function, "grant" => Kw.Grant, "group" => Kw.Group, "having" => Kw.Having, "if" => Kw.If,
            "import" => Kw.Import, "insert" => Kw.Insert, "intersect" => Kw.Intersect, "into" => Kw.Into,
            "join" => Kw.Join, "language" => Kw.Language, "lateral" => Kw.Lateral, "limit" => Kw.Limit,
            "listen" => Kw.Listen, "load" => Kw.Load, "local" => Kw.Local, "lock" => Kw.Lock, "mapping" => Kw.Mapping,
            "merge" => Kw.Merge, "move" => Kw.Move, "not" => Kw.Not, "notify" => Kw.Notify, "offset" => Kw.Offset,
            "on" => Kw.On, "only" => Kw.Only, "or" => Kw.Or, "order" => Kw.Order, "owned" => Kw.Owned,
            "owner" => Kw.Owner, "prepare" => Kw.Prepare, "prepared" => Kw.Prepared, "privileges" => Kw.Privileges,
            "procedure" => Kw.Procedure, "program" => Kw.Program, "reassign" => Kw.Reassign, "refresh" => Kw.Refresh,
            "reindex" => Kw.Reindex, "release" => Kw.Release, "replace" => Kw.Replace, "reset" => Kw.Reset,
            "returning" => Kw.Returning, "revoke" => Kw.Revoke, "role" => Kw.Role, "rollback" => Kw.Rollback,
            "routine" => Kw.Routine, "rule" => Kw.Rule, "savepoint" => Kw.Savepoint, "security" => Kw.Security,
            "select" => Kw.Select, "server" => Kw.Server, "session" => Kw.Session,
            "session_authorization" => Kw.SessionAuthorization, "set" => Kw.Set, "show" => Kw.Show,
            "start" => Kw.Start, "stdin" => Kw.Stdin, "stdout" => Kw.Stdout, "subscription" => Kw.Subscription,
            "system" => Kw.System, "table" => Kw.Table, "tablespace" => Kw.Tablespace, "temp" => Kw.Temp,
            "temporary" => Kw.Temporary, "to" => Kw.To, "transaction" => Kw.Transaction, "trigger" => Kw.Trigger,
            "truncate" => Kw.Truncate, "union" => Kw.Union, "unique" => Kw.Unique, "unlisten" => Kw.Unlisten,
            "unlogged" => Kw.Unlogged, "update" => Kw.Update, "user" => Kw.User, "using" => Kw.Using,
            "vacuum" => Kw.Vacuum, "values" => Kw.Values, "verbose" => Kw.Verbose, "where" => Kw.Where,
            "window" => Kw.Window, "with" => Kw.With, "trusted" => Kw.Trusted, "procedural" => Kw.Procedural,
            "global" => Kw.Global, "publication" => Kw.Publication, "transform" => Kw.Transform,
            _ => Kw.None,
        };
    }

    /// <summary>
    /// Words that take a parenthesised list without being a function call (syntax, type modifiers), so
    /// <c>IN (</c> or <c>varchar(20)</c> is not reported as a called function.
    /// </summary>
    public static bool IsNotFunction(ReadOnlySpan<byte> word)
    {
        Span<char> buffer = stackalloc char[MaxLength];
        if (!TryLower(word, buffer, out int length))
        {
            return false;
        }

        return buffer[..length] switch
        {
            "in" or "values" or "as" or "exists" or "any" or "all" or "some" or "array" or "row" or "cast" or "over"
                or "filter" or "within" or "using" or "on" or "and" or "or" or "not" or "where" or "select" or "from"
                or "join" or "lateral" or "returning" or "set" or "into" or "table" or "with" or "cube" or "rollup"
                or "grouping" or "distinct" or "by" or "do" or "then" or "else" or "when" or "case" or "is" or "like"
                or "ilike" or "between" or "extract" or "overlay" or "position" or "substring" or "trim" or "treat"
                or "default" or "check" or "unique" or "key" or "references" or "include" or "partition" or "for"
                or "of" or "options" or "union" or "except" or "intersect" or "varchar" or "numeric" or "decimal"
                or "char" or "character" or "varying" or "bit" or "timestamp" or "time" or "interval" or "float"
                or "only" or "recursive" or "materialized" or "returns" or "function" or "procedure" or "having"
                or "conflict" or "tablesample" or "analyze" or "analyse" or "verbose" or "explain" or "execute"
                or "insert" or "update" or "delete" or "merge" or "language" or "exclude" or "primary" or "foreign"
                or "to" or "window" or "columns" or "path" or "nested" or "coalesce" or "nullif" or "greatest"
                or "least" or "xmlelement" or "xmlattributes" or "xmlforest" or "xmlparse" or "xmlserialize"
                or "json_object" or "json_array" or "copy" or "owned" or "owner" or "group" or "order" => true,
            _ => false,
        };
    }
}
