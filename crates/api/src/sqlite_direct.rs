//! Runs a batch of projection statements on SQLite's own connection handle, in the calling
//! thread. sqlx hands every SQLite statement to the connection's worker thread and waits for the
//! answer; for a projection batch of thousands of small statements those hops cost far more than
//! SQLite's work (measured: ~60 µs per statement against a few µs). The statements are the very
//! ones the PostgreSQL path runs, so there is still one projection.

use std::collections::hash_map::{Entry, HashMap};
use std::ffi::{c_int, c_uint, CString};
use std::ptr::NonNull;

use rusqlite::ffi;

use sqlx::SqliteConnection;

use crate::error::AppError;
use crate::sql::{Arg, Stmt};

/// Runs `work` on `conn`'s SQLite handle in this thread, inside whatever transaction `conn` has
/// open. The one place that borrows sqlx's handle.
pub async fn on_handle<T>(
    conn: &mut SqliteConnection,
    work: impl FnOnce(&rusqlite::Connection) -> Result<T, rusqlite::Error>,
) -> Result<T, AppError> {
    let mut locked = conn.lock_handle().await?;
    let raw = locked.as_raw_handle().as_ptr();
    let run = || {
        // SAFETY: while `locked` lives, sqlx's worker thread makes no call on this handle, so
        // this thread is its only user. `from_handle` does not close the handle, and the
        // connection (with its cached statements, finalised on drop) is dropped before `locked`.
        let db = unsafe { rusqlite::Connection::from_handle(raw.cast()) }?;
        work(&db)
    };
    // Let other tasks move while long work runs, where the runtime can spare a thread.
    let result = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
        _ => run(),
    };
    drop(locked);
    Ok(result?)
}

/// Executes `batch` in order on `conn`, inside whatever transaction `conn` has open.
pub async fn execute_batch(conn: &mut SqliteConnection, batch: &[Stmt]) -> Result<(), AppError> {
    on_handle(conn, |db| {
        // Statement texts are `'static`: their address names them, so finding a prepared
        // statement hashes a pointer instead of the text (rusqlite's cache hashes and compares
        // the whole text on every use, a measurable share of a rebuild).
        let mut prepared: HashMap<*const u8, Prepared<'_>> = HashMap::new();
        for stmt in batch {
            let entry = match prepared.entry(stmt.sql.as_ptr()) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => entry.insert(Prepared::new(db, stmt)?),
            };
            entry.execute(&stmt.args)?;
        }
        Ok(())
    })
    .await
}

/// A statement prepared on the connection's handle and, for each argument `n`, the index SQLite
/// gave `$n+1` (SQLite numbers parameters by first appearance; an argument the text does not
/// use has none).
///
/// Text is bound without a copy (`SQLITE_STATIC`): rusqlite binds every string as
/// `SQLITE_TRANSIENT`, so SQLite allocated and copied each one before reading it once — 7% of a
/// rebuild's CPU (`perf`), the lessons' bodies among them. Here the
/// arguments are borrowed for one [`Prepared::execute`], which clears them before it returns.
struct Prepared<'db> {
    db: &'db rusqlite::Connection,
    statement: NonNull<ffi::sqlite3_stmt>,
    indexes: Vec<Option<c_int>>,
}

impl<'db> Prepared<'db> {
    fn new(db: &'db rusqlite::Connection, stmt: &Stmt) -> Result<Self, rusqlite::Error> {
        let sql = CString::new(stmt.sql).map_err(rusqlite::Error::NulError)?;
        let mut raw = std::ptr::null_mut();
        // SAFETY: `db` is an open connection; `sql` is a NUL-terminated text that outlives the
        // call; `raw` receives the statement, or stays null on an error.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.handle(),
                sql.as_ptr(),
                -1,
                ffi::SQLITE_PREPARE_PERSISTENT as c_uint,
                &mut raw,
                std::ptr::null_mut(),
            )
        };
        let statement = match (rc, NonNull::new(raw)) {
            (ffi::SQLITE_OK, Some(statement)) => statement,
            // An empty text prepares to no statement: none of ours is empty.
            (ffi::SQLITE_OK, None) => return Err(failure(db, ffi::SQLITE_MISUSE)),
            _ => return Err(failure(db, rc)),
        };
        // Finalised on drop from here on, on an error below too.
        let mut prepared = Prepared { db, statement, indexes: Vec::with_capacity(stmt.args.len()) };
        for n in 1..=stmt.args.len() {
            let name = CString::new(format!("${n}")).map_err(rusqlite::Error::NulError)?;
            // SAFETY: a live statement and a NUL-terminated name.
            let index =
                unsafe { ffi::sqlite3_bind_parameter_index(prepared.statement.as_ptr(), name.as_ptr()) };
            prepared.indexes.push((index > 0).then_some(index));
        }
        Ok(prepared)
    }

    /// Binds `args`, runs the statement to its end, and resets it with no argument bound.
    fn execute(&mut self, args: &[Arg]) -> Result<(), rusqlite::Error> {
        let statement = self.statement.as_ptr();
        let mut outcome = Ok(());
        for (arg, index) in args.iter().zip(&self.indexes) {
            let Some(index) = *index else { continue };
            // SAFETY: a live statement; a text bound as SQLITE_STATIC lives in `args`, which
            // outlives this call, and is unbound below before it returns.
            let rc = unsafe {
                match arg {
                    Arg::Text(text) | Arg::OptText(Some(text)) => bind_text(statement, index, text),
                    Arg::OptText(None) => ffi::sqlite3_bind_null(statement, index),
                    Arg::Int(v) => ffi::sqlite3_bind_int64(statement, index, *v),
                    Arg::Float(v) => ffi::sqlite3_bind_double(statement, index, *v),
                    Arg::Bool(v) => ffi::sqlite3_bind_int64(statement, index, i64::from(*v)),
                }
            };
            if rc != ffi::SQLITE_OK {
                outcome = Err(failure(self.db, rc));
                break;
            }
        }
        if outcome.is_ok() {
            // SAFETY: a live statement with its arguments bound.
            outcome = match unsafe { ffi::sqlite3_step(statement) } {
                ffi::SQLITE_DONE => Ok(()),
                ffi::SQLITE_ROW => Err(rusqlite::Error::ExecuteReturnedResults),
                rc => Err(failure(self.db, rc)),
            };
        }
        // SAFETY: a live statement. Reset repeats the step's error code, which is already taken.
        unsafe {
            ffi::sqlite3_reset(statement);
            ffi::sqlite3_clear_bindings(statement);
        }
        outcome
    }
}

impl Drop for Prepared<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared on `db`, which is still open, and is finalised once.
        unsafe {
            ffi::sqlite3_finalize(self.statement.as_ptr());
        }
    }
}

/// Binds `text` to parameter `index` without a copy.
///
/// # Safety
/// `statement` is live, and `text` outlives the binding (until a reset and clear, or a rebind).
unsafe fn bind_text(statement: *mut ffi::sqlite3_stmt, index: c_int, text: &str) -> c_int {
    // A text longer than SQLite's length type is rejected by SQLite itself (SQLITE_TOOBIG).
    let len = c_int::try_from(text.len()).unwrap_or(c_int::MAX);
    // SAFETY: as the caller promises; the destructor is SQLITE_STATIC: SQLite neither copies
    // nor frees the text.
    unsafe { ffi::sqlite3_bind_text(statement, index, text.as_ptr().cast(), len, ffi::SQLITE_STATIC()) }
}

/// The connection's error for `rc`, as rusqlite reports one.
fn failure(db: &rusqlite::Connection, rc: c_int) -> rusqlite::Error {
    // SAFETY: an open connection; SQLite's message is copied before the next call on it.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(db.handle());
        (!text.is_null()).then(|| std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message)
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;
    use crate::stmt;

    async fn memory() -> SqliteConnection {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.expect("connect");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, b BOOLEAN, o TEXT, unused TEXT)")
            .execute(&mut conn)
            .await
            .expect("table");
        conn
    }

    #[tokio::test]
    async fn every_kind_of_argument_is_bound_as_its_value_and_each_statement_runs_again() {
        let mut conn = memory().await;
        let insert = "INSERT INTO t (k, n, b, o) VALUES ($1, $2, $3, $4)";
        let batch: Vec<Stmt> = (0..3i64)
            .map(|i| {
                stmt!(
                    insert,
                    format!("key {i} — één\0na"),
                    i * 10,
                    i % 2 == 1,
                    (i > 0).then(|| format!("o{i}"))
                )
            })
            .chain([stmt!("UPDATE t SET n = n + $2 WHERE k = $1", "key 2 — één\0na", 5)])
            .collect();
        execute_batch(&mut conn, &batch).await.expect("batch");
        drop(batch);
        let rows: Vec<(String, i64, bool, Option<String>)> =
            sqlx::query_as("SELECT k, n, b, o FROM t ORDER BY k").fetch_all(&mut conn).await.expect("rows");
        assert_eq!(
            rows,
            vec![
                ("key 0 — één\0na".to_string(), 0, false, None),
                ("key 1 — één\0na".to_string(), 10, true, Some("o1".to_string())),
                ("key 2 — één\0na".to_string(), 25, false, Some("o2".to_string())),
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_statement_is_an_error_with_sqlites_message() {
        let mut conn = memory().await;
        let insert = "INSERT INTO t (k, n) VALUES ($1, $2)";
        let batch = vec![stmt!(insert, "same", 1), stmt!(insert, "same", 2)];
        let failed = execute_batch(&mut conn, &batch).await;
        let message = format!("{:?}", failed.err());
        assert!(message.contains("UNIQUE constraint failed: t.k"), "{message}");
        let broken = vec![stmt!("INSERT INTO no_such_table VALUES ($1)", "x")];
        let message = format!("{:?}", execute_batch(&mut conn, &broken).await.err());
        assert!(message.contains("no such table"), "{message}");
    }
}
