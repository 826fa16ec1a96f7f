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
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Row};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{Metadata, RecordedEvent};

/// Idle connections kept; more may be open at once under load, the rest are closed on return.
const IDLE: usize = 8;

/// How long a reader waits for a lock (in WAL mode only a checkpoint's restart can hold one).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
            large_readers: tokio::sync::Semaphore::new(IDLE),
        })
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Readers only: a bug here must not become a write.
        conn.pragma_update(None, "query_only", true)?;
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
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }

    /// Runs `read` (a large read on these connections) on a blocking thread, at most [`IDLE`]
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

    /// Runs `read` on an idle connection (or a new one), in this thread.
    pub(crate) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE {
                idle.push(conn);
            }
        }
        result
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

    fn read_rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        each: impl Fn(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let mut rows = statement.query(params)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(each(row)?);
            }
            Ok(out)
        })
    }
}

/// A row of `SELECT {COLUMNS}`, as sqlx wrote it: uuids as 16-byte blobs, JSON and times as text.
fn recorded(row: &Row<'_>) -> Result<RecordedEvent, StoreError> {
    let (mut event, payload) = recorded_text(row)?;
    event.payload = serde_json::from_str(payload)
        .map_err(|e| StoreError::Corrupt { position: event.position, reason: e.to_string() })?;
    Ok(event)
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
