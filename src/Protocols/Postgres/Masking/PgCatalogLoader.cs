using System.Buffers.Text;
using System.Globalization;
using System.IO.Pipelines;
using Gatehouse.Protocols.Postgres.Auth;
using Gatehouse.Protocols.Postgres.Wire;

namespace Gatehouse.Protocols.Postgres.Masking;

/// <summary>Where a <see cref="PgCatalogCache"/> gets its snapshots (the upstream in production, a fake in tests).</summary>
internal interface IPgCatalogSource : IAsyncDisposable
{
    /// <summary>Loads the catalog as it is now. Throws <see cref="PgCatalogException"/> with the reason when it cannot.</summary>
    Task<PgCatalogSnapshot> LoadAsync(long version, CancellationToken cancellationToken);
}

/// <summary>
/// Loads an upstream's catalog over a connection of its own, kept open between loads and opened again after a
/// failure. One load is three round trips:
/// <list type="number">
/// <item>one simple query, in a read-only repeatable-read transaction so its parts agree: the user relations
/// and their columns, the text and json types, every view's dependencies (pg_depend of its _RETURN rule), and the
/// OIDs of every view;</item>
/// <item>a pipeline with each user view's definition (pg_get_viewdef, one Sync each, so one that fails, a
/// view dropped meanwhile or one locked by DDL, fails alone);</item>
/// <item>a pipeline with each definition parsed and described (Parse, Describe, Sync): the server's own parser
/// says which relation column each output column is a bare reference to (RowDescription's table OID and
/// attribute number). A definition that does not parse on this connection gives unknown columns.</item>
/// </list>
/// Nested views are then followed by <see cref="PgViewResolver"/>. Loads must not overlap (the cache runs one at
/// a time).
/// </summary>
internal sealed class PgCatalogLoader : IPgCatalogSource
{
    private const string ViewDefinitionStatement = "gatehouse_catalog_viewdef";

    /// <summary>Requests written between flushes in a pipeline: enough to fill a socket buffer, while the reader drains the answers.</summary>
    private const int PipelineFlushEvery = 64;

    // User relations: everything but the system schemas and TOAST. pg_temp_N schemas (temporary relations of every
    // session) are included. relnatts counts dropped columns too: the highest attribute number.
    private const string UserRelationFilter = """
        c.relkind IN ('r', 'v', 'm', 'p', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND left(n.nspname, 8) <> 'pg_toast'
        """;

    private static readonly string RelationsQuery = $"""
        SELECT c.oid, c.relnamespace, n.nspname, c.relname, c.relkind, c.relnatts
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE {UserRelationFilter}
        """;

    private static readonly string ColumnsQuery = $"""
        SELECT a.attrelid, a.attnum, a.attname
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE a.attnum > 0 AND NOT a.attisdropped AND {UserRelationFilter}
        """;

    // Domains take their base type's category, but json's category (U) is shared with every user-defined type:
    // follow typbasetype (a domain over a domain names the inner domain) down from the types we want.
    private const string TypesQuery = """
        WITH RECURSIVE wanted(oid, kind) AS (
            SELECT t.oid, CASE WHEN t.oid IN (114, 3802) THEN 'j' ELSE 't' END
              FROM pg_catalog.pg_type t
             WHERE t.typtype <> 'd' AND (t.typcategory = 'S' OR t.oid IN (705, 114, 3802))
            UNION ALL
            SELECT d.oid, w.kind FROM pg_catalog.pg_type d JOIN wanted w ON d.typbasetype = w.oid WHERE d.typtype = 'd')
        SELECT oid, kind FROM wanted
        """;

    // Every view's references to relations that hold data (a sequence or a composite type is no column source),
    // system views included so that a user view over pg_roles still reaches pg_authid. The rule's dependency on its
    // own view is excluded.
    private const string DependenciesQuery = """
        SELECT DISTINCT r.ev_class, d.refobjid, d.refobjsubid
          FROM pg_catalog.pg_rewrite r
          JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
          JOIN pg_catalog.pg_class t ON t.oid = d.refobjid AND t.relkind IN ('r', 'v', 'm', 'p', 'f')
         WHERE r.rulename = '_RETURN' AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
        """;

    private const string ViewsQuery = "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relkind IN ('v', 'm')";

    private readonly PgConnectionTarget _target;
    private readonly PgCatalogOptions _options;
    private readonly TimeProvider _time;
    private PgCatalogClient? _client;

    public PgCatalogLoader(PgConnectionTarget target, PgCatalogOptions options, TimeProvider time)
    {
        _target = target;
        _options = options;
        _time = time;
    }

    /// <summary>The target as log lines and errors name it: connection name, server, database and user (no secret).</summary>
    public static string Describe(PgConnectionTarget target) =>
        $"'{target.Name}' ({target.Host}:{target.Port.ToString(CultureInfo.InvariantCulture)}/{target.Database} as {target.User})";

    public async Task<PgCatalogSnapshot> LoadAsync(long version, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_options.LoadTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            bool reused = _client is not null;
            try
            {
                return await LoadOnceAsync(version, linked.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (reused && IsConnectionFailure(ex))
            {
                // The kept connection died while idle (a restart, idle_session_timeout, a DBA): try a fresh one.
                await DropClientAsync().ConfigureAwait(false);
                return await LoadOnceAsync(version, linked.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            await DropClientAsync().ConfigureAwait(false);
            if (ex is OperationCanceledException && timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new PgCatalogException(
                    $"The catalog of {Describe(_target)} could not be loaded: timed out after {_options.LoadTimeout.TotalSeconds:0.#} s", ex);
            }

            if (ex is OperationCanceledException)
            {
                throw;
            }

            string reason = ex switch
            {
                PgCatalogException => ex.Message,
                UpstreamException => $"{ex.Message} (SQLSTATE {((UpstreamException)ex).SqlState})",
                _ => $"the connection to the upstream server failed ({ex.GetType().Name})",
            };
            throw new PgCatalogException($"The catalog of {Describe(_target)} could not be loaded: {reason}", ex, IsConnectionFailure(ex));
        }
    }

    /// <summary>The connection broke (closed, reset, aborted) rather than the server refusing or the load being cancelled.</summary>
    private static bool IsConnectionFailure(Exception ex) =>
        ex is PgCatalogException { ConnectionLost: true } || ex is not (PgCatalogException or UpstreamException or OperationCanceledException);

    public async ValueTask DisposeAsync()
    {
        var client = Interlocked.Exchange(ref _client, null);
        if (client is not null)
        {
            await client.CloseAsync().ConfigureAwait(false);
        }
    }

    private async Task DropClientAsync()
    {
        var client = Interlocked.Exchange(ref _client, null);
        if (client is not null)
        {
            await client.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task<PgCatalogSnapshot> LoadOnceAsync(long version, CancellationToken cancellationToken)
    {
        _client ??= await PgCatalogClient.ConnectAsync(_target, _options.MaxMessageBytes, cancellationToken).ConfigureAwait(false);
        var client = _client;
        var loadedAt = _time.GetUtcNow();

        // 1. The catalog tables, in one transaction.
        bool prepare = !client.StatementsPrepared;
        var catalog = new CatalogHandler(_options.MaxColumns, prepare);
        PgWriter.WriteQuery(client.Output, CatalogBatch(prepare));
        await client.FlushAsync(cancellationToken).ConfigureAwait(false);
        await client.ReadUntilReadyAsync(catalog, cancellationToken).ConfigureAwait(false);
        if (catalog.Error is { } error)
        {
            throw new PgCatalogException($"the catalog query failed: SQLSTATE {error.SqlState}: {error.Message}");
        }

        if (catalog.Statements != catalog.ExpectedStatements)
        {
            throw new PgCatalogException("the upstream server answered the catalog query with an unexpected number of results");
        }

        client.StatementsPrepared = true;
        var views = catalog.UserViews();

        // 2. Each user view's definition.
        var definitions = new DefinitionHandler(views.Length);
        await RunPipelineAsync(client, views.Length, definitions, (output, i) =>
        {
            Span<byte> oid = stackalloc byte[10];
            Utf8Formatter.TryFormat(views[i].Oid, oid, out int written);
            PgWriter.WriteBind(output, ViewDefinitionStatement, oid[..written]);
            PgWriter.WriteExecute(output);
            PgWriter.WriteSync(output);
        }, cancellationToken).ConfigureAwait(false);

        // 3. Each definition, parsed and described by the server.
        var describable = Enumerable.Range(0, views.Length).Where(i => definitions.Definitions[i] is not null).ToArray();
        var described = new DescribeHandler(describable.Length);
        await RunPipelineAsync(client, describable.Length, described, (output, i) =>
        {
            PgWriter.WriteParse(output, "", definitions.Definitions[describable[i]]!);
            PgWriter.WriteDescribe(output, (byte)'S', default);
            PgWriter.WriteSync(output);
        }, cancellationToken).ConfigureAwait(false);

        // Views whose definition did not describe keep all-unknown columns.
        var origins = new Dictionary<uint, PgColumnOrigin[]>(views.Length);
        foreach (var view in views)
        {
            origins[view.Oid] = new PgColumnOrigin[view.Columns.Length];
        }

        int notDescribed = views.Length;
        for (int i = 0; i < describable.Length; i++)
        {
            var view = views[describable[i]];
            // A view has no dropped columns: its attribute numbers are its output columns, in order.
            if (described.Fields[i] is { } fields && fields.Length == view.Columns.Length)
            {
                origins[view.Oid] = fields;
                notDescribed--;
            }
        }

        var resolved = PgViewResolver.ResolveOrigins(origins, catalog.AllViews);
        var dependencies = PgViewResolver.ResolveDependencies(catalog.Dependencies, resolved, catalog.AllViews);
        var relations = catalog.Relations.Values.Select(r => r.IsView
            ? new PgRelation(r.Oid, r.Schema, r.Name, r.Kind, r.Columns, resolved[r.Oid], dependencies.GetValueOrDefault(r.Oid))
            : new PgRelation(r.Oid, r.Schema, r.Name, r.Kind, r.Columns));
        return new PgCatalogSnapshot(version, loadedAt, relations, catalog.TextTypes, catalog.JsonTypes)
        {
            ViewCount = views.Length,
            ViewsNotDescribed = notDescribed,
        };
    }

    private string CatalogBatch(bool prepare)
    {
        var ms = CultureInfo.InvariantCulture;
        string lockTimeout = ((long)_options.LockTimeout.TotalMilliseconds).ToString(ms);
        string statementTimeout = ((long)_options.LoadTimeout.TotalMilliseconds).ToString(ms);
        string prepared = prepare
            ? $"PREPARE {ViewDefinitionStatement} (pg_catalog.oid) AS SELECT pg_catalog.pg_get_viewdef($1);"
            : "";
        // BEGIN first: the isolation level must be set before any statement takes a snapshot (PREPARE does). The
        // SETs outlive the transaction (the server stops waiting when the gateway has stopped listening), and so
        // does the prepared statement.
        return $"""
            BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
            SET lock_timeout = {lockTimeout};
            SET statement_timeout = {statementTimeout};
            {prepared}
            {RelationsQuery};
            {ColumnsQuery};
            {TypesQuery};
            {DependenciesQuery};
            {ViewsQuery};
            COMMIT
            """;
    }

    /// <summary>
    /// Writes <paramref name="count"/> requests (each ending in Sync) while reading their answers, so that neither
    /// side's buffers fill up and stall the other: the writer flushes every few requests, the reader drains.
    /// </summary>
    private static async Task RunPipelineAsync<THandler>(PgCatalogClient client, int count, THandler handler,
        Action<PipeWriter, int> writeRequest, CancellationToken cancellationToken)
        where THandler : IPgResponseHandler
    {
        if (count == 0)
        {
            return;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var writing = WriteAsync(client, count, writeRequest, stop.Token);
        try
        {
            for (int i = 0; i < count; i++)
            {
                await client.ReadUntilReadyAsync(handler, cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            // The connection is dropped after this; the writer must not wait on a reader that is gone.
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await writing.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Its failure is a consequence of ours.
            }

            throw;
        }

        await writing.ConfigureAwait(false);

        static async Task WriteAsync(PgCatalogClient client, int count, Action<PipeWriter, int> writeRequest, CancellationToken cancellationToken)
        {
            await Task.Yield();
            for (int i = 0; i < count; i++)
            {
                writeRequest(client.Output, i);
                if (i % PipelineFlushEvery == PipelineFlushEvery - 1)
                {
                    await client.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            await client.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A relation as read, before its view origins are known.</summary>
    private sealed class RelationDraft(uint oid, string schema, string name, char kind, string?[] columns)
    {
        public uint Oid { get; } = oid;

        public string Schema { get; } = schema;

        public string Name { get; } = name;

        public char Kind { get; } = kind;

        public string?[] Columns { get; } = columns;

        public bool IsView => Kind is 'v' or 'm';
    }

    /// <summary>The responses to the catalog batch, statement by statement (each ends with CommandComplete).</summary>
    private sealed class CatalogHandler(int maxColumns, bool prepare) : IPgResponseHandler
    {
        private readonly Dictionary<uint, string> _schemas = [];
        private long _columnBudget = maxColumns;

        public int Statements { get; private set; }

        public (string SqlState, string Message)? Error { get; private set; }

        public Dictionary<uint, RelationDraft> Relations { get; } = [];

        public HashSet<uint> TextTypes { get; } = [];

        public HashSet<uint> JsonTypes { get; } = [];

        public Dictionary<uint, IReadOnlyList<PgColumnOrigin>> Dependencies { get; } = [];

        public HashSet<uint> AllViews { get; } = [];

        /// <summary>BEGIN, SET, SET, [PREPARE], five queries, COMMIT.</summary>
        public int ExpectedStatements => prepare ? 10 : 9;

        public RelationDraft[] UserViews() => Relations.Values.Where(r => r.IsView).ToArray();

        public void OnMessage(byte code, ReadOnlySpan<byte> body)
        {
            switch ((BackendCode)code)
            {
                case BackendCode.CommandComplete:
                    Statements++;
                    break;
                case BackendCode.DataRow when Error is null:
                    OnRow(body);
                    break;
                case BackendCode.ErrorResponse:
                    Error ??= PgBodyReader.ReadError(body);
                    break;
                case BackendCode.RowDescription or BackendCode.NoticeResponse or BackendCode.ParameterStatus
                    or BackendCode.NotificationResponse or BackendCode.EmptyQueryResponse or BackendCode.ReadyForQuery
                    or BackendCode.DataRow:
                    break;
                default:
                    throw new PgCatalogException("unexpected message from the upstream server on the catalog connection");
            }
        }

        private void OnRow(ReadOnlySpan<byte> body)
        {
            var row = new PgBodyReader(body);
            row.ReadInt16();
            // The queries follow BEGIN, SET, SET[, PREPARE]: the first of them is statement 3 or 4 (0-based).
            int query = Statements - (prepare ? 4 : 3);
            switch (query)
            {
                case 0:
                    OnRelation(ref row);
                    break;
                case 1:
                    OnColumn(ref row);
                    break;
                case 2:
                    uint type = row.ReadOidField();
                    (row.ReadCharField() == 'j' ? JsonTypes : TextTypes).Add(type);
                    break;
                case 3:
                    uint view = row.ReadOidField();
                    uint relation = row.ReadOidField();
                    short attnum = row.ReadInt16Field();
                    if (!Dependencies.TryGetValue(view, out var list))
                    {
                        list = new List<PgColumnOrigin>();
                        Dependencies.Add(view, list);
                    }

                    ((List<PgColumnOrigin>)list).Add(PgColumnOrigin.Column(relation, attnum));
                    break;
                case 4:
                    AllViews.Add(row.ReadOidField());
                    break;
                default:
                    throw new PgCatalogException("unexpected rows from the upstream server on the catalog connection");
            }
        }

        private void OnRelation(ref PgBodyReader row)
        {
            uint oid = row.ReadOidField();
            uint schemaOid = row.ReadOidField();
            var schemaName = row.ReadField();
            string name = row.ReadStringField();
            char kind = row.ReadCharField();
            short columns = row.ReadInt16Field();
            if (columns < 0)
            {
                throw new PgCatalogException("the upstream server reported a relation with a negative column count");
            }

            // Checked as the relations arrive, before a single column is read: a relation costs about as much as a column.
            _columnBudget -= columns + 1;
            if (_columnBudget < 0)
            {
                throw new PgCatalogException($"the catalog has more than {maxColumns} columns, the configured maximum");
            }

            if (!_schemas.TryGetValue(schemaOid, out var schema))
            {
                schema = PgBodyReader.Decode(schemaName);
                _schemas.Add(schemaOid, schema);
            }

            Relations[oid] = new RelationDraft(oid, schema, name, kind, new string?[columns]);
        }

        private void OnColumn(ref PgBodyReader row)
        {
            uint relation = row.ReadOidField();
            short attnum = row.ReadInt16Field();
            if (Relations.TryGetValue(relation, out var draft) && attnum > 0 && attnum <= draft.Columns.Length)
            {
                draft.Columns[attnum - 1] = row.ReadStringField();
            }
        }
    }

    /// <summary>One answer per view: the definition's text (NULL when the view was dropped meanwhile), or an error.</summary>
    private sealed class DefinitionHandler(int count) : IPgResponseHandler
    {
        private int _index;

        public string?[] Definitions { get; } = new string?[count];

        public void OnMessage(byte code, ReadOnlySpan<byte> body)
        {
            switch ((BackendCode)code)
            {
                case BackendCode.DataRow:
                    var row = new PgBodyReader(body);
                    if (row.ReadInt16() == 1 && row.TryReadField(out var text))
                    {
                        Definitions[_index] = PgBodyReader.Decode(text);
                    }

                    break;
                case BackendCode.ErrorResponse:
                    // Dropped or locked meanwhile: this view's columns stay unknown; the pipeline goes on after its Sync.
                    Definitions[_index] = null;
                    break;
                case BackendCode.ReadyForQuery:
                    _index++;
                    break;
                case BackendCode.BindComplete or BackendCode.CommandComplete or BackendCode.NoticeResponse
                    or BackendCode.ParameterStatus or BackendCode.NotificationResponse:
                    break;
                default:
                    throw new PgCatalogException("unexpected message from the upstream server on the catalog connection");
            }
        }
    }

    /// <summary>One answer per definition: the origin of each output column, or null when it did not parse.</summary>
    private sealed class DescribeHandler(int count) : IPgResponseHandler
    {
        private int _index;

        public PgColumnOrigin[]?[] Fields { get; } = new PgColumnOrigin[]?[count];

        public void OnMessage(byte code, ReadOnlySpan<byte> body)
        {
            switch ((BackendCode)code)
            {
                case BackendCode.RowDescription:
                    var reader = new PgBodyReader(body);
                    short fields = reader.ReadInt16();
                    var origins = new PgColumnOrigin[Math.Max((short)0, fields)];
                    for (int i = 0; i < origins.Length; i++)
                    {
                        // Name, table OID, attribute number, then type OID, size, modifier, format.
                        reader.ReadCString();
                        uint table = reader.ReadUInt32();
                        short attnum = reader.ReadInt16();
                        reader.ReadUInt32();
                        reader.ReadInt16();
                        reader.ReadInt32();
                        reader.ReadInt16();
                        origins[i] = PgColumnOrigin.FromRowDescription(table, attnum);
                    }

                    Fields[_index] = origins;
                    break;
                case BackendCode.NoData:
                    Fields[_index] = [];
                    break;
                case BackendCode.ErrorResponse:
                    Fields[_index] = null;
                    break;
                case BackendCode.ReadyForQuery:
                    _index++;
                    break;
                case BackendCode.ParseComplete or BackendCode.ParameterDescription or BackendCode.NoticeResponse
                    or BackendCode.ParameterStatus or BackendCode.NotificationResponse:
                    break;
                default:
                    throw new PgCatalogException("unexpected message from the upstream server on the catalog connection");
            }
        }
    }
}
