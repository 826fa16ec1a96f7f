//! graphql-sse's single connection mode: one event stream carries every operation of a client.
//! A browser on HTTP/1.1 opens at most six connections to a host, so a dashboard of several
//! live panels on distinct streams stalled at the seventh, and held the rest of the page's
//! requests up before that.
//!
//! - `PUT /graphql/stream`, signed in as over HTTP, reserves a stream: `201` and a token.
//! - `GET /graphql/stream` with `Accept: text/event-stream` and the token (the
//!   `X-GraphQL-Event-Stream-Token` header, or `?token=` for an `EventSource`) opens it, one
//!   connection at a time (`409`).
//! - `POST /graphql/stream` with the token and an `operationId` in `extensions` starts an
//!   operation (`202`): its answers come on the stream as `next` `{"id", "payload"}`, then
//!   `complete` `{"id"}`.
//! - `DELETE /graphql/stream?operationId=` with the token stops one.
//!
//! The operations run as the viewer who reserved the stream, and share executions with
//! sockets and other streams as those do. The stream ends when that viewer's token expires
//! (each operation is told `UNAUTHENTICATED` and completed) or the server stops, and its
//! operations end with it. A reservation lives on the node that made it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_graphql_axum::GraphQLRequest;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::Message;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{stream, StreamExt};

use super::outbox::{Mailbox, Refused, Room};
use super::refusals::{bad_request, refused_with, NotGraphql};
use super::shared_subscriptions::{lagged, serialise, Answer, Joined, Reach, Subscribed, Wrapping};
use super::streamed::{respond, until_expiry, Framing, StreamMailbox};
use super::{error_response, viewer_of, Media, ServerState};
use crate::auth::Viewer;
use crate::graphql::errors::refused;

/// Where the client sends the stream's token (graphql-sse's `TOKEN_HEADER_KEY`).
pub(super) const TOKEN_HEADER: &str = "x-graphql-event-stream-token";

/// A reservation that no stream took up within this long is forgotten at the next one.
const UNCLAIMED_FOR: Duration = Duration::from_secs(60);

/// The streams reserved on this node, by token.
#[derive(Clone, Default)]
pub(crate) struct Reservations(Arc<Mutex<HashMap<String, Arc<Reservation>>>>);

struct Reservation {
    viewer: Viewer,
    made_at: Instant,
    /// What the operations write and the stream reads; it never finishes: the stream ends when
    /// its client goes, its token expires or the server stops.
    mailbox: Arc<StreamMailbox>,
    connected: AtomicBool,
    operations: Mutex<HashMap<String, Operation>>,
}

/// A running operation of a stream.
enum Operation {
    /// In a shared execution, which writes to the stream itself.
    Shared(Joined),
    /// In its own execution, whose task writes to the stream.
    Alone(tokio::task::AbortHandle),
}

/// One operation's view of its stream's mailbox: the operation ending does not end the stream.
struct OperationMailbox(Arc<StreamMailbox>);

impl Mailbox for OperationMailbox {
    fn post(&self, frame: Message, beyond_bound: bool) -> Result<(), Refused> {
        self.0.post(frame, beyond_bound)
    }

    fn room(&self) -> Room<'_> {
        self.0.room()
    }
}

impl Reservations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Reservation>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn find(&self, token: &str) -> Option<Arc<Reservation>> {
        self.lock().get(token).cloned()
    }
}

impl Reservation {
    fn operations(&self) -> std::sync::MutexGuard<'_, HashMap<String, Operation>> {
        self.operations.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The refusal of a reservation whose token has expired. An open stream ends with its
    /// token; one never opened outlives it until it is forgotten, and must serve nothing
    /// meanwhile.
    fn expired(&self) -> Option<Response> {
        let expired = self.viewer.expires_at.is_some_and(|at| at <= chrono::Utc::now());
        let why = "the token that reserved this stream expired: reserve another with a new one";
        expired.then(|| error_response(crate::error::AppError::Unauthenticated(why.into()), Media::Json))
    }

    /// Forgets the operations that ended by themselves.
    fn prune(operations: &mut HashMap<String, Operation>) {
        operations.retain(|_, operation| match operation {
            Operation::Shared(joined) => !joined.is_done(),
            Operation::Alone(task) => !task.is_finished(),
        });
    }

    /// Stops every operation (the stream is gone, or its token expired), returning their ids.
    fn end(&self) -> Vec<String> {
        let ended: Vec<(String, Operation)> = self.operations().drain().collect();
        ended
            .into_iter()
            .map(|(id, operation)| {
                // A shared one leaves its execution as it is dropped; a task is not stopped by
                // dropping its handle.
                if let Operation::Alone(task) = operation {
                    task.abort();
                }
                id
            })
            .collect()
    }
}

impl Drop for Reservation {
    /// A reservation forgotten unopened stops what was started on it.
    fn drop(&mut self) {
        self.end();
    }
}

/// What the URL of `/graphql/stream` may say of a reserved stream.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct StreamParams {
    /// The stream's token, for an `EventSource`, which sends no header.
    token: Option<String>,
    /// The operation to stop.
    operation_id: Option<String>,
}

/// The reserved stream a request to `/graphql/stream` is about, if it names one: its token
/// from its header, else from the URL.
fn token_of(headers: &HeaderMap, params: &StreamParams) -> Option<String> {
    let header = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string());
    header.or_else(|| params.token.clone())
}

/// `PUT /graphql/stream`: reserves a stream for the signed-in viewer.
fn reserve(state: &ServerState, headers: &HeaderMap) -> Response {
    let viewer = match viewer_of(state, headers) {
        Ok(viewer) => viewer,
        Err(err) => return error_response(err, Media::accepted(headers)),
    };
    let token = uuid::Uuid::new_v4().to_string();
    let reservation = Reservation {
        viewer,
        made_at: Instant::now(),
        mailbox: Arc::default(),
        connected: AtomicBool::new(false),
        operations: Mutex::default(),
    };
    let mut reserved = state.reservations.lock();
    reserved.retain(|_, r| r.connected.load(Ordering::Relaxed) || r.made_at.elapsed() < UNCLAIMED_FOR);
    // Each is memory that anyone may ask for.
    let unopened = reserved.values().filter(|r| !r.connected.load(Ordering::Relaxed)).count();
    if unopened >= state.config.max_unopened_reservations {
        drop(reserved);
        return refused_with(
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_RESERVATIONS",
            "too many streams are reserved and not opened on this node: open yours, or try again in a minute",
        );
    }
    reserved.insert(token.clone(), Arc::new(reservation));
    drop(reserved);
    (StatusCode::CREATED, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response()
}

/// Removes its reservation, and stops its operations, when the stream's response is dropped.
struct Claimed {
    reservations: Reservations,
    token: String,
    reservation: Arc<Reservation>,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.reservations.lock().remove(&self.token);
        self.reservation.end();
    }
}

/// `GET /graphql/stream` with a token: the reserved stream.
fn open(state: &ServerState, headers: &HeaderMap, token: String) -> Response {
    if !Framing::accepts_event_stream(headers) {
        return refused_with(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "a reserved stream is `text/event-stream`: accept it",
        );
    }
    let Some(reservation) = state.reservations.find(&token) else {
        return not_reserved();
    };
    if let Some(expired) = reservation.expired() {
        return expired;
    }
    if reservation.connected.swap(true, Ordering::SeqCst) {
        return refused_with(
            StatusCode::CONFLICT,
            "CONFLICT",
            "this stream is open already: one connection at a time",
        );
    }
    let expires_in =
        reservation.viewer.expires_at.map(|at| (at - chrono::Utc::now()).to_std().unwrap_or_default());
    let claimed =
        Claimed { reservations: state.reservations.clone(), token, reservation: reservation.clone() };
    let frames = reservation.mailbox.clone().frames(claimed);
    let at_expiry = {
        let reservation = reservation.clone();
        move |refusal: &Answer| {
            reservation
                .end()
                .iter()
                .flat_map(|id| {
                    let wrapping = operation_wrapping(id);
                    [Some(wrapping.frame(refusal).0), wrapping.complete_text(id)]
                })
                .flatten()
                .map(Bytes::from)
                .collect()
        }
    };
    // A comment first: some browsers show nothing of a stream until its first bytes.
    let frames = stream::once(futures::future::ready(Bytes::from_static(b":\n\n")))
        .chain(until_expiry(frames, expires_in, at_expiry));
    respond(state, frames, Framing::EventStream)
}

/// `POST /graphql/stream` with a token: starts `request` on the reserved stream.
fn operate(state: &ServerState, token: &str, mut request: async_graphql::Request) -> Response {
    let Some(reservation) = state.reservations.find(token) else {
        return not_reserved();
    };
    if let Some(expired) = reservation.expired() {
        return expired;
    }
    let id = match request.extensions.get("operationId") {
        Some(async_graphql::Value::String(id)) if !id.is_empty() => id.clone(),
        _ => {
            return bad_request(
                "an operation on a reserved stream names its id as `extensions.operationId`".into(),
            )
        }
    };
    if let Err(refused) = state.persisted.resolve(&mut request) {
        return refused.into_response();
    }
    state.documents.attach(&mut request);
    let reach = operation_reach(&reservation, &id);
    let mut operations = reservation.operations();
    Reservation::prune(&mut operations);
    if operations.contains_key(&id) {
        return refused_with(
            StatusCode::CONFLICT,
            "CONFLICT",
            "an operation of this id runs on the stream already",
        );
    }
    let limit = state.config.max_operations_per_socket;
    if operations.len() >= limit {
        let message =
            format!("this stream already runs {limit} operations, the most it may: complete one first");
        let refusal = serialise(refused(crate::graphql::errors::TOO_MANY_OPERATIONS, message));
        if post_answer(&reach, &refusal) {
            reach.complete(&id);
        }
        return StatusCode::ACCEPTED.into_response();
    }
    let subscribed = state.subscriptions().subscribe(
        request,
        state.session(reservation.viewer.clone()),
        &id,
        operation_wrapping(&id),
        Arc::new(OperationMailbox(reservation.mailbox.clone())),
    );
    let operation = match subscribed {
        Subscribed::Shared(joined) => Operation::Shared(joined),
        Subscribed::Alone(answers) => {
            let id = id.clone();
            let task = tokio::spawn(async move { write_alone(&reach, &id, answers).await });
            Operation::Alone(task.abort_handle())
        }
    };
    operations.insert(id, operation);
    StatusCode::ACCEPTED.into_response()
}

/// Writes operation `id`'s own answers to its stream, then `complete`; one whose client reads
/// too slowly is dropped with `LAGGED`, as a subscriber of a shared execution is.
async fn write_alone(reach: &Reach, id: &str, answers: impl futures::Stream<Item = Answer>) {
    let mut answers = std::pin::pin!(answers);
    while let Some(answer) = answers.next().await {
        if !post_answer(reach, &answer) {
            break;
        }
    }
    reach.complete(id);
}

/// Posts `answer`; false (with `LAGGED` posted instead) when the stream holds too much unread.
fn post_answer(reach: &Reach, answer: &Answer) -> bool {
    if reach.post(answer, false).is_ok() {
        return true;
    }
    let _ = reach.post(&lagged(), true);
    false
}

/// `DELETE /graphql/stream?operationId=` with a token: stops that operation.
fn stop(state: &ServerState, token: &str, params: StreamParams) -> Response {
    let Some(reservation) = state.reservations.find(token) else {
        return not_reserved();
    };
    let Some(id) = params.operation_id else {
        return bad_request("say which operation to stop: `?operationId=`".into());
    };
    match reservation.operations().remove(&id) {
        Some(Operation::Shared(joined)) => joined.stop(true),
        Some(Operation::Alone(task)) => {
            task.abort();
            operation_reach(&reservation, &id).complete(&id);
        }
        None => {}
    }
    StatusCode::OK.into_response()
}

/// How operation `id`'s answers are framed on its stream.
fn operation_wrapping(id: &str) -> Wrapping {
    Wrapping::Operation(serde_json::Value::from(id).to_string().into())
}

/// Where operation `id`'s answers go when it runs alone: framed for it, on its stream.
fn operation_reach(reservation: &Reservation, id: &str) -> Reach {
    Reach::new(Arc::new(OperationMailbox(reservation.mailbox.clone())), operation_wrapping(id))
}

fn not_reserved() -> Response {
    refused_with(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no stream is reserved under this token: reserve one with PUT /graphql/stream",
    )
}

/// `POST /graphql/stream`: an operation on a reserved stream when it names one, else an
/// operation answered on a stream of its own (distinct connections mode, `streamed`).
pub(super) async fn post(
    State(state): State<ServerState>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
    request: GraphQLRequest<NotGraphql>,
) -> Response {
    let params = params.map(|Query(params)| params).unwrap_or_default();
    match token_of(&headers, &params) {
        Some(token) => operate(&state, &token, request.into_inner()),
        None => super::streamed::graphql_stream(State(state), headers, request).await,
    }
}

/// `PUT /graphql/stream`: a reservation.
pub(super) async fn put(State(state): State<ServerState>, headers: HeaderMap) -> Response {
    reserve(&state, &headers)
}

/// `GET /graphql/stream`: the reserved stream.
pub(super) async fn get(
    State(state): State<ServerState>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(params)| params).unwrap_or_default();
    match token_of(&headers, &params) {
        Some(token) => open(&state, &headers, token),
        None => bad_request(format!(
            "GET /graphql/stream opens a reserved stream: name its token (`{TOKEN_HEADER}` or `?token=`), \
             from PUT /graphql/stream; one operation by URL is GET /graphql with `Accept: text/event-stream`"
        )),
    }
}

/// `DELETE /graphql/stream?operationId=`: stops an operation of a reserved stream.
pub(super) async fn delete(
    State(state): State<ServerState>,
    headers: HeaderMap,
    params: Result<Query<StreamParams>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    match token_of(&headers, &params) {
        Some(token) => stop(&state, &token, params),
        None => bad_request(format!("name the stream's token (`{TOKEN_HEADER}` or `?token=`)")),
    }
}
