//! Live subscriptions that would compute the same answers share one execution.
//!
//! Ten thousand dashboards on one doetank, or on the log from now on, ask the same question as
//! the same kind of viewer: executing it once per subscriber per event (a cursor, a visibility
//! check, a read of the doetank's row, the GraphQL execution) is the same work ten thousand
//! times. A subscription is shared when its answers depend only on its text, variables and
//! viewer and it starts at the head of the log: `doetankUpdated`, `doetanksUpdated`, and
//! `events` without `after`.
//! A joiner then receives every answer computed after it joined, which is exactly what it would
//! have received alone (it starts "from now" either way). `events(after: N)` replays from its
//! own position and keeps its own cursor.
//!
//! An execution writes each answer to its subscribers' sockets itself, serialised once
//! (`outbox`). A subscriber whose socket has more than its bound waiting (its client does not
//! read) is dropped with `LAGGED` rather than holding answers for it without bound;
//! resubscribing with `after` (the last position it saw) loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Data, ErrorExtensions, Request, Response};
use axum::extract::ws::Message;
use doetank_store::EventStore;
use futures::stream;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::Notify;

use super::answers::is_query;
use super::field_order::Asked;
use super::outbox::{Mailbox, Refused};
use super::streamed::{event, Framing};
use super::ws_protocol::{complete, Envelope};
use crate::auth::Viewer;
use crate::error::AppError;
use crate::graphql::errors::{
    answer_json, answer_of, give_codes, is_request_error, parse_failed, UNSERIALISABLE_ANSWER,
};
use crate::graphql::resume::{Listening, ResumeFrom, ResumeMark};
use crate::graphql::{declared_variables, DoetankSchema};
use crate::one_state::{self, copy_request, Turns};

/// One answer of a subscription: a GraphQL response serialised as JSON, and for a request
/// refused as a whole (a text that does not parse or does not fit the schema) its errors too,
/// which graphql-transport-ws sends as an `error` message of their own.
#[derive(Clone, Debug)]
pub struct Answer {
    json: Arc<str>,
    refusal: Option<Arc<str>>,
    /// Where a stream resumes after this answer (see `graphql::resume`): its event id.
    resume: Option<i64>,
}

impl Answer {
    /// The response as JSON.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The errors, as a JSON array, of a request refused as a whole.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }

    /// The cursor a stream resumes from after this answer, if its subscription can resume.
    pub fn resume(&self) -> Option<i64> {
        self.resume
    }

    /// This answer, resuming after what `mark` holds for it (taken, so the next starts unmarked).
    fn marked(mut self, mark: &ResumeMark) -> Answer {
        self.resume = mark.take();
        self
    }
}

/// `response` as an [`Answer`], every error with its code (see `give_codes`): each answer to a
/// socket passes here.
pub fn serialise(mut response: Response) -> Answer {
    give_codes(&mut response);
    let refusal = is_request_error(&response).then(|| serde_json::to_string(&response.errors).ok()).flatten();
    match answer_json(&response) {
        Ok(json) => Answer { json: json.into(), refusal: refusal.map(Into::into), resume: None },
        Err(error) => {
            tracing::error!(%error, "a subscription answer could not be serialised");
            Answer { json: UNSERIALISABLE_ANSWER.into(), refusal: None, resume: None }
        }
    }
}

/// The shared executions of a server, by what they compute.
#[derive(Clone, Default)]
pub struct SharedSubscriptions {
    running: Arc<Mutex<HashMap<String, Arc<Execution>>>>,
}

/// How many shared executions run and how many subscribers they serve (for `/healthz` and
/// `/metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SharingStats {
    pub executions: usize,
    pub subscribers: usize,
}

/// One execution and whom it writes to.
struct Execution {
    members: Mutex<HashMap<u64, Arc<Member>>>,
    /// A member left: the execution ends with its last member.
    left: Notify,
    /// Whether it follows the log yet; counted only once it does.
    listening: Listening,
}

/// A subscriber of a shared execution: its socket and subscription id, or its HTTP stream.
struct Member {
    mailbox: Arc<dyn Mailbox>,
    wrapping: Wrapping,
    id: String,
    state: Mutex<MemberState>,
}

/// How a subscriber's answers are framed: in its socket's subprotocol, in its HTTP stream's
/// framing (server-sent events, multipart parts), or as one operation of a stream that carries
/// several (graphql-sse's single connection mode; the operation's id as JSON).
#[derive(Clone, Debug)]
pub enum Wrapping {
    Socket(Envelope),
    Stream(Framing),
    Operation(Arc<str>),
}

impl Wrapping {
    /// The frame carrying `answer`, and whether it ends the subscription by itself.
    pub(super) fn frame(&self, answer: &Answer) -> (String, bool) {
        match self {
            Wrapping::Socket(envelope) => envelope.frame(answer),
            Wrapping::Stream(framing) => (framing.answer_text(answer), false),
            Wrapping::Operation(id) => {
                (event("next", format!("{{\"id\":{id},\"payload\":{}}}", answer.json())), false)
            }
        }
    }

    /// The frame that completes subscription `id`: none for a stream, whose response writes
    /// its own end once the mailbox is finished.
    pub(super) fn complete(&self, id: &str) -> Option<Message> {
        self.complete_text(id).map(|text| Message::Text(text.into()))
    }

    /// [`Wrapping::complete`]'s text (an operation of a stream holds its own id).
    pub(super) fn complete_text(&self, id: &str) -> Option<String> {
        match self {
            Wrapping::Socket(_) => Some(complete(id)),
            Wrapping::Stream(_) => None,
            Wrapping::Operation(id) => Some(event("complete", format!("{{\"id\":{id}}}"))),
        }
    }
}

#[derive(Default)]
struct MemberState {
    heard: bool,
    /// Stopped by its client, dropped, or completed: nothing more is written for it.
    done: bool,
}

/// What a socket holds of its subscription to a shared execution. Dropping it leaves.
pub struct Joined {
    execution: Arc<Execution>,
    token: u64,
    member: Arc<Member>,
}

impl Joined {
    /// Whether the execution completed this subscription (its id is free again).
    pub fn is_done(&self) -> bool {
        self.member.lock().done
    }

    /// The client's `complete` (or `stop`): nothing more for this id, and, where the protocol
    /// answers it (`echo`), `complete` back, once.
    pub fn stop(&self, echo: bool) {
        let mut state = self.member.lock();
        if !std::mem::replace(&mut state.done, true) && echo {
            if let Some(complete) = self.member.wrapping.complete(&self.member.id) {
                let _ = self.member.mailbox.post(complete, true);
            }
        }
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.member.lock().done = true;
        self.execution.lock().remove(&self.token);
        self.execution.left.notify_one();
    }
}

impl Member {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `answer` to this member unless it is done; false once it is done.
    fn deliver(&self, answer: &Answer) -> bool {
        let mut state = self.lock();
        if state.done {
            return false;
        }
        let (frame, ends) = self.wrapping.frame(answer);
        match self.mailbox.post(Message::Text(frame.into()), false) {
            Ok(()) => {
                state.heard = true;
                // An `error` frame ends the subscription: no `complete` follows it.
                if ends {
                    self.done(&mut state);
                }
                !ends
            }
            Err(Refused::Full) => {
                // Its client reads too slowly to keep up: dropped rather than queued without bound.
                let (lagged, ends) = self.wrapping.frame(&lagged());
                let _ = self.mailbox.post(Message::Text(lagged.into()), true);
                if !ends {
                    self.post_complete();
                }
                self.done(&mut state);
                false
            }
            Err(Refused::Gone) => {
                self.done(&mut state);
                false
            }
        }
    }

    /// Nothing more is written for this member: its mailbox is told so.
    fn done(&self, state: &mut MemberState) {
        state.done = true;
        self.mailbox.finished();
    }

    fn post_complete(&self) {
        if let Some(complete) = self.wrapping.complete(&self.id) {
            let _ = self.mailbox.post(complete, true);
        }
    }

    /// The end of the execution: `last_error` to a member that heard nothing (it joined as the
    /// execution was refused), then `complete` unless that frame ended the subscription itself.
    fn finish(&self, last_error: Option<&Answer>) {
        let mut state = self.lock();
        if state.done {
            return;
        }
        if let (false, Some(error)) = (state.heard, last_error) {
            let (frame, ends) = self.wrapping.frame(error);
            let _ = self.mailbox.post(Message::Text(frame.into()), true);
            if ends {
                self.done(&mut state);
                return;
            }
        }
        self.post_complete();
        self.done(&mut state);
    }
}

impl Execution {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Member>>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn members(&self) -> Vec<Arc<Member>> {
        self.lock().values().cloned().collect()
    }

    /// Writes `answer` to `member`; one that is done (dropped, gone, stopped) leaves.
    fn deliver(&self, member: &Arc<Member>, answer: &Answer) {
        if !member.deliver(answer) {
            self.lock().retain(|_, m| !Arc::ptr_eq(m, member));
        }
    }
}

/// Members written to between two yields of an execution's task, so that ten thousand
/// subscribers do not hold a worker thread for the whole round.
const YIELD_EVERY: usize = 256;

/// Tells members apart within an execution.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

impl SharedSubscriptions {
    /// The executions that follow the log, and their subscribers: one still starting is not
    /// counted, so that a count reached means that what is written next reaches them.
    pub fn stats(&self) -> SharingStats {
        let running = self.lock();
        let listening = running.values().filter(|execution| execution.listening.is_set());
        let (executions, subscribers) = listening.fold((0, 0), |(executions, subscribers), execution| {
            (executions + 1, subscribers + execution.lock().len())
        });
        SharingStats { executions, subscribers }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Execution>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Joins `key`'s execution from its next answer on; starts it (with this subscriber's
    /// request and session) when none runs. Joining happens under the lock the execution
    /// takes to end, so a joiner always finds a running execution.
    fn join(
        &self,
        schema: &DoetankSchema,
        key: String,
        request: &Request,
        data: &Arc<Data>,
        member: Member,
    ) -> Joined {
        let member = Arc::new(member);
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let mut running = self.lock();
        let execution = match running.get(&key) {
            Some(execution) => execution.clone(),
            None => {
                let listening = Listening::default();
                let execution = Arc::new(Execution {
                    members: Mutex::default(),
                    left: Notify::new(),
                    listening: listening.clone(),
                });
                running.insert(key.clone(), execution.clone());
                let mark = ResumeMark::default();
                let mut copy = copy_request(request).data(mark.clone()).data(listening);
                let asked = Asked::of(&mut copy);
                let answers =
                    asked.order_each(schema.execute_stream_with_session_data(copy, data.clone())).boxed();
                // Writes are attempted without waiting: a coop budget running out would make
                // each of them look like a full socket (the task yields on its own instead).
                tokio::spawn(tokio::task::unconstrained(self.clone().produce(
                    key,
                    answers,
                    mark,
                    execution.clone(),
                )));
                execution
            }
        };
        execution.lock().insert(token, member.clone());
        Joined { execution, token, member }
    }

    /// Runs one shared execution until it ends or its last member has gone, writing each
    /// answer to every member's socket in turn.
    async fn produce(
        self,
        key: String,
        mut answers: BoxStream<'static, Response>,
        mark: ResumeMark,
        execution: Arc<Execution>,
    ) {
        let mut last_error: Option<Answer> = None;
        loop {
            let answer = tokio::select! {
                answer = answers.next() => answer,
                () = execution.left.notified() => {
                    if self.end_if_empty(&key, &execution) {
                        return;
                    }
                    continue;
                }
            };
            let Some(answer) = answer else {
                self.lock().remove(&key);
                for member in execution.members() {
                    member.finish(last_error.as_ref());
                }
                return;
            };
            let is_error = answer.is_err();
            let answer = serialise(answer).marked(&mark);
            deliver_in_parallel(&execution, &answer).await;
            last_error = is_error.then_some(answer);
            if self.end_if_empty(&key, &execution) {
                return;
            }
        }
    }

    /// Ends `execution` if no member is left; under the joiners' lock.
    fn end_if_empty(&self, key: &str, execution: &Execution) -> bool {
        let mut running = self.lock();
        if execution.lock().is_empty() {
            running.remove(key);
            return true;
        }
        false
    }
}

/// Writes `answer` to every member, in as many parts as there are worker threads: one task
/// writing to ten thousand sockets in turn leaves the other cores idle.
async fn deliver_in_parallel(execution: &Arc<Execution>, answer: &Answer) {
    let members = execution.members();
    if members.len() <= YIELD_EVERY {
        for member in &members {
            execution.deliver(member, answer);
        }
        return;
    }
    let parts = tokio::runtime::Handle::current().metrics().num_workers().max(1);
    let size = members.len().div_ceil(parts).max(YIELD_EVERY);
    let mut writing = tokio::task::JoinSet::new();
    for part in members.chunks(size) {
        let (part, answer, execution) = (part.to_vec(), answer.clone(), execution.clone());
        writing.spawn(tokio::task::unconstrained(async move {
            for (n, member) in part.iter().enumerate() {
                execution.deliver(member, &answer);
                if n % YIELD_EVERY == YIELD_EVERY - 1 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    while writing.join_next().await.is_some() {}
}

/// The answers to what WebSocket clients subscribe to: shared where they can be, executed per
/// subscriber otherwise.
#[derive(Clone)]
pub struct Subscriptions {
    pub schema: DoetankSchema,
    pub shared: SharedSubscriptions,
    /// Where a query sent over the socket reads its one state (see `one_state`).
    pub reads: Option<(EventStore, Turns)>,
}

/// How a subscription is answered.
pub enum Subscribed {
    /// By its own execution, whose answers the socket's task writes.
    Alone(BoxStream<'static, Answer>),
    /// By a shared execution, which writes to the socket itself.
    Shared(Joined),
}

impl Subscriptions {
    /// Starts answering `request` (any operation: a query or mutation answers once) as
    /// subscription `id` of the connection whose session is `data` and whose frames go to
    /// `mailbox`.
    pub fn subscribe(
        &self,
        mut request: Request,
        data: Arc<Data>,
        id: &str,
        wrapping: Wrapping,
        mailbox: Arc<dyn Mailbox>,
    ) -> Subscribed {
        let key = match request.parsed_query() {
            Ok(_) => share_key(&request, &data),
            Err(_) => None,
        };
        // A request its variables refuse is refused by `alone`, as it would be alone; asked only
        // of one that would be shared, since `alone` asks it of the others.
        let key = key.filter(|_| declared_variables::refusal_of(&mut request).is_none());
        let Some(key) = key else {
            return Subscribed::Alone(self.alone(request, data));
        };
        let member = Member { mailbox, wrapping, id: id.to_string(), state: Mutex::default() };
        Subscribed::Shared(self.shared.join(&self.schema, key, &request, &data, member))
    }

    /// The answers to `request` from its own execution (for a session whose `data` it is): a
    /// text that does not parse is refused before anything runs, and a query reads one state.
    pub fn alone(&self, mut request: Request, data: Arc<Data>) -> BoxStream<'static, Answer> {
        if let Err(error) = request.parsed_query() {
            let answer = serialise(parse_failed(error));
            return stream::once(futures::future::ready(answer)).boxed();
        }
        if let Some(refusal) = declared_variables::refusal_of(&mut request) {
            return stream::once(futures::future::ready(serialise(refusal))).boxed();
        }
        let asked = Asked::of(&mut request);
        if let Some((store, turns)) = self.reads.clone().filter(|_| is_query(&mut request)) {
            let answer = query_in_one_state(self.schema.clone(), request, data, store, turns, asked);
            return stream::once(answer).boxed();
        }
        let mark = ResumeMark::default();
        let answers = self.schema.execute_stream_with_session_data(request.data(mark.clone()), data);
        asked.order_each(answers).map(move |answer| serialise(answer).marked(&mark)).boxed()
    }
}

/// A query's one answer over a socket, every read of it in one state, as over HTTP.
async fn query_in_one_state(
    schema: DoetankSchema,
    request: Request,
    data: Arc<Data>,
    store: EventStore,
    turns: Turns,
    asked: Asked,
) -> Answer {
    let compute = |request| {
        let mut answers = schema.execute_stream_with_session_data(request, Arc::clone(&data));
        async move { answers.next().await.unwrap_or_default() }
    };
    let mut answered = one_state::answered(&store, &turns, request, |_| {}, compute)
        .await
        .unwrap_or_else(|| answer_of(AppError::Moved.extend()));
    asked.order(&mut answered);
    serialise(answered)
}

pub(super) fn lagged() -> Answer {
    let error = async_graphql::Error::new(
        "this subscriber fell too far behind the others and was dropped; subscribe again \
         (to the log with `after`: the last position you saw)",
    )
    .extend_with(|_, e| e.set("code", "LAGGED"));
    serialise(answer_of(error))
}

/// What an execution's answers depend on, when it may be shared: its text, operation,
/// variables and viewer (but not the token's expiry, which each socket enforces itself).
fn share_key(request: &Request, data: &Data) -> Option<String> {
    let viewer = data.get(&std::any::TypeId::of::<Viewer>())?.downcast_ref::<Viewer>()?;
    // A stream that reconnects resumes from where it was, alone.
    if request.data.get(&std::any::TypeId::of::<ResumeFrom>()).is_some() || !starts_at_the_head(request) {
        return None;
    }
    let variables = serde_json::to_string(&request.variables).ok()?;
    Some(format!(
        "{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{variables}\u{1f}{}",
        viewer.subject, viewer.member_id, viewer.role, request.operation_name, request.query
    ))
}

/// A subscription whose every root field is `doetankUpdated` without `afterVersion`,
/// `doetanksUpdated`, `statisticsUpdated` without `initial`, `timelineAppended`, `lessonRecorded`, `events` without
/// `after`, or `__typename`: its answers begin with the next event, whoever computes
/// them.
fn starts_at_the_head(request: &Request) -> bool {
    let Some(document) = super::query_text::parse(&request.query)
        .or_else(|| async_graphql::parser::parse_query(&request.query).ok())
    else {
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
                "__typename" => true,
                "doetankUpdated" => field.node.get_argument("afterVersion").is_none(),
                "doetanksUpdated" => field.node.get_argument("after").is_none(),
                "statisticsUpdated" => field.node.get_argument("initial").is_none(),
                "timelineAppended" | "lessonRecorded" => field.node.get_argument("after").is_none(),
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
        assert!(starts_at_the_head(&request("subscription { doetanksUpdated { name } }")));
        assert!(starts_at_the_head(&request("subscription { lessonRecorded(kind: WORKS) { title } }")));
        assert!(starts_at_the_head(&request(
            "subscription { statisticsUpdated { lessonsPerKind { count } } }"
        )));
        assert!(!starts_at_the_head(&request(
            "subscription { statisticsUpdated(initial: true) { lessonsPerKind { count } } }"
        )));
        assert!(starts_at_the_head(&request(
            "subscription { events(types: [\"X\"]) { position } __typename }"
        )));
        assert!(!starts_at_the_head(&request("subscription { events(after: 0) { position } }")));
        assert!(!starts_at_the_head(&request("subscription($a: Int) { events(after: $a) { position } }")));
        assert!(!starts_at_the_head(&request("subscription { timelineAppended(after: 7) { summary } }")));
        assert!(!starts_at_the_head(&request("subscription { lessonRecorded(after: 7) { title } }")));
        assert!(!starts_at_the_head(&request("subscription { doetanksUpdated(after: 7) { name } }")));
        assert!(starts_at_the_head(&request(
            "subscription { timelineAppended(kinds: [\"cafe\"]) { summary } }"
        )));
        // The doetank as it is now comes first, for this subscriber alone.
        assert!(!starts_at_the_head(&request(
            "subscription($id: ID!) { doetankUpdated(id: $id, afterVersion: 3) { name } }"
        )));
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

    /// A subscriber whose client reads nothing while the others go on fills its socket's
    /// bound and gets `LAGGED` and `complete` instead of holding answers for it; the others
    /// hear everything, and the execution goes on without it.
    #[tokio::test]
    async fn a_subscriber_behind_its_bound_is_dropped_with_lagged() {
        use super::super::outbox::Outbox;
        use doetank_domain::EncodedEvent;
        use doetank_store::{EventStore, ExpectedVersion, Metadata, StreamId};
        use futures::channel::mpsc;

        let store = EventStore::connect_with("sqlite::memory:", 1).await.expect("store");
        store.migrate().await.expect("migrate");
        let app = crate::App::new(store.clone());
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(app.feed.clone().follow(shutdown));
        let subscriptions = Subscriptions {
            schema: crate::graphql::build_schema(app.clone()),
            shared: SharedSubscriptions::default(),
            reads: None,
        };
        let session = || {
            let mut data = Data::default();
            crate::graphql::insert_loaders(&mut data, &app, None);
            data.insert(Viewer { role: Some(crate::auth::Role::Facilitator), ..Viewer::default() });
            Arc::new(data)
        };
        let query = "subscription { events { position } }";
        let protocol = super::super::ws_protocol::Protocol::TransportWs;
        let (sink, mut reading) = mpsc::channel::<Message>(64);
        let reader = Arc::new(Outbox::new(sink));
        // Room for one frame in the socket and one more in the queue.
        let (sink, mut idle) = mpsc::channel::<Message>(0);
        let stalled = Arc::new(Outbox::with_bound(sink, 100));
        let subscribe = |id: &str, mailbox: Arc<dyn Mailbox>| {
            subscriptions.subscribe(
                Request::new(query),
                session(),
                id,
                Wrapping::Socket(protocol.envelope(id)),
                mailbox,
            )
        };
        let _a = subscribe("a", reader.clone());
        let _b = subscribe("b", stalled.clone());
        // The execution starts on its own task; let it take its place at the head first.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(subscriptions.shared.stats(), SharingStats { executions: 1, subscribers: 2 });

        let text = |frame: Option<Message>| -> serde_json::Value {
            match frame {
                Some(Message::Text(text)) => serde_json::from_str(&text).expect("json"),
                other => panic!("expected a text frame, got {other:?}"),
            }
        };
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
            let heard = text(reading.next().await);
            assert_eq!(heard["id"], "a");
            assert_eq!(
                heard["payload"],
                serde_json::json!({ "data": { "events": { "position": position } } })
            );
        }
        assert_eq!(subscriptions.shared.stats(), SharingStats { executions: 1, subscribers: 1 });
        // The stalled client reads at last: what fitted, then LAGGED as graphql-transport-ws's
        // `error`, which ends the subscription (no `complete` follows it).
        let draining = tokio::spawn(async move { stalled.drain().await });
        let mut frames = Vec::new();
        loop {
            let frame = text(idle.next().await);
            let done = frame["type"] != "next";
            frames.push(frame);
            if done {
                break;
            }
        }
        draining.await.expect("drain task").expect("drained");
        let lagged = &frames[frames.len() - 1];
        assert_eq!(lagged["type"], "error", "{frames:?}");
        assert_eq!(lagged["payload"][0]["extensions"]["code"], "LAGGED", "{frames:?}");
        let after = tokio::time::timeout(std::time::Duration::from_millis(100), idle.next()).await;
        assert!(matches!(after, Err(_) | Ok(None)), "nothing after the error: {after:?}");
        let positions: Vec<_> = frames[..frames.len() - 1]
            .iter()
            .map(|f| f["payload"]["data"]["events"]["position"].as_i64().expect("a position"))
            .collect();
        assert!(!positions.is_empty() && positions.len() < 5, "{positions:?}");
        assert_eq!(positions, (1..=positions.len() as i64).collect::<Vec<_>>());
    }
}
