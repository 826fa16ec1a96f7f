//! Loaders: the lookups that nested lists would otherwise make one by one (N+1), by key in
//! batches (see `batcher`).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use doetank_store::EventStore;

use crate::error::AppError;
use crate::rows::*;
use crate::sql::{self, Arg};

pub struct MemberLoader(pub EventStore);
pub struct ChallengeLoader(pub EventStore);
pub struct DoetankLoader(pub EventStore);
pub struct MembershipsByDoetank(pub EventStore);
pub struct LessonsByDoetank(pub EventStore);
pub struct PhasesByDoetank(pub EventStore);
pub struct ActivitiesByDoetank(pub EventStore);

fn in_list(keys: &[String]) -> (String, Vec<Arg>) {
    (placeholders(1, keys.len()), keys.iter().cloned().map(Arg::Text).collect())
}

async fn by_key<T: sql::AnyRow + sql::OwnRow>(
    store: &EventStore,
    select: &str,
    column: &str,
    order: &str,
    keys: &[String],
) -> Result<Vec<T>, Arc<AppError>> {
    let (list, args) = in_list(keys);
    let sql = format!("{select} WHERE {column} IN ({list}) {order}");
    sql::fetch_small(store, &sql, &args).await.map_err(Arc::new)
}

impl Loader<String> for MemberLoader {
    type Value = MemberRow;
    type Error = Arc<AppError>;
    async fn load(&self, keys: &[String]) -> Result<HashMap<String, MemberRow>, Self::Error> {
        let rows: Vec<MemberRow> = by_key(&self.0, MEMBER_SELECT, "m.id", "", keys).await?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

impl Loader<String> for ChallengeLoader {
    type Value = ChallengeRow;
    type Error = Arc<AppError>;
    async fn load(&self, keys: &[String]) -> Result<HashMap<String, ChallengeRow>, Self::Error> {
        let rows: Vec<ChallengeRow> = by_key(&self.0, CHALLENGE_SELECT, "id", "", keys).await?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

impl Loader<String> for DoetankLoader {
    type Value = DoetankRow;
    type Error = Arc<AppError>;
    async fn load(&self, keys: &[String]) -> Result<HashMap<String, DoetankRow>, Self::Error> {
        let rows: Vec<DoetankRow> = by_key(&self.0, DOETANK_SELECT, "d.id", "", keys).await?;
        Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

fn group<T>(rows: Vec<T>, key: impl Fn(&T) -> String) -> HashMap<String, Vec<T>> {
    let mut map: HashMap<String, Vec<T>> = HashMap::new();
    for row in rows {
        map.entry(key(&row)).or_default().push(row);
    }
    map
}

impl Loader<String> for MembershipsByDoetank {
    type Value = Vec<MembershipRow>;
    type Error = Arc<AppError>;
    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<MembershipRow>>, Self::Error> {
        let rows: Vec<MembershipRow> =
            by_key(&self.0, MEMBERSHIP_SELECT, "doetank_id", "ORDER BY role, joined_at, member_id", keys)
                .await?;
        Ok(group(rows, |r| r.doetank_id.clone()))
    }
}

impl Loader<String> for LessonsByDoetank {
    type Value = Vec<LessonRow>;
    type Error = Arc<AppError>;
    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<LessonRow>>, Self::Error> {
        let rows: Vec<LessonRow> =
            by_key(&self.0, LESSON_SELECT, "l.doetank_id", "ORDER BY l.position", keys).await?;
        Ok(group(rows, |r| r.doetank_id.clone()))
    }
}

impl Loader<String> for PhasesByDoetank {
    type Value = Vec<PhaseRow>;
    type Error = Arc<AppError>;
    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<PhaseRow>>, Self::Error> {
        let rows: Vec<PhaseRow> =
            by_key(&self.0, PHASE_SELECT, "doetank_id", "ORDER BY ordinal", keys).await?;
        Ok(group(rows, |r| r.doetank_id.clone()))
    }
}

impl Loader<String> for ActivitiesByDoetank {
    type Value = Vec<ActivityRow>;
    type Error = Arc<AppError>;
    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Vec<ActivityRow>>, Self::Error> {
        let rows: Vec<ActivityRow> =
            by_key(&self.0, ACTIVITY_SELECT, "doetank_id", "ORDER BY position", keys).await?;
        Ok(group(rows, |r| r.doetank_id.clone()))
    }
}
