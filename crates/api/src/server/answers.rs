//! Answers to queries already asked, served again while nothing they were computed from has
//! moved (the [`Stamp`], read from the database before executing). An answer that raced a write
//! is stamped with the older state and thrown away as soon as the newer one is seen, so a write
//! acknowledged by any node is seen by the next query on every node, cached or not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::OperationType;
use axum::body::Bytes;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::{Role, Viewer};
use crate::stamp::Stamp;

/// Bytes of cached answers kept at most; past it the cache starts over.
const CAPACITY_BYTES: usize = 32 * 1024 * 1024;

/// One question: the same text, operation, variables and viewer get the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    query: String,
    operation: Option<String>,
    variables: String,
    viewer: (Option<String>, Option<Uuid>, Option<&'static str>),
}

impl Question {
    pub fn new(request: &async_graphql::Request, viewer: &Viewer) -> Self {
        Question {
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
            viewer: (viewer.subject.clone(), viewer.member_id, viewer.role.map(Role::as_str)),
        }
    }

    fn size(&self) -> usize {
        self.query.len()
            + self.operation.as_ref().map_or(0, String::len)
            + self.variables.len()
            + self.viewer.0.as_ref().map_or(0, String::len)
    }
}

#[derive(Debug, Default)]
struct Entries {
    stamp: Option<Stamp>,
    answers: HashMap<Question, Bytes>,
    bytes: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Answers {
    entries: Arc<Mutex<Entries>>,
    /// Answers being computed, by stamp and question: one computation for many clients asking
    /// the same at once (after a commit every dashboard asks again).
    computing: InFlight,
}

/// The answers being computed, each with what its waiting requests receive it on.
type InFlight = Arc<Mutex<HashMap<(Stamp, Question), watch::Receiver<Option<Bytes>>>>>;

/// Who computes an answer asked by several clients at once.
pub enum Turn {
    /// This request computes it, and hands it on with [`Computing::done`].
    Compute(Computing),
    /// Another request computes it: its answer, or `None` where it failed or gave up, and this
    /// one computes it after all.
    Await(watch::Receiver<Option<Bytes>>),
}

/// An answer being computed; dropped without [`Self::done`], it lets the waiting requests go
/// compute it themselves.
pub struct Computing {
    key: Option<(Stamp, Question)>,
    computing: InFlight,
    answer: watch::Sender<Option<Bytes>>,
}

impl Computing {
    /// Hands the answer to every request waiting for it.
    pub fn done(self, answer: Bytes) {
        self.answer.send_replace(Some(answer));
    }
}

impl Drop for Computing {
    fn drop(&mut self) {
        if let (Some(key), Ok(mut computing)) = (self.key.take(), self.computing.lock()) {
            computing.remove(&key);
        }
    }
}

impl Turn {
    /// The answer another request computed, once it has; `None` where it did not.
    pub async fn awaited(mut receiver: watch::Receiver<Option<Bytes>>) -> Option<Bytes> {
        let answer = receiver.wait_for(Option::is_some).await.ok()?;
        answer.clone()
    }
}

impl Answers {
    /// Whether an answer to `question` is kept, under any stamp.
    pub fn knows(&self, question: &Question) -> bool {
        self.entries.lock().is_ok_and(|entries| entries.answers.contains_key(question))
    }

    /// The answer given to `question` under `stamp`, if any.
    pub fn get(&self, stamp: Stamp, question: &Question) -> Option<Bytes> {
        let entries = self.entries.lock().ok()?;
        if entries.stamp != Some(stamp) {
            return None;
        }
        entries.answers.get(question).cloned()
    }

    /// Whether this request computes the answer to `question` under `stamp`, or awaits another's.
    pub fn turn(&self, stamp: Stamp, question: &Question) -> Turn {
        let (answer, receiver) = watch::channel(None);
        let Ok(mut computing) = self.computing.lock() else {
            return Turn::Compute(Computing { key: None, computing: Arc::clone(&self.computing), answer });
        };
        let key = (stamp, question.clone());
        if let Some(other) = computing.get(&key) {
            return Turn::Await(other.clone());
        }
        computing.insert(key.clone(), receiver);
        Turn::Compute(Computing { key: Some(key), computing: Arc::clone(&self.computing), answer })
    }

    /// Keeps `answer` for `question` if it was computed under the newest stamp seen.
    pub fn put(&self, stamp: Stamp, question: Question, answer: Bytes) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.stamp != Some(stamp) {
            // Older answers were computed from an older state (or this one already is older).
            if entries.stamp.is_some_and(|s| s.newer_than(stamp)) {
                return;
            }
            *entries = Entries { stamp: Some(stamp), ..Entries::default() };
        }
        // Questions count too: a client sending large unique queries must not grow the cache.
        let size = answer.len() + question.size();
        if entries.bytes + size > CAPACITY_BYTES {
            entries.answers.clear();
            entries.bytes = 0;
        }
        entries.bytes += size;
        entries.answers.insert(question, answer);
    }
}

/// Whether the request is a query (not a mutation or subscription) that parses. The parsed
/// document stays in the request, so execution does not parse the text a second time (a
/// quarter of a new question's CPU was spent parsing it twice).
pub fn is_query(request: &mut async_graphql::Request) -> bool {
    operation_type(request) == Some(OperationType::Query)
}

/// The type of the operation `request` runs, if its text parses and names one (the parsed
/// document stays in the request, as in [`is_query`]).
pub fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    crate::graphql::operation(document, name.as_deref()).map(|op| op.node.ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(read_models: i64) -> Stamp {
        Stamp::at(read_models)
    }

    fn question(query: &str) -> Question {
        Question::new(&async_graphql::Request::new(query), &Viewer::anonymous())
    }

    #[test]
    fn an_answer_is_served_only_under_its_own_stamp() {
        let answers = Answers::default();
        answers.put(stamp(1), question("{ a }"), Bytes::from_static(b"1"));
        assert_eq!(answers.get(stamp(1), &question("{ a }")), Some(Bytes::from_static(b"1")));
        assert_eq!(answers.get(stamp(2), &question("{ a }")), None);
        // A late answer computed before the newest state is not kept.
        answers.put(stamp(2), question("{ b }"), Bytes::from_static(b"2"));
        answers.put(stamp(1), question("{ c }"), Bytes::from_static(b"late"));
        assert_eq!(answers.get(stamp(2), &question("{ c }")), None);
        assert_eq!(answers.get(stamp(2), &question("{ b }")), Some(Bytes::from_static(b"2")));
    }

    /// `{ a }` asked twice at once under one stamp: the first request's computation, and what
    /// the second awaits.
    fn asked_twice(answers: &Answers) -> (Computing, watch::Receiver<Option<Bytes>>) {
        let Turn::Compute(first) = answers.turn(stamp(1), &question("{ a }")) else {
            panic!("nobody computes it yet")
        };
        let Turn::Await(second) = answers.turn(stamp(1), &question("{ a }")) else {
            panic!("the first computes it")
        };
        (first, second)
    }

    #[tokio::test]
    async fn one_request_computes_an_answer_asked_by_many_at_once() {
        let answers = Answers::default();
        let (first, second) = asked_twice(&answers);
        // Another question, or the same under another stamp, is computed apart.
        assert!(matches!(answers.turn(stamp(1), &question("{ b }")), Turn::Compute(_)));
        assert!(matches!(answers.turn(stamp(2), &question("{ a }")), Turn::Compute(_)));
        first.done(Bytes::from_static(b"a"));
        assert_eq!(Turn::awaited(second).await, Some(Bytes::from_static(b"a")));
        // Done, the next request asking computes it (or finds it kept).
        assert!(matches!(answers.turn(stamp(1), &question("{ a }")), Turn::Compute(_)));
    }

    #[tokio::test]
    async fn requests_awaiting_an_answer_that_failed_compute_it_themselves() {
        let answers = Answers::default();
        let (first, second) = asked_twice(&answers);
        drop(first);
        assert_eq!(Turn::awaited(second).await, None);
        assert!(matches!(answers.turn(stamp(1), &question("{ a }")), Turn::Compute(_)));
    }

    #[test]
    fn large_questions_count_against_the_bound() {
        let answers = Answers::default();
        let big = format!("{{ a }} # {}", "x".repeat(CAPACITY_BYTES / 3));
        for n in 0..10 {
            answers.put(stamp(1), question(&format!("{big}{n}")), Bytes::from_static(b"1"));
        }
        let entries = answers.entries.lock().expect("lock");
        assert!(entries.bytes <= CAPACITY_BYTES, "{} bytes kept", entries.bytes);
        assert!(entries.answers.len() <= 3);
    }

    #[test]
    fn only_queries_are_kept() {
        assert!(is_query(&mut async_graphql::Request::new("{ a }")));
        assert!(is_query(&mut async_graphql::Request::new("query Q { a }")));
        assert!(!is_query(&mut async_graphql::Request::new("mutation { a }")));
        assert!(!is_query(&mut async_graphql::Request::new("subscription { a }")));
        assert!(!is_query(&mut async_graphql::Request::new("query A { a } mutation B { b }")));
        assert!(is_query(
            &mut async_graphql::Request::new("query A { a } mutation B { b }").operation_name("A")
        ));
        assert!(!is_query(&mut async_graphql::Request::new("{ a")));
    }
}
