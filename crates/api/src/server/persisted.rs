//! Automatic persisted queries, Apollo's protocol (also spoken by urql, Apollo Kotlin and
//! graphql-request's clients): a client sends the SHA-256 hash of its text in
//! `extensions.persistedQuery` instead of the text. A server that does not know the hash says
//! `PERSISTED_QUERY_NOT_FOUND`, and the client sends the text with its hash once, which the
//! server keeps. A dashboard's question then is a short GET that a cache can hold.
//!
//! A server that ignored the extension would answer a hash alone with a parse error (or, over
//! GET, with the playground's page), and such clients would fail outright.
//!
//! The texts are kept per node, in memory, and bounded. A node that does not know a hash (it
//! restarted, it is another node, it started over) costs the client one more round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::Value;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::media::with_status;
use super::refusals::bad_request;
use crate::graphql::errors::refused;

/// Texts kept at most; past it the store starts over.
const CAPACITY: usize = 4096;
/// Bytes of text kept at most (the request body's limit keeps each text under 256 KiB).
const CAPACITY_BYTES: usize = 32 * 1024 * 1024;
/// The code of a hash this node does not know.
pub const NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// The message of that error: Apollo's clients before 3.7 look at the message, not the code.
const NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";

/// Why a request naming a persisted query is not run.
#[derive(Debug)]
pub enum Refusal {
    /// A hash this node does not know (yet).
    NotFound,
    /// A hash that is not the text's, or not a hash; the message says which.
    Bad(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotFound => not_found(),
            Refusal::Bad(message) => bad_request(message),
        }
    }
}

#[derive(Debug, Default)]
struct Kept {
    texts: HashMap<[u8; 32], Arc<str>>,
    bytes: usize,
}

/// The texts this node was sent with their hash.
#[derive(Debug, Clone, Default)]
pub struct PersistedQueries {
    kept: Arc<Mutex<Kept>>,
}

impl PersistedQueries {
    /// Gives `request` the text its hash names, or keeps its text under its hash. A request
    /// without the extension is left as it is. Refused: a hash not known (200 with
    /// `PERSISTED_QUERY_NOT_FOUND`, as Apollo's server answers, since the client's next step is
    /// a normal one: send the text), and a hash that is not the text's or not a hash at all
    /// (400 with `BAD_REQUEST`: that client is broken).
    pub fn resolve(&self, request: &mut async_graphql::Request) -> Result<(), Refusal> {
        let Some(extension) = request.extensions.get("persistedQuery") else {
            return Ok(());
        };
        let hash = hash_of(extension).map_err(Refusal::Bad)?;
        if request.query.is_empty() {
            return match self.text(&hash) {
                Some(text) => {
                    request.query = text.to_string();
                    Ok(())
                }
                None => Err(Refusal::NotFound),
            };
        }
        if Sha256::digest(request.query.as_bytes()).as_slice() != hash {
            return Err(Refusal::Bad(
                "extensions.persistedQuery.sha256Hash is not the SHA-256 hash of the query".into(),
            ));
        }
        self.keep(hash, &request.query);
        Ok(())
    }

    fn text(&self, hash: &[u8; 32]) -> Option<Arc<str>> {
        self.kept.lock().ok()?.texts.get(hash).cloned()
    }

    fn keep(&self, hash: [u8; 32], text: &str) {
        let Ok(mut kept) = self.kept.lock() else { return };
        if kept.texts.contains_key(&hash) {
            return;
        }
        if kept.texts.len() >= CAPACITY || kept.bytes + text.len() > CAPACITY_BYTES {
            tracing::debug!(texts = kept.texts.len(), bytes = kept.bytes, "persisted queries start over");
            *kept = Kept::default();
        }
        kept.bytes += text.len();
        kept.texts.insert(hash, text.into());
    }
}

/// The hash named by `extensions.persistedQuery`: `{ version: 1, sha256Hash: "<64 hex>" }`.
fn hash_of(extension: &Value) -> Result<[u8; 32], String> {
    let Value::Object(fields) = extension else {
        return Err("extensions.persistedQuery must be an object with version and sha256Hash".into());
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        other => {
            let version = other.map_or_else(|| "none".to_string(), ToString::to_string);
            return Err(format!("extensions.persistedQuery.version {version} is not supported: only 1 is"));
        }
    }
    let hash = match fields.get("sha256Hash") {
        Some(Value::String(hex)) => hex::decode(hex).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()),
        _ => None,
    };
    hash.ok_or_else(|| "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits".into())
}

/// The answer to a hash not known here. A cache must not keep it: the text may be known by the
/// next request.
fn not_found() -> Response {
    let mut response = with_status(StatusCode::OK, refused(NOT_FOUND, NOT_FOUND_MESSAGE));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache, must-revalidate"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "{ __typename }";
    /// `printf '{ __typename }' | sha256sum`
    const HASH: &str = "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b";

    fn request(query: &str, extension: serde_json::Value) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(query);
        let value = Value::from_json(extension).expect("a value");
        request.extensions.insert("persistedQuery".into(), value);
        request
    }

    fn code_of(refusal: Refusal) -> (StatusCode, String) {
        let response = refusal.into_response();
        let status = response.status();
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
            .expect("a body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        (status, body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_string())
    }

    #[test]
    fn a_hash_is_answered_once_its_text_was_sent_with_it() {
        let persisted = PersistedQueries::default();
        let hash_only = || request("", serde_json::json!({ "version": 1, "sha256Hash": HASH }));
        let refusal = persisted.resolve(&mut hash_only()).expect_err("not known yet");
        assert_eq!(code_of(refusal), (StatusCode::OK, NOT_FOUND.to_string()));

        let mut with_text = request(TEXT, serde_json::json!({ "version": 1, "sha256Hash": HASH }));
        persisted.resolve(&mut with_text).expect("kept");
        let mut again = hash_only();
        persisted.resolve(&mut again).expect("known");
        assert_eq!(again.query, TEXT);

        let mut upper = request("", serde_json::json!({ "version": 1, "sha256Hash": HASH.to_uppercase() }));
        persisted.resolve(&mut upper).expect("hex in capitals is the same hash");
        assert_eq!(upper.query, TEXT);
    }

    #[test]
    fn a_hash_that_is_not_the_texts_or_no_hash_is_refused() {
        let persisted = PersistedQueries::default();
        let other = request(
            "{ statistics { lessonsPerKind { key } } }",
            serde_json::json!({ "version": 1, "sha256Hash": HASH }),
        );
        for (mut bad, why) in [
            (other, "another text's hash"),
            (request("", serde_json::json!({ "version": 2, "sha256Hash": HASH })), "version 2"),
            (request("", serde_json::json!({ "sha256Hash": HASH })), "no version"),
            (request("", serde_json::json!({ "version": 1, "sha256Hash": "abc" })), "too short"),
            (request("", serde_json::json!({ "version": 1 })), "no hash"),
            (request("", serde_json::json!("7f56")), "not an object"),
        ] {
            let refusal = persisted.resolve(&mut bad).expect_err(why);
            assert_eq!(code_of(refusal), (StatusCode::BAD_REQUEST, "BAD_REQUEST".to_string()), "{why}");
        }
        let refusal = persisted
            .resolve(&mut request("", serde_json::json!({ "version": 1, "sha256Hash": HASH })))
            .expect_err("the mismatched text was not kept under the hash");
        assert_eq!(code_of(refusal).1, NOT_FOUND);
    }

    #[test]
    fn a_request_without_the_extension_is_left_alone() {
        let persisted = PersistedQueries::default();
        let mut plain = async_graphql::Request::new(TEXT);
        persisted.resolve(&mut plain).expect("nothing to do");
        assert_eq!(plain.query, TEXT);
    }

    #[test]
    fn the_store_is_bounded() {
        let persisted = PersistedQueries::default();
        for n in 0..CAPACITY + 10 {
            let text = format!("{{ __typename # {n}\n}}");
            let hash = hex::encode(Sha256::digest(text.as_bytes()));
            persisted
                .resolve(&mut request(&text, serde_json::json!({ "version": 1, "sha256Hash": hash })))
                .expect("kept");
        }
        let kept = persisted.kept.lock().expect("lock");
        assert!(kept.texts.len() <= CAPACITY, "{}", kept.texts.len());
        assert_eq!(kept.bytes, kept.texts.values().map(|t| t.len()).sum::<usize>());
    }
}
