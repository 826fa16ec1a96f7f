//! Time travel: an aggregate's read model as of a time or a stream version, computed by
//! replaying its stream through the very same projection statements into a private in-memory
//! SQLite database. One projection, so the past can never be drawn differently from the present.

use chrono::{DateTime, Utc};
use doetank_store::{on_pool, Backend, EventStore, StreamId};
use uuid::Uuid;

use crate::error::AppError;
use crate::projection::statements;
use crate::sql::RunBatch;

/// Which prefix of a stream to replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsOf {
    /// Events recorded at or before this time.
    pub time: Option<DateTime<Utc>>,
    /// Events up to and including this stream version.
    pub version: Option<i64>,
}

impl AsOf {
    pub fn is_now(&self) -> bool {
        self.time.is_none() && self.version.is_none()
    }
}

/// The read models of one aggregate as they stood at `as_of`, or `None` if it did not exist yet.
pub async fn replay(
    store: &EventStore,
    stream_type: &str,
    id: Uuid,
    as_of: AsOf,
) -> Result<Option<Backend>, AppError> {
    if as_of.version.is_some_and(|v| v < 0) {
        return Err(AppError::bad_input("atVersion", "must be 0 or more"));
    }
    let events: Vec<_> = store
        .read_stream(&StreamId::new(stream_type, id), 1)
        .await?
        .into_iter()
        .take_while(|e| {
            as_of.time.is_none_or(|t| e.recorded_at <= t) && as_of.version.is_none_or(|v| e.version <= v)
        })
        .collect();
    if events.is_empty() {
        return Ok(None);
    }
    let past = EventStore::connect_with("sqlite::memory:", 1).await?;
    past.migrate().await?;
    let mut batch = Vec::new();
    for event in &events {
        batch.extend(statements(event, (&event.payload).into())?);
    }
    on_pool!(past.backend(), pool => pool.acquire().await?.run_batch(&batch).await?);
    Ok(Some(past.backend().clone()))
}
