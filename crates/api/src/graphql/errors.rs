//! The one place where application errors become GraphQL errors with `extensions.code`.

use async_graphql::{Error, ErrorExtensions};
use doetank_domain::DomainError;

use crate::error::AppError;

impl ErrorExtensions for AppError {
    fn extend(&self) -> Error {
        match self {
            AppError::Domain(DomainError::RuleViolated { rule, message }) => {
                Error::new(format!("{rule} violated: {message}")).extend_with(|_, e| {
                    e.set("code", "RULE_VIOLATED");
                    e.set("rule", rule.code());
                    if let Some(n) = rule.number() {
                        e.set("ruleNumber", n);
                    }
                })
            }
            AppError::Domain(DomainError::InvalidInput { field, message }) => bad_input(field, message),
            AppError::BadInput { field, message } => bad_input(field, message),
            AppError::Domain(DomainError::NotCreated(what)) => {
                Error::new(format!("{what} not found")).extend_with(|_, e| e.set("code", "NOT_FOUND"))
            }
            AppError::NotFound { what, id } => {
                Error::new(format!("{what} {id} not found")).extend_with(|_, e| e.set("code", "NOT_FOUND"))
            }
            AppError::Domain(DomainError::AlreadyExists(what)) => {
                Error::new(format!("this {what} already exists"))
                    .extend_with(|_, e| e.set("code", "ALREADY_EXISTS"))
            }
            AppError::VersionConflict { stream_id, expected, actual } => Error::new(self.to_string())
                .extend_with(|_, e| {
                    e.set("code", "VERSION_CONFLICT");
                    e.set("streamId", stream_id.as_str());
                    e.set("expected", expected.as_str());
                    e.set("actual", *actual);
                }),
            AppError::Unauthenticated(message) => {
                Error::new(message.as_str()).extend_with(|_, e| e.set("code", "UNAUTHENTICATED"))
            }
            AppError::Forbidden(message) => {
                Error::new(message.as_str()).extend_with(|_, e| e.set("code", "FORBIDDEN"))
            }
            AppError::Moved => {
                Error::new(self.to_string()).extend_with(|_, e| e.set("code", "READ_MODELS_MOVED"))
            }
            AppError::Store(_)
            | AppError::Codec(_)
            | AppError::Database(_)
            | AppError::Sqlite(_)
            | AppError::Interrupted(_) => {
                tracing::error!(error = %self, "internal error");
                Error::new("internal error; the server log has the details")
                    .extend_with(|_, e| e.set("code", "INTERNAL"))
            }
        }
    }
}

fn bad_input(field: &str, message: &str) -> Error {
    Error::new(format!("invalid {field}: {message}")).extend_with(|_, e| {
        e.set("code", "BAD_INPUT");
        e.set("field", field);
    })
}

/// `.gql()?` turns any application result into a GraphQL result with the mapped error.
pub trait GqlResult<T> {
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T, E: Into<AppError>> GqlResult<T> for Result<T, E> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.into().extend())
    }
}
