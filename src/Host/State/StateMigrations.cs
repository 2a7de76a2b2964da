namespace Gatehouse.Host.State;

/// <summary>One step of the state store's schema: applied once, in order, recorded in <c>schema_version</c>.</summary>
/// <param name="Version">1, 2, 3, ...: the schema version after this step.</param>
/// <param name="Description">What the step does, recorded with it.</param>
/// <param name="Sql">The statements; they run inside the open's transaction, so a failed step leaves nothing behind.</param>
public sealed record StateMigration(int Version, string Description, string Sql);

/// <summary>
/// The state store's schema as an ordered list of migrations. A released step is never edited: a change is a new
/// step. Times are Unix milliseconds (UTC), states lower-case words, so the file reads well in the sqlite3 shell.
/// </summary>
public static class StateMigrations
{
    public static IReadOnlyList<StateMigration> All { get; } =
    [
        new(1, "access requests, grants, approvals, sessions, audit events", """
            CREATE TABLE access_requests (
                id              TEXT PRIMARY KEY,
                identity        TEXT NOT NULL,
                connection      TEXT NOT NULL,
                role            TEXT NOT NULL,
                duration_ms     INTEGER NOT NULL CHECK (duration_ms > 0),
                reason          TEXT NOT NULL,
                requested_at    INTEGER NOT NULL,
                expires_at      INTEGER NOT NULL,
                state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired')),
                decided_by      TEXT,
                decided_at      INTEGER,
                decision_reason TEXT,
                grant_id        TEXT
            );
            CREATE INDEX access_requests_by_state ON access_requests (state, requested_at);

            CREATE TABLE grants (
                id            TEXT PRIMARY KEY,
                request_id    TEXT REFERENCES access_requests (id),
                identity      TEXT NOT NULL,
                connection    TEXT NOT NULL,
                role          TEXT NOT NULL,
                starts_at     INTEGER NOT NULL,
                ends_at       INTEGER NOT NULL CHECK (ends_at > starts_at),
                approver      TEXT NOT NULL,
                reason        TEXT NOT NULL,
                revoked_at    INTEGER,
                revoked_by    TEXT,
                revoke_reason TEXT
            );
            CREATE INDEX grants_live ON grants (ends_at) WHERE revoked_at IS NULL;
            CREATE INDEX grants_by_start ON grants (starts_at);

            CREATE TABLE approvals (
                id           TEXT PRIMARY KEY,
                identity     TEXT NOT NULL,
                connection   TEXT NOT NULL,
                session_id   INTEGER NOT NULL,
                role         TEXT NOT NULL,
                rule         TEXT NOT NULL,
                statement    TEXT NOT NULL,
                requested_at INTEGER NOT NULL,
                expires_at   INTEGER NOT NULL,
                state        TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired', 'withdrawn')),
                decided_by   TEXT,
                decided_at   INTEGER,
                reason       TEXT
            );
            CREATE INDEX approvals_by_state ON approvals (state, requested_at);

            CREATE TABLE sessions (
                instance    TEXT NOT NULL,
                session_id  INTEGER NOT NULL,
                identity    TEXT,
                connection  TEXT,
                listener    TEXT NOT NULL,
                remote      TEXT,
                started_at  INTEGER NOT NULL,
                ended_at    INTEGER,
                end_reason  TEXT,
                end_side    TEXT,
                end_detail  TEXT,
                bytes_in    INTEGER NOT NULL DEFAULT 0,
                bytes_out   INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (instance, session_id)
            );
            CREATE INDEX sessions_by_start ON sessions (started_at);

            CREATE TABLE audit_events (
                seq        INTEGER PRIMARY KEY AUTOINCREMENT,
                at         INTEGER NOT NULL,
                kind       TEXT NOT NULL,
                identity   TEXT,
                connection TEXT,
                session_id INTEGER,
                subject    TEXT,
                actor      TEXT,
                detail     TEXT
            );
            CREATE INDEX audit_events_by_time ON audit_events (at);
            """),
    ];

    /// <summary>The schema version this build writes: the last migration's.</summary>
    public static int Latest => All.Max(m => m.Version);
}
