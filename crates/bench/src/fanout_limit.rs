//! The fan-out baseline: the least any server can do to deliver one event to N WebSocket
//! subscribers on this machine. Same sockets and buffer sizes, same client, same HTTP trigger as
//! the real server; but each event is one frame, serialised once and written as is to every
//! socket, with no log, no database and no GraphQL. One task writes to every socket in turn, so
//! an event costs one wake-up and one write per socket, and nothing else.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::Mutex;

type Sink = SplitSink<WebSocket, Message>;

#[derive(Clone)]
struct Limit {
    /// The sockets, in one part per worker thread: each part is written by its own task, so
    /// the broadcast uses every core, as the real server's tasks do.
    parts: Arc<Vec<Mutex<Vec<Sink>>>>,
    next_part: Arc<AtomicUsize>,
    position: Arc<AtomicI64>,
}

/// Serves until killed; prints `listening on ADDR` like the real child.
pub async fn serve() -> anyhow::Result<()> {
    let parts = tokio::runtime::Handle::current().metrics().num_workers().max(1);
    let state = Limit {
        parts: Arc::new((0..parts).map(|_| Mutex::default()).collect()),
        next_part: Arc::default(),
        position: Arc::default(),
    };
    let router =
        Router::new().route("/graphql/ws", get(upgrade)).route("/graphql", post(command)).with_state(state);
    let listener = doetank_api::server::listen(([127, 0, 0, 1], 0).into())?;
    println!("listening on {}", listener.local_addr()?);
    // Sockets as the real server sets them.
    axum::serve(listener.tap_io(doetank_api::server::without_delay), router).await?;
    Ok(())
}

/// The "command": the next position, broadcast as a `next` frame by one task per part.
async fn command(State(limit): State<Limit>) -> Json<serde_json::Value> {
    let position = limit.position.fetch_add(1, Ordering::AcqRel) + 1;
    let frame =
        json!({ "id": "1", "type": "next", "payload": { "data": { "events": { "position": position } } } });
    let frame: Utf8Bytes = frame.to_string().into();
    let mut writing = tokio::task::JoinSet::new();
    for part in 0..limit.parts.len() {
        let (parts, frame) = (limit.parts.clone(), frame.clone());
        writing.spawn(async move {
            let mut sinks = parts[part].lock().await;
            for sink in sinks.iter_mut() {
                let _ = sink.send(Message::Text(frame.clone())).await;
            }
        });
    }
    while writing.join_next().await.is_some() {}
    Json(json!({ "data": { "registerMember": { "result": { "position": position } } } }))
}

async fn upgrade(State(limit): State<Limit>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .protocols(["graphql-transport-ws"])
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| {
            let part = limit.next_part.fetch_add(1, Ordering::Relaxed) % limit.parts.len();
            subscriber(socket, limit.parts, part)
        })
        .into_response()
}

/// Acknowledges `connection_init`, then hands the socket's sending half to the broadcaster and
/// keeps reading (pings, close) until the client goes.
async fn subscriber(socket: WebSocket, parts: Arc<Vec<Mutex<Vec<Sink>>>>, part: usize) {
    let (mut sink, mut source) = socket.split();
    while let Some(Ok(message)) = source.next().await {
        if let Message::Text(text) = message {
            if text.contains("connection_init") {
                if sink.send(Message::Text(r#"{"type":"connection_ack"}"#.into())).await.is_ok() {
                    parts[part].lock().await.push(sink);
                }
                break;
            }
        }
    }
    while let Some(Ok(_)) = source.next().await {}
}
