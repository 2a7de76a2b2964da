namespace Gatehouse.Policy.Sql;

/// <summary>
/// Classifies PostgreSQL statements (docs Part VI, SQL Commands) from their tokens, without allocating.
/// Keywords are matched only on unquoted identifiers, exactly as the server's grammar does: <c>DE/**/LETE</c>
/// is the two identifiers <c>DE</c> and <c>LETE</c>, a syntax error, so it is Unknown and never a DELETE.
/// Whatever is not understood is <see cref="StatementClass.Unknown"/> (fail closed): a lexer error, an
/// unknown command, unbalanced parentheses, a ";" inside a statement that is not a routine or rule body,
/// stray characters, <c>U&amp;"..."</c> identifiers (their name needs escape processing).
/// </summary>
/// <remarks>
/// Objects (relations after FROM/JOIN/INTO/UPDATE/TABLE/TRUNCATE/LOCK/COPY/USING, and every called function)
/// are reported for the common forms only. Not covered: relations named in other commands (DROP VIEW,
/// CREATE INDEX ... ON, ALTER SEQUENCE, GRANT ... ON), CTE names with a column list (reported as functions),
/// functions reached without a call in the text (operators, triggers, casts, defaults, views), SQL hidden in
/// strings other than query_to_xml/dblink, and <c>SELECT 1 AS update</c>-style aliases inside parentheses can
/// make a read look like a write (the safe direction).
/// </remarks>
public static class SqlClassifier
{
    private const int HeadSize = 8;
    private const int MaxDepth = 63;

    /// <summary>Classifies one PostgreSQL statement; objects go to <paramref name="objects"/> until it is full.</summary>
    public static SqlStatementInfo Classify(ReadOnlySpan<byte> statement, SqlLexSettings settings, Span<SqlObjectRef> objects) =>
        Classify<PostgresDialect>(statement, settings, objects);

    /// <summary>
    /// Classifies one statement (a range from <see cref="SqlSplitter{TDialect}"/>; a trailing ";" is allowed).
    /// An empty statement is <see cref="StatementClass.None"/>. Object ranges are relative to <paramref name="statement"/>.
    /// </summary>
    public static SqlStatementInfo Classify<TDialect>(ReadOnlySpan<byte> statement, SqlLexSettings settings, Span<SqlObjectRef> objects)
        where TDialect : struct, ISqlDialect
    {
        var sink = new ObjectSink(objects);
        Result r = Core<TDialect>(statement, 0, settings, ref sink, allowExplain: true);
        return new SqlStatementInfo(r.Class, r.Shape, r.Copy, sink.Count, sink.Truncated);
    }

    /// <summary>Splits a simple-query text and unions the classes of its statements.</summary>
    public static SqlScriptInfo ClassifyScript(ReadOnlySpan<byte> text, SqlLexSettings settings) =>
        ClassifyScript<PostgresDialect>(text, settings);

    /// <summary>Splits a simple-query text and unions the classes of its statements (no object extraction).</summary>
    public static SqlScriptInfo ClassifyScript<TDialect>(ReadOnlySpan<byte> text, SqlLexSettings settings)
        where TDialect : struct, ISqlDialect
    {
        StatementClass cls = StatementClass.None;
        StatementShape shape = StatementShape.None;
        CopyDetail copy = CopyDetail.None;
        int count = 0;
        foreach (SqlStatementRange range in new SqlSplitter<TDialect>(text, settings))
        {
            SqlStatementInfo info = Classify<TDialect>(text.Slice(range.Start, range.Length), settings, []);
            cls |= info.Class | (range.HasError ? StatementClass.Unknown : StatementClass.None);
            shape |= info.Shape;
            copy |= info.Copy;
            count++;
        }

        return new SqlScriptInfo(cls, shape, copy, count);
    }

    private struct Result
    {
        public StatementClass Class;
        public StatementShape Shape;
        public CopyDetail Copy;
    }

    private ref struct ObjectSink(Span<SqlObjectRef> span)
    {
        private readonly Span<SqlObjectRef> _span = span;

        public int Count;
        public bool Truncated;

        public void Add(SqlObjectKind kind, int start, int end, int parts)
        {
            if (Count < _span.Length)
            {
                _span[Count++] = new SqlObjectRef(kind, start, end - start, (byte)Math.Min(parts, 255));
            }
            else
            {
                Truncated = true;
            }
        }
    }

    private static Result Core<TDialect>(ReadOnlySpan<byte> s, int baseOffset, SqlLexSettings settings, ref ObjectSink sink, bool allowExplain)
        where TDialect : struct, ISqlDialect
    {
        Span<SqlToken> head = stackalloc SqlToken[HeadSize];
        Span<Kw> kws = stackalloc Kw[HeadSize + 2];
        int h = 0;
        var headLexer = new SqlLexer<TDialect>(s, settings);
        while (h < HeadSize && headLexer.Next(out SqlToken t))
        {
            head[h] = t;
            kws[h] = t.Kind == SqlTokenKind.Identifier ? SqlKeywords.Lookup(s.Slice(t.Start, t.Length)) : Kw.None;
            h++;
            if (t.Kind == SqlTokenKind.Error)
            {
                break;
            }
        }

        Result result = default;
        if (h == 0)
        {
            return result;
        }

        int first = 0;
        while (first < h - 1 && head[first].Kind == SqlTokenKind.OpenParen)
        {
            first++;
        }

        Kw k0 = kws[first];
        if (first > 0 && k0 is not (Kw.Select or Kw.Values or Kw.Table))
        {
            k0 = Kw.None;
        }

        if (k0 == Kw.Explain)
        {
            return allowExplain ? Explain<TDialect>(s, baseOffset, settings, ref sink) : Unknown();
        }

        StatementClass cls = Head(s, head[..h], kws, k0, out StatementShape shape, out bool routineBody);
        if (k0 == Kw.Set && cls == StatementClass.Session && SearchPathPutsCatalogLate<TDialect>(s, settings))
        {
            cls = StatementClass.Privilege;
        }

        return Stream<TDialect>(s, baseOffset, settings, ref sink, k0, first, cls, shape, routineBody);
    }

    private static Result Unknown() => new() { Class = StatementClass.Unknown };

    // The command from its first words (docs Part VI, SQL Commands).
    private static StatementClass Head(ReadOnlySpan<byte> s, ReadOnlySpan<SqlToken> head, ReadOnlySpan<Kw> kws, Kw k0, out StatementShape shape, out bool routineBody)
    {
        shape = StatementShape.None;
        routineBody = false;
        switch (k0)
        {
            case Kw.Select or Kw.Values or Kw.Table or Kw.Show or Kw.Fetch or Kw.Move or Kw.Declare:
                return StatementClass.Read;
            case Kw.With:
                return StatementClass.None; // decided by the main statement after the WITH list
            case Kw.Insert or Kw.Update or Kw.Delete or Kw.Merge or Kw.Refresh:
                return StatementClass.Write;
            case Kw.Truncate:
                shape = StatementShape.Truncate;
                return StatementClass.Ddl | StatementClass.Write;
            case Kw.Comment or Kw.Security or Kw.Import:
                return StatementClass.Ddl;
            case Kw.Grant or Kw.Revoke or Kw.Reassign:
                return StatementClass.Privilege;
            case Kw.Vacuum or Kw.Analyze or Kw.Analyse or Kw.Cluster or Kw.Reindex or Kw.Checkpoint or Kw.Load:
                return StatementClass.Admin;
            case Kw.Listen or Kw.Unlisten or Kw.Notify or Kw.Deallocate or Kw.Close:
                return StatementClass.Session;
            case Kw.Discard:
                // DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT and RESET ALL.
                return kws[1] == Kw.All ? StatementClass.Session | StatementClass.Privilege : StatementClass.Session;
            case Kw.Begin or Kw.Start or Kw.Commit or Kw.End or Kw.Rollback or Kw.Abort or Kw.Savepoint or Kw.Release or Kw.Lock:
                return StatementClass.Transaction;
            case Kw.Copy:
                return StatementClass.Copy;
            case Kw.Do or Kw.Execute or Kw.Call:
                return StatementClass.OpaqueCode;
            case Kw.Prepare:
                // PREPARE TRANSACTION 'gid' (two-phase commit) versus PREPARE name AS statement.
                return kws[1] == Kw.Transaction && head.Length > 2 && IsStringKind(head[2].Kind)
                    ? StatementClass.Transaction
                    : StatementClass.OpaqueCode;
            case Kw.Set:
                return Set(s, head, kws);
            case Kw.Reset:
                return kws[1] is Kw.Role or Kw.SessionAuthorization
                    || (kws[1] == Kw.Session && kws[2] == Kw.Authorization)
                    || (head.Length > 1 && IsQuotedRoleSetting(s, head[1]))
                    ? StatementClass.Privilege
                    : StatementClass.Session;
            case Kw.Create:
            {
                int i = 1;
                while (i < head.Length && kws[i] is Kw.Or or Kw.Replace or Kw.Temp or Kw.Temporary or Kw.Unlogged or Kw.Global
                           or Kw.Local or Kw.Unique or Kw.Default or Kw.Trusted or Kw.Procedural or Kw.Constraint)
                {
                    i++;
                }

                switch (kws[i])
                {
                    case Kw.Role or Kw.Group:
                        return StatementClass.Privilege;
                    case Kw.User:
                        return kws[i + 1] == Kw.Mapping ? StatementClass.Ddl : StatementClass.Privilege;
                    case Kw.Database or Kw.Tablespace or Kw.Extension or Kw.Subscription:
                        return StatementClass.Admin | StatementClass.Ddl;
                    case Kw.Function or Kw.Procedure or Kw.Rule or Kw.Trigger or Kw.Event or Kw.Language or Kw.Transform:
                        routineBody = true;
                        return StatementClass.Ddl | StatementClass.OpaqueCode;
                    default:
                        return StatementClass.Ddl;
                }
            }

            case Kw.Alter:
                switch (kws[1])
                {
                    case Kw.Role or Kw.Group:
                        return StatementClass.Privilege;
                    case Kw.User:
                        return kws[2] == Kw.Mapping ? StatementClass.Ddl : StatementClass.Privilege;
                    case Kw.Default:
                        return StatementClass.Privilege;
                    case Kw.System:
                        return StatementClass.Admin;
                    case Kw.Database or Kw.Tablespace or Kw.Extension or Kw.Subscription:
                        return StatementClass.Admin | StatementClass.Ddl;
                    default:
                        return StatementClass.Ddl;
                }

            case Kw.Drop:
                shape = StatementShape.Drop;
                switch (kws[1])
                {
                    case Kw.Role or Kw.Group:
                        return StatementClass.Privilege;
                    case Kw.User:
                        return kws[2] == Kw.Mapping ? StatementClass.Ddl : StatementClass.Privilege;
                    case Kw.Owned:
                        return StatementClass.Privilege | StatementClass.Ddl;
                    case Kw.Database or Kw.Tablespace or Kw.Extension or Kw.Subscription:
                        return StatementClass.Admin | StatementClass.Ddl;
                    default:
                        return StatementClass.Ddl;
                }

            default:
                return StatementClass.Unknown;
        }
    }

    // SET [SESSION | LOCAL] name ...: the role and session_authorization settings change privileges, whether
    // spelled SET ROLE, SET SESSION AUTHORIZATION or as the generic SET "role" TO ... (docs: SET ROLE).
    private static StatementClass Set(ReadOnlySpan<byte> s, ReadOnlySpan<SqlToken> head, ReadOnlySpan<Kw> kws)
    {
        int i = 1;
        if (kws[1] is Kw.Session or Kw.Local && head.Length > 2
            && !(head[2].Kind == SqlTokenKind.Operator || kws[2] == Kw.To))
        {
            i = 2;
        }

        if (i >= head.Length)
        {
            return StatementClass.Unknown;
        }

        if (kws[i] is Kw.Role or Kw.SessionAuthorization || IsQuotedRoleSetting(s, head[i])
            || (kws[1] == Kw.Session && kws[2] == Kw.Authorization))
        {
            return StatementClass.Privilege;
        }

        if (kws[i] == Kw.Transaction || (kws[1] == Kw.Session && i == 1))
        {
            return StatementClass.Transaction | StatementClass.Session;
        }

        return head[i].Kind is SqlTokenKind.Identifier or SqlTokenKind.QuotedIdentifier
            ? StatementClass.Session
            : StatementClass.Unknown;
    }

    /// <summary>
    /// <c>SET [SESSION | LOCAL] search_path {TO | =} ...</c> naming pg_catalog after another schema: unqualified
    /// function and operator names then resolve to whatever those schemas hold before the built-ins (docs 5.9.5,
    /// "The System Catalog Schema"), so <c>SELECT lower(x)</c> can run any code. That changes what statements mean,
    /// which is a privilege matter. Anything not read as a plain list of names also counts (fail closed).
    /// </summary>
    private static bool SearchPathPutsCatalogLate<TDialect>(ReadOnlySpan<byte> s, SqlLexSettings settings)
        where TDialect : struct, ISqlDialect
    {
        var lexer = new SqlLexer<TDialect>(s, settings);
        SqlToken t;
        bool named = false;
        while (lexer.Next(out t))
        {
            if (IsSettingName(s, t, "search_path"u8))
            {
                named = true;
                break;
            }
        }

        if (!named || !lexer.Next(out t)
            || !(t.Kind == SqlTokenKind.Operator ? s.Slice(t.Start, t.Length).SequenceEqual("="u8)
                 : t.Kind == SqlTokenKind.Identifier && SqlKeywords.Equals(s.Slice(t.Start, t.Length), "to"u8)))
        {
            return named; // a search_path SET that is not TO/= a list (FROM CURRENT, ...): fail closed
        }

        int element = 0;
        bool expectName = true;
        while (lexer.Next(out t))
        {
            if (t.Kind == SqlTokenKind.Semicolon)
            {
                break;
            }

            if (expectName)
            {
                if (IsSettingName(s, t, "pg_catalog"u8) || IsStringNamed(s, t, "pg_catalog"u8))
                {
                    if (element > 0)
                    {
                        return true;
                    }
                }
                else if (t.Kind is not (SqlTokenKind.Identifier or SqlTokenKind.QuotedIdentifier or SqlTokenKind.String))
                {
                    return true;
                }

                element++;
            }
            else if (t.Kind != SqlTokenKind.Comma)
            {
                return true;
            }

            expectName = !expectName;
        }

        return false;
    }

    /// <summary>An unquoted identifier equal to <paramref name="lower"/> ignoring ASCII case, or the same quoted exactly.</summary>
    private static bool IsSettingName(ReadOnlySpan<byte> s, SqlToken t, ReadOnlySpan<byte> lower) => t.Kind switch
    {
        SqlTokenKind.Identifier => SqlKeywords.Equals(s.Slice(t.Start, t.Length), lower),
        SqlTokenKind.QuotedIdentifier => t.Length == lower.Length + 2 && s.Slice(t.Start + 1, lower.Length).SequenceEqual(lower),
        _ => false,
    };

    /// <summary>A plain string literal whose text is exactly <paramref name="value"/>; its content is a schema list element.</summary>
    private static bool IsStringNamed(ReadOnlySpan<byte> s, SqlToken t, ReadOnlySpan<byte> value) =>
        t.Kind == SqlTokenKind.String && t.Length == value.Length + 2 && s.Slice(t.Start + 1, value.Length).SequenceEqual(value);

    private static bool IsQuotedRoleSetting(ReadOnlySpan<byte> s, SqlToken t)
    {
        if (t.Kind != SqlTokenKind.QuotedIdentifier || t.Length < 2)
        {
            return false;
        }

        ReadOnlySpan<byte> name = s.Slice(t.Start + 1, t.Length - 2);
        return name.SequenceEqual("role"u8) || name.SequenceEqual("session_authorization"u8);
    }

    private static bool IsStringKind(SqlTokenKind kind) => kind is SqlTokenKind.String or SqlTokenKind.EscapeString
        or SqlTokenKind.UnicodeString or SqlTokenKind.DollarString or SqlTokenKind.BitString or SqlTokenKind.HexString;

    // EXPLAIN [ ( option [, ...] ) ] statement, or EXPLAIN [ANALYZE] [VERBOSE] statement. Without ANALYZE the
    // statement is only planned; with it, it runs (docs: EXPLAIN), so a write under EXPLAIN ANALYZE is a write
    // hidden behind a read-looking command. Any mention of ANALYZE counts, whatever its value.
    private static Result Explain<TDialect>(ReadOnlySpan<byte> s, int baseOffset, SqlLexSettings settings, ref ObjectSink sink)
        where TDialect : struct, ISqlDialect
    {
        var lexer = new SqlLexer<TDialect>(s, settings);
        lexer.Next(out _);
        bool analyze = false;
        int depth = 0;
        int innerStart = -1;
        while (lexer.Next(out SqlToken t))
        {
            if (t.Kind == SqlTokenKind.Error)
            {
                return Unknown();
            }

            Kw kw = t.Kind == SqlTokenKind.Identifier ? SqlKeywords.Lookup(s.Slice(t.Start, t.Length)) : Kw.None;
            if (t.Kind == SqlTokenKind.OpenParen && innerStart < 0)
            {
                depth++;
                continue;
            }

            if (depth > 0)
            {
                if (t.Kind == SqlTokenKind.CloseParen)
                {
                    depth--;
                }
                else if (kw is Kw.Analyze or Kw.Analyse)
                {
                    analyze = true;
                }

                continue;
            }

            if (kw is Kw.Analyze or Kw.Analyse)
            {
                analyze = true;
                continue;
            }

            if (kw == Kw.Verbose)
            {
                continue;
            }

            innerStart = t.Start;
            break;
        }

        if (innerStart < 0)
        {
            return Unknown();
        }

        Result inner = Core<TDialect>(s[innerStart..], baseOffset + innerStart, settings, ref sink, allowExplain: false);
        if (inner.Class == StatementClass.None)
        {
            return Unknown();
        }

        if (!analyze)
        {
            return new Result { Class = StatementClass.Read | (inner.Class & StatementClass.Unknown) };
        }

        if ((inner.Class & ~StatementClass.Read) != 0)
        {
            inner.Class |= StatementClass.OpaqueCode;
        }

        return inner;
    }

    private static Result Stream<TDialect>(ReadOnlySpan<byte> s, int baseOffset, SqlLexSettings settings, ref ObjectSink sink,
        Kw k0, int first, StatementClass cls, StatementShape shape, bool routineBody)
        where TDialect : struct, ISqlDialect
    {
        var lexer = new SqlLexer<TDialect>(s, settings);
        int depth = 0;
        ulong deleteOpen = 0;
        ulong updateOpen = 0;
        ulong selectAt = 0;
        bool afterSemicolon = false;
        bool tokenAfterSemicolon = false;
        bool mainFound = k0 != Kw.With;
        Kw main = k0;
        SqlTokenKind prevKind = SqlTokenKind.End;
        Kw prevKw = Kw.None;
        int index = -1;

        bool relPending = false;
        bool relFrom = false;
        bool relList = false;
        int listDepth = -1;

        bool capturing = false;
        bool dotPending = false;
        bool capRel = false;
        bool capFrom = false;
        int nameStart = 0;
        int nameEnd = 0;
        int parts = 0;
        SqlToken lastPart = default;

        int setConfig = 0;
        int copyStage = 0;
        CopyDetail copy = CopyDetail.None;

        while (lexer.Next(out SqlToken t))
        {
            index++;
            SqlTokenKind kind = t.Kind;
            tokenAfterSemicolon |= afterSemicolon;

            // set_config(name, value, is_local): fail closed unless the name is a literal other than role.
            if (setConfig == 1)
            {
                setConfig = IsHarmlessSettingLiteral(s, t) ? 2 : 0;
                if (setConfig == 0)
                {
                    cls |= StatementClass.Privilege;
                }
            }
            else if (setConfig == 2)
            {
                cls |= kind == SqlTokenKind.Comma ? StatementClass.Session : StatementClass.Privilege;
                setConfig = 0;
            }

            if (capturing)
            {
                if (dotPending && kind is SqlTokenKind.Identifier or SqlTokenKind.QuotedIdentifier)
                {
                    nameEnd = t.End;
                    lastPart = t;
                    parts++;
                    dotPending = false;
                    prevKind = kind;
                    prevKw = Kw.None;
                    continue;
                }

                if (!dotPending && kind == SqlTokenKind.Dot)
                {
                    dotPending = true;
                    continue;
                }

                bool call = kind == SqlTokenKind.OpenParen && !dotPending;
                cls |= FinishName(s, baseOffset, ref sink, capRel, capFrom, call, nameStart, nameEnd, parts, lastPart, ref setConfig);
                capturing = false;
                dotPending = false;
            }

            Kw kw = Kw.None;
            switch (kind)
            {
                case SqlTokenKind.Error:
                case SqlTokenKind.Other:
                case SqlTokenKind.UnicodeQuotedIdentifier:
                case SqlTokenKind.ExecutableComment:
                    cls |= StatementClass.Unknown;
                    break;
                case SqlTokenKind.Semicolon:
                    afterSemicolon = true;
                    break;
                case SqlTokenKind.OpenParen:
                    if (++depth > MaxDepth)
                    {
                        return new Result { Class = cls | StatementClass.Unknown, Shape = shape, Copy = copy };
                    }

                    ulong bit = 1UL << depth;
                    selectAt &= ~bit;
                    deleteOpen &= ~bit;
                    updateOpen &= ~bit;
                    break;
                case SqlTokenKind.CloseParen:
                    if (depth == 0)
                    {
                        cls |= StatementClass.Unknown;
                        break;
                    }

                    ulong closing = 1UL << depth;
                    shape |= (deleteOpen & closing) != 0 ? StatementShape.DeleteWithoutWhere : StatementShape.None;
                    shape |= (updateOpen & closing) != 0 ? StatementShape.UpdateWithoutWhere : StatementShape.None;
                    if (listDepth == depth)
                    {
                        listDepth = -1;
                    }

                    depth--;
                    break;
                case SqlTokenKind.Comma:
                    if (depth == listDepth)
                    {
                        relPending = true;
                        relList = true;
                    }

                    break;
                case SqlTokenKind.Identifier:
                case SqlTokenKind.QuotedIdentifier:
                {
                    kw = kind == SqlTokenKind.Identifier ? SqlKeywords.Lookup(s.Slice(t.Start, t.Length)) : Kw.None;
                    ulong here = 1UL << depth;
                    bool start = index == first || prevKind == SqlTokenKind.OpenParen
                        || (depth == 0 && prevKw == Kw.As && k0 is Kw.Create or Kw.Prepare)
                        || (depth == 0 && prevKw == Kw.For && k0 == Kw.Declare);
                    if (!mainFound && depth == 0 && index > first && kw is Kw.Select or Kw.Values or Kw.Table or Kw.Insert or Kw.Update or Kw.Delete or Kw.Merge)
                    {
                        // The statement a WITH list is attached to (docs 7.8 WITH Queries).
                        mainFound = true;
                        main = kw;
                        start = true;
                        cls |= kw is Kw.Select or Kw.Values or Kw.Table ? StatementClass.Read : StatementClass.Write;
                    }

                    if (copyStage == 2 || (copyStage == 1 && kw is not (Kw.Stdin or Kw.Stdout or Kw.Program)))
                    {
                        // COPY's target is STDIN, STDOUT, PROGRAM 'command' or a file name literal; anything else is not COPY.
                        cls |= StatementClass.Unknown;
                        copyStage = 3;
                    }

                    bool wasPending = relPending;
                    bool keepsPending = kw is Kw.Only or Kw.If or Kw.Not or Kw.Exists or Kw.Lateral or Kw.Binary;
                    // SELECT is reserved: unquoted, it is always the keyword, so its FROM list names relations wherever it
                    // appears (INSERT ... SELECT ... FROM, a UNION branch), not only at a statement start.
                    if (kw == Kw.Select)
                    {
                        selectAt |= here;
                    }

                    if (start)
                    {
                        switch (kw)
                        {
                            case Kw.Delete:
                                // 7.8.4 Data-Modifying Statements in WITH: a DELETE anywhere is a write.
                                deleteOpen |= here;
                                selectAt |= here;
                                cls |= StatementClass.Write;
                                break;
                            case Kw.Update:
                                // UPDATE ... FROM other tables: they are read (docs: UPDATE, from_item).
                                updateOpen |= here;
                                selectAt |= here;
                                cls |= StatementClass.Write;
                                SetPending(ref relPending, ref relFrom, ref relList, false, false);
                                break;
                            case Kw.Insert or Kw.Merge:
                                cls |= StatementClass.Write;
                                break;
                            case Kw.Table or Kw.Truncate or Kw.Lock or Kw.Copy:
                                SetPending(ref relPending, ref relFrom, ref relList, false, kw != Kw.Copy);
                                break;
                        }
                    }

                    switch (kw)
                    {
                        case Kw.Where:
                            deleteOpen &= ~here;
                            updateOpen &= ~here;
                            ResetList(ref listDepth, depth);
                            break;
                        case Kw.From:
                            if (main == Kw.Copy && depth == 0)
                            {
                                CopyDirection(ref copy, ref copyStage, CopyDetail.From);
                            }
                            else if ((selectAt & here) != 0)
                            {
                                SetPending(ref relPending, ref relFrom, ref relList, true, true);
                            }

                            break;
                        case Kw.To:
                            if (main == Kw.Copy && depth == 0)
                            {
                                CopyDirection(ref copy, ref copyStage, CopyDetail.To);
                            }
                            else if (prevKw == Kw.Owner && k0 == Kw.Alter)
                            {
                                cls |= StatementClass.Privilege;
                            }

                            break;
                        case Kw.Join:
                            SetPending(ref relPending, ref relFrom, ref relList, true, false);
                            break;
                        case Kw.Into:
                            if (prevKw is Kw.Insert or Kw.Merge)
                            {
                                SetPending(ref relPending, ref relFrom, ref relList, false, false);
                            }
                            else if (depth == 0 && main == Kw.Select)
                            {
                                // SELECT ... INTO new_table creates a table (docs: SELECT INTO).
                                cls |= StatementClass.Ddl | StatementClass.Write;
                                SetPending(ref relPending, ref relFrom, ref relList, false, false);
                            }

                            break;
                        case Kw.Table:
                            if (prevKw is Kw.Drop or Kw.Alter or Kw.Create or Kw.Temp or Kw.Temporary or Kw.Unlogged or Kw.Truncate or Kw.Lock)
                            {
                                SetPending(ref relPending, ref relFrom, ref relList, false, prevKw is Kw.Drop or Kw.Truncate or Kw.Lock);
                            }

                            break;
                        case Kw.Using:
                            ResetList(ref listDepth, depth);
                            if (depth == 0 && main is Kw.Delete or Kw.Merge)
                            {
                                SetPending(ref relPending, ref relFrom, ref relList, false, false);
                            }

                            break;
                        case Kw.Group or Kw.Having or Kw.Order or Kw.Limit or Kw.Offset or Kw.Window or Kw.Union or Kw.Intersect
                            or Kw.Except or Kw.Returning or Kw.On or Kw.Set or Kw.For or Kw.Values or Kw.Select:
                            ResetList(ref listDepth, depth);
                            break;
                        case Kw.Stdin or Kw.Stdout when copyStage == 1:
                            copy |= CopyDetail.Client;
                            copyStage = 3;
                            break;
                        case Kw.Program when copyStage == 1:
                            copy |= CopyDetail.Program;
                            copyStage = 2;
                            break;
                        case Kw.Role or Kw.SessionAuthorization when prevKw == Kw.Set && k0 is Kw.Alter or Kw.Create:
                            // ALTER DATABASE/ROLE/FUNCTION ... SET role = ...: a default role for later sessions or calls.
                            cls |= StatementClass.Privilege;
                            break;
                        case Kw.Execute when prevKw == Kw.As:
                            cls |= StatementClass.OpaqueCode;
                            break;
                    }

                    if (wasPending && relPending && !keepsPending && kw is not (Kw.From or Kw.Join or Kw.Into or Kw.Table or Kw.Using))
                    {
                        capRel = true;
                        capFrom = relFrom;
                        relPending = false;
                        if (relList)
                        {
                            listDepth = depth;
                        }
                    }
                    else
                    {
                        capRel = false;
                        capFrom = false;
                    }

                    capturing = true;
                    nameStart = t.Start;
                    nameEnd = t.End;
                    parts = 1;
                    lastPart = t;
                    break;
                }

                default:
                    if (IsStringKind(kind) && copyStage is 1 or 2)
                    {
                        copy |= copyStage == 1 ? CopyDetail.File : CopyDetail.None;
                        copyStage = 3;
                    }
                    else if (copyStage is 1 or 2)
                    {
                        cls |= StatementClass.Unknown;
                        copyStage = 3;
                    }

                    break;
            }

            if (kind is not (SqlTokenKind.Identifier or SqlTokenKind.QuotedIdentifier or SqlTokenKind.Comma))
            {
                relPending = false;
            }

            prevKind = kind;
            prevKw = kw;
        }

        if (capturing)
        {
            cls |= FinishName(s, baseOffset, ref sink, capRel, capFrom, false, nameStart, nameEnd, parts, lastPart, ref setConfig);
        }

        if (setConfig != 0)
        {
            cls |= StatementClass.Privilege;
        }

        shape |= (deleteOpen & 1) != 0 ? StatementShape.DeleteWithoutWhere : StatementShape.None;
        shape |= (updateOpen & 1) != 0 ? StatementShape.UpdateWithoutWhere : StatementShape.None;

        // Unbalanced parentheses, a second statement glued in, or a WITH without a statement: the server
        // rejects these as syntax errors; we do not guess.
        if (depth != 0 || (tokenAfterSemicolon && !routineBody) || !mainFound)
        {
            cls |= StatementClass.Unknown;
        }

        if (k0 == Kw.Copy)
        {
            if ((copy & (CopyDetail.To | CopyDetail.From)) == 0 || copyStage != 3)
            {
                cls |= StatementClass.Unknown;
            }

            cls |= (copy & CopyDetail.To) != 0 ? StatementClass.Read : StatementClass.None;
            cls |= (copy & CopyDetail.From) != 0 ? StatementClass.Write : StatementClass.None;
            cls |= (copy & CopyDetail.File) != 0 ? StatementClass.FileAccess : StatementClass.None;
            cls |= (copy & CopyDetail.Program) != 0 ? StatementClass.FileAccess | StatementClass.OpaqueCode : StatementClass.None;
        }

        return new Result { Class = cls == StatementClass.None ? StatementClass.Unknown : cls, Shape = shape, Copy = copy };
    }

    private static void SetPending(ref bool pending, ref bool from, ref bool list, bool isFrom, bool isList)
    {
        pending = true;
        from = isFrom;
        list = isList;
    }

    private static void ResetList(ref int listDepth, int depth)
    {
        if (listDepth == depth)
        {
            listDepth = -1;
        }
    }

    private static void CopyDirection(ref CopyDetail copy, ref int stage, CopyDetail direction)
    {
        if (stage == 0)
        {
            copy |= direction;
            stage = 1;
        }
    }

    // A name has ended: a relation in a relation position, else a function when followed by "(".
    private static StatementClass FinishName(ReadOnlySpan<byte> s, int baseOffset, ref ObjectSink sink, bool relation, bool fromClause,
        bool call, int start, int end, int parts, SqlToken lastPart, ref int setConfig)
    {
        if (relation && !(call && fromClause))
        {
            sink.Add(SqlObjectKind.Relation, baseOffset + start, baseOffset + end, parts);
            return StatementClass.None;
        }

        if (!call)
        {
            return StatementClass.None;
        }

        bool quoted = lastPart.Kind == SqlTokenKind.QuotedIdentifier;
        ReadOnlySpan<byte> name = quoted ? s.Slice(lastPart.Start + 1, lastPart.Length - 2) : s.Slice(lastPart.Start, lastPart.Length);
        if (quoted || parts > 1 || !SqlKeywords.IsNotFunction(name))
        {
            sink.Add(SqlObjectKind.Function, baseOffset + start, baseOffset + end, parts);
        }

        StatementClass risk = SqlFunctions.Risk(name, quoted, out bool isSetConfig);
        if (isSetConfig)
        {
            setConfig = 1;
        }

        return risk;
    }

    // The first argument of set_config: a plain literal naming a setting other than role/session_authorization.
    private static bool IsHarmlessSettingLiteral(ReadOnlySpan<byte> s, SqlToken t)
    {
        ReadOnlySpan<byte> content;
        switch (t.Kind)
        {
            case SqlTokenKind.String or SqlTokenKind.EscapeString:
                ReadOnlySpan<byte> text = s.Slice(t.Start, t.Length);
                int open = text.IndexOf((byte)'\'');
                content = text[(open + 1)..^1];
                if (content.Contains((byte)'\\') || content.Contains((byte)'\''))
                {
                    return false;
                }

                break;
            case SqlTokenKind.DollarString:
                ReadOnlySpan<byte> dollar = s.Slice(t.Start, t.Length);
                int tag = dollar[1..].IndexOf((byte)'$') + 2;
                content = dollar[tag..^tag];
                break;
            default:
                return false;
        }

        // search_path: a value that puts a schema before pg_catalog changes which functions statements call.
        return !SqlKeywords.Equals(content, "role"u8) && !SqlKeywords.Equals(content, "session_authorization"u8)
               && !SqlKeywords.Equals(content, "search_path"u8);
    }
}
