//! Streams as this process last wrote them, so that deciding the next command on a stream needs
//! no read of it (on PostgreSQL that read was most of a command's time: a round trip before the
//! append's). Like an aggregate cache (Axon's caching repository, Commanded's aggregate
//! processes), but kept safe for more than one writer by the append itself:
//!
//! - an entry is always a prefix of the true stream: it is made from a read, or from the events
//!   this process appended right after it, and a failed or conflicting append drops it;
//! - so a decision on an entry is right exactly when its append at the entry's version
//!   succeeds; when another node or process wrote in between, that append is refused with a
//!   version conflict;
//! - a caller must decide again on a fresh read before it refuses anything decided on an entry
//!   (a rule, an expected version), since the state it saw may be old ([`StreamState::cached`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use doetank_domain::EncodedEvent;

use crate::backend::EventStore;
use crate::error::StoreError;
use crate::model::{AppendResult, StreamId};

/// Events kept in all (tens of MB at most); past it, arbitrary streams make room.
const EVENTS: usize = 65_536;
/// Longer streams are read each time rather than held.
const EVENTS_PER_STREAM: usize = 1_000;

/// A stream's events and version, to decide a command on.
#[derive(Clone, Debug)]
pub struct StreamState {
    pub version: i64,
    pub events: Arc<Vec<EncodedEvent>>,
    /// Taken from memory rather than read: another writer may have moved the stream on since.
    pub cached: bool,
}

impl EventStore {
    /// The stream's events and version to decide a command on: as this process last wrote it
    /// when it still knows (no read; the module doc says why that is safe and what a caller
    /// owes), else read from the log. `fresh` always reads.
    pub async fn stream_to_decide(&self, stream: &StreamId, fresh: bool) -> Result<StreamState, StoreError> {
        let key = stream.to_string();
        if !fresh {
            if let Some(known) = self.decisions.get(&key) {
                return Ok(known);
            }
        }
        let read = self.read_stream(stream, 1).await?;
        let version = read.last().map_or(0, |e| e.version);
        let events: Vec<EncodedEvent> = read
            .into_iter()
            .map(|e| EncodedEvent {
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload,
            })
            .collect();
        let events = Arc::new(events);
        self.decisions.put(&key, version, events.clone());
        Ok(StreamState { version, events, cached: false })
    }
}

/// A kept stream: its version and its events in order.
type Kept = (i64, Arc<Vec<EncodedEvent>>);

#[derive(Debug, Default)]
pub(crate) struct DecisionCache {
    kept: Mutex<Streams>,
}

#[derive(Debug, Default)]
struct Streams {
    streams: HashMap<String, Kept>,
    /// Events in all of `streams`.
    events: usize,
}

impl Streams {
    fn remove(&mut self, stream: &str) {
        if let Some((_, events)) = self.streams.remove(stream) {
            self.events -= events.len();
        }
    }

    fn insert(&mut self, stream: &str, version: i64, events: Arc<Vec<EncodedEvent>>) {
        self.remove(stream);
        while self.events + events.len() > EVENTS {
            match self.streams.keys().next().cloned() {
                Some(any) => self.remove(&any),
                None => break,
            }
        }
        self.events += events.len();
        self.streams.insert(stream.to_string(), (version, events));
    }
}

impl DecisionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, stream: &str) -> Option<StreamState> {
        let kept = self.lock();
        let (version, events) = kept.streams.get(stream)?;
        Some(StreamState { version: *version, events: events.clone(), cached: true })
    }

    /// Keeps what a read found.
    pub(crate) fn put(&self, stream: &str, version: i64, events: Arc<Vec<EncodedEvent>>) {
        if events.len() <= EVENTS_PER_STREAM {
            self.lock().insert(stream, version, events);
        }
    }

    /// After this process wrote `events` to `stream`: extends the entry when it held exactly
    /// the stream before them (or the stream is new), drops it otherwise.
    pub(crate) fn appended(&self, stream: &str, events: &[EncodedEvent], result: &AppendResult) {
        if result.deduplicated {
            return;
        }
        let before = result.stream_version - events.len() as i64;
        let mut kept = self.lock();
        let room = kept.events + events.len() <= EVENTS;
        let Streams { streams, events: total } = &mut *kept;
        match streams.get_mut(stream) {
            Some((version, known))
                if *version == before && known.len() + events.len() <= EVENTS_PER_STREAM && room =>
            {
                // Unshared unless a decision is reading it right now: no copy.
                Arc::make_mut(known).extend_from_slice(events);
                *version = result.stream_version;
                *total += events.len();
            }
            None if before == 0 && events.len() <= EVENTS_PER_STREAM => {
                kept.insert(stream, result.stream_version, Arc::new(events.to_vec()))
            }
            _ => kept.remove(stream),
        }
    }

    pub(crate) fn forget(&self, stream: &str) {
        self.lock().remove(stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(n: u64) -> EncodedEvent {
        EncodedEvent {
            event_type: "NoteTaken".into(),
            schema_version: 1,
            payload: serde_json::json!({ "n": n }),
        }
    }

    fn written(stream_version: i64) -> AppendResult {
        AppendResult { stream_version, first_position: 1, last_position: 1, deduplicated: false }
    }

    #[test]
    fn an_entry_grows_only_by_what_follows_it() {
        let cache = DecisionCache::default();
        cache.appended("s", &[note(1)], &written(1));
        assert_eq!(cache.get("s").map(|s| s.version), Some(1), "a new stream is kept");
        cache.appended("s", &[note(2), note(3)], &written(3));
        let kept = cache.get("s").expect("kept");
        assert_eq!((kept.version, kept.events.len(), kept.cached), (3, 3, true));
        // Another writer's event 4 is not here: this process's append made version 5.
        cache.appended("s", &[note(5)], &written(5));
        assert!(cache.get("s").is_none(), "an entry with a gap is dropped");
        cache.appended("s", &[note(6)], &written(6));
        assert!(cache.get("s").is_none(), "an unknown stream's prefix is not guessed");
    }

    #[test]
    fn replays_change_nothing_and_long_streams_are_not_kept() {
        let cache = DecisionCache::default();
        cache.put("s", 2, Arc::new(vec![note(1), note(2)]));
        cache.appended("s", &[note(3)], &AppendResult { deduplicated: true, ..written(3) });
        assert_eq!(cache.get("s").map(|s| s.version), Some(2));
        let long: Vec<EncodedEvent> = (0..=EVENTS_PER_STREAM as u64).map(note).collect();
        cache.put("long", long.len() as i64, Arc::new(long));
        assert!(cache.get("long").is_none());
        cache.forget("s");
        assert!(cache.get("s").is_none());
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = DecisionCache::default();
        let ten: Vec<EncodedEvent> = (0..10).map(note).collect();
        for n in 0..EVENTS {
            cache.put(&n.to_string(), 10, Arc::new(ten.clone()));
        }
        let kept = cache.lock();
        assert_eq!(kept.events, EVENTS / 10 * 10);
        assert_eq!(kept.events, kept.streams.values().map(|(_, e)| e.len()).sum::<usize>());
    }
}
