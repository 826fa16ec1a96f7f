//! `/graphql/ws`: subscriptions over WebSocket in both subprotocols, `graphql-transport-ws`
//! (the graphql-ws library) and the legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! The session is ours rather than async-graphql's so that a shared execution can write its
//! answer, serialised once, straight to each subscriber's socket (`outbox`) without waking the
//! socket's task. Around the protocol: server keep-alives, a deadline for `connection_init`,
//! and the end of a connection whose token expires.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::ClientMessage;
use async_graphql::Data;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::ready;
use futures::stream::{self, BoxStream, SplitSink};
use futures::StreamExt;
use tokio_stream::StreamMap;

use super::outbox::{Mailbox, Outbox, Refused};
use super::shared_subscriptions::{serialise, Answer, Joined, Subscribed, Subscriptions, Wrapping};
use super::ws_protocol::{close, complete, parse, Envelope, Protocol, ACK, PONG};
use super::ServerState;
use crate::auth::Viewer;
use crate::graphql::errors::{refused, TOO_MANY_OPERATIONS};

/// Read buffer per socket.
const SOCKET_BUFFER: usize = 4 * 1024;
/// A socket whose client stops reading may not hold more than this in unsent data.
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// Bytes of a close frame's reason (125 of payload, less the code).
const MAX_CLOSE_REASON: usize = 123;
/// How long a closing socket may take to write what it still has queued.
pub(super) const CLOSING_TIME: Duration = Duration::from_secs(5);
/// Close code for a connection whose bearer token expired (4401: unauthorized).
const TOKEN_EXPIRED_CODE: u16 = close::UNAUTHORIZED;
/// WebSocket's own code for an endpoint that goes away (RFC 6455): clients reconnect.
const GOING_AWAY: u16 = 1001;

/// `{"token": "..."}`, `{"Authorization": "Bearer ..."}`, or the latter inside `headers` (as
/// Apollo's and other clients put it) in the `connection_init` payload.
fn token_in(payload: &serde_json::Value) -> Result<Option<&str>, &'static str> {
    let headers = payload.get("headers");
    let places = [
        payload.get("token"),
        payload.get("Authorization"),
        payload.get("authorization"),
        headers.and_then(|h| h.get("Authorization")),
        headers.and_then(|h| h.get("authorization")),
    ];
    // A key that holds something other than text is refused, not read as no token: a client
    // that sent `{"token": 123}` was served as anonymous until the thirty-first session. A
    // null one is no token (a client signed out).
    let Some(value) = places.into_iter().flatten().find(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = value.as_str().ok_or("a token is text")?;
    Ok(Some(crate::auth::bearer_token(text).unwrap_or(text)))
}

pub(super) async fn graphql_ws(
    State(state): State<ServerState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(Protocol::asked_for);
    let Some(protocol) = protocol else {
        return (StatusCode::BAD_REQUEST, "ask for the graphql-transport-ws or graphql-ws subprotocol")
            .into_response();
    };
    // Clients that are no browser (a dashboard's server, a script) can, and usually do, send the
    // token as a header of the handshake; `connection_init`'s payload still decides when it
    // holds one.
    let handshake_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::auth::bearer_token(v).unwrap_or(v.trim()).to_string());
    upgrade
        .protocols(Protocol::NAMES)
        // tungstenite's defaults reserve 128 KiB of read buffer per socket: 1.3 GB for 10,000
        // subscribers. Subscription traffic is small messages, so small buffers do.
        .read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(crate::server::MAX_BODY_BYTES)
        .on_upgrade(move |socket| serve_socket(socket, state, protocol, handshake_token))
}

type SocketOutbox = Outbox<SplitSink<WebSocket, Message>>;

/// One connection's protocol state.
struct Session {
    protocol: Protocol,
    state: ServerState,
    subscriptions: Subscriptions,
    outbox: Arc<SocketOutbox>,
    /// The token sent with the handshake's `Authorization` header, if any: the viewer when
    /// `connection_init` names none.
    handshake_token: Option<String>,
    /// The connection's session data, once `connection_init` was accepted.
    data: Option<Arc<Data>>,
    /// When the accepted token stops being valid.
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Operations executed for this socket alone, by the client's id; each yields its frames,
    /// `complete` last.
    alone: StreamMap<String, BoxStream<'static, String>>,
    /// Subscriptions to shared executions (which write to the socket themselves), by id.
    shared: std::collections::HashMap<String, Joined>,
}

/// What the socket does after a client's message.
enum Reply {
    Nothing,
    Send(String),
    Close(u16, String),
    /// The legacy subprotocol's `connection_error`, then closing.
    RefuseAndClose(Option<String>, u16, String),
}

impl Session {
    fn receive(&mut self, bytes: &[u8]) -> Reply {
        let message = match parse(bytes) {
            Ok(message) => message,
            Err(reason) => return Reply::Close(close::INVALID_MESSAGE, reason),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => self.initialise(payload.unwrap_or_default()),
            ClientMessage::Start { id, payload } => {
                let Some(data) = self.data.clone() else {
                    return Reply::Close(close::UNAUTHORIZED, "Unauthorized".into());
                };
                if self.is_running(&id) {
                    match self.protocol {
                        Protocol::TransportWs => {
                            return Reply::Close(
                                close::SUBSCRIBER_EXISTS,
                                format!("Subscriber for {id} already exists"),
                            );
                        }
                        // subscriptions-transport-ws servers stop the old operation of that id.
                        Protocol::Legacy => {
                            self.alone.remove(&id);
                            self.shared.remove(&id);
                        }
                    }
                }
                let envelope = self.protocol.envelope(&id);
                let limit = self.state.config.max_operations_per_socket;
                if self.alone.len() + self.shared.len() >= limit {
                    let message = format!(
                        "this connection already runs {limit} operations, the most it may: complete one first"
                    );
                    let refusal = serialise(refused(TOO_MANY_OPERATIONS, message));
                    self.alone.insert(id.clone(), frames(envelope, id, stream::once(ready(refusal)).boxed()));
                    return Reply::Nothing;
                }
                let mailbox: Arc<dyn Mailbox> = self.outbox.clone();
                match self.subscriptions.subscribe(
                    payload,
                    data,
                    &id,
                    Wrapping::Socket(envelope.clone()),
                    mailbox,
                ) {
                    Subscribed::Alone(answers) => {
                        self.alone.insert(id.clone(), frames(envelope, id, answers));
                    }
                    Subscribed::Shared(joined) => {
                        self.shared.insert(id, joined);
                    }
                }
                Reply::Nothing
            }

            ClientMessage::Stop { id } => {
                let echo = self.protocol.completes_what_the_client_stopped();
                if self.alone.remove(&id).is_some() {
                    return if echo { Reply::Send(complete(&id)) } else { Reply::Nothing };
                }
                if let Some(joined) = self.shared.remove(&id) {
                    joined.stop(echo);
                }
                Reply::Nothing
            }
            ClientMessage::ConnectionTerminate => Reply::Close(1000, String::new()),
            ClientMessage::Ping { .. } => Reply::Send(PONG.into()),
            ClientMessage::Pong { .. } => Reply::Nothing,
        }
    }

    fn is_running(&mut self, id: &str) -> bool {
        self.shared.retain(|_, joined| !joined.is_done());
        self.alone.contains_key(id) || self.shared.contains_key(id)
    }

    /// Closes the socket with `code` and `reason`; the legacy protocol is told why first.
    fn refuse_init(&self, code: u16, reason: String) -> Reply {
        Reply::RefuseAndClose(self.protocol.connection_error(&reason), code, reason)
    }

    /// Accepts or refuses `connection_init`. Browsers cannot set headers on a WebSocket: the
    /// token travels in its payload, or else in the handshake's `Authorization` header.
    fn initialise(&mut self, payload: serde_json::Value) -> Reply {
        if self.data.is_some() {
            return self.refuse_init(close::TOO_MANY_INITS, "Too many initialisation requests".into());
        }
        // The payload is an object, or absent (graphql-transport-ws); anything else is no
        // `connection_init` (until the thirty-first session `"payload": "x"` was acknowledged).
        if !(payload.is_object() || payload.is_null()) {
            return self.refuse_init(close::INVALID_MESSAGE, "connection_init's payload is an object".into());
        }
        let viewer = token_in(&payload).map_err(str::to_string).and_then(|token| {
            match token.or(self.handshake_token.as_deref()) {
                None => Ok(Viewer::anonymous()),
                Some(token) => self.state.config.auth.verify(token).map_err(|error| error.to_string()),
            }
        });
        let viewer = match viewer {
            Ok(viewer) => viewer,
            Err(why) => return self.refuse_init(close::FORBIDDEN, format!("Forbidden: {why}")),
        };
        self.expires_at = viewer.expires_at;
        self.data = Some(self.state.session(viewer));
        Reply::Send(ACK.into())
    }
}

/// The frames of an operation answered by its own execution: each answer, then `complete`
/// unless an `error` frame ended it.
fn frames(envelope: Envelope, id: String, answers: BoxStream<'static, Answer>) -> BoxStream<'static, String> {
    let done = complete(&id);
    answers
        .map(Some)
        .chain(stream::once(ready(None)))
        .scan(false, move |ended, answer| {
            ready(match answer {
                _ if *ended => None,
                Some(answer) => {
                    let (frame, ends) = envelope.frame(&answer);
                    *ended = ends;
                    Some(frame)
                }
                None => Some(done.clone()),
            })
        })
        .boxed()
}

/// A close frame; its reason cut to the 123 bytes a close frame has room for.
fn closing(code: u16, mut reason: String) -> Message {
    if reason.len() > MAX_CLOSE_REASON {
        let cut = (0..=MAX_CLOSE_REASON).rev().find(|&i| reason.is_char_boundary(i)).unwrap_or(0);
        reason.truncate(cut);
    }
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

/// A far-off instant for a timer that is not running.
fn never() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

async fn serve_socket(
    socket: WebSocket,
    state: ServerState,
    protocol: Protocol,
    handshake_token: Option<String>,
) {
    let _open = state.sockets.opened();
    let sockets = state.sockets.clone();
    let stopping = sockets.stopping();
    tokio::pin!(stopping);
    let (sink, mut source) = socket.split();
    let outbox = Arc::new(Outbox::new(sink));
    let subscriptions = state.subscriptions();
    let mut keepalive = tokio::time::interval(state.config.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    keepalive.tick().await;
    let init_deadline = tokio::time::sleep(state.config.init_timeout);
    tokio::pin!(init_deadline);
    let expiry = tokio::time::sleep_until(never());
    tokio::pin!(expiry);
    let mut session = Session {
        protocol,
        state,
        subscriptions,
        outbox: outbox.clone(),
        handshake_token,
        data: None,
        expires_at: None,
        alone: StreamMap::new(),
        shared: Default::default(),
    };

    let last_words = loop {
        let initialised = session.data.is_some();
        // Answers of this socket's own executions are taken only while its client keeps up.
        let keeping_up = !session.alone.is_empty() && !outbox.is_behind();
        let outgoing = tokio::select! {
            incoming = source.next() => {
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) => session.receive(text.as_bytes()),
                    Some(Ok(Message::Binary(bytes))) => session.receive(&bytes),
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                };
                if let Some(at) = session.expires_at.take() {
                    let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
                    expiry.as_mut().reset(tokio::time::Instant::now() + left);
                }
                match reply {
                    Reply::Nothing => continue,
                    Reply::Send(text) => text,
                    Reply::Close(code, reason) => break Some(closing(code, reason)),
                    Reply::RefuseAndClose(error, code, reason) => {
                        if let Some(error) = error {
                            let _ = outbox.post(Message::Text(error.into()), true);
                        }
                        break Some(closing(code, reason));
                    }
                }
            }
            () = outbox.owed() => match outbox.drain().await {
                Ok(()) => continue,
                Err(_) => break None,
            },
            Some((_, frame)) = session.alone.next(), if keeping_up => frame,
            _ = keepalive.tick(), if initialised => protocol.keepalive().to_string(),
            _ = &mut expiry => {
                tracing::debug!("closing a WebSocket whose token expired");
                break Some(closing(TOKEN_EXPIRED_CODE, "Token expired".into()));
            }
            () = &mut stopping => {
                tracing::debug!("closing a WebSocket: the server is stopping");
                break Some(closing(GOING_AWAY, "The server is stopping".into()));
            }
            _ = &mut init_deadline, if !initialised => {
                tracing::debug!("closing a WebSocket that sent no connection_init");
                break Some(closing(close::INIT_TIMEOUT, "Connection initialisation timeout".into()));
            }
        };
        // The socket's own frames wait their turn behind what shared executions queued.
        if outbox.post(Message::Text(outgoing.into()), true) == Err(Refused::Gone) {
            break None;
        }
    };
    // Leave shared executions before the socket closes, so none writes to it after.
    session.shared.clear();
    if tokio::time::timeout(CLOSING_TIME, outbox.close(last_words)).await.is_err() {
        tracing::debug!("a closing WebSocket's client read nothing for {CLOSING_TIME:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::token_in;
    use serde_json::json;

    #[test]
    fn the_token_is_found_where_clients_put_it() {
        for payload in [
            json!({ "token": "t" }),
            json!({ "token": "Bearer t" }),
            json!({ "Authorization": "Bearer t" }),
            json!({ "authorization": "t" }),
            json!({ "headers": { "Authorization": "Bearer t" } }),
            json!({ "headers": { "authorization": "bearer t" } }),
            json!({ "token": null, "Authorization": "Bearer t" }),
        ] {
            assert_eq!(token_in(&payload), Ok(Some("t")), "{payload}");
        }
        assert_eq!(token_in(&json!({})), Ok(None));
        assert_eq!(token_in(&json!({ "headers": {} })), Ok(None));
        assert_eq!(token_in(&json!({ "token": null })), Ok(None));
        // A token that is no text is refused, not taken for none (until the thirty-first
        // session `{"token": 5}` was served as anonymous).
        assert!(token_in(&json!({ "token": 5 })).is_err());
        assert!(token_in(&json!({ "headers": { "Authorization": ["Bearer t"] } })).is_err());
    }
}
