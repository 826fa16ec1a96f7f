//! `/graphql/ws`: subscriptions over WebSocket in both subprotocols, `graphql-transport-ws`
//! (the graphql-ws library) and the legacy `graphql-ws` (subscriptions-transport-ws). The
//! protocol itself is async-graphql's; around it this adds server keep-alive pings and a
//! deadline for `connection_init`.

use std::str::FromStr;

use async_graphql::http::{
    WebSocket as GqlWebSocket, WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS,
};
use async_graphql::Data;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};

use super::shared_subscriptions::SharingExecutor;
use super::ServerState;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::graphql::insert_loaders;

/// Close code of graphql-transport-ws for a client that did not initialise in time.
const INIT_TIMEOUT_CODE: u16 = 4408;
/// Read buffer per socket.
const SOCKET_BUFFER: usize = 4 * 1024;
/// A socket whose client stops reading may not hold more than this in unsent data.
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// Close code for a connection whose bearer token expired (4401: unauthorized).
const TOKEN_EXPIRED_CODE: u16 = 4401;

/// `{"token": "..."}` or `{"Authorization": "Bearer ..."}` in the `connection_init` payload.
fn token_in(payload: &serde_json::Value) -> Option<&str> {
    fn bearer(v: &serde_json::Value) -> Option<&str> {
        v.as_str().map(|s| s.strip_prefix("Bearer ").unwrap_or(s))
    }
    payload
        .get("token")
        .and_then(bearer)
        .or_else(|| payload.get("Authorization").and_then(bearer))
        .or_else(|| payload.get("authorization").and_then(bearer))
}

pub(super) async fn graphql_ws(
    State(state): State<ServerState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| list.split(',').find_map(|p| WebSocketProtocols::from_str(p.trim()).ok()));
    let Some(protocol) = protocol else {
        return (StatusCode::BAD_REQUEST, "ask for the graphql-transport-ws or graphql-ws subprotocol")
            .into_response();
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // tungstenite's defaults reserve 128 KiB of read buffer per socket: 1.3 GB for 10,000
        // subscribers. Subscription traffic is small messages, so small buffers do.
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(crate::server::MAX_BODY_BYTES)
        .on_upgrade(move |socket| serve_socket(socket, state, protocol))
}

fn keepalive_message(protocol: WebSocketProtocols) -> &'static str {
    match protocol {
        WebSocketProtocols::GraphQLWS => r#"{"type":"ping"}"#,
        WebSocketProtocols::SubscriptionsTransportWS => r#"{"type":"ka"}"#,
    }
}

fn is_ack(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v["type"] == "connection_ack")
}

async fn serve_socket(socket: WebSocket, state: ServerState, protocol: WebSocketProtocols) {
    let (mut sink, source) = socket.split();
    let input = source.take_while(|m| futures::future::ready(m.is_ok())).filter_map(|m| {
        futures::future::ready(match m {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => Some(m.into_data()),
            _ => None,
        })
    });
    let executor = SharingExecutor { schema: state.schema.clone(), shared: state.shared.clone() };
    let app = state.app.clone();
    let auth = state.config.auth.clone();
    let (expiry_tx, mut expiry_rx) = tokio::sync::oneshot::channel::<chrono::DateTime<chrono::Utc>>();
    let protocol_session =
        GqlWebSocket::new(executor, input, protocol).on_connection_init(move |payload| async move {
            // Browsers cannot set headers on a WebSocket: the token travels in the payload.
            let viewer = match token_in(&payload) {
                None => Viewer::anonymous(),
                Some(token) => {
                    auth.verify(token).map_err(|e: AppError| async_graphql::Error::new(e.to_string()))?
                }
            };
            if let Some(expires_at) = viewer.expires_at {
                let _ = expiry_tx.send(expires_at);
            }
            let mut data = Data::default();
            // No kept rows: a connection lives across many states of the read models.
            insert_loaders(&mut data, &app, None);
            data.insert(viewer);
            Ok(data)
        });
    futures::pin_mut!(protocol_session);

    let mut initialised = false;
    let init_deadline = tokio::time::sleep(state.config.init_timeout);
    tokio::pin!(init_deadline);
    let mut keepalive = tokio::time::interval(state.config.keepalive);
    keepalive.tick().await;
    let expiry = tokio::time::sleep(std::time::Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(expiry);
    let mut expiry_known = false;

    loop {
        let outgoing = tokio::select! {
            message = protocol_session.next() => match message {
                Some(WsMessage::Text(text)) => {
                    // Only until the ack: parsing every event again would cost each subscriber.
                    if !initialised {
                        initialised = is_ack(&text);
                    }
                    Message::Text(text.into())
                }
                Some(WsMessage::Close(code, reason)) => Message::Close(Some(CloseFrame { code, reason: reason.into() })),
                None => break,
            },
            _ = keepalive.tick(), if initialised => Message::Text(keepalive_message(protocol).into()),
            expires_at = &mut expiry_rx, if !expiry_known => {
                expiry_known = true;
                if let Ok(at) = expires_at {
                    let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
                    expiry.as_mut().reset(tokio::time::Instant::now() + left);
                }
                continue;
            }
            _ = &mut expiry => {
                tracing::debug!("closing a WebSocket whose token expired");
                Message::Close(Some(CloseFrame { code: TOKEN_EXPIRED_CODE, reason: "Token expired".into() }))
            }
            _ = &mut init_deadline, if !initialised => {
                tracing::debug!("closing a WebSocket that sent no connection_init");
                Message::Close(Some(CloseFrame {
                    code: INIT_TIMEOUT_CODE,
                    reason: "Connection initialisation timeout".into(),
                }))
            }
        };
        let closing = matches!(outgoing, Message::Close(_));
        if sink.send(outgoing).await.is_err() || closing {
            break;
        }
    }
    let _ = sink.close().await;
}
