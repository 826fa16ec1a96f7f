//! The one binding of an event row to `INSERT INTO events`, shared by appends and imports so
//! that the column list and the values bound to it cannot drift apart.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

use crate::model::{Metadata, RecordedEvent};
use crate::read::COLUMNS;

/// Event rows per multi-row INSERT: 13 parameters each stays far below both backends' limits.
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// One row of the `events` table, borrowed from what is being written.
pub(crate) struct EventRow<'a> {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: &'a str,
    pub stream_type: &'a str,
    pub version: i64,
    pub event_type: &'a str,
    pub schema_version: i32,
    pub payload: &'a Value,
    pub metadata: &'a Metadata,
    pub recorded_at: DateTime<Utc>,
}

/// `INSERT INTO events (...) VALUES (...), ...` for `rows` (at most [`ROWS_PER_INSERT`]). Each
/// row count is one statement text, prepared once per connection and kept (sqlx's cache is LRU,
/// 100 texts): preparing each batch anew cost PostgreSQL a round trip more.
pub(crate) fn insert_events<'a, DB: Database>(rows: &'a [EventRow<'a>]) -> QueryBuilder<'a, DB>
where
    i64: Encode<'a, DB> + Type<DB>,
    i32: Encode<'a, DB> + Type<DB>,
    Uuid: Encode<'a, DB> + Type<DB>,
    Option<Uuid>: Encode<'a, DB> + Type<DB>,
    &'a str: Encode<'a, DB> + Type<DB>,
    Option<&'a str>: Encode<'a, DB> + Type<DB>,
    Json<&'a Value>: Encode<'a, DB> + Type<DB>,
    DateTime<Utc>: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!("INSERT INTO events ({COLUMNS}) "));
    q.push_values(rows, |mut row, e| {
        row.push_bind(e.position)
            .push_bind(e.event_id)
            .push_bind(e.stream_id)
            .push_bind(e.stream_type)
            .push_bind(e.version)
            .push_bind(e.event_type)
            .push_bind(e.schema_version)
            .push_bind(Json(e.payload))
            .push_bind(e.metadata.actor.as_deref())
            .push_bind(e.metadata.command_id)
            .push_bind(e.metadata.correlation_id)
            .push_bind(e.metadata.causation_id)
            .push_bind(e.recorded_at);
    });
    q
}

impl<'a> EventRow<'a> {
    /// The row of an event recorded before (an import keeps its position, id and time).
    pub fn recorded(e: &'a RecordedEvent) -> Self {
        EventRow {
            position: e.position,
            event_id: e.event_id,
            stream_id: &e.stream_id,
            stream_type: &e.stream_type,
            version: e.version,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            payload: &e.payload,
            metadata: &e.metadata,
            recorded_at: e.recorded_at,
        }
    }
}
