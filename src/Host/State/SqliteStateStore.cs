using System.Globalization;
using Gatehouse.Policy.Access;
using Gatehouse.Policy.Approvals;
using Microsoft.Data.Sqlite;

namespace Gatehouse.Host.State;

/// <summary>The state store cannot be used: its file cannot be opened, is not a database, or is newer than this build.</summary>
public sealed class StateStoreException : Exception
{
    public StateStoreException()
    {
    }

    public StateStoreException(string message)
        : base(message)
    {
    }

    public StateStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The embedded state store: one SQLite file (WAL journal, full sync, so a revocation survives a power cut), a
/// connection per operation from Microsoft.Data.Sqlite's pool, and versioned migrations applied in one
/// transaction at <see cref="OpenAsync"/>. A file whose schema is newer than this build is refused, never
/// written: an older gateway must not guess at a newer layout.
/// </summary>
/// <remarks>
/// Every decision is a conditional UPDATE (<c>WHERE state = 'pending'</c>), so a request is decided once even when
/// two approvers race. SQLite serializes writers; the busy timeout makes a second writer wait rather than fail.
/// </remarks>
public sealed class SqliteStateStore : IStateStore
{
    private readonly string _connectionString;
    private readonly IReadOnlyList<StateMigration> _migrations;
    private readonly string _instance;
    private int _opened;

    /// <param name="path">The database file; created (mode 0600) when missing. Its folder must exist.</param>
    public SqliteStateStore(string path)
        : this(path, StateMigrations.All)
    {
    }

    /// <summary>A store with its own migration list (tests of the migration machinery).</summary>
    internal SqliteStateStore(string path, IReadOnlyList<StateMigration> migrations)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
        _migrations = migrations;
        _instance = StateIds.New("run");
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 10,
            ForeignKeys = true,
        }.ToString();
    }

    /// <summary>The database file's full path.</summary>
    public string Path { get; }

    /// <summary>This gateway run: session ids restart with every run, so session rows are keyed by both.</summary>
    public string Instance => _instance;

    /// <summary>The schema version after <see cref="OpenAsync"/>.</summary>
    public int SchemaVersion { get; private set; }

    /// <summary>
    /// Opens the file, switches it to WAL, and applies the migrations it lacks in one transaction. Throws
    /// <see cref="StateStoreException"/> when the file cannot be used, or when its schema is newer than this build.
    /// </summary>
    public async Task OpenAsync(CancellationToken cancellationToken = default)
    {
        string? folder = System.IO.Path.GetDirectoryName(Path);
        if (folder is not null && !Directory.Exists(folder))
        {
            throw new StateStoreException($"cannot open the state store {Path}: the folder {folder} does not exist");
        }

        try
        {
            CreatePrivately(Path);
            await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = connection.BeginTransaction(deferred: false);
            await ExecuteAsync(connection, transaction, """
                CREATE TABLE IF NOT EXISTS schema_version (
                    version     INTEGER PRIMARY KEY,
                    description TEXT NOT NULL,
                    applied_at  INTEGER NOT NULL
                );
                """, cancellationToken).ConfigureAwait(false);
            int current;
            await using (var command = Command(connection, transaction, "SELECT coalesce(max(version), 0) FROM schema_version;"))
            {
                current = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            }

            int latest = _migrations.Count == 0 ? 0 : _migrations.Max(m => m.Version);
            if (current > latest)
            {
                throw new StateStoreException(
                    $"the state store {Path} has schema version {current}, newer than this gatehouse understands (up to {latest}): "
                    + "it was written by a newer release. Run that release, or point state.path at another file.");
            }

            foreach (var migration in _migrations.Where(m => m.Version > current).OrderBy(m => m.Version))
            {
                await ExecuteAsync(connection, transaction, migration.Sql, cancellationToken).ConfigureAwait(false);
                await using var record = Command(connection, transaction,
                    "INSERT INTO schema_version (version, description, applied_at) VALUES ($v, $d, $at);");
                record.Parameters.AddWithValue("$v", migration.Version);
                record.Parameters.AddWithValue("$d", migration.Description);
                record.Parameters.AddWithValue("$at", Ms(DateTimeOffset.UtcNow));
                await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                current = migration.Version;
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

            // WAL: readers never wait for the writer. Switched only once the file is known to be ours and current.
            await ExecuteAsync(connection, null, "PRAGMA journal_mode = WAL;", cancellationToken).ConfigureAwait(false);
            SchemaVersion = current;
            Volatile.Write(ref _opened, 1);
        }
        catch (SqliteException ex)
        {
            throw new StateStoreException($"cannot open the state store {Path}: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StateStoreException($"cannot open the state store {Path}: {ex.Message}", ex);
        }
    }

    // ---- Access requests and grants --------------------------------------------------------------------------

    private const string RequestColumns =
        "id, identity, connection, role, duration_ms, reason, requested_at, expires_at, state, decided_by, decided_at, decision_reason, grant_id";

    private const string GrantColumns =
        "id, request_id, identity, connection, role, starts_at, ends_at, approver, reason, revoked_at, revoked_by, revoke_reason";

    private const string ApprovalColumns =
        "id, identity, connection, session_id, role, rule, statement, requested_at, expires_at, state, decided_by, decided_at, reason";

    public Task AddAccessRequestAsync(AccessRequestRecord request, GrantRecord? grant, CancellationToken cancellationToken = default) =>
        WriteAsync(async (connection, transaction) =>
        {
            await using var insert = Command(connection, transaction, $"""
                INSERT INTO access_requests ({RequestColumns})
                VALUES ($id, $identity, $connection, $role, $duration, $reason, $requested, $expires, $state, $by, $at, $why, $grant);
                """);
            insert.Parameters.AddWithValue("$id", request.Id);
            insert.Parameters.AddWithValue("$identity", request.Identity);
            insert.Parameters.AddWithValue("$connection", request.Connection);
            insert.Parameters.AddWithValue("$role", request.Role);
            insert.Parameters.AddWithValue("$duration", (long)request.Duration.TotalMilliseconds);
            insert.Parameters.AddWithValue("$reason", request.Reason);
            insert.Parameters.AddWithValue("$requested", Ms(request.RequestedAt));
            insert.Parameters.AddWithValue("$expires", Ms(request.ExpiresAt));
            insert.Parameters.AddWithValue("$state", Name(request.State));
            insert.Parameters.AddWithValue("$by", Db(request.DecidedBy));
            insert.Parameters.AddWithValue("$at", Db(request.DecidedAt));
            insert.Parameters.AddWithValue("$why", Db(request.DecisionReason));
            insert.Parameters.AddWithValue("$grant", Db(request.GrantId));
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            if (grant is not null)
            {
                await InsertGrantAsync(connection, transaction, grant, cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);

    public Task<AccessRequestRecord?> GetAccessRequestAsync(string id, CancellationToken cancellationToken = default) =>
        ReadOneAsync($"SELECT {RequestColumns} FROM access_requests WHERE id = $id;", p => p.AddWithValue("$id", id), ReadRequest, cancellationToken);

    public Task<IReadOnlyList<AccessRequestRecord>> ListAccessRequestsAsync(bool all, int limit, CancellationToken cancellationToken = default) =>
        ReadManyAsync($"""
            SELECT {RequestColumns} FROM access_requests
            WHERE $all OR state = 'pending'
            ORDER BY requested_at DESC, id DESC LIMIT $limit;
            """, p =>
        {
            p.AddWithValue("$all", all);
            p.AddWithValue("$limit", limit);
        }, ReadRequest, cancellationToken);

    public Task<bool> DecideAccessRequestAsync(string id, AccessRequestState state, string? decidedBy, DateTimeOffset decidedAt, string? reason,
        GrantRecord? grant, CancellationToken cancellationToken = default)
    {
        if (state == AccessRequestState.Pending)
        {
            throw new ArgumentOutOfRangeException(nameof(state), "a request is decided to a final state");
        }

        return WriteAsync(async (connection, transaction) =>
        {
            await using var update = Command(connection, transaction, """
                UPDATE access_requests SET state = $state, decided_by = $by, decided_at = $at, decision_reason = $why, grant_id = $grant
                WHERE id = $id AND state = 'pending';
                """);
            update.Parameters.AddWithValue("$id", id);
            update.Parameters.AddWithValue("$state", Name(state));
            update.Parameters.AddWithValue("$by", Db(decidedBy));
            update.Parameters.AddWithValue("$at", Ms(decidedAt));
            update.Parameters.AddWithValue("$why", Db(reason));
            update.Parameters.AddWithValue("$grant", Db(grant?.Id));
            if (await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) != 1)
            {
                return false;
            }

            if (grant is not null)
            {
                await InsertGrantAsync(connection, transaction, grant, cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);
    }

    public Task<IReadOnlyList<AccessRequestRecord>> ExpireAccessRequestsAsync(DateTimeOffset now, CancellationToken cancellationToken = default) =>
        WriteAsync<IReadOnlyList<AccessRequestRecord>>(async (connection, transaction) =>
        {
            var expired = new List<AccessRequestRecord>();
            await using (var select = Command(connection, transaction,
                $"SELECT {RequestColumns} FROM access_requests WHERE state = 'pending' AND expires_at <= $now;"))
            {
                select.Parameters.AddWithValue("$now", Ms(now));
                await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    expired.Add(ReadRequest(reader) with
                    {
                        State = AccessRequestState.Expired,
                        DecidedAt = now,
                        DecisionReason = "no decision before the deadline",
                    });
                }
            }

            if (expired.Count > 0)
            {
                await using var update = Command(connection, transaction, """
                    UPDATE access_requests SET state = 'expired', decided_at = $now, decision_reason = 'no decision before the deadline'
                    WHERE state = 'pending' AND expires_at <= $now;
                    """);
                update.Parameters.AddWithValue("$now", Ms(now));
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return expired;
        }, cancellationToken);

    public Task<GrantRecord?> GetGrantAsync(string id, CancellationToken cancellationToken = default) =>
        ReadOneAsync($"SELECT {GrantColumns} FROM grants WHERE id = $id;", p => p.AddWithValue("$id", id), ReadGrant, cancellationToken);

    public Task<IReadOnlyList<GrantRecord>> ListGrantsAsync(bool all, DateTimeOffset now, int limit, CancellationToken cancellationToken = default) =>
        ReadManyAsync($"""
            SELECT {GrantColumns} FROM grants
            WHERE $all OR (revoked_at IS NULL AND ends_at > $now)
            ORDER BY starts_at DESC, id DESC LIMIT $limit;
            """, p =>
        {
            p.AddWithValue("$all", all);
            p.AddWithValue("$now", Ms(now));
            p.AddWithValue("$limit", limit);
        }, ReadGrant, cancellationToken);

    public Task<bool> RevokeGrantAsync(string id, string revokedBy, DateTimeOffset revokedAt, string? reason, CancellationToken cancellationToken = default) =>
        WriteAsync(async (connection, transaction) =>
        {
            await using var update = Command(connection, transaction, """
                UPDATE grants SET revoked_at = $at, revoked_by = $by, revoke_reason = $why
                WHERE id = $id AND revoked_at IS NULL AND ends_at > $at;
                """);
            update.Parameters.AddWithValue("$id", id);
            update.Parameters.AddWithValue("$at", Ms(revokedAt));
            update.Parameters.AddWithValue("$by", revokedBy);
            update.Parameters.AddWithValue("$why", Db(reason));
            return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);

    private static async Task InsertGrantAsync(SqliteConnection connection, SqliteTransaction transaction, GrantRecord grant, CancellationToken cancellationToken)
    {
        await using var insert = Command(connection, transaction, $"""
            INSERT INTO grants ({GrantColumns})
            VALUES ($id, $request, $identity, $connection, $role, $start, $end, $approver, $reason, $revokedAt, $revokedBy, $revokeReason);
            """);
        insert.Parameters.AddWithValue("$id", grant.Id);
        insert.Parameters.AddWithValue("$request", Db(grant.RequestId));
        insert.Parameters.AddWithValue("$identity", grant.Identity);
        insert.Parameters.AddWithValue("$connection", grant.Connection);
        insert.Parameters.AddWithValue("$role", grant.Role);
        insert.Parameters.AddWithValue("$start", Ms(grant.Start));
        insert.Parameters.AddWithValue("$end", Ms(grant.End));
        insert.Parameters.AddWithValue("$approver", grant.Approver);
        insert.Parameters.AddWithValue("$reason", grant.Reason);
        insert.Parameters.AddWithValue("$revokedAt", Db(grant.RevokedAt));
        insert.Parameters.AddWithValue("$revokedBy", Db(grant.RevokedBy));
        insert.Parameters.AddWithValue("$revokeReason", Db(grant.RevokeReason));
        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    // ---- Approvals of held statements ------------------------------------------------------------------------

    public Task AddApprovalAsync(ApprovalRequest request, CancellationToken cancellationToken = default) =>
        WriteAsync(async (connection, transaction) =>
        {
            await using var insert = Command(connection, transaction, $"""
                INSERT INTO approvals ({ApprovalColumns})
                VALUES ($id, $identity, $connection, $session, $role, $rule, $statement, $requested, $expires, 'pending', NULL, NULL, NULL);
                """);
            insert.Parameters.AddWithValue("$id", request.Id);
            insert.Parameters.AddWithValue("$identity", request.Identity);
            insert.Parameters.AddWithValue("$connection", request.Connection);
            insert.Parameters.AddWithValue("$session", request.SessionId);
            insert.Parameters.AddWithValue("$role", request.Role);
            insert.Parameters.AddWithValue("$rule", request.Rule);
            insert.Parameters.AddWithValue("$statement", request.Statement);
            insert.Parameters.AddWithValue("$requested", Ms(request.RequestedAt));
            insert.Parameters.AddWithValue("$expires", Ms(request.ExpiresAt));
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task<bool> CompleteApprovalAsync(string id, ApprovalState state, string? decidedBy, DateTimeOffset decidedAt, string? reason,
        CancellationToken cancellationToken = default)
    {
        if (state == ApprovalState.Pending)
        {
            throw new ArgumentOutOfRangeException(nameof(state), "an approval completes to a final state");
        }

        return WriteAsync(async (connection, transaction) =>
        {
            await using var update = Command(connection, transaction, """
                UPDATE approvals SET state = $state, decided_by = $by, decided_at = $at, reason = $why
                WHERE id = $id AND state = 'pending';
                """);
            update.Parameters.AddWithValue("$id", id);
            update.Parameters.AddWithValue("$state", Name(state));
            update.Parameters.AddWithValue("$by", Db(decidedBy));
            update.Parameters.AddWithValue("$at", Ms(decidedAt));
            update.Parameters.AddWithValue("$why", Db(reason));
            return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
        }, cancellationToken);
    }

    public Task<ApprovalRecord?> GetApprovalAsync(string id, CancellationToken cancellationToken = default) =>
        ReadOneAsync($"SELECT {ApprovalColumns} FROM approvals WHERE id = $id;", p => p.AddWithValue("$id", id), ReadApproval, cancellationToken);

    public Task<IReadOnlyList<ApprovalRecord>> ListApprovalsAsync(bool all, int limit, CancellationToken cancellationToken = default) =>
        ReadManyAsync($"""
            SELECT {ApprovalColumns} FROM approvals
            WHERE $all OR state = 'pending'
            ORDER BY requested_at DESC, id DESC LIMIT $limit;
            """, p =>
        {
            p.AddWithValue("$all", all);
            p.AddWithValue("$limit", limit);
        }, ReadApproval, cancellationToken);

    public Task<int> WithdrawPendingApprovalsAsync(DateTimeOffset at, string reason, CancellationToken cancellationToken = default) =>
        WriteAsync(async (connection, transaction) =>
        {
            await using var update = Command(connection, transaction,
                "UPDATE approvals SET state = 'withdrawn', decided_at = $at, reason = $why WHERE state = 'pending';");
            update.Parameters.AddWithValue("$at", Ms(at));
            update.Parameters.AddWithValue("$why", reason);
            return await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    // ---- Sessions and audit ----------------------------------------------------------------------------------

    public Task RecordSessionsAsync(IReadOnlyList<SessionRecord> sessions, CancellationToken cancellationToken = default) =>
        WriteAsync(async (connection, transaction) =>
        {
            // A start inserts the row; an end completes it (or inserts it whole, when the start was never recorded).
            await using var upsert = Command(connection, transaction, """
                INSERT INTO sessions (instance, session_id, identity, connection, listener, remote, started_at, ended_at, end_reason,
                                      end_side, end_detail, bytes_in, bytes_out)
                VALUES ($instance, $id, $identity, $connection, $listener, $remote, $started, $ended, $reason, $side, $detail, $in, $out)
                ON CONFLICT (instance, session_id) DO UPDATE SET
                    identity = coalesce(excluded.identity, identity),
                    connection = coalesce(excluded.connection, connection),
                    ended_at = coalesce(excluded.ended_at, ended_at),
                    end_reason = coalesce(excluded.end_reason, end_reason),
                    end_side = coalesce(excluded.end_side, end_side),
                    end_detail = coalesce(excluded.end_detail, end_detail),
                    bytes_in = max(excluded.bytes_in, bytes_in),
                    bytes_out = max(excluded.bytes_out, bytes_out);
                """);
            foreach (var s in sessions)
            {
                var p = upsert.Parameters;
                p.Clear();
                p.AddWithValue("$instance", s.Instance.Length == 0 ? _instance : s.Instance);
                p.AddWithValue("$id", s.SessionId);
                p.AddWithValue("$identity", Db(s.Identity));
                p.AddWithValue("$connection", Db(s.Connection));
                p.AddWithValue("$listener", s.Listener);
                p.AddWithValue("$remote", Db(s.Remote));
                p.AddWithValue("$started", Ms(s.StartedAt));
                p.AddWithValue("$ended", Db(s.EndedAt));
                p.AddWithValue("$reason", Db(s.EndReason));
                p.AddWithValue("$side", Db(s.EndSide));
                p.AddWithValue("$detail", Db(s.EndDetail));
                p.AddWithValue("$in", s.BytesFromClient);
                p.AddWithValue("$out", s.BytesFromServer);
                await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);

    public Task<IReadOnlyList<SessionRecord>> ListSessionsAsync(int limit, CancellationToken cancellationToken = default) =>
        ReadManyAsync("""
            SELECT instance, session_id, identity, connection, listener, remote, started_at, ended_at, end_reason, end_side, end_detail,
                   bytes_in, bytes_out
            FROM sessions ORDER BY started_at DESC, session_id DESC LIMIT $limit;
            """, p => p.AddWithValue("$limit", limit), r => new SessionRecord(
            r.GetString(0), r.GetInt64(1), Str(r, 2), Str(r, 3), r.GetString(4), Str(r, 5), Time(r, 6), TimeOrNull(r, 7), Str(r, 8), Str(r, 9),
            Str(r, 10), r.GetInt64(11), r.GetInt64(12)), cancellationToken);

    public Task AppendAuditAsync(IReadOnlyList<AuditEvent> events, CancellationToken cancellationToken = default) =>
        WriteAsync(async (connection, transaction) =>
        {
            await using var insert = Command(connection, transaction, """
                INSERT INTO audit_events (at, kind, identity, connection, session_id, subject, actor, detail)
                VALUES ($at, $kind, $identity, $connection, $session, $subject, $actor, $detail);
                """);
            foreach (var e in events)
            {
                var p = insert.Parameters;
                p.Clear();
                p.AddWithValue("$at", Ms(e.At));
                p.AddWithValue("$kind", e.Kind);
                p.AddWithValue("$identity", Db(e.Identity));
                p.AddWithValue("$connection", Db(e.Connection));
                p.AddWithValue("$session", e.SessionId is { } id ? id : DBNull.Value);
                p.AddWithValue("$subject", Db(e.Subject));
                p.AddWithValue("$actor", Db(e.Actor));
                p.AddWithValue("$detail", Db(e.Detail));
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            return true;
        }, cancellationToken);

    public Task<IReadOnlyList<AuditEvent>> ListAuditAsync(DateTimeOffset? since, int limit, CancellationToken cancellationToken = default) =>
        ReadManyAsync("""
            SELECT at, kind, identity, connection, session_id, subject, actor, detail FROM audit_events
            WHERE at >= $since ORDER BY seq DESC LIMIT $limit;
            """, p =>
        {
            p.AddWithValue("$since", since is { } s ? Ms(s) : long.MinValue);
            p.AddWithValue("$limit", limit);
        }, r => new AuditEvent(Time(r, 0), r.GetString(1), Str(r, 2), Str(r, 3), r.IsDBNull(4) ? null : r.GetInt64(4), Str(r, 5), Str(r, 6), Str(r, 7)),
            cancellationToken);

    public ValueTask DisposeAsync()
    {
        // Pooled connections keep the file open; release them so the file can be moved or opened again at once.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }

    // ---- Plumbing --------------------------------------------------------------------------------------------

    /// <summary>Creates the file readable by its owner only: it holds statement texts and who did what.</summary>
    private static void CreatePrivately(string path)
    {
        if (File.Exists(path) || OperatingSystem.IsWindows())
        {
            return;
        }

        try
        {
            using var file = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (IOException) when (File.Exists(path))
        {
            // Created meanwhile by another process: fine.
        }
    }

    private async Task<SqliteConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            // FULL: a commit is on disk when it returns (a revocation must not come back after a power cut).
            await ExecuteAsync(connection, null, "PRAGMA synchronous = FULL;", cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void EnsureOpen()
    {
        if (Volatile.Read(ref _opened) == 0)
        {
            throw new InvalidOperationException("the state store is not open: call OpenAsync first");
        }
    }

    private async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        EnsureOpen();
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        // BEGIN IMMEDIATE: take the write lock up front, so two writers queue instead of failing on lock upgrade.
        await using var transaction = connection.BeginTransaction(deferred: false);
        T result = await work(connection, transaction).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        return result;
    }

    private async Task<T?> ReadOneAsync<T>(string sql, Action<SqliteParameterCollection> bind, Func<SqliteDataReader, T> read,
        CancellationToken cancellationToken)
        where T : class
    {
        var list = await ReadManyAsync(sql, bind, read, cancellationToken).ConfigureAwait(false);
        return list.Count == 0 ? null : list[0];
    }

    private async Task<IReadOnlyList<T>> ReadManyAsync<T>(string sql, Action<SqliteParameterCollection> bind, Func<SqliteDataReader, T> read,
        CancellationToken cancellationToken)
    {
        EnsureOpen();
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var command = Command(connection, null, sql);
        bind(command.Parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var result = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(read(reader));
        }

        return result;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    private static async Task ExecuteAsync(SqliteConnection connection, SqliteTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static AccessRequestRecord ReadRequest(SqliteDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), TimeSpan.FromMilliseconds(r.GetInt64(4)), r.GetString(5), Time(r, 6),
        Time(r, 7), ParseRequestState(r.GetString(8)), Str(r, 9), TimeOrNull(r, 10), Str(r, 11), Str(r, 12));

    private static GrantRecord ReadGrant(SqliteDataReader r) => new(
        r.GetString(0), Str(r, 1), r.GetString(2), r.GetString(3), r.GetString(4), Time(r, 5), Time(r, 6), r.GetString(7), r.GetString(8),
        TimeOrNull(r, 9), Str(r, 10), Str(r, 11));

    private static ApprovalRecord ReadApproval(SqliteDataReader r) => new(
        new ApprovalRequest(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetString(4), r.GetString(5), r.GetString(6),
            Time(r, 7), Time(r, 8)),
        ParseApprovalState(r.GetString(9)), Str(r, 10), TimeOrNull(r, 11), Str(r, 12));

    internal static string Name(AccessRequestState state) => state switch
    {
        AccessRequestState.Pending => "pending",
        AccessRequestState.Approved => "approved",
        AccessRequestState.Denied => "denied",
        _ => "expired",
    };

    internal static string Name(ApprovalState state) => state switch
    {
        ApprovalState.Pending => "pending",
        ApprovalState.Approved => "approved",
        ApprovalState.Denied => "denied",
        ApprovalState.Expired => "expired",
        _ => "withdrawn",
    };

    private static AccessRequestState ParseRequestState(string text) => text switch
    {
        "pending" => AccessRequestState.Pending,
        "approved" => AccessRequestState.Approved,
        "denied" => AccessRequestState.Denied,
        "expired" => AccessRequestState.Expired,
        _ => throw new StateStoreException($"unknown access request state '{text}' in the state store"),
    };

    private static ApprovalState ParseApprovalState(string text) => text switch
    {
        "pending" => ApprovalState.Pending,
        "approved" => ApprovalState.Approved,
        "denied" => ApprovalState.Denied,
        "expired" => ApprovalState.Expired,
        "withdrawn" => ApprovalState.Withdrawn,
        _ => throw new StateStoreException($"unknown approval state '{text}' in the state store"),
    };

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static object Db(string? text) => text is null ? DBNull.Value : text;

    private static object Db(DateTimeOffset? time) => time is { } t ? Ms(t) : DBNull.Value;

    private static string? Str(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static DateTimeOffset Time(SqliteDataReader r, int i) => DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(i));

    private static DateTimeOffset? TimeOrNull(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : Time(r, i);
}
