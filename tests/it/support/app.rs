//! The real server, started in-process on an ephemeral port, and a GraphQL client for it.

use std::net::SocketAddr;

use doetank_api::auth::{Auth, Role};
use doetank_api::server::ServerConfig;
use doetank_api::App;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::TestDb;

/// The secret test servers verify tokens with.
pub const TEST_SECRET: &str = "test-secret-for-doetank-integration-tests";

pub fn auth() -> Auth {
    Auth::hs256(TEST_SECRET.as_bytes())
}

/// A token for `subject` in `role`, valid for an hour.
pub fn token(subject: &str, role: Role) -> String {
    auth().mint(subject, role, chrono::Duration::hours(1)).expect("mint")
}

pub fn facilitator() -> String {
    token("staff", Role::Facilitator)
}

pub fn member(id: &str) -> String {
    token(id, Role::Member)
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub app: App,
    pub http: reqwest::Client,
    stop: watch::Sender<bool>,
}

impl TestApp {
    pub async fn spawn(db: &TestDb) -> TestApp {
        Self::spawn_with(db, ServerConfig::default()).await
    }

    pub async fn spawn_with(db: &TestDb, config: ServerConfig) -> TestApp {
        Self::spawn_app(App::new(db.store.clone()), config).await
    }

    pub async fn spawn_app(app: App, config: ServerConfig) -> TestApp {
        let config = ServerConfig { auth: auth(), ..config };
        app.projector.catch_up().await.expect("catch up");
        let listener = doetank_api::server::listen(([127, 0, 0, 1], 0).into()).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let (stop, shutdown) = watch::channel(false);
        let served = app.clone();
        tokio::spawn(async move { doetank_api::server::serve(served, config, listener, shutdown).await });
        TestApp { addr, app, http: reqwest::Client::new(), stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Posts a GraphQL request as a facilitator and returns the whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.gql_as(Some(&facilitator()), query, variables).await
    }

    /// Posts a GraphQL request with `token` (anonymous when `None`), accepting what GraphQL over
    /// HTTP asks clients to accept, and checks its status against the answer: 200 for one whose
    /// execution ran (`data`, even null), a 4xx for a request refused as a whole (no `data`).
    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .header("accept", "application/graphql-response+json, application/json;q=0.9")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        let status = response.status();
        let media = response.headers().get("content-type").cloned();
        assert_eq!(media.as_ref().map(|m| m.as_bytes()), Some(&b"application/graphql-response+json"[..]));
        let body: Value = response.json().await.expect("JSON body");
        if body.get("data").is_some() {
            assert_eq!(status.as_u16(), 200, "{body:#}");
        } else {
            assert!(status.is_client_error(), "HTTP {status} for {body:#}");
        }
        body
    }

    /// `GET /graphql` with `params` as a facilitator, accepting what GraphQL over HTTP asks
    /// clients to accept; the response as it came.
    pub async fn get_graphql(&self, params: &[(&str, String)]) -> reqwest::Response {
        let request = self.http.get(self.url("/graphql")).query(params);
        Self::as_facilitator(request).send().await.expect("GET /graphql")
    }

    /// `POST /graphql` of `body` as a facilitator; the response as it came (`gql` reads and
    /// checks it, this one leaves that to the test).
    pub async fn post_graphql(&self, body: &Value) -> reqwest::Response {
        let request = self.http.post(self.url("/graphql")).json(body);
        Self::as_facilitator(request).send().await.expect("POST /graphql")
    }

    /// `POST /graphql` of a body as it is, with its content type, anonymously: for bodies that
    /// are not a JSON request.
    pub async fn post_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        let request = self.http.post(self.url("/graphql")).header("content-type", content_type).body(body);
        request.send().await.expect("POST /graphql")
    }

    fn as_facilitator(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("accept", "application/graphql-response+json").bearer_auth(facilitator())
    }

    /// Like `gql`, but fails the test on any GraphQL error and returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Like `gql`, but expects exactly one error and returns it.
    pub async fn error(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        let errors = body["errors"].as_array().unwrap_or_else(|| panic!("expected an error, got {body:#}"));
        assert_eq!(errors.len(), 1, "{body:#}");
        errors[0].clone()
    }

    pub async fn head(&self) -> i64 {
        self.app.store.head_position().await.expect("head")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
