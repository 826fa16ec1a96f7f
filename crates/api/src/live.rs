//! Live reading of the log for subscriptions. One follower task per process tails the log into a
//! bounded in-memory window; each subscriber is a cursor (its last position) that reads from
//! that window, or from the database when it has fallen behind the window. So a subscriber
//! that connects with `after` replays, then turns live, with no gap and no duplicate (it is the
//! same cursor throughout), and a slow subscriber costs memory for one page only and never
//! holds anyone else up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use doetank_store::{EventStore, RecordedEvent};
use futures::Stream;
use tokio::sync::watch;

use crate::error::AppError;

/// Events kept in memory for subscribers that are (nearly) live.
const WINDOW: usize = 10_000;
/// Events a subscriber takes per read.
const PAGE: usize = 256;
/// How often the follower looks for events written by other processes.
const POLL: Duration = Duration::from_millis(250);
/// Events the feed reads from the log at once.
const FOLLOW_BATCH: i64 = 1_000;

/// Whether the event a subscription took from the log last was the last one this node's feed
/// had: a replay that sees it set has caught up, and may take a seat in a shared execution
/// (which, unlike a replay, drops a client that reads too slowly).
#[derive(Clone, Debug, Default)]
pub struct AtTheHead(Arc<AtomicBool>);

impl AtTheHead {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, at_the_head: bool) {
        self.0.store(at_the_head, Ordering::Release);
    }
}

#[derive(Clone, Debug)]
pub struct LogFeed {
    store: EventStore,
    window: Arc<RwLock<VecDeque<Arc<RecordedEvent>>>>,
    capacity: usize,
    /// The last position the follower has put into the window.
    head: Arc<watch::Sender<i64>>,
}

impl LogFeed {
    pub fn new(store: EventStore) -> Self {
        Self::with_window(store, WINDOW)
    }

    /// A feed that keeps at most `window` events in memory.
    pub fn with_window(store: EventStore, window: usize) -> Self {
        LogFeed {
            store,
            window: Arc::default(),
            capacity: window.max(1),
            head: Arc::new(watch::channel(-1).0),
        }
    }

    pub fn watch(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// Tails the log into the window until `shutdown`.
    pub async fn follow(self, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.store.watch_head();
        let mut last = match self.store.head_position().await {
            Ok(head) => head,
            Err(err) => {
                tracing::error!(error = %err, "log feed cannot start");
                0
            }
        };
        self.head.send_replace(last);
        // Whether the log may hold more than the feed has read: always after a poll, after an
        // append only when it is past what was read (the append that woke the feed was often
        // read already, together with the one before it).
        let mut due = true;
        loop {
            if due {
                match self.store.read_all(last, FOLLOW_BATCH).await {
                    Ok(events) if !events.is_empty() => {
                        // Short of a full batch, this read reached the head: the next append
                        // wakes the feed, so it does not read again only to find nothing new.
                        let full = events.len() as i64 >= FOLLOW_BATCH;
                        last = events.last().map_or(last, |e| e.position);
                        if let Ok(mut window) = self.window.write() {
                            window.extend(events.into_iter().map(Arc::new));
                            while window.len() > self.capacity {
                                window.pop_front();
                            }
                        }
                        self.head.send_replace(last);
                        if full {
                            continue;
                        }
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "log feed read failed; retrying"),
                }
            }
            due = tokio::select! {
                _ = appended.changed() => *appended.borrow_and_update() > last,
                _ = tokio::time::sleep(POLL) => true,
                _ = shutdown.changed() => return,
            };
        }
    }

    /// The next events after `after`: from the window when it reaches back that far, else from
    /// the database.
    async fn read_after(&self, after: i64) -> Result<Vec<Arc<RecordedEvent>>, AppError> {
        if let Ok(window) = self.window.read() {
            if let Some(first) = window.front() {
                if first.position <= after + 1 {
                    let start = window.partition_point(|e| e.position <= after);
                    return Ok(window.iter().skip(start).take(PAGE).cloned().collect());
                }
            }
        }
        Ok(self.store.read_all(after, PAGE as i64).await?.into_iter().map(Arc::new).collect())
    }

    /// Every event after `after`, in global order, then every new one as it is written; telling
    /// `at_the_head`, if given, with each event whether it was the last the feed had.
    pub fn subscribe(
        &self,
        after: i64,
        at_the_head: Option<AtTheHead>,
    ) -> impl Stream<Item = Result<Arc<RecordedEvent>, AppError>> + Send + 'static {
        struct Cursor {
            feed: LogFeed,
            last: i64,
            buffer: VecDeque<Arc<RecordedEvent>>,
            wake: watch::Receiver<i64>,
            failed: bool,
            at_the_head: Option<AtTheHead>,
        }
        let wake = self.watch();
        // Starting at or past what the feed has read (a subscription from now, whose start is
        // the log's head read a moment ago): nothing of the past to replay.
        if let Some(flag) = &at_the_head {
            flag.set(after >= *wake.borrow());
        }
        let cursor = Cursor {
            wake,
            feed: self.clone(),
            last: after,
            buffer: VecDeque::new(),
            failed: false,
            at_the_head,
        };
        futures::stream::unfold(cursor, |mut c| async move {
            if c.failed {
                return None;
            }
            loop {
                if let Some(event) = c.buffer.pop_front() {
                    c.last = event.position;
                    // Exactly the feed's head: a cursor read from the database past a feed
                    // that is behind (a burst of appends) may have much of the log still to read.
                    if let Some(flag) = &c.at_the_head {
                        flag.set(c.buffer.is_empty() && c.last == *c.wake.borrow());
                    }
                    return Some((Ok(event), c));
                }
                match c.feed.read_after(c.last).await {
                    Ok(events) if !events.is_empty() => c.buffer.extend(events),
                    Ok(_) => {
                        // Caught up: sleep until the follower has seen more. Only a subscriber
                        // ahead of the follower (an `after` beyond its head) also polls: a
                        // timer per wait costs every one of 10,000 subscribers on every event.
                        let head = *c.wake.borrow_and_update();
                        if head > c.last {
                            // Written since the read above: read again, the wake-up is spent.
                            continue;
                        }
                        if c.last > head {
                            tokio::select! {
                                changed = c.wake.changed() => if changed.is_err() { return None },
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            }
                        } else if c.wake.changed().await.is_err() {
                            return None;
                        }
                    }
                    Err(err) => {
                        c.failed = true;
                        return Some((Err(err), c));
                    }
                }
            }
        })
    }
}
