use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StoreError;

/// `t` brought within the years 0 to 9999, for comparing with the times the log keeps. SQLite
/// keeps them as ISO 8601 text, whose order is time's only for four-digit years: a filter up to
/// `+10000-01-01` matched nothing there (and everything on PostgreSQL) until the thirty-first
/// session. Nothing the log records lies outside those years, so a bound beyond them bounds
/// nothing, and is read as the furthest one that can be written.
pub fn within_the_calendar(t: DateTime<Utc>) -> DateTime<Utc> {
    let first = DateTime::<Utc>::from_naive_utc_and_offset(
        chrono::NaiveDate::from_ymd_opt(0, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default(),
        Utc,
    );
    let last = DateTime::<Utc>::from_naive_utc_and_offset(
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
            .unwrap_or_default(),
        Utc,
    );
    t.clamp(first, last)
}

/// A stream is named by its aggregate type and id, e.g. `doetank-6f1c...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamId {
    pub stream_type: String,
    pub id: Uuid,
}

impl StreamId {
    pub fn new(stream_type: &str, id: Uuid) -> Self {
        StreamId { stream_type: stream_type.to_string(), id }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.stream_type, self.id)
    }
}

/// What the writer believes the stream's version to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check (use sparingly: it gives up optimistic concurrency).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event has exactly this version (0 = no events).
    Exact(i64),
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

impl ExpectedVersion {
    pub(crate) fn matches(self, actual: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        }
    }
}

/// Who and what caused an event; stored with every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The member id or role that issued the command (`system` for the demo loader).
    pub actor: Option<String>,
    /// The idempotency key of the command that wrote the event.
    pub command_id: Option<Uuid>,
    /// Groups every event caused by one user request, across streams.
    pub correlation_id: Uuid,
    /// The command or event that directly caused this one.
    pub causation_id: Option<Uuid>,
}

impl Metadata {
    pub fn new(actor: impl Into<String>) -> Self {
        Metadata {
            actor: Some(actor.into()),
            command_id: None,
            correlation_id: Uuid::new_v4(),
            causation_id: None,
        }
    }

    pub fn with_command_id(mut self, command_id: Uuid) -> Self {
        self.command_id = Some(command_id);
        self.causation_id = Some(command_id);
        self
    }
}

/// The outcome of an append: where the stream and the log stand after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    pub stream_version: i64,
    /// Global position of the first and last event written (equal to the head when none were).
    pub first_position: i64,
    pub last_position: i64,
    /// True when the command id had been seen: nothing was written, the first result is returned.
    pub deduplicated: bool,
}

/// A command's input, hashed by its caller: a retry under the same command id must carry the
/// same one, so that a key reused for another command is refused rather than answered with the
/// first command's result.
pub type Fingerprint = [u8; 32];

/// What the log keeps of a command id: the stream it was used on, its append's result, and
/// the fingerprint it came with (none for commands written without one, or imported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub stream_id: String,
    pub result: AppendResult,
    pub fingerprint: Option<Fingerprint>,
}

impl CommandRecord {
    /// What command id `command_id`, sent again to `stream_id` with `fingerprint`, comes to:
    /// this command's result (deduplicated) when it is this command again; refused when the id
    /// was used on another stream, or for another command on this one. Where either side has
    /// no fingerprint there is nothing to compare, and the command id alone decides. The one
    /// verdict of a retry, for the append's transaction and for the look-up before deciding.
    pub fn again(
        &self,
        command_id: Uuid,
        stream_id: &str,
        fingerprint: Option<&Fingerprint>,
    ) -> Result<AppendResult, StoreError> {
        if self.stream_id != stream_id {
            return Err(StoreError::CommandIdReused { command_id, stream_id: self.stream_id.clone() });
        }
        match (&self.fingerprint, fingerprint) {
            (Some(first), Some(again)) if first != again => Err(StoreError::CommandChanged { command_id }),
            _ => Ok(AppendResult { deduplicated: true, ..self.result }),
        }
    }
}

/// An event as read back from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_type: String,
    pub version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: Metadata,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The id of the aggregate whose stream holds the event (`<stream_type>-<uuid>`), `None`
    /// for a stream not named so.
    pub fn aggregate_id(&self) -> Option<Uuid> {
        let id = self.stream_id.strip_prefix(self.stream_type.as_str())?.strip_prefix('-')?;
        Uuid::parse_str(id).ok()
    }
}
