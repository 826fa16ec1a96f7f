//! Rule 5: a doetank works "under the radar" until it is made public. Until then it, its
//! lessons and its events are seen only by its members, its coach and facilitators. Every door
//! that shows doetanks (queries, lists, counts, statistics, subscriptions, the log) asks here.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use doetank_store::{doetank_visible_sql, DoetankViewer, EventStore, Probe, RecordedEvent};
use uuid::Uuid;

use crate::auth::{Role, Viewer};
use crate::error::AppError;
use crate::rows::read_model_row;
use crate::sql::{self, Arg, Filter};

/// The SQL condition "doetank `alias` is visible to `viewer`", its argument bound in `f`;
/// `None` when the viewer sees every doetank.
pub fn doetank_condition(f: &mut Filter, alias: &str, viewer: &Viewer) -> Option<String> {
    if viewer.is_facilitator() {
        return None;
    }
    match (viewer.role, viewer.member_id) {
        (Some(Role::Member), Some(member)) => {
            f.args.push(Arg::Text(member.to_string()));
            Some(doetank_visible_sql(alias, Some(f.args.len())))
        }
        _ => Some(doetank_visible_sql(alias, None)),
    }
}

/// Restricts a doetank query (`alias` is `rm_doetanks`) to what the viewer may see.
pub fn restrict_doetanks(f: &mut Filter, alias: &str, viewer: &Viewer) {
    if let Some(condition) = doetank_condition(f, alias, viewer) {
        f.clauses.push(condition);
    }
}

/// Restricts a query over rows with a `doetank_id` column (`alias.doetank_id`). A page walks
/// its rows in order and probes each one's doetank; a count of every visible row is said as a
/// list of the visible doetanks instead (see [`Filter::counting_where_sql`]).
pub fn restrict_by_doetank(f: &mut Filter, alias: &str, viewer: &Viewer) {
    if let Some(condition) = doetank_condition(f, "vd", viewer) {
        count_by_visible_doetanks(f, alias, &condition);
        f.clauses.push(
            Probe::Exists.sql(&format!("FROM rm_doetanks vd WHERE vd.id = {alias}.doetank_id"), &condition),
        );
    }
}

/// Restricts a query over lessons (alias `l`). Each lesson tells whether its doetank is public
/// (`doetank_public`), so a page reads that with the lesson's row; only where a member may see
/// informal doetanks too is a lesson of one probed for its doetank. A count of every visible
/// lesson is said as a list of the visible doetanks, as [`restrict_by_doetank`] says it.
pub fn restrict_lessons(f: &mut Filter, viewer: &Viewer, sqlite: bool) {
    let bound = f.args.len();
    let Some(condition) = doetank_condition(f, "vd", viewer) else {
        return;
    };
    // Only a member's condition binds an argument (them); anyone else sees public doetanks alone.
    let public_only = f.args.len() == bound;
    count_by_visible_doetanks(f, "l", &condition);
    if public_only {
        f.clauses.push("l.doetank_public".to_string());
    } else {
        f.push_probed(sqlite, |probe| {
            let doetank = probe.sql("FROM rm_doetanks vd WHERE vd.id = l.doetank_id", &condition);
            format!("(l.doetank_public OR {doetank})")
        });
    }
}

/// Says the clause pushed next, rule 5 on `alias.doetank_id` under `condition`, as a list of
/// the visible doetanks for counts (see [`Filter::counting_where_sql`]).
fn count_by_visible_doetanks(f: &mut Filter, alias: &str, condition: &str) {
    f.counting_alternative = Some((
        f.clauses.len(),
        format!("{alias}.doetank_id IN (SELECT vd.id FROM rm_doetanks vd WHERE {condition})"),
    ));
}

pub async fn can_see(store: &EventStore, viewer: &Viewer, doetank_id: &str) -> Result<bool, AppError> {
    if viewer.is_facilitator() {
        return Ok(true);
    }
    let mut f = Filter::default();
    f.push("d.id = ?", doetank_id.to_string());
    restrict_doetanks(&mut f, "d", viewer);
    let sql_text = format!("SELECT COUNT(*) FROM rm_doetanks d{}", f.where_sql());
    Ok(sql::fetch_small_count(store, &sql_text, &f.args).await? > 0)
}

pub async fn can_see_id(store: &EventStore, viewer: &Viewer, doetank_id: Uuid) -> Result<bool, AppError> {
    can_see(store, viewer, &doetank_id.to_string()).await
}

/// How to find the doetank an event tells of, whose visibility (rule 5) the event shares: a
/// doetank's own events name it, a reuse's name the doetank drawn on (as `reuse(id)` shows it),
/// and an idea taken into a doetank names it. `None`: the event tells of no doetank. Told
/// without I/O, so that only these events wait for the read models. The log's SQL filter
/// (`doetank_store::LogFilter`) draws the same line.
pub enum ToldOf {
    Doetank(String),
    /// The reuse's id: its doetank is in `rm_reuses`.
    Reuse(String),
    /// The event's position: the doetank is in `rm_idea_follow_ups`.
    IdeaTaken(i64),
}

pub fn told_of(event: &RecordedEvent) -> Option<ToldOf> {
    let id = || event.aggregate_id().map(|id| id.to_string()).unwrap_or_default();
    match (event.stream_type.as_str(), event.event_type.as_str()) {
        ("doetank", _) => Some(ToldOf::Doetank(id())),
        ("reuse", _) => Some(ToldOf::Reuse(id())),
        (_, "IdeaTakenIntoDoetank") => Some(ToldOf::IdeaTaken(event.position)),
        _ => None,
    }
}

/// The doetank's id, read from the read models once they hold the event; an event whose row
/// they lack tells of no doetank anyone may see (`""`).
pub async fn doetank_of(store: &EventStore, told: ToldOf) -> Result<String, AppError> {
    let (sql_text, key) = match told {
        ToldOf::Doetank(id) => return Ok(id),
        ToldOf::Reuse(id) => {
            ("SELECT source_doetank_id AS doetank_id FROM rm_reuses WHERE id = $1", Arg::Text(id))
        }
        ToldOf::IdeaTaken(position) => {
            ("SELECT doetank_id FROM rm_idea_follow_ups WHERE position = $1", Arg::Int(position))
        }
    };
    let row: Option<DoetankOfRow> = sql::fetch_small_optional(store, sql_text, &[key]).await?;
    Ok(row.and_then(|row| row.doetank_id).unwrap_or_default())
}

read_model_row! {
    /// The doetank a reuse or a follow-up of an idea tells of.
    struct DoetankOfRow {
        doetank_id: Option<String>,
    }
}

/// Doetanks known to be public, shared by every live subscriber of a process. Going public is
/// one-way (only `DoetankMadePublic` touches it), so an id once seen public stays public and the
/// subscribers of the log need not ask the database again for each of its events.
#[derive(Clone, Debug, Default)]
pub struct PublicDoetanks(Arc<RwLock<HashSet<String>>>);

impl PublicDoetanks {
    /// `can_see`, answered from memory for doetanks already known to be public.
    pub async fn can_see(
        &self,
        store: &EventStore,
        viewer: &Viewer,
        doetank_id: &str,
    ) -> Result<bool, AppError> {
        if viewer.is_facilitator() || self.0.read().is_ok_and(|known| known.contains(doetank_id)) {
            return Ok(true);
        }
        let public = sql::fetch_small_count(
            store,
            "SELECT COUNT(*) FROM rm_doetanks WHERE id = $1 AND is_public",
            &[Arg::Text(doetank_id.to_string())],
        )
        .await?
            > 0;
        if public {
            if let Ok(mut known) = self.0.write() {
                known.insert(doetank_id.to_string());
            }
            return Ok(true);
        }
        can_see(store, viewer, doetank_id).await
    }
}

/// The log filter that hides informal doetanks' events from `viewer`.
pub fn log_viewer(viewer: &Viewer) -> Option<DoetankViewer> {
    if viewer.is_facilitator() {
        return None;
    }
    let member_id = match viewer.role {
        Some(Role::Member) => viewer.member_id.map(|m| m.to_string()),
        _ => None,
    };
    Some(DoetankViewer { member_id })
}
