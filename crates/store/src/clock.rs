//! The time the log records an append at.
//!
//! The wall clock, except while a documented history is being written (the demo's 2013): then
//! that history's own dates, so that time travel (`asOf`) and the log's activity per period show
//! the history as it happened rather than the minute it was loaded.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SubsecRound, Utc};

/// Shared by every handle of one store.
#[derive(Debug, Default)]
pub(crate) struct RecordingClock {
    history: Mutex<Option<DateTime<Utc>>>,
}

impl RecordingClock {
    /// The time to record an append at now; microseconds, what PostgreSQL keeps, so both
    /// backends export the same text.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let history = *self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.unwrap_or_else(Utc::now).trunc_subsecs(6)
    }

    fn set(&self, at: Option<DateTime<Utc>>) {
        *self.history.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }
}

/// While it lives, the store records appends at the history's dates instead of the wall clock.
/// Dropping it (also on an early return) gives the wall clock back.
#[must_use = "the wall clock is back as soon as the history is dropped"]
pub struct RecordedHistory {
    clock: Arc<RecordingClock>,
    last: DateTime<Utc>,
}

impl RecordedHistory {
    pub(crate) fn begin(clock: Arc<RecordingClock>, at: DateTime<Utc>) -> Self {
        clock.set(Some(at));
        RecordedHistory { clock, last: at }
    }

    /// Appends from here on are recorded at `at`. A date before the last one set is taken as
    /// the last one: the log's times never go back as its positions go on.
    pub fn at(&mut self, at: DateTime<Utc>) {
        self.last = self.last.max(at);
        self.clock.set(Some(self.last));
    }
}

impl Drop for RecordedHistory {
    fn drop(&mut self) {
        self.clock.set(None);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_history_s_dates_hold_while_it_lives_and_never_go_back() {
        let clock = Arc::new(RecordingClock::default());
        let day = |d| Utc.with_ymd_and_hms(2013, 3, d, 10, 0, 0).single().unwrap_or_default();
        let mut history = RecordedHistory::begin(clock.clone(), day(15));
        assert_eq!(clock.now(), day(15));
        history.at(day(28));
        assert_eq!(clock.now(), day(28));
        history.at(day(1));
        assert_eq!(clock.now(), day(28), "a date before the last one is the last one");
        drop(history);
        assert!(clock.now() > day(28), "the wall clock is back: {}", clock.now());
    }
}
