//! Figures for dashboards: computed per field when queried, and all at once for
//! `statisticsUpdated`, which sends them only when they changed. Rule 5 hides informal doetanks
//! from the figures of those who may not see them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::{Context, Object, Result, SimpleObject};
use doetank_store::Backend;

use super::errors::GqlResult;
use super::mutation::app;
use super::scalars::*;
use super::viewer;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::rows::KeyCount;
use crate::sql::{self, Filter};
use crate::visibility;

/// How many things share one value.
#[derive(SimpleObject, Clone, PartialEq, Debug)]
pub struct Count {
    /// The value: a phase, a status, a kind or an organisation.
    pub key: String,
    /// How many have it.
    pub count: i64,
}

/// How long doetanks take over one phase.
#[derive(SimpleObject, Clone, PartialEq, Debug)]
pub struct PhaseDuration {
    /// The phase.
    pub phase: Phase,
    /// Median days from start to completion over every doetank that completed the phase.
    pub median_days: Option<f64>,
    /// How many doetanks completed it (those the median is over).
    pub completed: i64,
}

/// The figures of a `Statistics`: asked for field by field (a query), or known already (a
/// subscription computed them all to see whether they changed).
#[derive(Default)]
pub struct Statistics(Option<Arc<Figures>>);

impl Statistics {
    pub fn known(figures: Arc<Figures>) -> Self {
        Statistics(Some(figures))
    }
}

/// Every figure, as one viewer may see them.
#[derive(Clone, PartialEq, Debug)]
pub struct Figures {
    doetanks_per_phase: Vec<Count>,
    doetanks_per_status: Vec<Count>,
    lessons_per_kind: Vec<Count>,
    lessons_per_phase: Vec<Count>,
    members_per_organisation: Vec<Count>,
    median_days_per_phase: Vec<PhaseDuration>,
}

/// Which figures a subscriber's selection reads: a change of the others is no news to it. One
/// flag per field of [`Figures`], by name, so a figure added there cannot be left out here.
#[derive(Clone, Copy, Debug)]
pub struct Asked {
    doetanks_per_phase: bool,
    doetanks_per_status: bool,
    lessons_per_kind: bool,
    lessons_per_phase: bool,
    members_per_organisation: bool,
    median_days_per_phase: bool,
}

impl Asked {
    /// The figures the field being resolved selects (through fragments too).
    pub fn of(ctx: &Context<'_>) -> Asked {
        let selection = ctx.look_ahead();
        let asked = |field: &str| selection.field(field).exists();
        Asked {
            doetanks_per_phase: asked("doetanksPerPhase"),
            doetanks_per_status: asked("doetanksPerStatus"),
            lessons_per_kind: asked("lessonsPerKind"),
            lessons_per_phase: asked("lessonsPerPhase"),
            members_per_organisation: asked("membersPerOrganisation"),
            median_days_per_phase: asked("medianDaysPerPhase"),
        }
    }
}

impl Figures {
    /// These figures with those `asked` leaves out emptied: what a subscriber compares.
    pub fn as_asked(&self, asked: Asked) -> Figures {
        fn kept<T: Clone>(on: bool, figure: &[T]) -> Vec<T> {
            if on {
                figure.to_vec()
            } else {
                Vec::new()
            }
        }
        Figures {
            doetanks_per_phase: kept(asked.doetanks_per_phase, &self.doetanks_per_phase),
            doetanks_per_status: kept(asked.doetanks_per_status, &self.doetanks_per_status),
            lessons_per_kind: kept(asked.lessons_per_kind, &self.lessons_per_kind),
            lessons_per_phase: kept(asked.lessons_per_phase, &self.lessons_per_phase),
            members_per_organisation: kept(asked.members_per_organisation, &self.members_per_organisation),
            median_days_per_phase: kept(asked.median_days_per_phase, &self.median_days_per_phase),
        }
    }

    pub async fn compute(backend: &Backend, viewer: &Viewer) -> Result<Figures, AppError> {
        let (
            doetanks_per_phase,
            doetanks_per_status,
            lessons_per_kind,
            lessons_per_phase,
            members_per_organisation,
            median_days_per_phase,
        ) = futures::try_join!(
            doetanks_per_phase(backend, viewer),
            doetanks_per_status(backend, viewer),
            lessons_per_kind(backend, viewer),
            lessons_per_phase(backend, viewer),
            members_per_organisation(backend),
            median_days_per_phase(backend, viewer),
        )?;
        Ok(Figures {
            doetanks_per_phase,
            doetanks_per_status,
            lessons_per_kind,
            lessons_per_phase,
            members_per_organisation,
            median_days_per_phase,
        })
    }
}

/// The dashboard's figures over the doetanks and members the viewer may see (rule 5 hides informal
/// doetanks here too).
#[Object]
impl Statistics {
    /// How many doetanks are in each phase now (concluded ones included, in the phase they ended
    /// in).
    async fn doetanks_per_phase(&self, ctx: &Context<'_>) -> Result<Vec<Count>> {
        let viewer = viewer(ctx);
        self.figure(|f| &f.doetanks_per_phase, doetanks_per_phase(backend(ctx)?, &viewer)).await
    }
    /// How many doetanks are active, completed or discontinued.
    async fn doetanks_per_status(&self, ctx: &Context<'_>) -> Result<Vec<Count>> {
        let viewer = viewer(ctx);
        self.figure(|f| &f.doetanks_per_status, doetanks_per_status(backend(ctx)?, &viewer)).await
    }
    /// How many lessons tell what works, what does not, or an insight.
    async fn lessons_per_kind(&self, ctx: &Context<'_>) -> Result<Vec<Count>> {
        let viewer = viewer(ctx);
        self.figure(|f| &f.lessons_per_kind, lessons_per_kind(backend(ctx)?, &viewer)).await
    }
    /// How many lessons were recorded for each phase.
    async fn lessons_per_phase(&self, ctx: &Context<'_>) -> Result<Vec<Count>> {
        let viewer = viewer(ctx);
        self.figure(|f| &f.lessons_per_phase, lessons_per_phase(backend(ctx)?, &viewer)).await
    }
    /// How many members (erased ones not counted) each organisation has, most first. An
    /// organisation is one whatever the case its members wrote it in, and is named as most of
    /// them wrote it.
    async fn members_per_organisation(&self, ctx: &Context<'_>) -> Result<Vec<Count>> {
        self.figure(|f| &f.members_per_organisation, members_per_organisation(backend(ctx)?)).await
    }
    /// For each phase, the median number of days doetanks took to complete it.
    async fn median_days_per_phase(&self, ctx: &Context<'_>) -> Result<Vec<PhaseDuration>> {
        let viewer = viewer(ctx);
        self.figure(|f| &f.median_days_per_phase, median_days_per_phase(backend(ctx)?, &viewer)).await
    }
}

impl Statistics {
    /// The figure `known` picks when the figures are known, else what `compute` reads (only
    /// then is it run).
    async fn figure<T: Clone>(
        &self,
        known: fn(&Figures) -> &T,
        compute: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<T> {
        match &self.0 {
            Some(figures) => Ok(known(figures).clone()),
            None => compute.await.gql(),
        }
    }
}

fn backend<'a>(ctx: &'a Context<'_>) -> Result<&'a Backend> {
    Ok(app(ctx)?.store.backend())
}

/// Which rows a statistic may count: rule 5 hides informal doetanks here too.
#[derive(Clone, Copy)]
enum Scope {
    /// Rows of `rm_doetanks`.
    Doetanks,
    /// Rows with a `doetank_id`.
    OfDoetanks,
}

fn scoped(viewer: &Viewer, scope: Scope) -> Filter {
    let mut f = Filter::default();
    match scope {
        Scope::Doetanks => visibility::restrict_doetanks(&mut f, "t", viewer),
        Scope::OfDoetanks => visibility::restrict_by_doetank(&mut f, "t", viewer),
    }
    f
}

/// Counts the visible rows of `table`, grouped by `column`.
async fn counts(
    backend: &Backend,
    viewer: &Viewer,
    table: &str,
    column: &str,
    scope: Scope,
) -> Result<Vec<Count>, AppError> {
    let f = scoped(viewer, scope);
    let sql_text = format!(
        "SELECT t.{column} AS key, COUNT(*) AS count FROM {table} t{} GROUP BY t.{column} ORDER BY 1",
        f.counting_where_sql()
    );
    let rows: Vec<KeyCount> = sql::fetch_all(backend, &sql_text, &f.args).await?;
    Ok(rows
        .into_iter()
        .map(|r| Count { key: r.key.unwrap_or_else(|| "NONE".into()), count: r.count })
        .collect())
}

async fn doetanks_per_phase(backend: &Backend, viewer: &Viewer) -> Result<Vec<Count>, AppError> {
    counts(backend, viewer, "rm_doetanks", "current_phase", Scope::Doetanks).await
}

async fn doetanks_per_status(backend: &Backend, viewer: &Viewer) -> Result<Vec<Count>, AppError> {
    counts(backend, viewer, "rm_doetanks", "status", Scope::Doetanks).await
}

async fn lessons_per_kind(backend: &Backend, viewer: &Viewer) -> Result<Vec<Count>, AppError> {
    counts(backend, viewer, "rm_lessons", "kind", Scope::OfDoetanks).await
}

async fn lessons_per_phase(backend: &Backend, viewer: &Viewer) -> Result<Vec<Count>, AppError> {
    counts(backend, viewer, "rm_lessons", "phase", Scope::OfDoetanks).await
}

async fn members_per_organisation(backend: &Backend) -> Result<Vec<Count>, AppError> {
    let rows: Vec<KeyCount> = sql::fetch_all(
        backend,
        // One organisation however its members' registrations spelt its case, as the
        // `organisation` filters match it; named by its most common spelling.
        "SELECT (SELECT s.organisation FROM rm_members s WHERE NOT s.erased \
                 AND lower(s.organisation) = g.folded \
                 GROUP BY s.organisation ORDER BY COUNT(*) DESC, s.organisation LIMIT 1) AS key, \
                g.count \
         FROM (SELECT lower(organisation) AS folded, COUNT(*) AS count FROM rm_members \
               WHERE NOT erased GROUP BY lower(organisation)) g \
         ORDER BY 2 DESC, 1",
        &[],
    )
    .await?;
    Ok(rows.into_iter().map(|r| Count { key: r.key.unwrap_or_default(), count: r.count }).collect())
}

async fn median_days_per_phase(backend: &Backend, viewer: &Viewer) -> Result<Vec<PhaseDuration>, AppError> {
    let mut f = scoped(viewer, Scope::OfDoetanks);
    f.clauses.push("t.completed_at IS NOT NULL".into());
    // Only the columns the spans need: every completed phase is read (157,896 rows at 26,316
    // doetanks, where reading their doetanks' ids and summaries too took the figure from
    // 201–223 to 229–261 ms on SQLite and from 80–87 to 103–117 ms on PostgreSQL).
    let sql_text = format!(
        "SELECT t.phase, t.started_at, t.completed_at FROM rm_doetank_phases t{}",
        f.counting_where_sql()
    );
    let rows: Vec<PhaseSpan> = sql::fetch_all(backend, &sql_text, &f.args).await?;
    let mut days: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for row in &rows {
        let span = parse_time(&row.completed_at) - parse_time(&row.started_at);
        days.entry(row.phase.as_str()).or_default().push(span.num_seconds() as f64 / 86_400.0);
    }
    Ok(doetank_domain::Phase::ALL
        .iter()
        .map(|phase| {
            let mut spans = days.remove(phase.as_str()).unwrap_or_default();
            PhaseDuration {
                phase: (*phase).into(),
                median_days: median(&mut spans),
                completed: spans.len() as i64,
            }
        })
        .collect())
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] })
}

/// A completed phase, as its median reads it.
#[derive(Debug, sqlx::FromRow)]
struct PhaseSpan {
    phase: String,
    started_at: String,
    completed_at: String,
}
