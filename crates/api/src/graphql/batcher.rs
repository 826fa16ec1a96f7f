//! Batched look-ups within a request, without a task or a timer. async-graphql's `DataLoader`
//! loads each batch in a spawned task behind a timer, even at zero delay; tokio rounds a sleep
//! up to its next millisecond tick and fires it when a worker next turns the timer, so every
//! level of a query (a doetank, then its members and lessons, then the members' names) waited
//! about a millisecond: a lone doetank query took 4.2 ms where the trivial one takes 0.4. Here
//! the first key of a batch opens it and yields once, so that every field resolved in the same
//! pass adds its key (as the timer allowed); it then loads the batch in the request's own task
//! and hands the rows to everyone who asked. The load is boxed so that the fields awaiting a
//! batch carry a pointer, not the loader's future (see `objects`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::dataloader::Loader;
use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};

type Loaded<V, E> = Result<Arc<HashMap<String, V>>, E>;

/// The batch that still takes keys: its number, its keys, and where its rows will come.
struct Open<V, E> {
    number: u64,
    keys: Vec<String>,
    done: Shared<oneshot::Receiver<Loaded<V, E>>>,
}

struct Slot<V, E> {
    open: Option<Open<V, E>>,
    opened: u64,
}

pub struct Batcher<L: Loader<String>> {
    loader: L,
    slot: Mutex<Slot<L::Value, L::Error>>,
}

impl<L> Batcher<L>
where
    L: Loader<String>,
    L::Error: Sync,
{
    pub fn new(loader: L) -> Self {
        Batcher { loader, slot: Mutex::new(Slot { open: None, opened: 0 }) }
    }

    fn slot(&self) -> MutexGuard<'_, Slot<L::Value, L::Error>> {
        // A poisoned slot only means a panic elsewhere; what it holds is still a valid batch.
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value under `key`, loaded together with every other key asked for in the same pass.
    /// The first key of a batch leads it: it yields once, then loads the batch and hands the
    /// rows to the others; only the leader drives the load.
    pub async fn load_one(&self, key: String) -> Result<Option<L::Value>, L::Error> {
        let (number, lead, done) = {
            let mut slot = self.slot();
            match slot.open.as_mut() {
                Some(open) => {
                    open.keys.push(key.clone());
                    (open.number, None, open.done.clone())
                }
                None => {
                    let (rows, done) = oneshot::channel();
                    let done = done.shared();
                    slot.opened += 1;
                    let number = slot.opened;
                    slot.open = Some(Open { number, keys: vec![key.clone()], done: done.clone() });
                    (number, Some(rows), done)
                }
            }
        };
        let Some(rows) = lead else {
            return match done.await {
                Ok(loaded) => Ok(loaded?.get(&key).cloned()),
                // The leader was dropped (its request given up) before loading: this key alone.
                Err(oneshot::Canceled) => {
                    self.close(number);
                    Ok(Box::pin(self.loader.load(std::slice::from_ref(&key))).await?.remove(&key))
                }
            };
        };
        tokio::task::yield_now().await;
        // Only a follower that saw this leader gone closes its batch, so this finds it open; if
        // not, the leader still loads its own key.
        let mut keys = self.close(number).unwrap_or_else(|| vec![key.clone()]);
        keys.sort_unstable();
        keys.dedup();
        // How well requests batch: one line per look-up, with its number of keys.
        tracing::debug!(loader = std::any::type_name::<L>(), keys = keys.len(), "loader batch");
        let loaded = Box::pin(self.loader.load(&keys)).await.map(Arc::new);
        let _ = rows.send(loaded.clone());
        Ok(loaded?.get(&key).cloned())
    }

    /// Takes batch `number` out of the slot, if it is still the open one; returns its keys.
    fn close(&self, number: u64) -> Option<Vec<String>> {
        let mut slot = self.slot();
        if slot.open.as_ref().is_some_and(|open| open.number == number) {
            slot.open.take().map(|open| open.keys)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Doubles numbers, counting its loads; "fail" fails the batch.
    #[derive(Default)]
    struct Doubles {
        loads: AtomicUsize,
    }

    impl Loader<String> for Doubles {
        type Value = i64;
        type Error = Arc<String>;
        async fn load(&self, keys: &[String]) -> Result<HashMap<String, i64>, Self::Error> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            if keys.iter().any(|k| k == "fail") {
                return Err(Arc::new("failed".into()));
            }
            Ok(keys.iter().filter_map(|k| Some((k.clone(), k.parse::<i64>().ok()? * 2))).collect())
        }
    }

    #[tokio::test]
    async fn keys_asked_for_in_one_pass_are_loaded_together() {
        let batcher = Batcher::new(Doubles::default());
        let keys = ["1", "2", "2", "3", "x"];
        let found = futures::future::join_all(keys.iter().map(|k| batcher.load_one(k.to_string()))).await;
        let found: Vec<Option<i64>> = found.into_iter().map(|r| r.expect("loaded")).collect();
        assert_eq!(found, vec![Some(2), Some(4), Some(4), Some(6), None]);
        assert_eq!(batcher.loader.loads.load(Ordering::SeqCst), 1, "one load for the pass");

        // A key asked for after the batch closed opens the next one.
        assert_eq!(batcher.load_one("5".into()).await.expect("loaded"), Some(10));
        assert_eq!(batcher.loader.loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn fields_resolved_as_async_graphql_does_share_one_batch() {
        // An object's fields are polled through a FuturesUnordered; a field that answers at
        // once must not close the batch for the ones behind it.
        use futures::stream::{FuturesUnordered, StreamExt};
        let batcher = Batcher::new(Doubles::default());
        let fields: FuturesUnordered<_> = (1..=6)
            .map(|n| {
                let batcher = &batcher;
                async move {
                    if n % 2 == 0 {
                        Ok(Some(n))
                    } else {
                        batcher.load_one(n.to_string()).await
                    }
                }
            })
            .collect();
        let mut found: Vec<Option<i64>> = fields.map(|r| r.expect("loaded")).collect().await;
        found.sort_unstable();
        assert_eq!(found, vec![Some(2), Some(2), Some(4), Some(6), Some(6), Some(10)]);
        assert_eq!(batcher.loader.loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_batch_fails_everyone_in_it_and_the_next_batch_starts_afresh() {
        let batcher = Batcher::new(Doubles::default());
        let (a, b) = futures::join!(batcher.load_one("1".into()), batcher.load_one("fail".into()));
        assert!(a.is_err() && b.is_err());
        assert_eq!(batcher.load_one("4".into()).await.expect("loaded"), Some(8));
    }

    #[tokio::test]
    async fn keys_of_a_batch_whose_leader_is_dropped_are_still_loaded() {
        let batcher = Batcher::new(Doubles::default());
        let mut leader = Box::pin(batcher.load_one("1".into()));
        assert!(futures::poll!(leader.as_mut()).is_pending(), "the leader yields");
        let follower = batcher.load_one("2".into());
        // The leader's request is given up before it loads.
        drop(leader);
        assert_eq!(follower.await.expect("loaded"), Some(4));
        // And the dead batch no longer takes keys: the next one loads as a batch again.
        let (a, b) = futures::join!(batcher.load_one("3".into()), batcher.load_one("4".into()));
        assert_eq!((a.expect("a"), b.expect("b")), (Some(6), Some(8)));
        assert_eq!(batcher.loader.loads.load(Ordering::SeqCst), 2);
    }
}
