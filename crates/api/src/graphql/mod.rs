//! The GraphQL schema: queries over the read models, one mutation per domain command.

mod errors;
mod loaders;
mod mutation;
mod network;
mod network_mutation;
mod objects;
mod pagination;
mod query;
mod scalars;
mod subscription;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, Schema};

pub use errors::GqlResult;
pub use pagination::MAX_PAGE_SIZE;

use crate::app::App;

/// Every query: the doetanks and their people, and the network around them.
#[derive(MergedObject, Default)]
pub struct Query(query::Query, network::NetworkQuery);

/// Every command of the domain.
#[derive(MergedObject, Default)]
pub struct Mutation(mutation::Mutation, network_mutation::NetworkMutation);

pub type DoetankSchema = Schema<Query, Mutation, subscription::Subscription>;

/// Deepest nesting a query may have.
pub const MAX_DEPTH: usize = 12;
/// Largest complexity (fields, counted per selection) a query may have.
pub const MAX_COMPLEXITY: usize = 2_000;

/// The viewer of the request or connection (anonymous when absent).
pub fn viewer(ctx: &async_graphql::Context<'_>) -> crate::auth::Viewer {
    ctx.data_opt::<crate::auth::Viewer>().cloned().unwrap_or_default()
}

pub fn build_schema(app: App) -> DoetankSchema {
    Schema::build(Query::default(), Mutation::default(), subscription::Subscription)
        .data(app)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The per-request data loaders: they batch within one request.
pub fn request_loaders(app: &App, mut request: async_graphql::Request) -> async_graphql::Request {
    insert_loaders(&mut request.data, app);
    request
}

/// Data loaders batch within a request (or a WebSocket connection); they do not cache, so a
/// long-lived subscription never serves stale rows.
pub fn insert_loaders(data: &mut async_graphql::Data, app: &App) {
    let backend = app.store.backend().clone();
    data.insert(DataLoader::new(loaders::MemberLoader(backend.clone()), tokio::spawn));
    data.insert(DataLoader::new(loaders::ChallengeLoader(backend.clone()), tokio::spawn));
    data.insert(DataLoader::new(loaders::DoetankLoader(backend.clone()), tokio::spawn));
    data.insert(DataLoader::new(loaders::MembershipsByDoetank(backend.clone()), tokio::spawn));
    data.insert(DataLoader::new(loaders::LessonsByDoetank(backend.clone()), tokio::spawn));
    data.insert(DataLoader::new(loaders::PhasesByDoetank(backend.clone()), tokio::spawn));
    data.insert(DataLoader::new(loaders::ActivitiesByDoetank(backend), tokio::spawn));
}

/// The schema in SDL, as `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), subscription::Subscription).finish().sdl()
}
