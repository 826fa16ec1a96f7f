//! Operations answered as a stream over HTTP, for dashboards behind proxies that do not pass
//! WebSockets, in the two framings clients speak:
//!
//! - server-sent events (GraphQL over SSE, the graphql-sse library's "distinct connections"
//!   mode): each answer an `event: next` whose data is the GraphQL response (with an `id:`
//!   to resume after, see `graphql::resume`), the end an `event: complete`; at
//!   `POST /graphql/stream` for any operation, and at `/graphql` for a client that accepts
//!   `text/event-stream`: a subscription by POST or by GET (a browser's `EventSource`), any
//!   operation by POST when it accepts no JSON (the library's single connection mode, one
//!   stream for many operations, is `single_connection`);
//! - multipart (Apollo's multipart HTTP protocol for subscriptions, which Apollo Client's
//!   `HttpLink` speaks for a subscription without a WebSocket link): each answer a part
//!   `{"payload": response}`, the end the closing delimiter; at `POST /graphql` for a
//!   subscription whose client accepts `multipart/mixed;subscriptionSpec=1.0`.
//!
//! The token is the `Authorization` header, as over HTTP (or, for an `EventSource`, which
//! sends no headers, `access_token` in its URL: `url_token`). Streams asking the same from now on
//! share one execution with each other and with sockets (`shared_subscriptions`), which writes
//! to a stream's [`StreamMailbox`] as to a socket's outbox. A
//! stream ends when its token expires, with an `UNAUTHENTICATED` error, as a WebSocket closes
//! then; and when the server stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql_axum::GraphQLRequest;
use axum::body::{Body, Bytes};
use axum::extract::ws::Message;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::future::ready;
use futures::{stream, Stream, StreamExt};
use tokio::sync::Notify;

use super::answers::operation_type;
use super::media::{accept_ranges, Media};
use super::outbox::{room_in, Mailbox, Refused, Room, MAX_QUEUED_BYTES};
use super::refusals::{mutation_over_get, NotGraphql};
use super::shared_subscriptions::{serialise, Answer, Subscribed, Wrapping};
use super::{error_response, viewer_of, ServerState};
use crate::auth::Viewer;
use crate::error::AppError;
use crate::graphql::resume::ResumeFrom;

/// How a stream frames its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    EventStream,
    Multipart,
}

/// The boundary between multipart parts; Apollo's clients read it from the content type.
const BOUNDARY: &str = "graphql";

impl Framing {
    /// The framing `Accept` asks a subscription to be streamed in, if any: the first of
    /// `text/event-stream` and `multipart/mixed` with `subscriptionSpec` it names (the quality
    /// of either against JSON does not matter: JSON cannot carry a subscription).
    pub(super) fn for_subscription(headers: &HeaderMap) -> Option<Framing> {
        accepted(headers).find_map(|range| range.framing)
    }

    /// Whether `Accept` takes an event stream at all (whatever else it takes).
    pub(super) fn accepts_event_stream(headers: &HeaderMap) -> bool {
        accepted(headers).any(|range| range.framing == Some(Framing::EventStream))
    }

    /// Whether `Accept` asks every operation as an event stream: it names `text/event-stream`
    /// and nothing JSON could answer, as the graphql-sse client sends it for a query too.
    pub(super) fn for_every_operation(headers: &HeaderMap) -> Option<Framing> {
        let mut framing = None;
        for range in accepted(headers) {
            if range.takes_json {
                return None;
            }
            framing = framing.or(range.framing.filter(|f| *f == Framing::EventStream));
        }
        framing
    }

    fn content_type(self) -> &'static str {
        match self {
            Framing::EventStream => "text/event-stream",
            Framing::Multipart => "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\"",
        }
    }

    /// What the stream starts with, sent at once so that the client sees the answer begin.
    fn opening(self) -> Option<Bytes> {
        match self {
            Framing::EventStream => None,
            // The delimiter goes after each part rather than before it: a client hands a part
            // on when it reads the delimiter that ends it, so a part followed by nothing would
            // wait there for the next one.
            Framing::Multipart => Some(Bytes::from(format!("\r\n--{BOUNDARY}"))),
        }
    }

    /// One answer as the stream carries it; as an event, with the id a reconnecting
    /// `EventSource` sends back to resume after it (multipart clients do not resume).
    pub(super) fn answer_text(self, answer: &Answer) -> String {
        match self {
            Framing::EventStream => event_with_id(answer.resume(), "next", answer.json()),
            Framing::Multipart => part(&format!("{{\"payload\":{}}}", answer.json())),
        }
    }

    /// The end of a stream refused by the transport rather than by GraphQL (an expired token),
    /// `errors` a JSON array: over multipart a part without payload, as the protocol has it.
    fn refusal(self, errors: &str) -> Bytes {
        Bytes::from(match self {
            Framing::EventStream => event("next", format!("{{\"errors\":{errors}}}")),
            Framing::Multipart => part(&format!("{{\"payload\":null,\"errors\":{errors}}}")),
        })
    }

    /// The end of the operation.
    fn end(self) -> Bytes {
        match self {
            Framing::EventStream => Bytes::from(event("complete", "")),
            Framing::Multipart => Bytes::from_static(b"--\r\n"),
        }
    }

    /// What keeps a quiet stream open through proxies: a comment, or an empty part (the
    /// protocol's heartbeat).
    fn keep_alive(self) -> Bytes {
        match self {
            Framing::EventStream => Bytes::from_static(b":\n\n"),
            Framing::Multipart => Bytes::from(part("{}")),
        }
    }
}

/// One range of `Accept`, as far as streams care.
struct Range {
    framing: Option<Framing>,
    takes_json: bool,
}

/// The ranges of `Accept` as streams read them; none at all, without parsing, where no header
/// names a stream (every request asks this, and nearly all take JSON).
fn accepted(headers: &HeaderMap) -> impl Iterator<Item = Range> + '_ {
    let names =
        |value: &[u8], stream: &[u8]| value.windows(stream.len()).any(|w| w.eq_ignore_ascii_case(stream));
    let may_stream = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| names(v.as_bytes(), b"text/event-stream") || names(v.as_bytes(), b"multipart/mixed"));
    may_stream.then(|| accept_ranges(headers)).into_iter().flatten().filter_map(|range| {
        let params: Vec<(String, String)> = range
            .params()
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string()))
            .collect();
        if params.iter().any(|(k, v)| k == "q" && v.parse::<f32>().is_ok_and(|q| q <= 0.0)) {
            return None;
        }
        let kind = range.kind;
        let framing = match kind.as_str() {
            "text/event-stream" => Some(Framing::EventStream),
            "multipart/mixed" if params.iter().any(|(k, v)| k == "subscriptionspec" && v == "1.0") => {
                Some(Framing::Multipart)
            }
            _ => None,
        };
        let takes_json = matches!(
            kind.as_str(),
            "application/json" | "application/graphql-response+json" | "application/*" | "*/*"
        );
        Some(Range { framing, takes_json })
    })
}

/// `POST /graphql/stream`: any operation, as server-sent events.
pub(super) async fn graphql_stream(
    State(state): State<ServerState>,
    headers: HeaderMap,
    request: GraphQLRequest<NotGraphql>,
) -> Response {
    let viewer = match viewer_of(&state, &headers) {
        Ok(viewer) => viewer,
        Err(err) => return error_response(err, Media::accepted(&headers)),
    };
    let mut request = request.into_inner();
    match resume(&headers, &mut request) {
        Ok(()) => as_sent(&state, viewer, request, Framing::EventStream, false),
        Err(err) => error_response(err, Media::accepted(&headers)),
    }
}

/// Makes `request` resume after the event id its client sent back as `Last-Event-ID`, if it
/// sent one; refused if that is not an id this server gives out. The request is changed in
/// place: every request passes here, and moving it costs.
pub(super) fn resume(headers: &HeaderMap, request: &mut async_graphql::Request) -> Result<(), AppError> {
    if let Some(from) = resumes_from(headers)? {
        request.data.insert(from);
    }
    Ok(())
}

/// Where a reconnecting client resumes: the event id it sent back as `Last-Event-ID` (see
/// `graphql::resume`), none without one; refused if that is not an id this server gives out.
fn resumes_from(headers: &HeaderMap) -> Result<Option<ResumeFrom>, AppError> {
    // A name made once: every request asks this, and parsing a `&str` name costs each time.
    static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
    let Some(id) = headers.get(&LAST_EVENT_ID) else { return Ok(None) };
    let id = id.to_str().ok().map(str::trim);
    // An empty id is how the SSE spec resets it: nothing to resume from.
    if id == Some("") {
        return Ok(None);
    }
    match id.and_then(|id| id.parse::<i64>().ok()).filter(|id| *id >= 0) {
        Some(id) => Ok(Some(ResumeFrom(id))),
        None => Err(AppError::bad_input(
            "Last-Event-ID",
            "is not an event id of this server's: a position or version, a whole number 0 or more",
        )),
    }
}

/// The answers to `request` as its client sent it (a persisted query's hash resolved, its text
/// parsed), as a stream framed by `framing`; `over_get`, a mutation is refused, as any is over
/// GET.
pub(super) fn as_sent(
    state: &ServerState,
    viewer: Viewer,
    mut request: async_graphql::Request,
    framing: Framing,
    over_get: bool,
) -> Response {
    if let Err(refused) = state.persisted.resolve(&mut request) {
        return refused.into_response();
    }
    state.documents.attach(&mut request);
    if over_get && operation_type(&mut request) == Some(OperationType::Mutation) {
        return mutation_over_get();
    }
    streamed(state, viewer, request, framing)
}

/// The answers to `request` (its persisted text resolved and its document attached), asked by
/// `viewer`, as a stream framed by `framing`.
pub(super) fn streamed(
    state: &ServerState,
    viewer: Viewer,
    request: async_graphql::Request,
    framing: Framing,
) -> Response {
    let expires_in = viewer.expires_at.map(|at| (at - chrono::Utc::now()).to_std().unwrap_or_default());
    let mailbox = Arc::new(StreamMailbox::default());
    let subscribed = state.subscriptions().subscribe(
        request,
        state.session(viewer),
        "",
        Wrapping::Stream(framing),
        mailbox.clone(),
    );
    let answers = match subscribed {
        Subscribed::Alone(answers) => {
            answers.map(move |answer| Bytes::from(framing.answer_text(&answer))).boxed()
        }
        Subscribed::Shared(joined) => mailbox.frames(joined).boxed(),
    };
    let frames = stream::iter(framing.opening())
        .chain(until_expiry(answers, expires_in, move |refusal| {
            vec![framing.refusal(refusal.refusal().unwrap_or("[]"))]
        }))
        .chain(stream::once(ready(framing.end())));
    respond(state, frames, framing)
}

/// The response streaming `frames` in `framing`: with keep-alives, ended when the server
/// stops, and counted as open while it is read.
pub(super) fn respond(
    state: &ServerState,
    frames: impl Stream<Item = Bytes> + Send + 'static,
    framing: Framing,
) -> Response {
    // A stopping server ends its streams, as it closes its WebSockets: else its graceful
    // shutdown would wait for them for ever. An `EventSource` then reconnects by itself after
    // its default wait (3 s in browsers), every dashboard of the node at once, to a node that has
    // just started: told a wait of 1 to 10 s, drawn for each stream, they come back spread out.
    let sockets = state.sockets.clone();
    let stopping = async move {
        sockets.stopping().await;
        match framing {
            Framing::EventStream => vec![Bytes::from(format!("retry: {}\n\n", reconnect_after_ms()))],
            Framing::Multipart => Vec::new(),
        }
    };
    let frames = with_keep_alive(ended_by(frames, stopping), state.config.keepalive, framing);
    let frames = state.sockets.counted(frames);
    let mut response = Body::from_stream(frames.map(Ok::<_, Infallible>)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(framing.content_type()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // These streams are for dashboards behind proxies; nginx holds a proxied answer back in
    // its buffer unless told not to, and a live answer would wait there.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// What a shared execution writes a stream's answers to, for the response to take: up to the
/// bound a socket has, past which its subscriber is dropped with `LAGGED` as a socket's is.
#[derive(Default)]
pub(super) struct StreamMailbox {
    queue: Mutex<StreamQueue>,
    posted: Notify,
    /// Notified as the response takes frames ([`Mailbox::room`]).
    taken: Notify,
}

#[derive(Default)]
struct StreamQueue {
    frames: VecDeque<Bytes>,
    bytes: usize,
    finished: bool,
}

impl Mailbox for StreamMailbox {
    fn post(&self, frame: Message, beyond_bound: bool) -> Result<(), Refused> {
        let Message::Text(text) = frame else { return Ok(()) };
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if !beyond_bound && queue.bytes + text.len() > MAX_QUEUED_BYTES {
            return Err(Refused::Full);
        }
        queue.bytes += text.len();
        // The frame's own bytes, not a copy: a shared execution posts one to each subscriber.
        queue.frames.push_back(Bytes::from(text));
        drop(queue);
        self.posted.notify_one();
        Ok(())
    }

    fn finished(&self) {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner).finished = true;
        self.posted.notify_one();
    }

    fn room(&self) -> Room<'_> {
        room_in(&self.taken)
    }
}

impl StreamMailbox {
    /// The frames posted, until the execution is done with this subscriber; `joined` (a
    /// shared subscription's `Joined`) is held as long as the response is read, and dropping it (the client went)
    /// leaves the execution.
    pub(super) fn frames<J: Send + 'static>(
        self: Arc<Self>,
        joined: J,
    ) -> impl Stream<Item = Bytes> + Send + 'static {
        stream::unfold((self, joined), |(mailbox, joined)| async move {
            loop {
                {
                    let mut queue = mailbox.queue.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(frame) = queue.frames.pop_front() {
                        queue.bytes -= frame.len();
                        drop(queue);
                        mailbox.taken.notify_waiters();
                        return Some((frame, (mailbox, joined)));
                    }
                    if queue.finished {
                        return None;
                    }
                }
                mailbox.posted.notified().await;
            }
        })
    }
}

/// One multipart part of JSON `body`, with the delimiter that ends it.
fn part(body: &str) -> String {
    format!("\r\ncontent-type: application/json\r\n\r\n{body}\r\n--{BOUNDARY}")
}

/// One event as the stream carries it: its name, then its data line by line, always at least
/// one `data:` line. An event without one is never dispatched by `EventSource` nor by parsers
/// that follow the SSE spec, and the protocol's `complete` has empty data: axum's `Event`
/// writes no `data:` line for empty data since 0.8.5 (axum#3571), so until the thirty-second
/// session `complete` went unseen by such clients, which then took the closed stream for a
/// dropped one.
pub(super) fn event(name: &str, data: impl AsRef<str>) -> String {
    event_with_id(None, name, data)
}

/// [`event`], with an `id:` line when it has one.
fn event_with_id(id: Option<i64>, name: &str, data: impl AsRef<str>) -> String {
    let data = data.as_ref();
    let mut frame = String::with_capacity(data.len() + name.len() + 40);
    if let Some(id) = id {
        frame.push_str("id: ");
        frame.push_str(&id.to_string());
        frame.push('\n');
    }
    frame.push_str("event: ");
    frame.push_str(name);
    frame.push('\n');
    for line in data.split('\n') {
        frame.push_str("data: ");
        frame.push_str(line.strip_suffix('\r').unwrap_or(line));
        frame.push('\n');
    }
    frame.push('\n');
    frame
}

/// `events`, with a keep-alive every `every` among them, so that proxies do not close a quiet
/// stream; ends with `events`.
fn with_keep_alive(
    events: impl Stream<Item = Bytes> + Send + 'static,
    every: Duration,
    framing: Framing,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let events = events.map(Some).chain(stream::once(ready(None)));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A client slow to read gets one keep-alive after the wait, not one for each tick it missed.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks =
        tokio_stream::wrappers::IntervalStream::new(interval).map(move |_| Some(framing.keep_alive()));
    stream::select(events, ticks).take_while(|frame| ready(frame.is_some())).filter_map(ready)
}

/// `events` until the token's end (`expires_in`; none for an anonymous stream), then the last
/// words `refused` makes of the refusal (a JSON array of errors) that says so: a dashboard's
/// stream must not outlive the token that opened it (until the thirty-first session it did,
/// while a WebSocket closed with 4401).
pub(super) fn until_expiry(
    events: impl Stream<Item = Bytes> + Send + 'static,
    expires_in: Option<Duration>,
    refused: impl FnOnce(&Answer) -> Vec<Bytes> + Send + 'static,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let Some(left) = expires_in else {
        return events.left_stream();
    };
    let expired = async move {
        tokio::time::sleep(left).await;
        let refusal = crate::graphql::errors::refused(
            "UNAUTHENTICATED",
            "the token expired: subscribe again with a new one",
        );
        refused(&serialise(refusal))
    };
    ended_by(events, expired).right_stream()
}

/// `events` until they end, or until `end` comes with its last words: those, then nothing.
fn ended_by(
    events: impl Stream<Item = Bytes> + Send + 'static,
    end: impl std::future::Future<Output = Vec<Bytes>> + Send + 'static,
) -> impl Stream<Item = Bytes> + Send + 'static {
    enum Next {
        Send(Bytes),
        End,
    }
    let answers = events.map(Next::Send).chain(stream::once(ready(Next::End)));
    let last_words = stream::once(end)
        .flat_map(|words| stream::iter(words.into_iter().map(Next::Send).chain([Next::End])));
    stream::select(answers, last_words)
        .take_while(|next| ready(matches!(next, Next::Send(_))))
        .filter_map(|next| ready(if let Next::Send(event) = next { Some(event) } else { None }))
}

/// How long a stream's client is told to wait before it reconnects once the server stops: 1 to
/// 10 s, a different wait for each stream.
fn reconnect_after_ms() -> u128 {
    1_000 + uuid::Uuid::new_v4().as_u128() % 9_001
}

#[cfg(test)]
mod tests {
    use super::{event, Framing};
    use axum::http::{header, HeaderMap, HeaderValue};

    fn accepting(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).expect("header"));
        headers
    }

    /// A stream's queue takes answers up to a socket's bound, then refuses them (its subscriber
    /// is then dropped with `LAGGED`, posted beyond the bound), and its frames end once the
    /// execution is done with it.
    #[tokio::test]
    async fn a_stream_s_mailbox_is_bounded_and_ends_when_finished() {
        use super::{Mailbox, Message, Refused, StreamMailbox, MAX_QUEUED_BYTES};
        use futures::StreamExt;
        let mailbox = std::sync::Arc::new(StreamMailbox::default());
        let big = "x".repeat(MAX_QUEUED_BYTES / 2);
        assert_eq!(mailbox.post(Message::Text(big.clone().into()), false), Ok(()));
        assert_eq!(mailbox.post(Message::Text(big.clone().into()), false), Ok(()));
        assert_eq!(mailbox.post(Message::Text("y".into()), false), Err(Refused::Full));
        assert_eq!(mailbox.post(Message::Text("lagged".into()), true), Ok(()));
        mailbox.finished();
        let frames: Vec<_> = mailbox.frames(()).collect().await;
        assert_eq!(frames.len(), 3);
        assert_eq!(&frames[2][..], b"lagged");
    }

    #[test]
    fn the_accept_header_picks_the_stream() {
        let subscription = |value| Framing::for_subscription(&accepting(value));
        let every = |value| Framing::for_every_operation(&accepting(value));
        let apollo = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json";
        assert_eq!(subscription(apollo), Some(Framing::Multipart), "Apollo Client's");
        assert_eq!(
            subscription("multipart/mixed;subscriptionSpec=\"1.0\", application/json"),
            Some(Framing::Multipart)
        );
        assert_eq!(subscription("text/event-stream"), Some(Framing::EventStream), "graphql-sse's");
        assert_eq!(
            subscription("application/json, multipart/mixed"),
            None,
            "GraphiQL's: no subscriptionSpec"
        );
        assert_eq!(subscription("multipart/mixed;deferSpec=20220824, application/json"), None, "@defer's");
        assert_eq!(subscription("text/event-stream;q=0, application/json"), None);
        assert_eq!(every("text/event-stream"), Some(Framing::EventStream));
        assert_eq!(every("text/event-stream, application/json"), None);
        assert_eq!(every("text/event-stream, */*;q=0.1"), None);
        assert_eq!(every(apollo), None, "multipart is for subscriptions");
    }

    #[test]
    fn every_event_has_a_data_line_even_an_empty_one() {
        assert_eq!(event("complete", ""), "event: complete\ndata: \n\n");
        assert_eq!(event("next", "{\"a\":1}"), "event: next\ndata: {\"a\":1}\n\n");
        // Data of several lines is several `data:` lines, which a client joins again.
        assert_eq!(event("next", "a\r\nb"), "event: next\ndata: a\ndata: b\n\n");
    }
}
