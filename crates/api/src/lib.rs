//! Projections and the GraphQL API over the doetank event log.

pub mod app;
pub mod auth;
pub mod commands;
pub mod demo;
pub mod error;
pub mod export;
pub mod graphql;
pub mod history;
pub mod lesson_ranking;
pub mod live;
pub mod log_names;
pub mod one_state;
pub mod projection;
pub mod rows;
pub mod search;
pub mod server;
pub mod sql;
mod sqlite_direct;
pub mod stamp;
pub mod text;
pub mod visibility;

pub use app::{App, CommandOptions, CommandOutcome};
pub use error::AppError;
