//! Live subscriptions that would compute the same answers share one execution.
//!
//! Ten thousand dashboards on one doetank, or on the log from now on, ask the same question as
//! the same kind of viewer: executing it once per subscriber per event (a cursor, a visibility
//! check, a read of the doetank's row, the GraphQL execution) is the same work ten thousand
//! times. A subscription is shared when its answers depend only on its text, variables and
//! viewer and it starts at the head of the log: `doetankUpdated`, `doetanksUpdated`, and
//! `events` without `after`.
//! A joiner then receives every answer computed after it joined, which is exactly what it would
//! have received alone (it starts "from now" either way).
//!
//! One that starts after a cursor (`events(after: N)`, `afterVersion`, a stream's
//! `Last-Event-ID`: every dashboard that comes back after a deploy) replays what it missed on its
//! own execution, written by a task of its own as fast as its client reads, then takes a seat in
//! a shared one: each answer carries its cursor (see `graphql::resume`), and an execution
//! remembers the cursor of the last answer it wrote, its seam. Once its replay has reached the
//! head of the log, a subscriber that has heard up to `n` takes a seat in an execution whose
//! seam is at or before `n` (what that one writes from then on is everything after its seam,
//! and what it writes up to `n` is not written to this subscriber again), or starts one at `n`.
//! This holds only where an answer is the same whoever computes it, and when: an event, a
//! timeline line, a lesson, a doetank at a version; `doetanksUpdated` and `statisticsUpdated`
//! resumed run alone.
//!
//! An execution writes each answer to its subscribers' sockets itself, serialised once
//! (`outbox`). A subscriber whose socket has more than its bound waiting (its client does not
//! read) is dropped with `LAGGED` rather than holding answers for it without bound;
//! resubscribing with `after` (the last position it saw) loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
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
use crate::graphql::resume::{Listening, ResumeFrom, ResumeMark, UNMARKED};
use crate::graphql::{declared_variables, DoetankSchema};
use crate::live::AtTheHead;
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

/// Where a subscriber that caught up may take a seat: the execution of those asking the same
/// from now, or that of those that caught up, which has one of its own beside it (the one from
/// now started at the head, which a seat of the past cannot take for its start).
struct SeatKeys {
    from_now: String,
    caught_up: String,
}

impl SeatKeys {
    fn of(key: String) -> Self {
        SeatKeys { caught_up: format!("{key}\u{1f}caught up"), from_now: key }
    }
}

/// What a subscriber replaying on its own needs to take a seat, or to start an execution.
struct Seating {
    keys: SeatKeys,
    /// Its request, to start an execution with (its text, variables, operation).
    template: Request,
    data: Arc<Data>,
    /// Set while its replay's last event was the last the log had: only then does it ask for a
    /// seat. A shared execution drops a client that reads too slowly, and one started far
    /// behind would replay the rest itself; a replay waits for its client instead.
    at_the_head: AtTheHead,
}

/// A subscriber's replay on its own execution, until it takes a seat.
struct Replay {
    shared: SharedSubscriptions,
    schema: DoetankSchema,
    seating: Seating,
    _counted: Replaying,
}

/// Counts a replay among the server's while it runs (its task may end by being aborted).
struct Replaying(Arc<AtomicUsize>);

impl Replaying {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Replaying(count.clone())
    }
}

impl Drop for Replaying {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Replay {
    /// Writes `answers` to `member` until it has a seat, or they end, or it is done.
    async fn run(self, member: Arc<Member>, token: u64, mut answers: BoxStream<'static, Answer>) {
        while let Some(answer) = answers.next().await {
            if !member.replay(&answer).await {
                return;
            }
            if let Some(after) = answer.resume().filter(|_| self.seating.at_the_head.is_set()) {
                if self.shared.seat(&self, after, &member, token) {
                    return;
                }
            }
        }
        // Its own execution ended (refused, or done): as a shared one's end, `complete`.
        member.finish(None);
    }
}

/// The shared executions of a server, by what they compute.
#[derive(Clone, Default)]
pub struct SharedSubscriptions {
    running: Arc<Mutex<HashMap<String, Arc<Execution>>>>,
    /// Subscribers replaying on their own before they take a seat.
    replaying: Arc<AtomicUsize>,
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
    /// The cursor of the last answer it wrote (or, started for a subscriber that caught up,
    /// the cursor it started after): every answer after it reaches whoever joins now.
    /// [`UNMARKED`] until it knows one. Read and written under the members' lock.
    seam: AtomicI64,
}

/// A subscriber of a shared execution: its socket and subscription id, or its HTTP stream.
struct Member {
    reach: Reach,
    id: String,
    state: Mutex<MemberState>,
}

/// Where a subscriber's answers go: framed for its socket or stream, posted to its mailbox.
pub(super) struct Reach {
    mailbox: Arc<dyn Mailbox>,
    wrapping: Wrapping,
}

impl Reach {
    pub(super) fn new(mailbox: Arc<dyn Mailbox>, wrapping: Wrapping) -> Self {
        Reach { mailbox, wrapping }
    }

    /// Posts `answer`; whether its frame ends the subscription by itself.
    pub(super) fn post(&self, answer: &Answer, beyond_bound: bool) -> Result<bool, Refused> {
        let (frame, ends) = self.wrapping.frame(answer);
        self.mailbox.post(Message::Text(frame.into()), beyond_bound).map(|()| ends)
    }

    /// Posts what completes subscription `id`, where the protocol has such a frame.
    pub(super) fn complete(&self, id: &str) {
        if let Some(complete) = self.wrapping.complete(id) {
            let _ = self.mailbox.post(complete, true);
        }
    }
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
    /// The cursor it had heard up to on its own replay when it took its seat: the shared
    /// execution's answers up to it are not written to it again.
    seated_after: Option<i64>,
    /// The execution it is a member of, once it is (weak: the execution holds its members).
    seat: Option<std::sync::Weak<Execution>>,
    /// Stopped by its client, dropped, or completed: nothing more is written for it.
    done: bool,
}

/// What a socket holds of its subscription to a shared execution. Dropping it leaves.
pub struct Joined {
    token: u64,
    member: Arc<Member>,
    /// The task replaying its past on its own execution until it takes a seat, for one that
    /// started after a cursor.
    replay: Option<tokio::task::AbortHandle>,
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
            self.member.reach.complete(&self.member.id);
        }
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        if let Some(replay) = &self.replay {
            replay.abort();
        }
        let seat = {
            let mut state = self.member.lock();
            state.done = true;
            state.seat.take()
        };
        if let Some(execution) = seat.and_then(|seat| seat.upgrade()) {
            execution.lock().remove(&self.token);
            execution.left.notify_one();
        }
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
        // Heard already on its own replay, before it took its seat.
        if answer.resume().is_some_and(|cursor| state.seated_after.is_some_and(|after| cursor <= after)) {
            return true;
        }
        if let Some(going) = self.post_heard(&mut state, answer) {
            return going;
        }
        // Its client reads too slowly to keep up: dropped rather than queued without bound.
        if let Ok(false) = self.reach.post(&lagged(), true) {
            self.reach.complete(&self.id);
        }
        self.done(&mut state);
        false
    }

    /// Posts `answer` within the bound: whether the subscription goes on (not once its frame
    /// ended it or its mailbox is gone), or none when the mailbox is full.
    fn post_heard(&self, state: &mut MemberState, answer: &Answer) -> Option<bool> {
        match self.reach.post(answer, false) {
            Ok(ends) => {
                state.heard = true;
                // An `error` frame ends the subscription: no `complete` follows it.
                if ends {
                    self.done(state);
                }
                Some(!ends)
            }
            Err(Refused::Gone) => {
                self.done(state);
                Some(false)
            }
            Err(Refused::Full) => None,
        }
    }

    /// Nothing more is written for this member: its mailbox is told so.
    fn done(&self, state: &mut MemberState) {
        state.done = true;
        self.reach.mailbox.finished();
    }

    /// Writes `answer` of its own replay, waiting while its mailbox is full rather than
    /// dropping it with `LAGGED`: a replay goes as fast as its client reads, as an execution of
    /// its own always did. False once it is done (stopped, gone, or ended by this answer).
    async fn replay(&self, answer: &Answer) -> bool {
        // Armed only once a post was refused, then tried again before it is waited on: a frame
        // taken out in between is not missed, and a mailbox with room costs no wait per answer.
        let mut room = None;
        loop {
            {
                let mut state = self.lock();
                if state.done {
                    return false;
                }
                if let Some(going) = self.post_heard(&mut state, answer) {
                    return going;
                }
            }
            match room.take() {
                Some(room) => room.await,
                None => room = Some(self.reach.mailbox.room()),
            }
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
            if self.reach.post(error, true).unwrap_or(true) {
                self.done(&mut state);
                return;
            }
        }
        self.reach.complete(&self.id);
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

    /// The members `answer` is written to: those seated before it is. Its cursor becomes the
    /// seam under the same lock, so a member seated after it has heard it on its own.
    fn members_for(&self, answer: &Answer) -> Vec<Arc<Member>> {
        let members = self.lock();
        if let Some(cursor) = answer.resume() {
            self.seam.store(cursor, Ordering::Relaxed);
        }
        members.values().cloned().collect()
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

    /// Subscribers that started after a cursor and are replaying what they missed on their own
    /// execution, not yet seated (after a deploy, the dashboards that came back catching up).
    pub fn replaying(&self) -> usize {
        self.replaying.load(Ordering::Relaxed)
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
            None => self.start(&mut running, schema, key, copy_request(request), data, UNMARKED),
        };
        member.lock().seat = Some(Arc::downgrade(&execution));
        execution.lock().insert(token, member.clone());
        Joined { token, member, replay: None }
    }

    /// Starts an execution of `request` for `key`, whose answers after `seam` reach whoever
    /// joins it now.
    fn start(
        &self,
        running: &mut HashMap<String, Arc<Execution>>,
        schema: &DoetankSchema,
        key: String,
        request: Request,
        data: &Arc<Data>,
        seam: i64,
    ) -> Arc<Execution> {
        let listening = Listening::default();
        let execution = Arc::new(Execution {
            members: Mutex::default(),
            left: Notify::new(),
            listening: listening.clone(),
            seam: AtomicI64::new(seam),
        });
        running.insert(key.clone(), execution.clone());
        let mark = ResumeMark::default();
        let mut request = request.data(mark.clone()).data(listening);
        let asked = Asked::of(&mut request);
        let answers =
            asked.order_each(schema.execute_stream_with_session_data(request, data.clone())).boxed();
        // Writes are attempted without waiting: a coop budget running out would make each of
        // them look like a full socket (the task yields on its own instead).
        tokio::spawn(tokio::task::unconstrained(self.clone().produce(key, answers, mark, execution.clone())));
        execution
    }

    /// Joins `keys`' execution once it has replayed its past: `answers` (its own execution,
    /// from its cursor) are written to it by a task of its own, and after each it asks for a
    /// seat (see [`Self::seat`]); seated, its own execution ends. A thousand dashboards that
    /// reconnect after a deploy each replay what they missed and then share, rather than each
    /// running its own execution for good.
    fn join_after(
        &self,
        schema: &DoetankSchema,
        seating: Seating,
        member: Member,
        answers: BoxStream<'static, Answer>,
    ) -> Joined {
        let member = Arc::new(member);
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let _counted = Replaying::new(&self.replaying);
        let replay = Replay { shared: self.clone(), schema: schema.clone(), seating, _counted };
        let task = tokio::spawn(replay.run(member.clone(), token, answers));
        Joined { token, member, replay: Some(task.abort_handle()) }
    }

    /// A seat for `member`, which has heard everything up to `after` on its own execution: in
    /// a running execution of its question whose every answer after `after` is still to come,
    /// or in one started for such subscribers at `after`. False while the one running for them
    /// is ahead of it: it goes on alone and asks again at its next answer.
    fn seat(&self, replay: &Replay, after: i64, member: &Arc<Member>, token: u64) -> bool {
        let mut running = self.lock();
        let take = |execution: &Arc<Execution>, members: &mut HashMap<u64, Arc<Member>>| {
            let mut state = member.lock();
            // Stopped meanwhile: its replay ends, and it takes no seat.
            if !state.done {
                state.seated_after = Some(after);
                state.seat = Some(Arc::downgrade(execution));
                members.insert(token, member.clone());
            }
            true
        };
        let keys = &replay.seating.keys;
        for key in [&keys.from_now, &keys.caught_up] {
            let Some(execution) = running.get(key) else { continue };
            let mut members = execution.lock();
            let seam = execution.seam.load(Ordering::Relaxed);
            if seam != UNMARKED && seam <= after {
                return take(execution, &mut members);
            }
        }
        if running.contains_key(&keys.caught_up) {
            return false;
        }
        let request = copy_request(&replay.seating.template).data(ResumeFrom(after));
        let (schema, data, key) = (&replay.schema, &replay.seating.data, keys.caught_up.clone());
        let execution = self.start(&mut running, schema, key, request, data, after);
        let mut members = execution.lock();
        take(&execution, &mut members)
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
    let members = execution.members_for(answer);
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
        let plan = match request.parsed_query() {
            Ok(_) => share_plan(&request, &data),
            Err(_) => None,
        };
        // A request its variables refuse is refused by `alone`, as it would be alone; asked only
        // of one that would be shared, since `alone` asks it of the others.
        let plan = plan.filter(|_| declared_variables::refusal_of(&mut request).is_none());
        match plan {
            None => Subscribed::Alone(self.alone(request, data)),
            Some((key, start)) => {
                let member = Member {
                    reach: Reach::new(mailbox, wrapping),
                    id: id.to_string(),
                    state: Mutex::default(),
                };
                if start == Start::Now {
                    return Subscribed::Shared(self.shared.join(&self.schema, key, &request, &data, member));
                }
                let template = copy_request(&request);
                let at_the_head = AtTheHead::default();
                let answers = self.alone(request.data(at_the_head.clone()), data.clone());
                let seating = Seating { keys: SeatKeys::of(key), template, data, at_the_head };
                let joined = self.shared.join_after(&self.schema, seating, member, answers);
                Subscribed::Shared(joined)
            }
        }
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

/// Where a subscription that may share an execution starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// With the next event: it joins an execution as it is.
    Now,
    /// After this cursor: it replays on its own execution, then takes a seat in a shared one.
    After(i64),
}

/// Whether `request` may share an execution, under which key (what its answers depend on: its
/// text, operation, variables and viewer, but not the token's expiry, which each socket
/// enforces itself, nor where it starts), and where it starts.
fn share_plan(request: &Request, data: &Data) -> Option<(String, Start)> {
    let viewer = data.get(&std::any::TypeId::of::<Viewer>())?.downcast_ref::<Viewer>()?;
    let opening = opening(request)?;
    let resumed =
        request.data.get(&std::any::TypeId::of::<ResumeFrom>()).and_then(|r| r.downcast_ref::<ResumeFrom>());
    let start = match resumed {
        Some(ResumeFrom(after)) if opening.catches_up => Start::After(*after),
        Some(_) => return None,
        None => opening.start,
    };
    let mut variables = request.variables.clone();
    if let Some(name) = &opening.start_variable {
        variables.remove(name);
    }
    let variables = serde_json::to_string(&variables).ok()?;
    let key = format!(
        "{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{variables}\u{1f}{}",
        viewer.subject, viewer.member_id, viewer.role, request.operation_name, request.query
    );
    Some((key, start))
}

/// How a subscription that may be shared opens.
struct Opening {
    start: Start,
    /// Whether it may replay on its own and then take a seat: its answers are each the same
    /// whoever computes them and whenever (an event, a timeline line, a lesson, a doetank at a
    /// version), and carry the cursor they come in the order of.
    catches_up: bool,
    /// The variable that holds where it starts, if one does: not part of what it asks.
    start_variable: Option<async_graphql::Name>,
}

/// A subscription whose every root field is `__typename`, `doetanksUpdated` without `after`,
/// `statisticsUpdated` without `initial`, or one of `events`, `timelineAppended`,
/// `lessonRecorded` and `doetankUpdated` (which start after `after` / `afterVersion` where that
/// holds a number, and otherwise with the next event). One that starts after a cursor has that
/// one root field alone: its answers' cursors are then the order of its answers.
fn opening(request: &Request) -> Option<Opening> {
    use async_graphql::Value;
    let document = super::query_text::parse(&request.query)
        .or_else(|| async_graphql::parser::parse_query(&request.query).ok())?;
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    if operation.node.ty != OperationType::Subscription {
        return None;
    }
    let items = &operation.node.selection_set.node.items;
    let mut opening = Opening { start: Start::Now, catches_up: false, start_variable: None };
    for selection in items {
        let Selection::Field(field) = &selection.node else { return None };
        let field = &field.node;
        let (start, catches_up) = match field.name.node.as_str() {
            "__typename" => continue,
            "doetanksUpdated" => ("after", false),
            "statisticsUpdated" => ("initial", false),
            "events" | "timelineAppended" | "lessonRecorded" => ("after", true),
            "doetankUpdated" => ("afterVersion", true),
            _ => return None,
        };
        let Some(argument) = field.get_argument(start) else {
            opening.catches_up = catches_up && items.len() == 1;
            continue;
        };
        if !catches_up || items.len() != 1 {
            return None;
        }
        opening.catches_up = true;
        // The value given, in the text or by a variable (without its default, which would start
        // it where its declaration says: not worth reading here).
        let given = argument
            .node
            .clone()
            .into_const_with(|name| {
                let value = match request.variables.get(&name) {
                    Some(value) => Ok(value.clone()),
                    None if has_default(operation, &name) => Err(()),
                    None => Ok(Value::Null),
                };
                opening.start_variable = Some(name);
                value
            })
            .ok()?;
        opening.start = match given {
            Value::Null => Start::Now,
            // Anything else is refused by its own execution, as it would be alone.
            Value::Number(n) => Start::After(n.as_i64().filter(|n| *n >= 0)?),
            _ => return None,
        };
    }
    Some(opening)
}

/// Whether `operation` declares a default for variable `name`.
fn has_default(
    operation: &async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>,
    name: &async_graphql::Name,
) -> bool {
    operation
        .node
        .variable_definitions
        .iter()
        .any(|definition| definition.node.name.node == *name && definition.node.default_value.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> Request {
        Request::new(query)
    }

    /// Where a request starts, if it may share: `Now`, `After(n)` (replays alone, then takes a
    /// seat), or `None` (alone throughout).
    fn start(request: Request) -> Option<Start> {
        opening(&request).map(|opening| opening.start)
    }

    fn with(query: &str, variables: serde_json::Value) -> Request {
        request(query).variables(async_graphql::Variables::from_json(variables))
    }

    #[test]
    fn subscriptions_start_now_or_after_a_cursor_or_alone() {
        use Start::{After, Now};
        assert_eq!(start(request("subscription { events { position } }")), Some(Now));
        assert_eq!(start(request("subscription($id: ID!) { doetankUpdated(id: $id) { name } }")), Some(Now));
        assert_eq!(start(request("subscription { doetanksUpdated { name } }")), Some(Now));
        assert_eq!(start(request("subscription { lessonRecorded(kind: WORKS) { title } }")), Some(Now));
        assert_eq!(
            start(request("subscription { statisticsUpdated { lessonsPerKind { count } } }")),
            Some(Now)
        );
        assert_eq!(
            start(request("subscription { statisticsUpdated(initial: true) { lessonsPerKind { count } } }")),
            None
        );
        assert_eq!(
            start(request("subscription { events(types: [\"X\"]) { position } __typename }")),
            Some(Now)
        );
        assert_eq!(
            start(request("subscription { timelineAppended(kinds: [\"cafe\"]) { summary } }")),
            Some(Now)
        );
        // A cursor: it replays alone, then takes a seat.
        assert_eq!(start(request("subscription { events(after: 0) { position } }")), Some(After(0)));
        assert_eq!(start(request("subscription { timelineAppended(after: 7) { summary } }")), Some(After(7)));
        assert_eq!(start(request("subscription { lessonRecorded(after: 7) { title } }")), Some(After(7)));
        assert_eq!(
            start(request("subscription($id: ID!) { doetankUpdated(id: $id, afterVersion: 3) { name } }")),
            Some(After(3))
        );
        let by_variable = "subscription($a: Int) { events(after: $a) { position } }";
        assert_eq!(start(with(by_variable, serde_json::json!({ "a": 5 }))), Some(After(5)));
        assert_eq!(start(with(by_variable, serde_json::json!({ "a": null }))), Some(Now));
        assert_eq!(start(with(by_variable, serde_json::json!({}))), Some(Now));
        let defaulted = "subscription($a: Int = 5) { events(after: $a) { position } }";
        assert_eq!(start(with(defaulted, serde_json::json!({}))), None);
        // Refused by its own execution, as alone.
        assert_eq!(start(request("subscription { events(after: -1) { position } }")), None);
        assert_eq!(start(request("subscription { events(after: \"x\") { position } }")), None);
        // Beside another root field the cursors would not be one order; a doetank's or the
        // figures' state is not the same whoever computes it when: alone.
        assert_eq!(start(request("subscription { events(after: 1) { position } __typename }")), None);
        assert_eq!(start(request("subscription { doetanksUpdated(after: 7) { name } }")), None);
        assert_eq!(
            start(request("subscription { ...F } fragment F on Subscription { events { position } }")),
            None
        );
        assert_eq!(start(request("{ events { edges { node { position } } } }")), None);
        assert_eq!(start(request("subscription { events { position ")), None);
        let two = "subscription A { events { position } } subscription B { events(after: 1) { position } }";
        assert_eq!(start(request(two).operation_name("A")), Some(Now));
        assert_eq!(start(request(two).operation_name("B")), Some(After(1)));
        assert_eq!(start(request(two)), None);
    }

    #[test]
    fn a_resumed_stream_catches_up_only_where_answers_are_the_same_whoever_computes_them() {
        let mut data = Data::default();
        data.insert(Viewer { role: Some(crate::auth::Role::Facilitator), ..Viewer::default() });
        let resumed =
            |query: &str| share_plan(&request(query).data(ResumeFrom(9)), &data).map(|(_, start)| start);
        assert_eq!(resumed("subscription { events { position } }"), Some(Start::After(9)));
        assert_eq!(resumed("subscription { events(after: 2) { position } }"), Some(Start::After(9)));
        assert_eq!(resumed("subscription { doetanksUpdated { name } }"), None);
        assert_eq!(resumed("subscription { statisticsUpdated { lessonsPerKind { count } } }"), None);
        // Where it starts is not part of what it asks: all share one key.
        let key = |variables: serde_json::Value| {
            share_plan(&with("subscription($a: Int) { events(after: $a) { position } }", variables), &data)
                .map(|(key, _)| key)
        };
        assert_eq!(key(serde_json::json!({ "a": 1 })), key(serde_json::json!({ "a": 2 })));
        assert_eq!(key(serde_json::json!({ "a": 1 })), key(serde_json::json!({})));
    }

    #[test]
    fn the_key_tells_viewers_and_variables_apart_but_not_expiries() {
        let key = |viewer: Viewer, variables: serde_json::Value| {
            let mut data = Data::default();
            data.insert(viewer);
            let request = request("subscription($id: ID!) { doetankUpdated(id: $id) { name } }")
                .variables(async_graphql::Variables::from_json(variables));
            share_plan(&request, &data).map(|(key, _)| key)
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
        assert_eq!(share_plan(&request("subscription { events { position } }"), &Data::default()), None);
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
