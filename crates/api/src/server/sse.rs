//! `POST /graphql/stream`: any operation, subscriptions above all, answered as server-sent
//! events (GraphQL over SSE, the graphql-sse library's "distinct connections" mode), for
//! dashboards behind proxies that do not pass WebSockets. Each answer is an `event: next`
//! whose data is the GraphQL response; the operation's end is an `event: complete`. The token
//! is the `Authorization` header, as over HTTP. Each stream has its own execution. A stream
//! ends when its token expires, with an `UNAUTHENTICATED` answer, as a WebSocket closes then.

use std::convert::Infallible;
use std::time::Duration;

use async_graphql_axum::GraphQLRequest;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::future::ready;
use futures::{stream, Stream, StreamExt};

use super::media::Media;
use super::refusals::NotGraphql;
use super::shared_subscriptions::serialise;
use super::{error_response, viewer_of, ServerState};

pub(super) async fn graphql_stream(
    State(state): State<ServerState>,
    headers: HeaderMap,
    request: GraphQLRequest<NotGraphql>,
) -> Response {
    let viewer = match viewer_of(&state, &headers) {
        Ok(viewer) => viewer,
        Err(err) => return error_response(err, Media::accepted(&headers)),
    };
    let expires_in = viewer.expires_at.map(|at| (at - chrono::Utc::now()).to_std().unwrap_or_default());
    let mut request = request.into_inner();
    if let Err(refused) = state.persisted.resolve(&mut request) {
        return refused.into_response();
    }
    state.documents.attach(&mut request);
    let answers = state.subscriptions().alone(request, state.session(viewer));
    let complete = stream::once(ready(event("complete", "")));
    let events = answers.map(|answer| event("next", answer.json()));
    let events = until_expiry(events, expires_in).chain(complete);
    // A stopping server ends its streams, as it closes its WebSockets: else its graceful
    // shutdown would wait for them for ever.
    let sockets = state.sockets.clone();
    let stopping = async move { sockets.stopping().await };
    let events = with_keep_alive(events.take_until(stopping), state.config.keepalive);
    let mut response = Body::from_stream(events.map(Ok::<_, Infallible>)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // These streams are for dashboards behind proxies; nginx holds a proxied answer back in
    // its buffer unless told not to, and a live event would wait there.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// One event as the stream carries it: its name, then its data line by line, always at least
/// one `data:` line. An event without one is never dispatched by `EventSource` nor by parsers
/// that follow the SSE spec, and the protocol's `complete` has empty data: axum's `Event`
/// writes no `data:` line for empty data since 0.8.5 (axum#3571), so until the thirty-second
/// session `complete` went unseen by such clients, which then took the closed stream for a
/// dropped one.
fn event(name: &str, data: impl AsRef<str>) -> Bytes {
    let data = data.as_ref();
    let mut frame = String::with_capacity(data.len() + name.len() + 16);
    frame.push_str("event: ");
    frame.push_str(name);
    frame.push('\n');
    for line in data.split('\n') {
        frame.push_str("data: ");
        frame.push_str(line.strip_suffix('\r').unwrap_or(line));
        frame.push('\n');
    }
    frame.push('\n');
    Bytes::from(frame)
}

/// `events`, with a comment line every `every` among them, so that proxies do not close a
/// quiet stream; ends with `events`.
fn with_keep_alive(
    events: impl Stream<Item = Bytes> + Send + 'static,
    every: Duration,
) -> impl Stream<Item = Bytes> + Send + 'static {
    let events = events.map(Some).chain(stream::once(ready(None)));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A client slow to read gets one comment after the wait, not one for each tick it missed.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks =
        tokio_stream::wrappers::IntervalStream::new(interval).map(|_| Some(Bytes::from_static(b":\n\n")));
    stream::select(events, ticks).take_while(|frame| ready(frame.is_some())).filter_map(ready)
}

/// `events` until the token's end (`expires_in`; none for an anonymous stream), then an answer
/// that says so: a dashboard's stream must not outlive the token that opened it (until the
/// thirty-first session it did, while a WebSocket closed with 4401).
fn until_expiry(
    events: impl Stream<Item = Bytes> + Send + 'static,
    expires_in: Option<Duration>,
) -> impl Stream<Item = Bytes> + Send + 'static {
    enum Next {
        Send(Bytes),
        End,
    }
    let Some(left) = expires_in else {
        return events.left_stream();
    };
    let answers = events.map(Next::Send).chain(stream::once(ready(Next::End)));
    let expired = stream::once(tokio::time::sleep(left)).flat_map(|()| {
        let refusal = crate::graphql::errors::refused(
            "UNAUTHENTICATED",
            "the token expired: subscribe again with a new one",
        );
        let answer = event("next", serialise(refusal).json());
        stream::iter([Next::Send(answer), Next::End])
    });
    stream::select(answers, expired)
        .take_while(|next| ready(matches!(next, Next::Send(_))))
        .filter_map(|next| ready(if let Next::Send(event) = next { Some(event) } else { None }))
        .right_stream()
}

#[cfg(test)]
mod tests {
    use super::event;

    #[test]
    fn every_event_has_a_data_line_even_an_empty_one() {
        assert_eq!(&event("complete", "")[..], b"event: complete\ndata: \n\n");
        assert_eq!(&event("next", "{\"a\":1}")[..], b"event: next\ndata: {\"a\":1}\n\n");
        // Data of several lines is several `data:` lines, which a client joins again.
        assert_eq!(&event("next", "a\r\nb")[..], b"event: next\ndata: a\ndata: b\n\n");
    }
}
