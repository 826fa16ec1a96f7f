//! The event store: one append-only log shared by all streams, on SQLite (the embedded default)
//! or PostgreSQL, with optimistic concurrency per stream, a gap-free global position and
//! idempotent commands.

mod append;
mod backend;
mod clock;
mod decisions;
mod error;
mod model;
mod own_connections;
#[macro_use]
mod read;
mod log;
mod rows;

pub use append::BeginWrite;
pub use backend::{with_database, Backend, EventStore, DEFAULT_DATABASE_URL};
pub use clock::RecordedHistory;
pub use decisions::StreamState;
pub use error::StoreError;
pub use log::{doetank_visible_sql, Activity, DoetankViewer, LogFilter, LogName, Period, Probe};
pub use model::{
    within_the_calendar, AppendResult, CommandRecord, ExpectedVersion, Fingerprint, Metadata, RecordedEvent,
    StreamId,
};
pub use own_connections::bind_numbered;
