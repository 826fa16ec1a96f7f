//! `POST /graphql/stream`: any operation, subscriptions above all, answered as server-sent
//! events (GraphQL over SSE, the graphql-sse library's "distinct connections" mode), for
//! dashboards behind proxies that do not pass WebSockets. Each answer is an `event: next`
//! whose data is the GraphQL response; the operation's end is an `event: complete`. The token
//! is the `Authorization` header, as over HTTP. Each stream has its own execution.

use std::convert::Infallible;

use async_graphql_axum::GraphQLRequest;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{stream, StreamExt};

use super::media::Media;
use super::refusals::NotGraphql;
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
    let mut request = request.into_inner();
    if let Err(refused) = state.persisted.resolve(&mut request) {
        return refused.into_response();
    }
    state.documents.attach(&mut request);
    let answers = state.subscriptions().alone(request, state.session(viewer));
    let complete = stream::once(async { Event::default().event("complete").data("") });
    let events = answers.map(|answer| Event::default().event("next").data(answer.json())).chain(complete);
    // A stopping server ends its streams, as it closes its WebSockets: else its graceful
    // shutdown would wait for them for ever.
    let sockets = state.sockets.clone();
    let stopping = async move { sockets.stopping().await };
    let events = events.take_until(stopping).map(Ok::<_, Infallible>);
    Sse::new(events).keep_alive(KeepAlive::new().interval(state.config.keepalive)).into_response()
}
