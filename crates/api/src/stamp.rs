//! The stamp of the read models' state: what every read model a reader can see was computed
//! from. Every read model is a function of the log prefix the projector has applied, plus the
//! personal data kept beside it and, for "upcoming" lists, today's date. Caches of answers and
//! of rows keep what they hold under the stamp it was read under, and serve it only while the
//! database still reports that stamp.
//!
//! It is read from the database, not from this process: other processes may write the same
//! database (several nodes on PostgreSQL, or a second `serve` on one SQLite file).

use chrono::{NaiveDate, Utc};

use crate::app::App;
use crate::error::AppError;
use crate::one_state::{OneState, COUNTERS};
use crate::rows::CounterRow;
use crate::sql;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    read_models: i64,
    personal_data: i64,
    log_head: i64,
    today: NaiveDate,
}

impl Stamp {
    /// The stamp as the database knows it now: one small query.
    pub async fn read(app: &App) -> Result<Stamp, AppError> {
        // Every query asks for it: on a SQLite file it is read in this thread. An answer's first
        // read of it sets what every transaction of the answer must see (`one_state`).
        let counters: Vec<CounterRow> = match OneState::current_for(app.store.backend()) {
            Some(state) => state.stamp().await?,
            None => sql::fetch_small(&app.store, COUNTERS, &[]).await?,
        };
        let of = |name: &str| counters.iter().find(|c| c.name == name).map_or(0, |c| c.position);
        Ok(Stamp {
            read_models: of("read_models"),
            personal_data: of("personal_data"),
            log_head: of("log_head"),
            today: Utc::now().date_naive(),
        })
    }

    /// The position of the newest event the read models reflect.
    pub fn read_models(self) -> i64 {
        self.read_models
    }

    /// Whether `self` was seen after `other`: every counter only grows, except that a rebuild
    /// starts the read models over, which is then a new state whatever its position.
    pub fn newer_than(self, other: Stamp) -> bool {
        self != other
            && self.personal_data >= other.personal_data
            && self.log_head >= other.log_head
            && self.read_models >= other.read_models
            && self.today >= other.today
    }

    /// A stamp at a read-model position, for tests of the caches.
    #[cfg(test)]
    pub fn at(position: i64) -> Stamp {
        Stamp { read_models: position, personal_data: 0, log_head: position, today: NaiveDate::MIN }
    }
}
