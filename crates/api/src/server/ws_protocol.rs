//! The two GraphQL-over-WebSocket subprotocols as frames: `graphql-transport-ws` (the graphql-ws
//! library) and the legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! Answers reach a socket already serialised (see `shared_subscriptions`): a frame is the
//! answer inside an envelope made once per subscription, so ten thousand subscribers of one
//! execution cost one serialisation, not ten thousand.

use async_graphql::http::ClientMessage;

use super::shared_subscriptions::Answer;

/// Which subprotocol a socket speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`: `subscribe` / `next` / `complete`, `ping` / `pong`.
    TransportWs,
    /// `graphql-ws` (subscriptions-transport-ws): `start` / `data` / `stop`, `ka`.
    Legacy,
}

/// Close codes of graphql-transport-ws, used for both subprotocols.
pub mod close {
    pub const INVALID_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
}

impl Protocol {
    /// Whether an operation the client stopped is answered with `complete`. The legacy
    /// protocol's servers do so. graphql-transport-ws's must not (graphql-ws fixed its own
    /// server in 5.11.1, its issue 403): a client that takes the id up again at once would read
    /// that `complete` as the end of the new operation.
    pub fn completes_what_the_client_stopped(self) -> bool {
        self == Protocol::Legacy
    }

    /// Every subprotocol name the endpoint answers to.
    pub const NAMES: [&'static str; 2] = ["graphql-transport-ws", "graphql-ws"];

    /// The first subprotocol of a `Sec-WebSocket-Protocol` list that is spoken here.
    pub fn asked_for(list: &str) -> Option<Protocol> {
        list.split(',').find_map(|name| match name.trim() {
            n if n.eq_ignore_ascii_case("graphql-transport-ws") => Some(Protocol::TransportWs),
            n if n.eq_ignore_ascii_case("graphql-ws") => Some(Protocol::Legacy),
            _ => None,
        })
    }

    /// The server's keep-alive.
    pub fn keepalive(self) -> &'static str {
        match self {
            Protocol::TransportWs => r#"{"type":"ping"}"#,
            Protocol::Legacy => r#"{"type":"ka"}"#,
        }
    }

    /// The envelope of subscription `id`'s answers.
    pub fn envelope(self, id: &str) -> Envelope {
        let (kind, refusal) = match self {
            // A request refused before it ran is one `error` message, its payload the errors.
            Protocol::TransportWs => {
                ("next", Some(format!(r#"{{"type":"error","id":{},"payload":"#, json_string(id))))
            }
            // subscriptions-transport-ws servers send those as `data`, then `complete`.
            Protocol::Legacy => ("data", None),
        };
        Envelope { prefix: format!(r#"{{"type":"{kind}","id":{},"payload":"#, json_string(id)), refusal }
    }

    /// `connection_error` of the legacy subprotocol; graphql-transport-ws has none (it closes).
    pub fn connection_error(self, message: &str) -> Option<String> {
        (self == Protocol::Legacy).then(|| {
            format!(r#"{{"type":"connection_error","payload":{{"message":{}}}}}"#, json_string(message))
        })
    }
}

pub const ACK: &str = r#"{"type":"connection_ack"}"#;
pub const PONG: &str = r#"{"type":"pong"}"#;

/// `complete` for subscription `id` (the same in both subprotocols).
pub fn complete(id: &str) -> String {
    format!(r#"{{"type":"complete","id":{}}}"#, json_string(id))
}

/// The parts of a subscription's frames before their payload.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// Of `next` (or `data`).
    prefix: String,
    /// Of `error`, in the subprotocol that has one.
    refusal: Option<String>,
}

impl Envelope {
    /// The frame carrying `answer`, and whether it ends the subscription by itself (an `error`
    /// message, which no `complete` follows).
    pub fn frame(&self, answer: &Answer) -> (String, bool) {
        let (prefix, payload, ends) = match (&self.refusal, answer.refusal()) {
            (Some(prefix), Some(errors)) => (prefix, errors, true),
            _ => (&self.prefix, answer.json(), false),
        };
        let mut frame = String::with_capacity(prefix.len() + payload.len() + 1);
        frame.push_str(prefix);
        frame.push_str(payload);
        frame.push('}');
        (frame, ends)
    }
}

/// A client's message, or why it is not one.
pub fn parse(bytes: &[u8]) -> Result<ClientMessage, String> {
    ClientMessage::from_bytes(bytes).map_err(|e| format!("Invalid message received: {e}"))
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_json_in_either_subprotocol() {
        use async_graphql::{Response, ServerError, Value};
        let frame = |protocol: Protocol, id: &str, answer: &Answer| {
            let (frame, ends) = protocol.envelope(id).frame(answer);
            (serde_json::from_str::<serde_json::Value>(&frame).expect("json"), ends)
        };
        let position = Value::from_json(serde_json::json!({ "events": { "position": 7 } })).expect("value");
        let answer = super::super::shared_subscriptions::serialise(Response::new(position));
        assert_eq!(
            frame(Protocol::TransportWs, "a\"b", &answer),
            (
                serde_json::json!({ "type": "next", "id": "a\"b", "payload": { "data": { "events": { "position": 7 } } } }),
                false
            )
        );
        let (legacy, ends) = frame(Protocol::Legacy, "1", &answer);
        assert_eq!((legacy["type"].as_str(), ends), (Some("data"), false));

        // Refused before it ran: graphql-transport-ws's `error`, its payload the errors alone.
        let unknown = Response::from_errors(vec![ServerError::new("Unknown field \"nope\"", None)]);
        let refused = super::super::shared_subscriptions::serialise(unknown);
        let (modern, ends) = frame(Protocol::TransportWs, "2", &refused);
        assert!(ends);
        assert_eq!((modern["type"].as_str(), modern["id"].as_str()), (Some("error"), Some("2")));
        assert_eq!(modern["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{modern}");
        let (legacy, ends) = frame(Protocol::Legacy, "2", &refused);
        assert!(!ends);
        assert_eq!(legacy["payload"]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
        // An error raised as it ran (it has a path) is an answer like any other.
        let mut failed = ServerError::new("doetank not found", None);
        failed.path = vec![async_graphql::PathSegment::Field("doetank".into())];
        let (modern, ends) = frame(
            Protocol::TransportWs,
            "3",
            &super::super::shared_subscriptions::serialise(Response::from_errors(vec![failed])),
        );
        assert_eq!((modern["type"].as_str(), ends), (Some("next"), false));
        let done: serde_json::Value = serde_json::from_str(&complete("x")).expect("json");
        assert_eq!(done, serde_json::json!({ "type": "complete", "id": "x" }));
        let error = Protocol::Legacy.connection_error("no \"token\"").expect("legacy has one");
        let error: serde_json::Value = serde_json::from_str(&error).expect("json");
        assert_eq!(error["payload"]["message"], "no \"token\"");
        assert_eq!(Protocol::TransportWs.connection_error("x"), None);
    }

    #[test]
    fn the_first_known_subprotocol_asked_for_is_spoken() {
        assert_eq!(Protocol::asked_for("graphql-transport-ws"), Some(Protocol::TransportWs));
        assert_eq!(Protocol::asked_for("foo, graphql-ws, graphql-transport-ws"), Some(Protocol::Legacy));
        assert_eq!(Protocol::asked_for("foo"), None);
    }
}
