//! The one error type of the application layer, mapped to GraphQL errors in `graphql::errors`.

use doetank_domain::{CodecError, DomainError};
use doetank_store::{ExpectedVersion, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("version conflict on {stream_id}: expected version {expected}, actual {actual}")]
    VersionConflict { stream_id: String, expected: ExpectedVersion, actual: i64 },
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("invalid {field}: {message}")]
    BadInput { field: String, message: String },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("event store: {0}")]
    Store(StoreError),
    #[error("event could not be decoded: {0}")]
    Codec(#[from] CodecError),
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A commit fell between two transactions of one answer, each time it was computed (see
    /// `one_state`).
    #[error("the read models changed while this answer was read, every time it was computed; ask again")]
    Moved,
    /// A task doing part of the work stopped before it finished (the runtime shut down).
    #[error("{0} stopped before it finished")]
    Interrupted(&'static str),
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        if crate::text::refused_by_postgres(&err) {
            return crate::text::refused_text();
        }
        AppError::Database(err)
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Database(err) => err.into(),
            StoreError::VersionConflict { stream_id, expected, actual } => {
                AppError::VersionConflict { stream_id, expected, actual }
            }
            StoreError::CommandIdReused { command_id, stream_id } => AppError::BadInput {
                field: "commandId".into(),
                message: format!("{command_id} was already used for a command on {stream_id}"),
            },
            StoreError::CommandChanged { command_id } => AppError::BadInput {
                field: "commandId".into(),
                message: format!(
                    "{command_id} was already used for another command: a retry sends the same input, a new command takes a new command id"
                ),
            },
            other => AppError::Store(other),
        }
    }
}

impl AppError {
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        AppError::BadInput { field: field.to_string(), message: message.into() }
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        AppError::NotFound { what, id: id.to_string() }
    }

    /// Whether a command was refused for the state of its stream (a rule, a concurrent write)
    /// rather than for its input or a failure.
    pub fn is_refusal(&self) -> bool {
        matches!(self, AppError::Domain(_) | AppError::VersionConflict { .. })
    }
}
