use crate::model::ExpectedVersion;

/// The one error type of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("version conflict on {stream_id}: expected {expected}, actual {actual}")]
    VersionConflict { stream_id: String, expected: ExpectedVersion, actual: i64 },
    #[error("command id {command_id} was already used for stream {stream_id}")]
    CommandIdReused { command_id: uuid::Uuid, stream_id: String },
    #[error("command id {command_id} was already used for another command on this stream")]
    CommandChanged { command_id: uuid::Uuid },
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("the log already holds {0} events; import needs an empty database")]
    NotEmpty(i64),
    #[error("the event at position {position} is corrupt: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("the append was lost with the task writing it; retry with the same command id")]
    WriterGone,
    #[error("the read was cut off: the runtime is shutting down")]
    Interrupted,
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the store's own SQLite connections (`own_connections`).
    #[error("database error: {0}")]
    OwnConnection(#[from] rusqlite::Error),
}
