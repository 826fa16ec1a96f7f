//! A minimal GraphQL-over-WebSocket client speaking either subprotocol.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::TestApp;

pub const MODERN: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WsClient {
    socket: Socket,
    pub protocol: &'static str,
    /// Keep-alive messages seen (`ping` or `ka`).
    pub keepalives: usize,
}

/// What the server sent, once keep-alives are taken care of.
#[derive(Debug)]
pub enum Incoming {
    Next(Value),
    Closed(Option<u16>, String),
    Other(Value),
}

impl WsClient {
    pub async fn connect(app: &TestApp, protocol: &'static str) -> WsClient {
        Self::connect_to(app.addr, protocol).await
    }

    pub async fn connect_to(addr: std::net::SocketAddr, protocol: &'static str) -> WsClient {
        Self::connect_at(addr, "/graphql/ws", protocol).await
    }

    /// A socket at `path`: `/graphql/ws`, or `/graphql`, where clients open theirs by default.
    pub async fn connect_at(addr: std::net::SocketAddr, path: &str, protocol: &'static str) -> WsClient {
        Self::connect_as(addr, path, protocol, None).await
    }

    /// A socket whose handshake carries `token` as its `Authorization` header, as clients that
    /// are no browser send it.
    pub async fn connect_as(
        addr: std::net::SocketAddr,
        path: &str,
        protocol: &'static str,
        token: Option<&str>,
    ) -> WsClient {
        let mut request = format!("ws://{addr}{path}").into_client_request().expect("request");
        request.headers_mut().insert("sec-websocket-protocol", protocol.parse().expect("header"));
        if let Some(token) = token {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
        }
        let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("connect");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        WsClient { socket, protocol, keepalives: 0 }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket.send(Message::Text(message.to_string().into())).await.expect("send");
    }

    /// Sends `text` as it is (for messages that are not JSON).
    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::Text(text.to_string().into())).await.expect("send");
    }

    pub async fn init(&mut self, payload: Value) {
        self.send(json!({ "type": "connection_init", "payload": payload })).await;
        match self.next(Duration::from_secs(10)).await {
            Some(Incoming::Other(v)) if v["type"] == "connection_ack" => {}
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.protocol == MODERN { "subscribe" } else { "start" };
        self.send(json!({ "type": kind, "id": id, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next message that is not a keep-alive, within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()?;
            let message = match message {
                None => return Some(Incoming::Closed(None, String::new())),
                Some(Err(_)) => return Some(Incoming::Closed(None, "error".into())),
                Some(Ok(m)) => m,
            };
            let text = match message {
                Message::Text(t) => t.to_string(),
                Message::Close(frame) => {
                    return Some(Incoming::Closed(
                        frame.as_ref().map(|f| f.code.into()),
                        frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    ))
                }
                _ => continue,
            };
            let value: Value = serde_json::from_str(&text).expect("JSON message");
            match value["type"].as_str().unwrap_or_default() {
                "ping" => {
                    self.keepalives += 1;
                    self.send(json!({ "type": "pong" })).await;
                }
                "ka" => self.keepalives += 1,
                "next" | "data" => return Some(Incoming::Next(value["payload"].clone())),
                _ => return Some(Incoming::Other(value)),
            }
        }
    }

    /// The text of the next message that is no keep-alive, as the server wrote it (a parsed
    /// `Value` keeps no key order).
    pub async fn next_text(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.socket.next()).await;
            let Ok(Some(Ok(Message::Text(text)))) = message else {
                panic!("expected a message, got {message:?}")
            };
            let value: Value = serde_json::from_str(&text).expect("JSON message");
            match value["type"].as_str().unwrap_or_default() {
                "ping" => self.send(json!({ "type": "pong" })).await,
                "ka" => {}
                _ => return text.to_string(),
            }
        }
    }

    /// The next subscription payload's `data`, failing on anything else.
    pub async fn next_data(&mut self) -> Value {
        match self.next(Duration::from_secs(20)).await {
            Some(Incoming::Next(payload)) => {
                assert!(payload.get("errors").is_none(), "subscription error: {payload:#}");
                payload["data"].clone()
            }
            other => panic!("expected data, got {other:?}"),
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
