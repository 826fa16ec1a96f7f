//! The two GraphQL-over-WebSocket subprotocols as frames: `graphql-transport-ws` (the graphql-ws
//! library) and the legacy `graphql-ws` (subscriptions-transport-ws).
//!
//! Answers reach a socket already serialised (see `shared_subscriptions`): a frame is the
//! answer inside an envelope made once per subscription, so ten thousand subscribers of one
//! execution cost one serialisation, not ten thousand.

use async_graphql::http::ClientMessage;

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
        let kind = match self {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        };
        Envelope { prefix: format!(r#"{{"type":"{kind}","id":{},"payload":"#, json_string(id)) }
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

/// The part of a `next` (or `data`) frame before its payload.
#[derive(Clone, Debug)]
pub struct Envelope {
    prefix: String,
}

impl Envelope {
    /// The frame carrying `answer` (a serialised GraphQL response).
    pub fn wrap(&self, answer: &str) -> String {
        let mut frame = String::with_capacity(self.prefix.len() + answer.len() + 1);
        frame.push_str(&self.prefix);
        frame.push_str(answer);
        frame.push('}');
        frame
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
        let answer = r#"{"data":{"events":{"position":7}}}"#;
        let modern: serde_json::Value =
            serde_json::from_str(&Protocol::TransportWs.envelope("a\"b").wrap(answer)).expect("json");
        assert_eq!(
            modern,
            serde_json::json!({ "type": "next", "id": "a\"b", "payload": { "data": { "events": { "position": 7 } } } })
        );
        let legacy: serde_json::Value =
            serde_json::from_str(&Protocol::Legacy.envelope("1").wrap(answer)).expect("json");
        assert_eq!(legacy["type"], "data");
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
