//! Where a subscription over server-sent events resumes after a dropped connection.
//!
//! A browser's `EventSource` reconnects by itself, asking the same URL again with the `id:` of
//! the last event it received as `Last-Event-ID`. The URL's `after` is the one it opened with,
//! so without this a reconnected dashboard either heard everything since that first position
//! again or, without `after`, lost what was written while it was away. Each answer of a
//! resumable subscription therefore carries its cursor (what the subscription's own resume
//! argument takes: a log position, or `doetankUpdated`'s version) as its event id, and a
//! request that comes back with one starts after it.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use async_graphql::Context;

/// A `Last-Event-ID` sent back: the subscription starts after it, whatever its arguments say
/// (the URL holds the cursor it first opened with, this one is later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeFrom(pub i64);

/// The cursor of the answer a subscription's execution yielded last, for its transport to send
/// as that answer's event id. The resolver sets it as it yields an item, and the transport
/// takes it as the answer comes out: an execution computes one answer at a time, so the two
/// always belong together.
#[derive(Clone, Debug)]
pub struct ResumeMark(Arc<AtomicI64>);

/// No cursor: the answer was an error, or its subscription cannot resume.
pub(crate) const UNMARKED: i64 = -1;

impl Default for ResumeMark {
    fn default() -> Self {
        ResumeMark(Arc::new(AtomicI64::new(UNMARKED)))
    }
}

impl ResumeMark {
    /// The answer now being yielded resumes after `cursor`.
    pub fn set(&self, cursor: i64) {
        self.0.store(cursor, Ordering::Relaxed);
    }

    /// The cursor of the answer just yielded, if it has one; the next answer starts unmarked.
    pub fn take(&self) -> Option<i64> {
        Some(self.0.swap(UNMARKED, Ordering::Relaxed)).filter(|cursor| *cursor != UNMARKED)
    }
}

/// The cursor a reconnecting client resumes from, if it came back with one.
pub(super) fn resumed(ctx: &Context<'_>) -> Option<i64> {
    ctx.data_opt::<ResumeFrom>().map(|from| from.0)
}

/// Marks each answer with its cursor as it is yielded, where the execution keeps a mark (a
/// query run by the GraphQL executor alone keeps none).
#[derive(Clone, Default)]
pub(super) struct Marker(Option<ResumeMark>);

impl Marker {
    pub(super) fn of(ctx: &Context<'_>) -> Marker {
        Marker(ctx.data_opt::<ResumeMark>().cloned())
    }

    pub(super) fn mark(&self, cursor: i64) {
        if let Some(mark) = &self.0 {
            mark.set(cursor);
        }
    }
}

/// Whether a subscription's execution has taken its place in the log: its start is fixed, and
/// every event after it will reach it. A shared execution starts on a task of its own, a little
/// after its first subscriber joined; until it is listening, an event written meanwhile may
/// come before its start. Operators and tests read it through the shared executions' counts.
#[derive(Clone, Debug, Default)]
pub struct Listening(Arc<AtomicBool>);

impl Listening {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Tells the execution's [`Listening`], if it keeps one, that the subscription now follows the
/// log from a fixed position.
pub(super) fn now_listening(ctx: &Context<'_>) {
    if let Some(listening) = ctx.data_opt::<Listening>() {
        listening.set();
    }
}

#[cfg(test)]
mod tests {
    use super::ResumeMark;

    #[test]
    fn a_mark_is_taken_once() {
        let mark = ResumeMark::default();
        assert_eq!(mark.take(), None);
        mark.set(0);
        assert_eq!(mark.take(), Some(0), "position 0 is a cursor too: after nothing");
        assert_eq!(mark.take(), None, "the next answer starts unmarked");
        mark.set(7);
        mark.set(9);
        assert_eq!(mark.take(), Some(9));
    }
}
