//! The HTTP server: GraphQL over POST, the GraphiQL playground on GET, subscriptions over
//! WebSocket, the log as NDJSON, and a health check.

mod answers;
mod batch;
mod cors;
mod documents;
mod etag;
mod field_order;
mod health;
mod log;
mod media;
mod metrics;
mod outbox;
mod persisted;
pub mod playground;
mod query_text;
mod refusals;
mod shared_subscriptions;
mod single_connection;
mod streamed;
mod url_token;
mod ws;
mod ws_protocol;

use std::time::Duration;

use std::net::SocketAddr;
use std::sync::Arc;

use async_graphql::ErrorExtensions;
use async_graphql_axum::GraphQLBatchRequest;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use self::cors::{AllowedOrigins, Origin};

use self::answers::{Answers, Question, Turn};
use self::documents::Documents;
use self::media::{respond, Media, GRAPHQL_RESPONSE};
use self::persisted::PersistedQueries;
use self::refusals::{bad_request, NotGraphql};
use self::shared_subscriptions::{SharedSubscriptions, Subscriptions};
use self::streamed::Framing;
use crate::app::App;
use crate::auth::{Auth, Viewer};
use crate::error::AppError;
use crate::graphql::declared_variables;
use crate::graphql::errors::{answer_of, parse_failed};
use crate::graphql::{build_schema, insert_loaders, request_loaders, DoetankSchema, KeptRows};
use crate::one_state::{self, Turns};
use crate::stamp::Stamp;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Tunables of the WebSocket endpoint.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How often the server pings a subscription client (`ping` or legacy `ka`).
    pub keepalive: Duration,
    /// How long a client may take to send `connection_init` before the socket is closed (4408).
    pub init_timeout: Duration,
    /// How bearer tokens are verified (and, with a secret, minted).
    pub auth: Auth,
    /// Keep answers to queries and the rows their loaders read between requests, served while
    /// the read models' stamp holds. Off, every query is computed from the database. Parsed
    /// query texts are kept either way: they do not depend on the data.
    pub keep: bool,
    /// Other origins whose pages may call the API from a browser (CORS).
    pub allowed_origins: AllowedOrigins,
    /// Operations one WebSocket may have running at once; one more is refused with
    /// `TOO_MANY_OPERATIONS` (a client must not hold the server's memory without bound).
    pub max_operations_per_socket: usize,
    /// Streams reserved (graphql-sse's single connection mode) and not yet opened that a node
    /// holds at once; one more `PUT` is refused with `TOO_MANY_RESERVATIONS` (anyone may ask).
    pub max_unopened_reservations: usize,
    /// A bearer token the playground's Headers start with (`serve --demo` gives the
    /// researcher's, so that the log's queries answer on a first visit). Only for a demo: the
    /// page shows it to whoever opens it.
    pub playground_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            keepalive: Duration::from_secs(15),
            init_timeout: Duration::from_secs(10),
            auth: Auth::hs256(random_secret().as_bytes()),
            keep: true,
            allowed_origins: AllowedOrigins::None,
            max_operations_per_socket: 1_000,
            max_unopened_reservations: 10_000,
            playground_token: None,
        }
    }
}

/// Connections a listener holds before they are accepted. The default (1,024) overflows when
/// thousands of dashboards connect at once (after a restart): the kernel drops the rest of
/// their SYNs and each retries a second or more later.
const ACCEPT_BACKLOG: u32 = 8_192;

/// A listener on `addr` with room for a crowd of connections arriving at once.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Sends what is written to an accepted connection at once. With Nagle's algorithm (the
/// socket's default, which `axum::serve` keeps) a small write waits while the one before is
/// unacknowledged, and a client acknowledges late (up to ~40 ms) when it has nothing to send:
/// a query over a WebSocket got its `complete` ~42 ms after its `next`, and any second frame
/// written soon after a first waited the same.
pub fn without_delay(connection: &mut tokio::net::TcpStream) {
    if let Err(error) = connection.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY could not be set on an accepted connection");
    }
}

/// A secret for a server started without one: its tokens die with the process.
pub fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// What every handler shares, behind one reference count: axum clones the state for each
/// request, and a clone of each part (the store's, the config's keys) was a measurable share
/// of a query.
#[derive(Clone)]
struct ServerState(Arc<StateParts>);

impl std::ops::Deref for ServerState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

struct StateParts {
    app: App,
    schema: DoetankSchema,
    config: ServerConfig,
    answers: Answers,
    kept_rows: KeptRows,
    documents: Documents,
    persisted: PersistedQueries,
    shared: SharedSubscriptions,
    /// Streams reserved by graphql-sse's single connection mode (see `single_connection`).
    reservations: single_connection::Reservations,
    /// Answers holding a connection of the pool at once (see `one_state`).
    turns: Turns,
    /// When the server stops, and how many WebSockets are still open (see [`Sockets`]).
    sockets: Sockets,
    /// How long GraphQL requests over HTTP take (`/metrics`).
    request_times: metrics::RequestTimes,
    /// The playground's page, made once per server.
    playground: Html<String>,
}

/// The WebSockets of a server. Upgraded connections are not awaited by `axum::serve`'s graceful
/// shutdown: without this, a stopping server dropped them with no close frame, and each
/// dashboard learned of it only from a dead TCP connection. Now each socket closes with 1001
/// (going away, reconnect elsewhere) and `serve` waits for them before it returns.
#[derive(Clone)]
pub(crate) struct Sockets {
    /// `None` for a server that is never stopped ([`router`]).
    stopping: Option<watch::Receiver<bool>>,
    open: Arc<watch::Sender<usize>>,
    /// Open HTTP streams (server-sent events, multipart), counted for an operator only: they
    /// end with the server by themselves, and graceful shutdown waits for them as responses.
    streams: Arc<watch::Sender<usize>>,
}

impl Sockets {
    fn new(stopping: Option<watch::Receiver<bool>>) -> Self {
        Sockets { stopping, open: Arc::new(watch::Sender::new(0)), streams: Arc::new(watch::Sender::new(0)) }
    }

    /// Resolves once the server is stopping: its shutdown turned true, or the shutdown's sender
    /// is gone (nothing can tell it to go on). Never for a server that is never stopped.
    pub(crate) async fn stopping(&self) {
        match self.stopping.clone() {
            Some(mut stopping) => drop(stopping.wait_for(|stop| *stop).await),
            None => std::future::pending().await,
        }
    }

    /// Whether the server has been told to stop.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.as_ref().is_some_and(|stopping| *stopping.borrow())
    }

    /// Counts a socket as open until the returned guard is dropped.
    pub(crate) fn opened(&self) -> Counted {
        Counted::one_of(&self.open)
    }

    /// `frames` of an HTTP stream's response, counted as open for as long as they are read.
    pub(crate) fn counted<S: futures::Stream + Send + 'static>(
        &self,
        frames: S,
    ) -> impl futures::Stream<Item = S::Item> {
        use futures::StreamExt;
        let counted = Counted::one_of(&self.streams);
        frames.map(move |frame| {
            let _held = &counted;
            frame
        })
    }

    /// Waits until every socket has closed, or `patience` has passed.
    async fn all_closed(&self, patience: Duration) {
        let mut open = self.open.subscribe();
        if tokio::time::timeout(patience, open.wait_for(|open| *open == 0)).await.is_err() {
            tracing::warn!(open = *open.borrow(), "WebSockets still open when the server stopped");
        }
    }
}

/// An open WebSocket or HTTP stream, counted in [`Sockets`] until dropped.
pub(crate) struct Counted(Arc<watch::Sender<usize>>);

impl Counted {
    fn one_of(count: &Arc<watch::Sender<usize>>) -> Counted {
        count.send_modify(|open| *open += 1);
        Counted(count.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// The routes of a server that is never stopped; [`serve`] builds its own.
pub fn router(app: App, config: ServerConfig) -> Router {
    routes(app, config, Sockets::new(None))
}

fn routes(app: App, config: ServerConfig, sockets: Sockets) -> Router {
    let schema = build_schema(app.clone());
    let allowed_origins = config.allowed_origins.clone();
    let playground = Html(playground::page(config.playground_token.as_deref()));
    let state = ServerState(Arc::new(StateParts {
        schema,
        config,
        answers: Answers::default(),
        kept_rows: KeptRows::default(),
        documents: Documents::default(),
        persisted: PersistedQueries::default(),
        shared: SharedSubscriptions::default(),
        reservations: single_connection::Reservations::default(),
        turns: Turns::for_store(&app.store),
        sockets,
        request_times: metrics::RequestTimes::default(),
        playground,
        app,
    }));
    let timed = axum::middleware::from_fn_with_state(state.clone(), metrics::timed);
    let mut router = Router::new()
        .route(
            "/graphql",
            get(get_graphql)
                .post(graphql)
                .layer(axum::middleware::from_fn(media::query_text_body))
                .layer(timed),
        )
        .route("/graphql/ws", get(ws::graphql_ws))
        .route(
            &format!("{}/{{file}}", playground::ASSETS),
            get(playground::asset).layer(CompressionLayer::new().gzip(true)),
        )
        .route(
            "/graphql/stream",
            post(single_connection::post)
                .put(single_connection::put)
                .get(single_connection::get)
                .delete(single_connection::delete),
        )
        // Compressed for clients that accept it: a whole log is hundreds of megabytes of JSON.
        .route("/events.ndjson", get(log::events_ndjson).layer(CompressionLayer::new().gzip(true)))
        .route("/events.csv", get(log::events_csv).layer(CompressionLayer::new().gzip(true)))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(refusals::too_large_as_graphql))
        .layer(axum::middleware::from_fn(media::negotiate));
    // Outside the rest: a preflight is answered before any of it runs.
    if let Some(cors) = allowed_origins.layer() {
        router = router.layer(cors);
    }
    // As tower-http's default span (its target too, so `RUST_LOG=tower_http=debug` shows it),
    // but a token in the URL is not written to the log.
    let trace = TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
        tracing::debug_span!(
            target: "tower_http::trace::make_span",
            "request",
            method = %request.method(),
            uri = %url_token::redacted(request.uri()),
            version = ?request.version(),
        )
    });
    router.layer(trace).with_state(state)
}

impl ServerState {
    /// The answers to a connection's operations (a WebSocket's, an event stream's), queries
    /// read in one state as over HTTP.
    fn subscriptions(&self) -> Subscriptions {
        Subscriptions {
            schema: self.schema.clone(),
            shared: self.shared.clone(),
            reads: Some((self.app.store.clone(), self.turns.clone())),
        }
    }

    /// What `/healthz`, `/readyz` and `/metrics` report of this node; an error when the
    /// database does not answer.
    async fn vitals(&self) -> Result<Vitals, doetank_store::StoreError> {
        // Read before the head: a head read later is never behind it, so `behind` is never
        // negative.
        let projected = *self.app.projector.watch_applied().borrow();
        let head = self.app.store.head_position().await?;
        Ok(Vitals {
            head,
            projected,
            web_sockets: *self.sockets.open.borrow(),
            event_streams: *self.sockets.streams.borrow(),
            shared: self.shared.stats(),
            replaying: self.shared.replaying(),
        })
    }

    /// The session of a connection whose viewer is `viewer`: loaders that keep no rows, since
    /// a connection lives across many states of the read models.
    fn session(&self, viewer: Viewer) -> Arc<async_graphql::Data> {
        let mut data = async_graphql::Data::default();
        insert_loaders(&mut data, &self.app, None);
        data.insert(viewer);
        Arc::new(data)
    }
}

/// A node's figures for an operator (see [`ServerState::vitals`]).
struct Vitals {
    /// The log's last position.
    head: i64,
    /// The position this node's read models include.
    projected: i64,
    web_sockets: usize,
    /// Open HTTP streams: server-sent events (a reserved stream counts once) and multipart.
    event_streams: usize,
    shared: shared_subscriptions::SharingStats,
    /// Subscribers replaying on their own before they take a seat in a shared execution.
    replaying: usize,
}

impl Vitals {
    /// Events of the log the read models have yet to take in.
    fn behind(&self) -> i64 {
        (self.head - self.projected).max(0)
    }
}

/// The viewer named by the `Authorization` header; a bad token is refused outright.
fn viewer_of(state: &ServerState, headers: &HeaderMap) -> Result<Viewer, AppError> {
    let header = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("?"));
    state.config.auth.viewer_from_header(header)
}

async fn graphql(
    State(state): State<ServerState>,
    headers: HeaderMap,
    request: GraphQLBatchRequest<NotGraphql>,
) -> Response {
    match request.into_inner() {
        async_graphql::BatchRequest::Single(request) => {
            let streams = Framing::for_subscription(&headers);
            answer(&state, &headers, request, Method::Post { streams }).await
        }
        async_graphql::BatchRequest::Batch(requests) => batch::answer_all(&state, &headers, requests).await,
    }
}

/// The query string of `GET /graphql` (GraphQL over HTTP): `variables` and `extensions` are
/// JSON text. With a persisted query's hash in `extensions`, `query` may be left out.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
    /// The token, for an `EventSource` (see `url_token`).
    #[serde(rename = "access_token")]
    access_token: Option<String>,
}

/// `GET /graphql`: the playground for a browser; with `?query=` a query answered as over POST
/// (a URL a dashboard can keep). Only queries: a mutation over GET is refused (405), as GraphQL
/// over HTTP requires, since a GET must change nothing. A WebSocket upgrade is served as on
/// `/graphql/ws`: clients (graphql-ws, Apollo) take the HTTP endpoint's URL for their socket by
/// default, and until the thirtieth session met the playground's page there.
async fn get_graphql(
    State(state): State<ServerState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    if let Ok(upgrade) = upgrade {
        return ws::graphql_ws(State(state), headers, upgrade).await;
    }
    let mut params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_request(format!("not a GraphQL request: {}", rejection.body_text())),
    };
    let token_in_url = params.access_token.is_some();
    let headers = match url_token::as_header(headers, params.access_token.take()) {
        Ok(headers) => headers,
        Err(refused) => return bad_request(refused),
    };
    if params.query.is_none() && params.extensions.is_none() {
        // A page for a browser; a client that asks for JSON alone would take it for an answer
        // (until the thirty-second session it got the page all the same).
        if wants_json_only(&headers) {
            return bad_request(
                "a GET asks its query as `?query=`, and none was given (a browser gets the playground here)"
                    .into(),
            );
        }
        return state.playground.clone().into_response();
    }
    let variables = match params.variables.as_deref().map(serde_json::from_str).transpose() {
        Ok(variables) => async_graphql::Variables::from_json(variables.unwrap_or_default()),
        Err(e) => return bad_request(format!("variables are not JSON: {e}")),
    };
    let extensions = match params.extensions.as_deref().map(serde_json::from_str).transpose() {
        Ok(extensions) => extensions.unwrap_or_default(),
        Err(e) => return bad_request(format!("extensions are not a JSON object: {e}")),
    };
    let mut request = async_graphql::Request::new(params.query.unwrap_or_default()).variables(variables);
    request.extensions = extensions;
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    let streams = Framing::for_subscription(&headers);
    let response = answer(&state, &headers, request, Method::Get { streams }).await;
    if token_in_url {
        return url_token::not_stored(response);
    }
    etag::tagged(response, &headers).await
}

/// Whether `Accept` names JSON (or GraphQL's response type) and no HTML: a client, not a
/// browser. No `Accept`, or `*/*` (curl's), still gets the page.
fn wants_json_only(headers: &HeaderMap) -> bool {
    let accept =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    accept.contains("json") && !accept.contains("text/html")
}

/// How a request came: over GET only queries are answered, and subscriptions to a client that
/// takes a stream (an `EventSource`); over POST a subscription is answered on a stream the
/// client takes (see `streamed`).
#[derive(Clone, Copy, PartialEq)]
enum Method {
    Get { streams: Option<Framing> },
    Post { streams: Option<Framing> },
}

/// The answer to a GraphQL request, however it came.
async fn answer(
    state: &ServerState,
    headers: &HeaderMap,
    mut request: async_graphql::Request,
    method: Method,
) -> Response {
    let media = Media::accepted(headers);
    let viewer = match viewer_of(state, headers) {
        Ok(viewer) => viewer,
        Err(err) => return error_response(err, media),
    };
    if let Err(err) = streamed::resume(headers, &mut request) {
        return error_response(err, media);
    }
    if let Some(framing) = Framing::for_every_operation(headers) {
        // A client that takes nothing but an event stream (graphql-sse's, a browser's
        // `EventSource`) gets a query on one too; a mutation stays refused over GET.
        let over_get = matches!(method, Method::Get { .. });
        return streamed::as_sent(state, viewer, request, framing, over_get);
    }
    answer_as(state, viewer, media, request, method).await
}

/// The answer to a GraphQL request of `viewer`'s, in `media`: [`answer`] once the headers are
/// read (a batch reads them once for all its requests).
async fn answer_as(
    state: &ServerState,
    viewer: Viewer,
    media: Media,
    mut request: async_graphql::Request,
    method: Method,
) -> Response {
    if let Err(refused) = state.persisted.resolve(&mut request) {
        return refused.into_response();
    }
    if !state.config.keep {
        return match parsed(state, &mut request, method, media) {
            Parsed::Query => {
                in_one_state(state, request, media, |request| computed(state, request, viewer.clone(), media))
                    .await
            }
            Parsed::Other => computed(state, request, viewer, media).await,
            Parsed::Streamed(framing) => streamed::streamed(state, viewer, request, framing),
            Parsed::Refused(refused) => refused,
        };
    }
    let question = Question::new(&request, &viewer);
    // Only queries are kept, so mutations pay neither the stamp read nor a lookup; a question
    // already kept is a query, so a hit is not parsed again.
    let known = state.answers.knows(&question);
    if !known {
        match parsed(state, &mut request, method, media) {
            Parsed::Query => {}
            Parsed::Other => return computed(state, request, viewer, media).await,
            Parsed::Streamed(framing) => return streamed::streamed(state, viewer, request, framing),
            Parsed::Refused(refused) => return refused,
        }
    }
    // The stamp and every row of the answer are read in one state, so an answer is kept under
    // the very state it was computed from.
    in_one_state(state, request, media, |request| {
        kept_or_computed(state, request, viewer.clone(), question.clone(), known, media)
    })
    .await
}

/// What a request is once parsed.
enum Parsed {
    Query,
    /// A mutation, sent by a method that may carry it.
    Other,
    /// A subscription, from a client that takes its answers as a stream framed so.
    Streamed(Framing),
    /// A text that does not parse (never executed), or anything but a query over GET.
    Refused(Response),
}

/// Gives `request` its parsed document, and says what it is.
fn parsed(state: &ServerState, request: &mut async_graphql::Request, method: Method, media: Media) -> Parsed {
    if request.query.trim().is_empty() {
        // `{}`, or `[]` (serde reads an empty array as a request with every field left out).
        let error = async_graphql::ServerError::new("the request has no GraphQL text in `query`", None);
        return Parsed::Refused(respond(parse_failed(error), media));
    }
    state.documents.attach(request);
    if let Some(refusal) = declared_variables::refusal_of(request) {
        return Parsed::Refused(respond(refusal, media));
    }
    if let Err(error) = request.parsed_query() {
        return Parsed::Refused(respond(parse_failed(error), media));
    }
    use async_graphql::parser::types::OperationType;
    match (answers::operation_type(request), method) {
        (Some(OperationType::Query), _) => Parsed::Query,
        (
            Some(OperationType::Subscription),
            Method::Get { streams: Some(framing) } | Method::Post { streams: Some(framing) },
        ) => Parsed::Streamed(framing),
        (Some(OperationType::Subscription), Method::Get { streams: None }) => {
            Parsed::Refused(refusals::subscription_over_get())
        }
        (Some(OperationType::Subscription), Method::Post { streams: None }) => {
            Parsed::Refused(respond(refusals::subscription_over_post(), media))
        }
        (_, Method::Post { .. }) => Parsed::Other,
        (_, Method::Get { .. }) => Parsed::Refused(refusals::mutation_over_get()),
    }
}

/// The response of `answer` to `request`, computed with every read in one state of the read
/// models (see `one_state`).
async fn in_one_state<F, Fut>(
    state: &ServerState,
    request: async_graphql::Request,
    media: Media,
    answer: F,
) -> Response
where
    F: Fn(async_graphql::Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let again = |request: &mut async_graphql::Request| state.documents.attach(request);
    let answered = one_state::answered(&state.app.store, &state.turns, request, again, answer).await;
    answered.unwrap_or_else(|| error_response(AppError::Moved, media))
}

/// The response to `request`, computed from the database.
async fn computed(
    state: &ServerState,
    request: async_graphql::Request,
    viewer: Viewer,
    media: Media,
) -> Response {
    respond(execute(state, request, None, viewer).await, media)
}

/// `request` executed as `viewer` with its own loaders (keeping rows under `kept`), its answer
/// in the order asked.
async fn execute(
    state: &ServerState,
    mut request: async_graphql::Request,
    kept: Option<(KeptRows, Stamp)>,
    viewer: Viewer,
) -> async_graphql::Response {
    let asked = field_order::Asked::of(&mut request);
    let mut response = state.schema.execute(request_loaders(&state.app, kept, request).data(viewer)).await;
    asked.order(&mut response);
    response
}

/// The answer kept for a query under the current stamp, or one computed (with kept rows) and
/// kept.
async fn kept_or_computed(
    state: &ServerState,
    mut request: async_graphql::Request,
    viewer: Viewer,
    question: Question,
    known: bool,
    media: Media,
) -> Response {
    let stamp = match Stamp::read(&state.app).await {
        Ok(stamp) => stamp,
        Err(err) => return error_response(err, media),
    };
    if let Some(answer) = state.answers.get(stamp, &question) {
        return answer_response(answer);
    }
    // Many clients asking the same at once (every dashboard, after a commit) wait for one
    // computation of it; where that one fails, each computes its own.
    let computing = match state.answers.turn(stamp, &question) {
        Turn::Compute(computing) => Some(computing),
        Turn::Await(other) => match Turn::awaited(other).await {
            Some(answer) => return answer_response(answer),
            None => None,
        },
    };
    if known {
        state.documents.attach(&mut request);
    }
    let kept = Some((state.kept_rows.clone(), stamp));
    let response = execute(state, request, kept, viewer).await;
    if !response.is_ok() || !response.http_headers.is_empty() {
        return respond(response, media);
    }
    match serde_json::to_vec(&response) {
        Ok(body) => {
            let answer = Bytes::from(body);
            state.answers.put(stamp, question, answer.clone());
            if let Some(computing) = computing {
                computing.done(answer.clone());
            }
            answer_response(answer)
        }
        Err(_) => respond(response, media),
    }
}

fn error_response(err: AppError, media: Media) -> Response {
    respond(answer_of(err.extend()), media)
}

/// A successful answer (its content type is the client's, see `media::negotiate`).
fn answer_response(answer: Bytes) -> Response {
    ([(header::CONTENT_TYPE, GRAPHQL_RESPONSE)], answer).into_response()
}

/// Serves until `shutdown` turns true, keeping the read models and the live feed current in
/// the background.
pub async fn serve(
    app: App,
    config: ServerConfig,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener_task = match app.store.listen_for_other_nodes().await {
        Ok(task) => task,
        Err(err) => {
            tracing::warn!(error = %err, "cannot LISTEN for other nodes; polling only");
            None
        }
    };
    let projector = tokio::spawn(app.projector.clone().run(shutdown.clone()));
    let feed = tokio::spawn(app.feed.clone().follow(shutdown.clone()));
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "serving GraphQL");
    let sockets = Sockets::new(Some(shutdown));
    let stopping = sockets.clone();
    let result = axum::serve(listener.tap_io(without_delay), routes(app, config, sockets.clone()))
        .with_graceful_shutdown(async move { stopping.stopping().await })
        .await;
    // Each socket has been told (1001) and gets the time a closing socket gets to say so.
    sockets.all_closed(ws::CLOSING_TIME + Duration::from_secs(1)).await;
    projector.abort();
    feed.abort();
    if let Some(task) = listener_task {
        task.abort();
    }
    result
}
