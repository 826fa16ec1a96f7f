//! Live subscriptions that would compute the same answers share one execution.
//!
//! Ten thousand dashboards on one doetank, or on the log from now on, ask the same question as
//! the same kind of viewer: executing it once per subscriber per event (a cursor, a visibility
//! check, a read of the doetank's row, the GraphQL execution) is the same work ten thousand
//! times. A subscription is shared when its answers depend only on its text, variables and
//! viewer and it starts at the head of the log: `doetankUpdated`, and `events` without `after`.
//! A joiner then receives every answer computed after it joined, which is exactly what it would
//! have received alone (it starts "from now" either way). `events(after: N)` replays from its
//! own position and keeps its own cursor.
//!
//! A subscriber that falls more than the backlog behind the others is dropped with `LAGGED`
//! rather than holding answers for it without bound; resubscribing with `after` (the last
//! position it saw) loses nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Data, ErrorExtensions, Executor, Pos, Request, Response};
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::auth::Viewer;
use crate::graphql::DoetankSchema;

/// Answers a shared subscription holds for its slowest subscriber.
pub const BACKLOG: usize = 1_024;

/// The shared executions of a server, by what they compute.
#[derive(Clone)]
pub struct SharedSubscriptions {
    running: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<Response>>>>>,
    backlog: usize,
}

impl Default for SharedSubscriptions {
    fn default() -> Self {
        Self::with_backlog(BACKLOG)
    }
}

/// How many shared executions run and how many subscribers they serve (for `/healthz`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SharingStats {
    pub executions: usize,
    pub subscribers: usize,
}

impl SharedSubscriptions {
    pub fn with_backlog(backlog: usize) -> Self {
        SharedSubscriptions { running: Arc::default(), backlog: backlog.max(1) }
    }

    pub fn stats(&self) -> SharingStats {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        SharingStats {
            executions: running.len(),
            subscribers: running.values().map(broadcast::Sender::receiver_count).sum(),
        }
    }

    /// The answers of `key`'s execution from now on; starts it (with this subscriber's request
    /// and session) when none runs.
    fn join(&self, schema: &DoetankSchema, key: String, request: &Request, data: &Arc<Data>) -> Receiver {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = running.get(&key) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(self.backlog);
        running.insert(key.clone(), sender.clone());
        let answers = schema.execute_stream_with_session_data(copy_request(request), data.clone());
        tokio::spawn(self.clone().produce(key, answers, sender));
        receiver
    }

    /// Runs one shared execution until it ends or its last subscriber has gone. The entry is
    /// removed under the same lock joiners take, so a joiner always finds a running execution.
    async fn produce(self, key: String, mut answers: BoxStream<'static, Response>, sender: Sender) {
        loop {
            let answer = tokio::select! {
                answer = answers.next() => answer,
                () = sender.closed() => {
                    let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
                    if sender.receiver_count() == 0 {
                        running.remove(&key);
                        return;
                    }
                    continue;
                }
            };
            match answer {
                Some(answer) => {
                    // No receiver left is not an error: `closed` ends the loop on its next turn.
                    let _ = sender.send(Arc::new(answer));
                }
                None => {
                    self.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
                    return;
                }
            }
        }
    }
}

type Sender = broadcast::Sender<Arc<Response>>;
type Receiver = broadcast::Receiver<Arc<Response>>;

/// async-graphql's executor for the WebSocket endpoint: shares what can be shared, executes the
/// rest per subscriber as before.
#[derive(Clone)]
pub struct SharingExecutor {
    pub schema: DoetankSchema,
    pub shared: SharedSubscriptions,
}

impl Executor for SharingExecutor {
    async fn execute(&self, request: Request) -> Response {
        self.schema.execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let data = session_data.unwrap_or_default();
        let Some(key) = share_key(&request, &data) else {
            return self.schema.execute_stream_with_session_data(request, data);
        };
        let receiver = self.shared.join(&self.schema, key, &request, &data);
        follow(receiver, self.schema.clone(), request, data)
    }
}

/// What a subscriber's stream is doing.
enum Following {
    /// Reading the shared answers; `heard` once one has arrived.
    Shared {
        receiver: Receiver,
        heard: bool,
        alone: Box<(DoetankSchema, Request, Arc<Data>)>,
    },
    /// Executing on its own (see [`follow`]).
    Alone(BoxStream<'static, Response>),
    Done,
}

/// The shared answers as this subscriber's own. An execution that ended before this subscriber
/// heard anything (it joined as an execution's error was being sent) is run again for it
/// alone, so it gets that answer too instead of an empty stream.
fn follow(
    receiver: Receiver,
    schema: DoetankSchema,
    request: Request,
    data: Arc<Data>,
) -> BoxStream<'static, Response> {
    let start = Following::Shared { receiver, heard: false, alone: Box::new((schema, request, data)) };
    stream::unfold(start, |mut state| async move {
        loop {
            match state {
                Following::Shared { mut receiver, heard, alone } => match receiver.recv().await {
                    Ok(answer) => {
                        let answer = copy_response(&answer);
                        return Some((answer, Following::Shared { receiver, heard: true, alone }));
                    }
                    Err(broadcast::error::RecvError::Closed) if !heard => {
                        let (schema, request, data) = *alone;
                        state = Following::Alone(schema.execute_stream_with_session_data(request, data));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Some((lagged(missed), Following::Done));
                    }
                },
                Following::Alone(mut answers) => {
                    let answer = answers.next().await?;
                    return Some((answer, Following::Alone(answers)));
                }
                Following::Done => return None,
            }
        }
    })
    .boxed()
}

fn lagged(missed: u64) -> Response {
    let error = async_graphql::Error::new(format!(
        "this subscriber fell {missed} answers behind the others and was dropped; subscribe again \
         (to the log with `after`: the last position you saw)"
    ))
    .extend_with(|_, e| e.set("code", "LAGGED"));
    Response::from_errors(vec![error.into_server_error(Pos::default())])
}

fn copy_response(answer: &Response) -> Response {
    let mut copy = Response::new(answer.data.clone());
    copy.errors = answer.errors.clone();
    copy.extensions = answer.extensions.clone();
    copy
}

/// A WebSocket request carries text, operation name and variables only.
fn copy_request(request: &Request) -> Request {
    let mut copy = Request::new(request.query.clone()).variables(request.variables.clone());
    copy.operation_name = request.operation_name.clone();
    copy
}

/// What an execution's answers depend on, when it may be shared: its text, operation,
/// variables and viewer (but not the token's expiry, which each socket enforces itself).
fn share_key(request: &Request, data: &Data) -> Option<String> {
    let viewer = data.get(&std::any::TypeId::of::<Viewer>())?.downcast_ref::<Viewer>()?;
    if !starts_at_the_head(request) {
        return None;
    }
    let variables = serde_json::to_string(&request.variables).ok()?;
    Some(format!(
        "{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{variables}\u{1f}{}",
        viewer.subject, viewer.member_id, viewer.role, request.operation_name, request.query
    ))
}

/// A subscription whose every root field is `doetankUpdated`, `events` without `after`, or
/// `__typename`: its answers begin with the next event, whoever computes them.
fn starts_at_the_head(request: &Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => match operations.get(name) {
            Some(operation) => operation,
            None => return false,
        },
        (DocumentOperations::Multiple(_), None) => return false,
    };
    operation.node.ty == OperationType::Subscription
        && operation.node.selection_set.node.items.iter().all(|selection| match &selection.node {
            Selection::Field(field) => match field.node.name.node.as_str() {
                "doetankUpdated" | "__typename" => true,
                "events" => field.node.get_argument("after").is_none(),
                _ => false,
            },
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Request {
        Request::new(query)
    }

    #[test]
    fn only_subscriptions_that_start_at_the_head_are_shared() {
        assert!(starts_at_the_head(&request("subscription { events { position } }")));
        assert!(starts_at_the_head(&request("subscription($id: ID!) { doetankUpdated(id: $id) { name } }")));
        assert!(starts_at_the_head(&request(
            "subscription { events(types: [\"X\"]) { position } __typename }"
        )));
        assert!(!starts_at_the_head(&request("subscription { events(after: 0) { position } }")));
        assert!(!starts_at_the_head(&request("subscription($a: Int) { events(after: $a) { position } }")));
        assert!(!starts_at_the_head(&request(
            "subscription { ...F } fragment F on Subscription { events { position } }"
        )));
        assert!(!starts_at_the_head(&request("{ events { edges { node { position } } } }")));
        assert!(!starts_at_the_head(&request("subscription { events { position ")));
        let two = "subscription A { events { position } } subscription B { events(after: 1) { position } }";
        assert!(starts_at_the_head(&request(two).operation_name("A")));
        assert!(!starts_at_the_head(&request(two).operation_name("B")));
        assert!(!starts_at_the_head(&request(two)));
    }

    #[test]
    fn the_key_tells_viewers_and_variables_apart_but_not_expiries() {
        let key = |viewer: Viewer, variables: serde_json::Value| {
            let mut data = Data::default();
            data.insert(viewer);
            let request = request("subscription($id: ID!) { doetankUpdated(id: $id) { name } }")
                .variables(async_graphql::Variables::from_json(variables));
            share_key(&request, &data)
        };
        let member = |id: u128, expiry: i64| Viewer {
            subject: Some("m".into()),
            member_id: Some(uuid::Uuid::from_u128(id)),
            role: Some(crate::auth::Role::Member),
            expires_at: chrono::DateTime::from_timestamp(expiry, 0),
        };
        let a = serde_json::json!({ "id": "a" });
        assert_eq!(key(member(1, 10), a.clone()), key(member(1, 20), a.clone()));
        assert_ne!(key(member(1, 10), a.clone()), key(member(2, 10), a.clone()));
        assert_ne!(key(member(1, 10), a.clone()), key(Viewer::anonymous(), a.clone()));
        assert_ne!(key(member(1, 10), a), key(member(1, 10), serde_json::json!({ "id": "b" })));
        assert_eq!(share_key(&request("subscription { events { position } }"), &Data::default()), None);
    }

    /// A subscriber that reads nothing while the others go on falls behind the backlog and
    /// gets `LAGGED` instead of holding answers for it; the others hear everything.
    #[tokio::test]
    async fn a_subscriber_behind_the_backlog_is_dropped_with_lagged() {
        use doetank_domain::EncodedEvent;
        use doetank_store::{EventStore, ExpectedVersion, Metadata, StreamId};

        let store = EventStore::connect_with("sqlite::memory:", 1).await.expect("store");
        store.migrate().await.expect("migrate");
        let app = crate::App::new(store.clone());
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(app.feed.clone().follow(shutdown));
        let executor = SharingExecutor {
            schema: crate::graphql::build_schema(app.clone()),
            shared: SharedSubscriptions::with_backlog(2),
        };
        let session = || {
            let mut data = Data::default();
            crate::graphql::insert_loaders(&mut data, &app, None);
            data.insert(Viewer { role: Some(crate::auth::Role::Facilitator), ..Viewer::default() });
            Some(Arc::new(data))
        };
        let query = "subscription { events { position } }";
        let mut reading = executor.execute_stream(Request::new(query), session());
        let mut idle = executor.execute_stream(Request::new(query), session());
        // The execution starts on its own task; let it take its place at the head first.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(executor.shared.stats(), SharingStats { executions: 1, subscribers: 2 });

        let stream = StreamId::new("note", uuid::Uuid::new_v4());
        for position in 1..=5 {
            let note = EncodedEvent {
                event_type: "NoteTaken".into(),
                schema_version: 1,
                payload: serde_json::json!({ "n": position }),
            };
            store
                .append(&stream, ExpectedVersion::Any, &[note], &Metadata::new("test"))
                .await
                .expect("append");
            let answer = reading.next().await.expect("an answer");
            assert!(answer.errors.is_empty(), "{:?}", answer.errors);
            let heard = answer.data.into_json().expect("json");
            assert_eq!(heard, serde_json::json!({ "events": { "position": position } }));
        }
        let dropped = idle.next().await.expect("an answer");
        let error = dropped.errors.first().expect("an error");
        let code = error.extensions.as_ref().and_then(|e| e.get("code")).cloned();
        assert_eq!(code, Some(async_graphql::Value::from("LAGGED")));
        assert!(idle.next().await.is_none(), "the dropped subscriber's stream ends");
    }
}
