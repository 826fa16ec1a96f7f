//! The store's own SQLite connections (a database file): stream reads and appends in the calling
//! thread, without sqlx's connection threads.
//!
//! sqlx runs every SQLite statement on its connection's worker thread: a stream read is a
//! message there, one message back per row, and a second round (a ping) when the connection goes
//! back to the pool. `perf` of 16 concurrent writers showed the process spending more time
//! switching between those threads than in SQLite. Loading a stream before a decision is the
//! hottest read of every command, and takes tens of microseconds in SQLite itself, so it runs
//! here, inline. WAL lets these readers run beside sqlx's writer; they see what is committed.
//! Appends are written here too, on one connection of their own: a batch's transaction was
//! five hops to sqlx's thread (begin, lookup, insert, commit, ping) for a few µs of SQLite.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Row};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{Metadata, RecordedEvent};

/// Idle connections kept; more may be open at once under load, the rest are closed on return.
/// A query holds one for its whole execution (its [`ReadSnapshot`]), so there are as many in
/// use as queries in flight: 64 concurrent HTTP clients keep 64 busy.
const IDLE: usize = 64;

/// Large reads on blocking threads at once.
const LARGE_READERS: usize = 8;

/// How long a reader waits for a lock (in WAL mode only a checkpoint's restart can hold one).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of the database file readers map into memory (SQLite's `mmap_size`). A query holds
/// a connection of its own, so 64 clients use 64 connections, each with a 2 MiB page cache of
/// its own: a lesson search's pages (its full-text index, the lessons it ranks) did not stay in
/// it, and every query read them again from the OS with a syscall and a copy (15% of the CPU of
/// a topic search). Mapped, all readers share the OS's copy of each page. Only reads go through
/// the mapping; SQLite writes with `pwrite` as before. The price: a disk I/O error under a
/// mapped page is a SIGBUS rather than an error, and the pages a reader touched count in the
/// process's RSS (as file pages the OS may take back).
const READ_MAP_BYTES: i64 = 1 << 30;

/// How long the writer waits for another process's write lock (as sqlx's connections do).
const WRITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct OwnConnections {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The connection appends are written on (one writer per process: group commit's turn).
    writer: Mutex<Option<Connection>>,
    /// Large reads at once on blocking threads (pages of the log, searches): without a bound,
    /// thousands of live cursors catching up at once would each open a connection (and its
    /// page cache).
    large_readers: tokio::sync::Semaphore,
    /// Reads begun inline that ran out of steps and were finished in place of the worker.
    pub(crate) finished_in_place: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for OwnConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnConnections").field("path", &self.path).finish()
    }
}

impl OwnConnections {
    /// Readers of the database file at `path`; `None` for a database that lives in memory (only
    /// sqlx's own connections can see it).
    pub fn of_file(path: &Path) -> Option<Self> {
        path.is_file().then(|| OwnConnections {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
            large_readers: tokio::sync::Semaphore::new(LARGE_READERS),
            finished_in_place: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Readers only: a bug here must not become a write.
        conn.pragma_update(None, "query_only", true)?;
        conn.pragma_update(None, "mmap_size", READ_MAP_BYTES)?;
        // The data loaders' look-ups differ by how many keys they batch: room for each.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    /// The writer: the settings sqlx's connections have (`EventStore::connect_with`).
    fn open_writer(&self) -> Result<Connection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(WRITE_BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "secure_delete", true)?;
        Ok(conn)
    }

    /// Runs `write` on the writer connection. It may wait for another process's write lock,
    /// so on a multi-thread runtime the worker thread is handed over while it runs.
    pub fn write<T>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let run = || {
            let mut slot = self.writer.lock().map_err(|_| StoreError::WriterGone)?;
            let conn = match slot.take() {
                Some(conn) => conn,
                None => self.open_writer()?,
            };
            let conn = slot.insert(conn);
            write(conn)
        };
        in_place_of_the_worker(run)
    }

    /// Runs `read` (a large read on these connections) on a blocking thread, at most [`LARGE_READERS`]
    /// at once.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _turn = self.large_readers.acquire().await.map_err(|_| StoreError::Interrupted)?;
        match tokio::task::spawn_blocking(read).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Interrupted),
        }
    }

    /// Runs `read` in this thread: in the task's [`ReadSnapshot`] of these connections when it
    /// has one, otherwise on an idle connection (or a new one) in a transaction of its own.
    pub(crate) fn with<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let read = match SNAPSHOT.try_with(Arc::clone) {
            Ok(snapshot) if std::ptr::eq(Arc::as_ptr(&snapshot.own), self) => match snapshot.read(read) {
                Ok(result) => return result,
                Err(read) => read,
            },
            _ => read,
        };
        let conn = self.take()?;
        let result = read(&conn);
        self.give_back(conn);
        result
    }

    /// An idle connection, or a new one.
    fn take(&self) -> Result<Connection, StoreError> {
        match self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(conn) => Ok(conn),
            None => Ok(self.open()?),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE {
                idle.push(conn);
            }
        }
    }

    /// The events `sql` selects (`SELECT {COLUMNS} ...`), in its order. `sql` is the pool's
    /// text: SQLite numbers `$1`, `$2` 1, 2 by first appearance, so `params` bind by position.
    pub fn read_events(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_rows(sql, params, recorded)
    }

    /// [`Self::read_events`] with each payload as its JSON text (see `EventStore::read_all_text`).
    pub fn read_events_text(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(RecordedEvent, String)>, StoreError> {
        self.read_rows(sql, params, |row| recorded_text(row).map(|(e, payload)| (e, payload.to_string())))
    }

    /// [`Self::read_events`] for `sql` whose `$n` placeholders are bound by their number: a
    /// filter may name one argument more than once, and not in order.
    pub fn read_events_numbered(
        &self,
        sql: &str,
        args: &[impl rusqlite::ToSql],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_numbered(sql, args, recorded)
    }

    /// [`Self::read_events_numbered`] with each payload as the JSON text the row holds, checked
    /// to be JSON but not read into a value (see `EventStore::read_log_text`).
    pub fn read_events_numbered_raw(
        &self,
        sql: &str,
        args: &[impl rusqlite::ToSql],
    ) -> Result<Vec<(RecordedEvent, Box<RawValue>)>, StoreError> {
        self.read_numbered(sql, args, recorded_raw)
    }

    fn read_numbered<T>(
        &self,
        sql: &str,
        args: &[impl rusqlite::ToSql],
        each: impl Fn(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            bind_numbered(&mut statement, args)?;
            let rows = statement.raw_query();
            every_row(rows, each)
        })
    }

    fn read_rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        each: impl Fn(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let rows = statement.query(params)?;
            every_row(rows, each)
        })
    }
}

/// `each` of `rows`, in order.
fn every_row<T>(
    mut rows: rusqlite::Rows<'_>,
    each: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(each(row)?);
    }
    Ok(out)
}

/// Binds `args` to `statement`, whose `$n` placeholders are the pool's text: `$n` takes the n-th
/// argument wherever it stands, however often and in whatever order the text names it.
pub fn bind_numbered(
    statement: &mut rusqlite::Statement<'_>,
    args: &[impl rusqlite::ToSql],
) -> rusqlite::Result<()> {
    for index in 1..=statement.parameter_count() {
        let number = statement.parameter_name(index).and_then(|name| name.get(1..)?.parse::<usize>().ok());
        let arg = number.and_then(|n| args.get(n.checked_sub(1)?));
        let arg = arg.ok_or(rusqlite::Error::InvalidParameterCount(index, args.len()))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(())
}

/// Runs `work`, which blocks, in this thread: on a multi-thread runtime the worker's other
/// tasks are handed to another thread meanwhile (`block_in_place`); elsewhere it just runs.
pub(crate) fn in_place_of_the_worker<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// How many of SQLite's virtual-machine steps a read runs in an async worker's turn before it
/// is interrupted and read again in place of the worker: about [`INLINE_STEPS`], counted in
/// grains of [`STEP_GRAIN`] (SQLite calls the progress handler once a grain, within one
/// `sqlite3_step`; the grains are added up over the read). On the benchmark's database a
/// page that scans 15,800 lessons for none takes ~63,000 steps and 8–14 ms; a page of twenty
/// lessons found along its index, a doetank's look-ups, under a grain.
pub(crate) const INLINE_STEPS: i32 = 20_000;
const STEP_GRAIN: i32 = 1_000;

/// Runs `read` on `conn` for at most about [`INLINE_STEPS`] steps; `None` when it ran out.
/// A read-only statement that SQLite interrupts rolls nothing back: a read transaction (the
/// answer's snapshot) stays open, and the read can be made again in it.
pub(crate) fn within_steps<T>(
    conn: &Connection,
    read: impl Fn(&Connection) -> Result<T, rusqlite::Error>,
) -> Result<Option<T>, rusqlite::Error> {
    let mut grains = 0;
    conn.progress_handler(
        STEP_GRAIN,
        Some(move || {
            grains += 1;
            grains > INLINE_STEPS / STEP_GRAIN
        }),
    );
    let result = read(conn);
    conn.progress_handler(0, None::<fn() -> bool>);
    match result {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::OperationInterrupted => {
            Ok(None)
        }
        other => other.map(Some),
    }
}

tokio::task_local! {
    /// The read snapshot of the query this task answers, if it reads in one.
    static SNAPSHOT: Arc<ReadSnapshot>;
}

/// One read transaction that every small read of a task makes on these connections, so that a
/// query's answer comes from one state of the database: its doetank row, lessons and members
/// as of the same projected position, and the same as the stamp its answer is kept under. It
/// also takes SQLite's read locks once per query instead of once per look-up (in `perf` of 64
/// concurrent doetank queries, taking and dropping them was about 9% of the CPU).
///
/// The transaction begins at the first read, holds one connection until the task's scope ends
/// (a query's few milliseconds), and ends there. Large reads on blocking threads (a search's
/// ranking, a page of the log) run beside it in transactions of their own.
pub(crate) struct ReadSnapshot {
    own: Arc<OwnConnections>,
    conn: Mutex<Option<Connection>>,
}

impl ReadSnapshot {
    /// Runs `read` in the snapshot. Gives `read` back, for the caller to run on its own, only
    /// when the snapshot's connection is in use by a read that `read` is part of (no reader
    /// does that; waiting would deadlock). A snapshot that cannot begin fails the read.
    fn read<T, F>(&self, read: F) -> Result<Result<T, StoreError>, F>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        let Ok(mut slot) = self.conn.try_lock() else { return Err(read) };
        let conn = match &mut *slot {
            Some(conn) => conn,
            empty => match self.begin() {
                Ok(conn) => empty.insert(conn),
                Err(error) => return Ok(Err(error)),
            },
        };
        Ok(read(conn))
    }

    /// A connection with the snapshot's transaction begun (SQLite takes the snapshot at its
    /// first read).
    fn begin(&self) -> Result<Connection, StoreError> {
        let conn = self.own.take()?;
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(conn)
    }

    /// Ends the snapshot's transaction, if it began, and gives its connection back. A
    /// read-only transaction: ending it only lets go of the snapshot. A connection whose
    /// transaction cannot be ended is not used again.
    fn end(&self, conn: Connection) {
        let ended =
            conn.is_autocommit() || conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([])).is_ok();
        if ended {
            self.own.give_back(conn);
        }
    }
}

impl Drop for ReadSnapshot {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.get_mut().ok().and_then(Option::take) {
            self.end(conn);
        }
    }
}

/// Ends the task's [`ReadSnapshot`] of `own` if it has begun: its next read begins a new one,
/// of the database as it is then. For a query that has read nothing in it yet.
pub(crate) fn restart_snapshot(own: &Arc<OwnConnections>) {
    let Ok(snapshot) = SNAPSHOT.try_with(Arc::clone) else { return };
    if !Arc::ptr_eq(&snapshot.own, own) {
        return;
    }
    let Ok(mut slot) = snapshot.conn.try_lock() else { return };
    if let Some(conn) = slot.take() {
        snapshot.end(conn);
    }
}

/// Runs `work` with every small read it makes on `own` in one [`ReadSnapshot`].
pub(crate) async fn in_one_snapshot<F: std::future::Future>(own: &Arc<OwnConnections>, work: F) -> F::Output {
    let snapshot = Arc::new(ReadSnapshot { own: Arc::clone(own), conn: Mutex::new(None) });
    SNAPSHOT.scope(snapshot, work).await
}

/// A row of `SELECT {COLUMNS}`, as sqlx wrote it: uuids as 16-byte blobs, JSON and times as text.
fn recorded(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    let (mut event, payload) = recorded_text(row)?;
    event.payload = serde_json::from_str(payload)
        .map_err(|e| StoreError::Corrupt { position: event.position, reason: e.to_string() })?;
    Ok(event)
}

/// [`recorded`] with the payload as the row's JSON text, checked to be JSON.
fn recorded_raw(row: &Row<'_>) -> Result<(RecordedEvent, Box<RawValue>), StoreError> {
    let (event, payload) = recorded_text(row)?;
    let payload = RawValue::from_string(payload.to_string())
        .map_err(|e| StoreError::Corrupt { position: event.position, reason: e.to_string() })?;
    Ok((event, payload))
}

/// [`recorded`] with the payload left as the row's JSON text (the event's `payload` is `Null`).
fn recorded_text<'row>(row: &'row Row<'_>) -> Result<(RecordedEvent, &'row str), StoreError> {
    let position: i64 = row.get(0)?;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let uuid = |index: usize| -> Result<Option<Uuid>, StoreError> {
        match row.get_ref(index)?.as_blob_or_null().map_err(|e| corrupt(e.to_string()))? {
            Some(bytes) => Uuid::from_slice(bytes).map(Some).map_err(|e| corrupt(e.to_string())),
            None => Ok(None),
        }
    };
    let text = |index: usize| row.get_ref(index)?.as_str().map_err(|e| corrupt(e.to_string()));
    let (payload, recorded_at) = (text(7)?, text(12)?);
    let event = RecordedEvent {
        position,
        event_id: uuid(1)?.ok_or_else(|| corrupt("no event id".into()))?,
        stream_id: row.get(2)?,
        stream_type: row.get(3)?,
        version: row.get(4)?,
        event_type: row.get(5)?,
        schema_version: row.get(6)?,
        payload: serde_json::Value::Null,
        metadata: Metadata {
            actor: row.get(8)?,
            command_id: uuid(9)?,
            correlation_id: uuid(10)?.ok_or_else(|| corrupt("no correlation id".into()))?,
            causation_id: uuid(11)?,
        },
        recorded_at: DateTime::parse_from_rfc3339(recorded_at)
            .map_err(|e| corrupt(format!("recorded_at {recorded_at:?}: {e}")))?
            .with_timezone(&Utc),
    };
    Ok((event, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_map_the_file_and_cannot_write() {
        /// Removes the file however the test ends, a failed assertion included.
        struct Removed(PathBuf);
        impl Drop for Removed {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let file = Removed(std::env::temp_dir().join(format!("doetank-own-{}.db", uuid::Uuid::new_v4())));
        let path = &file.0;
        Connection::open(path).and_then(|c| c.execute_batch("CREATE TABLE t (x INTEGER)")).expect("create");
        let own = OwnConnections::of_file(path).expect("a file");
        let (mapped, written) = own
            .with(|conn| {
                let mapped: i64 = conn.pragma_query_value(None, "mmap_size", |row| row.get(0))?;
                Ok((mapped, conn.execute("INSERT INTO t VALUES (1)", []).is_ok()))
            })
            .expect("read");
        assert_eq!(mapped, READ_MAP_BYTES, "readers share the OS's pages through the mapping");
        assert!(!written, "a reader must not write");
    }
}
