//! The fan-out baseline: the least any server can do to deliver one event to N WebSocket
//! subscribers on this machine. Same sockets and buffer sizes, same client, same HTTP trigger as
//! the real server; but each event is one frame, serialised once and written as is to every
//! socket, with no log, no database and no GraphQL.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::broadcast;

#[derive(Clone)]
struct Limit {
    frames: broadcast::Sender<Utf8Bytes>,
    position: Arc<AtomicI64>,
}

/// Serves until killed; prints `listening on ADDR` like the real child.
pub async fn serve() -> anyhow::Result<()> {
    let state = Limit { frames: broadcast::channel(1024).0, position: Arc::default() };
    let router =
        Router::new().route("/graphql/ws", get(upgrade)).route("/graphql", post(command)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

/// The "command": the next position, broadcast as a `next` frame.
async fn command(State(limit): State<Limit>) -> Json<serde_json::Value> {
    let position = limit.position.fetch_add(1, Ordering::AcqRel) + 1;
    let frame =
        json!({ "id": "1", "type": "next", "payload": { "data": { "events": { "position": position } } } });
    let _ = limit.frames.send(frame.to_string().into());
    Json(json!({ "data": { "registerMember": { "result": { "position": position } } } }))
}

async fn upgrade(State(limit): State<Limit>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .protocols(["graphql-transport-ws"])
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| subscriber(socket, limit.frames.subscribe()))
        .into_response()
}

async fn subscriber(socket: WebSocket, mut frames: broadcast::Receiver<Utf8Bytes>) {
    let (mut sink, mut source) = socket.split();
    loop {
        let outgoing = tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) if text.contains("connection_init") => {
                    Message::Text(r#"{"type":"connection_ack"}"#.into())
                }
                Some(Ok(_)) => continue,
                _ => break,
            },
            frame = frames.recv() => match frame {
                Ok(frame) => Message::Text(frame),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
        };
        if sink.send(outgoing).await.is_err() {
            break;
        }
    }
}
