//! The peer: cqrs-es with sqlite-es / postgres-es, on an aggregate equivalent to the one the
//! doetank side runs (load the stream, decide, append one event). These stores keep a sequence
//! per aggregate only: they give no gap-free global order across streams.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Notebook {
    pub notes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NoteEvent {
    NoteTaken { n: u64, text: String },
}

impl DomainEvent for NoteEvent {
    fn event_type(&self) -> String {
        "NoteTaken".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug)]
pub struct NoteError;

impl std::fmt::Display for NoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("note refused")
    }
}

impl std::error::Error for NoteError {}

pub struct TakeNote(pub String);

impl Aggregate for Notebook {
    const TYPE: &'static str = "notebook";
    type Command = TakeNote;
    type Event = NoteEvent;
    type Error = NoteError;
    type Services = ();

    async fn handle(&mut self, command: TakeNote, _: &(), sink: &EventSink<Self>) -> Result<(), NoteError> {
        sink.write(NoteEvent::NoteTaken { n: self.notes + 1, text: command.0 }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: NoteEvent) {
        let NoteEvent::NoteTaken { n, .. } = event;
        self.notes = n;
    }
}

/// The peers' schema (from their repositories' `db/init.sql`).
pub const SQLITE_SCHEMA: &str =
    "CREATE TABLE events (aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, \
    sequence INTEGER NOT NULL, event_type TEXT NOT NULL, event_version TEXT NOT NULL, payload TEXT NOT NULL, \
    metadata TEXT NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence))";
pub const POSTGRES_SCHEMA: &str =
    "CREATE TABLE events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
    sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
    payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence))";
