//! Rows read by the data loaders, kept across requests while the [`Stamp`] they were read under
//! still holds. Kept answers serve a question asked again; kept rows serve a new question about
//! data already read (a dashboard asking other fields of the same doetank, a query text that
//! differs only in a comment). Loader rows do not depend on the viewer: rule 5 is applied around
//! them, on every request.
//!
//! Only queries over HTTP use them, after the request's stamp is read; mutations (which must
//! read their own writes) and WebSocket connections (which live across many states) do not.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::dataloader::Loader;

use crate::stamp::Stamp;

/// Keys kept at most (a key's value may be a list, e.g. a doetank's lessons); past it the
/// cache starts over.
const CAPACITY: usize = 10_000;

/// A kept value: `None` records that the key has no row, so asking again costs no query.
type Value = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
struct Entries {
    stamp: Option<Stamp>,
    rows: HashMap<(TypeId, String), Value>,
}

/// The rows of every loader, shared by the requests of one server.
#[derive(Clone, Default)]
pub struct KeptRows {
    entries: Arc<Mutex<Entries>>,
}

impl KeptRows {
    /// The kept values of loader `L` for `keys` under `stamp`, and the keys it must still load.
    fn get<L: 'static, V: Clone + 'static>(
        &self,
        stamp: Stamp,
        keys: &[String],
    ) -> (HashMap<String, V>, Vec<String>) {
        let mut found = HashMap::new();
        let Ok(entries) = self.entries.lock() else { return (found, keys.to_vec()) };
        if entries.stamp != Some(stamp) {
            return (found, keys.to_vec());
        }
        let mut missing = Vec::new();
        for key in keys {
            let kept = entries.rows.get(&(TypeId::of::<L>(), key.clone()));
            match kept.and_then(|v| v.downcast_ref::<Option<V>>()) {
                Some(Some(value)) => {
                    found.insert(key.clone(), value.clone());
                }
                Some(None) => {}
                None => missing.push(key.clone()),
            }
        }
        (found, missing)
    }

    /// Keeps what loader `L` loaded for `keys` under `stamp`, unless a newer stamp was seen.
    fn put<L: 'static, V: Clone + Send + Sync + 'static>(
        &self,
        stamp: Stamp,
        keys: &[String],
        loaded: &HashMap<String, V>,
    ) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.stamp != Some(stamp) {
            if entries.stamp.is_some_and(|s| s.newer_than(stamp)) {
                return;
            }
            *entries = Entries { stamp: Some(stamp), rows: HashMap::new() };
        }
        if entries.rows.len() + keys.len() > CAPACITY {
            entries.rows.clear();
        }
        for key in keys {
            let value: Value = Arc::new(loaded.get(key).cloned());
            entries.rows.insert((TypeId::of::<L>(), key.clone()), value);
        }
    }
}

/// Loader `L`, looking in the kept rows first when the request has a stamp.
pub struct Kept<L> {
    loader: L,
    kept: Option<(KeptRows, Stamp)>,
}

impl<L> Kept<L> {
    pub fn new(loader: L, kept: Option<(KeptRows, Stamp)>) -> Self {
        Kept { loader, kept }
    }
}

impl<L> Loader<String> for Kept<L>
where
    L: Loader<String>,
    L::Value: Clone + Send + Sync + 'static,
{
    type Value = L::Value;
    type Error = L::Error;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let Some((kept, stamp)) = &self.kept else { return self.loader.load(keys).await };
        let (mut found, missing) = kept.get::<L, L::Value>(*stamp, keys);
        if !missing.is_empty() {
            let loaded = self.loader.load(&missing).await?;
            kept.put::<L, L::Value>(*stamp, &missing, &loaded);
            found.extend(loaded);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Numbers;
    struct Words;

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn rows_are_served_only_under_their_stamp_and_per_loader() {
        let kept = KeptRows::default();
        let loaded: HashMap<String, i64> = [("a".to_string(), 1)].into();
        kept.put::<Numbers, i64>(Stamp::at(1), &keys(&["a", "b"]), &loaded);

        let (found, missing) = kept.get::<Numbers, i64>(Stamp::at(1), &keys(&["a", "b", "c"]));
        assert_eq!(found, loaded, "a kept row is served");
        assert_eq!(missing, keys(&["c"]), "a key kept as absent is not loaded again");
        let (found, missing) = kept.get::<Words, i64>(Stamp::at(1), &keys(&["a"]));
        assert!(found.is_empty() && missing == keys(&["a"]), "another loader's rows are not served");
        let (found, missing) = kept.get::<Numbers, i64>(Stamp::at(2), &keys(&["a"]));
        assert!(found.is_empty() && missing == keys(&["a"]), "rows of an older stamp are not served");
    }

    #[test]
    fn rows_read_before_a_newer_stamp_was_seen_are_not_kept() {
        let kept = KeptRows::default();
        kept.put::<Numbers, i64>(Stamp::at(2), &keys(&["a"]), &[("a".to_string(), 2)].into());
        kept.put::<Numbers, i64>(Stamp::at(1), &keys(&["b"]), &[("b".to_string(), 1)].into());
        let (found, missing) = kept.get::<Numbers, i64>(Stamp::at(2), &keys(&["a", "b"]));
        assert_eq!(found, [("a".to_string(), 2)].into());
        assert_eq!(missing, keys(&["b"]));
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let kept = KeptRows::default();
        for n in 0..3 * CAPACITY {
            kept.put::<Numbers, usize>(Stamp::at(1), &[n.to_string()], &[(n.to_string(), n)].into());
        }
        assert!(kept.entries.lock().expect("lock").rows.len() <= CAPACITY);
    }
}
