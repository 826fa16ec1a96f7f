//! The GraphQL schema: queries over the read models, one mutation per domain command.

mod batcher;
mod catalogue;
mod command_fingerprint;
pub(crate) mod declared_variables;
pub(crate) mod errors;
mod kept_rows;
mod loaders;
mod mutation;
mod network;
mod network_mutation;
mod node;
mod objects;
mod pagination;
mod query;
pub(crate) mod resume;
mod scalars;
mod statistics;
mod subscription;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::{MergedObject, Positioned, Schema};

pub use errors::GqlResult;
pub use kept_rows::KeptRows;
pub use pagination::MAX_PAGE_SIZE;

use crate::app::App;
use crate::stamp::Stamp;
use batcher::Batcher;
use kept_rows::Kept;

/// Every query: the doetanks and their people, and the network around them.
#[derive(MergedObject, Default)]
pub struct Query(query::Query, network::NetworkQuery, node::NodeQuery, catalogue::CatalogueQuery);

/// Every command of the domain.
#[derive(MergedObject, Default)]
pub struct Mutation(mutation::Mutation, network_mutation::NetworkMutation);

pub type DoetankSchema = Schema<Query, Mutation, subscription::Subscription>;

/// Deepest nesting a query may have: that of the introspection query GraphiQL and graphql-js
/// send (its `TypeRef` nests nine `ofType`), which is 15 deep. At 12, until the thirty-second
/// session, the playground's schema, its documentation and completion failed to load.
pub const MAX_DEPTH: usize = 15;
/// Largest complexity (fields, counted per selection) a query may have.
pub const MAX_COMPLEXITY: usize = 2_000;
/// What an aggregate's past state (`asOf`, `atVersion`) counts for: it is replayed into a
/// database of its own, and a request's fields resolve at once, so at one a field, a request of
/// 999 aliases held 999 of them (a release server's peak RSS 44 → 940 MB). Now about a hundred.
pub const PAST_STATE_COMPLEXITY: usize = 20;
/// What the network's past figures (`statistics(asOf:)`) count for: each replays up to 50,000
/// events (half a second of a core, about 90 MB, one turn of `history::NetworkReplays`), so a
/// request asks at most twenty.
pub const PAST_NETWORK_COMPLEXITY: usize = 100;
/// What `eventActivity` counts for: it reads every event its filter passes (2.2 s at 1,000,008
/// events on SQLite here), so at one a field a request could hold 500 of them.
pub const WHOLE_LOG_COMPLEXITY: usize = 100;
/// What the present figures (`statistics`) count for: they read whole read-model tables (1.7 s
/// for all of them at 1,000,008 events on SQLite with `--no-keep`).
pub const WHOLE_TABLES_COMPLEXITY: usize = 20;
/// What a list's `totalCount` counts for: it reads every row the filters match, which a page
/// need not (the timeline's count at 1,000,008 lines took 21–300 ms, by where it started).
pub const COUNT_COMPLEXITY: usize = 10;
/// What a lesson search counts for: it finds and ranks every match before its page (24–51 ms
/// a page at 315,792 lessons on SQLite here, a topic matching 15,784–31,576 of them).
pub const SEARCH_COMPLEXITY: usize = 10;

/// The operation of `document` that runs for the operation name `name`, as execution picks it.
pub fn operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        // A lone named operation needs no name in the request.
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

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

/// The per-request data loaders: they batch within one request, and with `kept` (a query over
/// HTTP, with the stamp read for it) they look in the rows kept under that stamp first.
pub fn request_loaders(
    app: &App,
    kept: Option<(KeptRows, Stamp)>,
    mut request: async_graphql::Request,
) -> async_graphql::Request {
    insert_loaders(&mut request.data, app, kept);
    request
}

/// Data loaders batch within a request (or a WebSocket connection). Without `kept` they keep
/// nothing across requests, so a long-lived subscription never serves stale rows.
pub fn insert_loaders(data: &mut async_graphql::Data, app: &App, kept: Option<(KeptRows, Stamp)>) {
    let store = app.store.clone();
    data.insert(kept_loader(loaders::MemberLoader(store.clone()), &kept));
    data.insert(kept_loader(loaders::ChallengeLoader(store.clone()), &kept));
    data.insert(kept_loader(loaders::DoetankLoader(store.clone()), &kept));
    data.insert(kept_loader(loaders::MembershipsByDoetank(store.clone()), &kept));
    data.insert(kept_loader(loaders::LessonsByDoetank(store.clone()), &kept));
    data.insert(kept_loader(loaders::PhasesByDoetank(store.clone()), &kept));
    data.insert(kept_loader(loaders::ActivitiesByDoetank(store), &kept));
}

fn kept_loader<L>(loader: L, kept: &Option<(KeptRows, Stamp)>) -> Batcher<Kept<L>>
where
    Kept<L>: async_graphql::dataloader::Loader<String, Error = std::sync::Arc<crate::error::AppError>>,
{
    // Batched in the request's own task, without async-graphql's timer (see `batcher`):
    // `RUST_LOG=doetank_api::graphql::batcher=debug` logs each batch with its number of keys.
    Batcher::new(Kept::new(loader, kept.clone()))
}

/// The schema in SDL, as `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), subscription::Subscription).finish().sdl()
}
