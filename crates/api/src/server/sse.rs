//! `POST /graphql/stream`: any operation, subscriptions above all, answered as server-sent
//! events (GraphQL over SSE, the graphql-sse library's "distinct connections" mode), for
//! dashboards behind proxies that do not pass WebSockets. Each answer is an `event: next`
//! whose data is the GraphQL response; the operation's end is an `event: complete`. The token
//! is the `Authorization` header, as over HTTP. Each stream has its own execution. A stream
//! ends when its token expires, with an `UNAUTHENTICATED` answer, as a WebSocket closes then.

use std::convert::Infallible;
use std::time::Duration;

use async_graphql_axum::GraphQLRequest;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
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
    let complete = stream::once(async { Event::default().event("complete").data("") });
    let events = answers.map(|answer| Event::default().event("next").data(answer.json()));
    let events = until_expiry(events, expires_in).chain(complete);
    // A stopping server ends its streams, as it closes its WebSockets: else its graceful
    // shutdown would wait for them for ever.
    let sockets = state.sockets.clone();
    let stopping = async move { sockets.stopping().await };
    let events = events.take_until(stopping).map(Ok::<_, Infallible>);
    Sse::new(events).keep_alive(KeepAlive::new().interval(state.config.keepalive)).into_response()
}

/// `events` until the token's end (`expires_in`; none for an anonymous stream), then an answer
/// that says so: a dashboard's stream must not outlive the token that opened it (until the
/// thirty-first session it did, while a WebSocket closed with 4401).
fn until_expiry(
    events: impl Stream<Item = Event> + Send + 'static,
    expires_in: Option<Duration>,
) -> impl Stream<Item = Event> + Send + 'static {
    enum Next {
        Send(Event),
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
        let answer = Event::default().event("next").data(serialise(refusal).json());
        stream::iter([Next::Send(answer), Next::End])
    });
    stream::select(answers, expired)
        .take_while(|next| ready(matches!(next, Next::Send(_))))
        .filter_map(|next| ready(if let Next::Send(event) = next { Some(event) } else { None }))
        .right_stream()
}
