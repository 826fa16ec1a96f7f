//! `eventTypes`: the log's data dictionary, for researchers reading `events`, the NDJSON log or
//! an export (`doetank_domain::catalogue`).

use std::sync::LazyLock;

use async_graphql::{Json, Object, Result};
use doetank_domain::catalogue::{catalogue, EventTypeEntry, STREAM_TYPES};

use super::errors::GqlResult;
use crate::error::AppError;

/// Derived once per process: the schemas do not change while it runs.
static CATALOGUE: LazyLock<Vec<EventTypeEntry>> = LazyLock::new(catalogue);

#[derive(Default)]
pub struct CatalogueQuery;

#[Object]
impl CatalogueQuery {
    /// Every event type the log can hold, stream type by stream type: what each records, the
    /// schema version new events are written with, the versions still read, and a JSON Schema
    /// (draft 2020-12) of its payload, derived from the code that writes it. Describes the log,
    /// not its contents, so it needs no token.
    async fn event_types(
        &self,
        #[graphql(
            desc = "Only the event types of this kind of stream (`doetank`, `member`, ...); all when absent."
        )]
        stream_type: Option<String>,
    ) -> Result<Vec<EventType>> {
        let all = CATALOGUE.iter();
        let Some(stream_type) = stream_type else {
            return Ok(all.map(EventType).collect());
        };
        let types: Vec<EventType> = all.filter(|e| e.stream_type == stream_type).map(EventType).collect();
        if types.is_empty() {
            return Err(unknown_stream_type("streamType", &stream_type)).gql();
        }
        Ok(types)
    }
}

/// BAD_INPUT for a kind of stream the network does not have, naming those it has and, as the
/// log's filters do, the one a slip meant: a typo must not read as "nothing there".
pub(super) fn unknown_stream_type(field: &str, given: &str) -> AppError {
    let guess = crate::log_names::did_you_mean(given, STREAM_TYPES.into_iter());
    AppError::bad_input(
        field,
        format!("no stream type {given:?}; the log has {}{guess}", STREAM_TYPES.join(", ")),
    )
}

pub struct EventType(&'static EventTypeEntry);

/// One event type of the log: what it records, and the shape of its payload.
#[Object]
impl EventType {
    /// The name the log stores, as `Event.type`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The kind of stream its events belong to.
    async fn stream_type(&self) -> &str {
        self.0.stream_type
    }
    /// Whether its stream opens with it: the event that brings an entity into being, always
    /// its stream's first (version 1) and only there.
    async fn opens_stream(&self) -> bool {
        self.0.opens_stream
    }
    /// The version new events of this type are written with.
    async fn schema_version(&self) -> i32 {
        self.0.schema_version
    }
    /// Every version the log may hold, oldest first: all are read, the older ones upcast to the
    /// current shape (`events` and exports show the payload as it was stored).
    async fn read_versions(&self) -> &[i32] {
        &self.0.read_versions
    }
    /// What the event records.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// A JSON Schema (draft 2020-12) of the payload as the current version writes it, the
    /// definitions it refers to included.
    async fn payload_schema(&self) -> Json<&serde_json::Value> {
        Json(&self.0.payload_schema)
    }
}

/// The `kinds` of a timeline request, each a kind of stream; none means all.
pub(super) fn known_kinds(kinds: Option<Vec<String>>) -> Result<Vec<String>> {
    let kinds = kinds.unwrap_or_default();
    match kinds.iter().find(|k| !STREAM_TYPES.contains(&k.as_str())) {
        Some(unknown) => Err(unknown_stream_type("kinds", unknown)).gql(),
        None => Ok(kinds),
    }
}
