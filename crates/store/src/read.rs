//! Reading one stream, or the whole log in global order, page by page.

use sqlx::types::Json;
use sqlx::Row;

use crate::backend::EventStore;
use crate::error::StoreError;
use crate::model::{Metadata, RecordedEvent, StreamId};
use crate::on_pool;

/// The events' columns in the order every reader of them takes (the store's own SQLite readers
/// read them by position), with `$payload` for the payload's column.
macro_rules! columns {
    ($payload:literal) => {
        concat!(
            "position, event_id, stream_id, stream_type, version, event_type, schema_version, ",
            $payload,
            ", actor, command_id, correlation_id, causation_id, recorded_at"
        )
    };
}

pub(crate) const COLUMNS: &str = columns!("payload");

/// [`COLUMNS`] with the payload as its JSON text (PostgreSQL keeps it as `jsonb`).
const COLUMNS_PAYLOAD_TEXT: &str = columns!("CAST(payload AS TEXT) AS payload");

macro_rules! decode_row {
    ($row:expr) => {{
        let payload: Json<serde_json::Value> = $row.try_get("payload")?;
        decode_row!($row, payload.0)
    }};
    ($row:expr, $payload:expr) => {{
        let row = $row;
        RecordedEvent {
            position: row.try_get("position")?,
            event_id: row.try_get("event_id")?,
            stream_id: row.try_get("stream_id")?,
            stream_type: row.try_get("stream_type")?,
            version: row.try_get("version")?,
            event_type: row.try_get("event_type")?,
            schema_version: row.try_get("schema_version")?,
            payload: $payload,
            metadata: Metadata {
                actor: row.try_get("actor")?,
                command_id: row.try_get("command_id")?,
                correlation_id: row.try_get("correlation_id")?,
                causation_id: row.try_get("causation_id")?,
            },
            recorded_at: row.try_get("recorded_at")?,
        }
    }};
}

/// The log's head: the position of its newest event.
const HEAD: &str = "SELECT position FROM log_head WHERE id = 1";

impl EventStore {
    /// The events of one stream with version >= `from_version`, in order.
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version");
        let stream_id = stream.to_string();
        if let Some(own) = &self.own {
            return own.read_events(&sql, (&stream_id, from_version));
        }
        let events = on_pool!(&self.backend, pool => {
            let rows = sqlx::query(&sql).bind(&stream_id).bind(from_version).fetch_all(pool).await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                events.push(decode_row!(row));
            }
            events
        });
        Ok(events)
    }

    /// Runs a small read in the calling thread when the store has its own SQLite readers (a
    /// SQLite file); `None` otherwise, and the caller reads through the pool. For reads done on
    /// every request, where a hop to sqlx's connection thread costs more than SQLite's work.
    ///
    /// A read that turns out large (a page whose filter no index serves, scanning a whole
    /// table for rows that are not there; a doetank with thousands of lessons) would hold an
    /// async worker, and every task queued on it, for as long as it runs: past about
    /// [`crate::own_connections::INLINE_STEPS`] of SQLite's steps it is interrupted and read
    /// again in the same snapshot, with the worker's other tasks handed to another thread.
    pub fn read_inline<T>(
        &self,
        read: impl Fn(&rusqlite::Connection) -> Result<T, rusqlite::Error>,
    ) -> Option<Result<T, StoreError>> {
        let own = self.own.as_ref()?;
        Some(match own.with(|conn| Ok(crate::own_connections::within_steps(conn, &read)?)) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => {
                own.finished_in_place.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!("an inline read ran out of steps; finished in place of the async worker");
                crate::own_connections::in_place_of_the_worker(|| own.with(|conn| Ok(read(conn)?)))
            }
            Err(error) => Err(error),
        })
    }

    /// How many reads begun inline ([`Self::read_inline`]) turned out large and were finished in
    /// place of the async worker: pages whose filters no index serves show here.
    pub fn inline_reads_finished_in_place(&self) -> u64 {
        self.own.as_ref().map_or(0, |own| own.finished_in_place.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Runs `work` with every small read it makes in this task ([`Self::read_inline`], stream
    /// reads) in one read transaction on a SQLite file: what `work` reads is one state of the
    /// database, however many look-ups it takes. For a query's execution, never for a command's
    /// (a command reads its own writes). Elsewhere (PostgreSQL, a database in memory) `work`
    /// runs as it is.
    pub async fn in_one_snapshot<F: std::future::Future>(&self, work: F) -> F::Output {
        match &self.own {
            Some(own) => crate::own_connections::in_one_snapshot(own, work).await,
            None => work.await,
        }
    }

    /// Ends this task's read snapshot ([`Self::in_one_snapshot`]) if it has begun, so that its
    /// next read takes a new one; nothing happens elsewhere. Only for work that has read nothing
    /// in the snapshot yet: an answer whose first two transactions saw two states begins both
    /// again before it reads anything.
    pub fn restart_snapshot(&self) {
        if let Some(own) = &self.own {
            crate::own_connections::restart_snapshot(own);
        }
    }

    /// Runs a large read (every match of a search: hundreds or thousands of rows) on a blocking
    /// thread, on one of the store's own SQLite readers; `None` without them (PostgreSQL, a
    /// database in memory), and the caller reads through the pool. sqlx would send each row
    /// from its connection thread on its own; inline, the read would hold an async thread.
    pub async fn read_blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Option<Result<T, StoreError>> {
        let own = self.own.as_ref()?;
        let reader = std::sync::Arc::clone(own);
        Some(own.blocking(move || reader.with(|conn| Ok(read(conn)?))).await)
    }

    /// Up to `limit` events of the whole log after global position `after`, in order.
    pub async fn read_all(&self, after: i64, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2");
        if let Some(own) = &self.own {
            // A page may be thousands of events (a rebuild, a projector catching up): one hop
            // to a blocking thread per page, where sqlx would hop once per row.
            let reader = std::sync::Arc::clone(own);
            return own.blocking(move || reader.read_events(&sql, (after, limit))).await;
        }
        let events = on_pool!(&self.backend, pool => {
            let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(pool).await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                events.push(decode_row!(row));
            }
            events
        });
        Ok(events)
    }

    /// [`Self::read_all`] for a reader that decodes each payload straight into its typed event
    /// (a rebuild, the projector; see `doetank_domain::codec::decode_text`): each event comes
    /// with its payload as JSON text, and the event's own `payload` is `Null`.
    pub async fn read_all_text(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(RecordedEvent, String)>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS_PAYLOAD_TEXT} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
        );
        if let Some(own) = &self.own {
            let reader = std::sync::Arc::clone(own);
            return own.blocking(move || reader.read_events_text(&sql, (after, limit))).await;
        }
        let events = on_pool!(&self.backend, pool => {
            let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(pool).await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                let payload: String = row.try_get("payload")?;
                events.push((decode_row!(row, serde_json::Value::Null), payload));
            }
            events
        });
        Ok(events)
    }

    /// The current version of a stream (0 when it has no events).
    pub async fn stream_version(&self, stream: &StreamId) -> Result<i64, StoreError> {
        let stream_id = stream.to_string();
        let version = on_pool!(&self.backend, pool => {
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(version) FROM events WHERE stream_id = $1")
                .bind(&stream_id)
                .fetch_one(pool)
                .await?
        });
        Ok(version.unwrap_or(0))
    }

    /// The global position of the last committed event (0 for an empty log).
    pub async fn head_position(&self) -> Result<i64, StoreError> {
        if let Some(head) = self.read_inline(|conn| conn.query_row(HEAD, [], |row| row.get(0))) {
            return head;
        }
        self.head_position_on_pool().await
    }

    /// [`Self::head_position`] read through the pool alone.
    pub(crate) async fn head_position_on_pool(&self) -> Result<i64, StoreError> {
        let head = on_pool!(&self.backend, pool => {
            sqlx::query_scalar::<_, i64>(HEAD).fetch_one(pool).await?
        });
        Ok(head)
    }

    /// How many events the log holds.
    pub async fn count_events(&self) -> Result<i64, StoreError> {
        let n = on_pool!(&self.backend, pool => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM events").fetch_one(pool).await?
        });
        Ok(n)
    }
}
