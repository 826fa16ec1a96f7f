//! The real server, started in-process on an ephemeral port, and a GraphQL client for it.

use std::net::SocketAddr;

use doetank_api::server::ServerConfig;
use doetank_api::App;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::TestDb;

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
        app.projector.catch_up().await.expect("catch up");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, shutdown) = watch::channel(false);
        let served = app.clone();
        tokio::spawn(async move { doetank_api::server::serve(served, config, listener, shutdown).await });
        TestApp { addr, app, http: reqwest::Client::new(), stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Posts a GraphQL request and returns the whole response body.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let response = self
            .http
            .post(self.url("/graphql"))
            .header("x-doetank-actor", "test")
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql");
        assert!(response.status().is_success(), "HTTP {}", response.status());
        response.json().await.expect("JSON body")
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
