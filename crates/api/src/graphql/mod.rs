//! The GraphQL schema: queries over the read models, one mutation per domain command.

mod errors;
mod loaders;
mod mutation;
mod objects;
mod pagination;
mod query;
mod scalars;

use async_graphql::dataloader::DataLoader;
use async_graphql::{EmptySubscription, Schema};

pub use errors::GqlResult;
pub use pagination::MAX_PAGE_SIZE;

use crate::app::App;

pub type DoetankSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// Deepest nesting a query may have.
pub const MAX_DEPTH: usize = 12;
/// Largest complexity (fields, counted per selection) a query may have.
pub const MAX_COMPLEXITY: usize = 2_000;

/// Who is sending the request; recorded as the actor of every event it causes.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

pub fn build_schema(app: App) -> DoetankSchema {
    Schema::build(query::Query, mutation::Mutation, EmptySubscription)
        .data(app)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The per-request data loaders: batching (and caching) lives for one request only.
pub fn request_loaders(app: &App, request: async_graphql::Request) -> async_graphql::Request {
    let backend = app.store.backend().clone();
    request
        .data(DataLoader::new(loaders::MemberLoader(backend.clone()), tokio::spawn))
        .data(DataLoader::new(loaders::ChallengeLoader(backend.clone()), tokio::spawn))
        .data(DataLoader::new(loaders::DoetankLoader(backend.clone()), tokio::spawn))
        .data(DataLoader::new(loaders::MembershipsByDoetank(backend.clone()), tokio::spawn))
        .data(DataLoader::new(loaders::LessonsByDoetank(backend.clone()), tokio::spawn))
        .data(DataLoader::new(loaders::PhasesByDoetank(backend.clone()), tokio::spawn))
        .data(DataLoader::new(loaders::ActivitiesByDoetank(backend), tokio::spawn))
}

/// The schema in SDL, as `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(query::Query, mutation::Mutation, EmptySubscription).finish().sdl()
}
