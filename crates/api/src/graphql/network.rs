//! The network around the doetanks, as GraphQL: cafés, ideation days and their ideas, Right to
//! Challenge pilots, charters, knowledge reuse; and the lineage and timeline built over them.

use std::collections::{HashMap, HashSet};

use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};

use super::errors::GqlResult;
use super::mutation::OriginKind;
use super::network_mutation::{ApplicantFunctionInput, PilotOutcomeInput};
use super::objects::{load_doetank, load_lesson, load_member, Doetank, Lesson, Member};
use super::pagination::{in_log_order, total_if_asked, ByPosition, Counted, LogPaging, Page, Paging, Window};
use super::query::page_by_position;
use super::scalars::*;
use super::viewer;
use crate::app::App;
use crate::auth::Viewer;
use crate::rows::{placeholders, positioned, read_model_row};
use crate::sql::{self, Arg, Filter};
use crate::visibility;
use doetank_domain::aggregates::challenge::ChallengeOrigin;

fn app<'a>(ctx: &'a Context<'_>) -> Result<&'a App> {
    ctx.data::<App>()
}

async fn one<T: sql::AnyRow + sql::OwnRow>(ctx: &Context<'_>, select: &str, id: &str) -> Result<Option<T>> {
    sql::fetch_small_optional(
        &app(ctx)?.store,
        &format!("{select} WHERE t.id = $1"),
        &[id.to_string().into()],
    )
    .await
    .gql()
}

// ---------------------------------------------------------------- cafés

read_model_row! {
    pub struct CafeRow {
        id: String,
        title: String,
        date: String,
        venue: String,
        status: String,
        attendance: Option<i64>,
        cancel_reason: Option<String>,
        version: i64,
        created_position: i64,
    }
}

const CAFE_SELECT: &str =
    "SELECT t.id, t.title, t.date, t.venue, t.status, t.attendance, t.cancel_reason, t.version, \
     t.created_position FROM rm_cafes t";

/// Where a café stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CafeStatus {
    /// Planned and not yet held.
    Scheduled,
    /// It took place.
    Held,
    /// Called off.
    Cancelled,
}

/// Which cafés, by date.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum When {
    /// Scheduled for today or later, soonest first.
    Upcoming,
    /// Held, cancelled, or scheduled for a day gone by; most recent first.
    Past,
    /// Every café, by date.
    All,
}

read_model_row! {
    /// A talk or a workshop on a café's programme.
    #[derive(SimpleObject)]
    pub struct ProgramItem {
        /// The talk's topic or the workshop's title.
        pub title: String,
        /// The speaker or the workshop's host.
        pub person: String,
        #[graphql(skip)]
        pub kind: String,
    }
}

pub struct Cafe(CafeRow);

/// A Slimmernetwerk Café: a physical meeting with speakers and workshops, where challenges are
/// raised and doetanks recruit.
#[Object]
impl Cafe {
    /// The café's id (`cafe-<id>` is its stream).
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Its title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The day it is or was held.
    async fn date(&self) -> Option<NaiveDate> {
        parse_date(&self.0.date)
    }
    /// Where.
    async fn venue(&self) -> &str {
        &self.0.venue
    }
    /// Scheduled, held or cancelled.
    async fn status(&self) -> Option<CafeStatus> {
        parse_enum(&self.0.status)
    }
    /// How many people came, once held.
    async fn attendance(&self) -> Option<i64> {
        self.0.attendance
    }
    /// Why it was called off, if it was.
    async fn cancel_reason(&self) -> Option<&str> {
        self.0.cancel_reason.as_deref()
    }
    /// Its stream's version: the `expectedVersion` for the next command on it.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The talks announced, in order.
    async fn speakers(&self, ctx: &Context<'_>) -> Result<Vec<ProgramItem>> {
        Ok(self.program(ctx).await?.into_iter().filter(|p| p.kind == "SPEAKER").collect())
    }
    /// The workshops announced, in order.
    async fn workshops(&self, ctx: &Context<'_>) -> Result<Vec<ProgramItem>> {
        Ok(self.program(ctx).await?.into_iter().filter(|p| p.kind == "WORKSHOP").collect())
    }
    /// Challenges raised at this café.
    async fn challenges(&self, ctx: &Context<'_>) -> Result<Vec<super::objects::Challenge>> {
        challenges_from(ctx, "cafe", &self.0.id).await
    }
}

impl Cafe {
    async fn program(&self, ctx: &Context<'_>) -> Result<Vec<ProgramItem>> {
        sql::fetch_small(
            &app(ctx)?.store,
            "SELECT title, person, kind FROM rm_cafe_program WHERE cafe_id = $1 ORDER BY position",
            &[self.0.id.clone().into()],
        )
        .await
        .gql()
    }
}

read_model_row! {
    struct IdRow {
        id: String,
    }
}

/// The challenges raised from a thing (a café, an idea), by the lineage graph's links.
async fn challenges_from(ctx: &Context<'_>, kind: &str, id: &str) -> Result<Vec<super::objects::Challenge>> {
    let mut out = Vec::new();
    for challenge in linked(ctx, kind, id, "challenge").await? {
        out.extend(super::objects::load_challenge(ctx, &challenge).await?);
    }
    Ok(out)
}

/// The ids of `to_kind` things linked from a thing in the lineage graph.
async fn linked(ctx: &Context<'_>, from_kind: &str, from_id: &str, to_kind: &str) -> Result<Vec<String>> {
    let rows: Vec<IdRow> = sql::fetch_small(
        &app(ctx)?.store,
        "SELECT to_id AS id FROM rm_lineage_links WHERE from_kind = $1 AND from_id = $2 AND to_kind = $3 ORDER BY position",
        &[from_kind.into(), from_id.into(), to_kind.into()],
    )
    .await
    .gql()?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

// ---------------------------------------------------------------- ideation days and ideas

read_model_row! {
    pub struct IdeationRow {
        id: String,
        name: String,
        central_question: String,
        date: String,
        venue: String,
        status: String,
        participant_count: Option<i64>,
        jury_motivation: Option<String>,
        version: i64,
        created_position: i64,
    }
}

const IDEATION_SELECT: &str =
    "SELECT t.id, t.name, t.central_question, t.date, t.venue, t.status, t.participant_count, \
     t.jury_motivation, t.version, t.created_position FROM rm_ideation_events t";

read_model_row! {
    pub struct IdeaRow {
        id: String,
        ideation_event_id: String,
        title: String,
        description: String,
        submitted_by: Option<String>,
        pitched: bool,
        jury_rank: Option<i64>,
    }
}

const IDEA_SELECT: &str =
    "SELECT t.id, t.ideation_event_id, t.title, t.description, t.submitted_by, t.pitched, t.jury_rank FROM rm_ideas t";

pub struct IdeationEvent(IdeationRow);

/// Where an ideation day stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum IdeationEventStatus {
    /// Planned, or under way.
    Scheduled,
    /// Over: its participants counted.
    Concluded,
}

/// An ideation day (Stampij!fabriek): participants submit ideas on a central question, pitch them,
/// and a jury ranks them.
#[Object]
impl IdeationEvent {
    /// The ideation day's id (`ideation_event-<id>` is its stream).
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The question the day's ideas answer.
    async fn central_question(&self) -> &str {
        &self.0.central_question
    }
    /// The day it is or was held.
    async fn date(&self) -> Option<NaiveDate> {
        parse_date(&self.0.date)
    }
    /// Where.
    async fn venue(&self) -> &str {
        &self.0.venue
    }
    /// Scheduled, or concluded.
    async fn status(&self) -> Option<IdeationEventStatus> {
        parse_enum(&self.0.status)
    }
    /// How many people took part, once concluded.
    async fn participant_count(&self) -> Option<i64> {
        self.0.participant_count
    }
    /// Why the jury ranked the ideas as it did.
    async fn jury_motivation(&self) -> Option<&str> {
        self.0.jury_motivation.as_deref()
    }
    /// Its stream's version: the `expectedVersion` for the next command on it.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// Every idea submitted, in order of submission.
    async fn ideas(&self, ctx: &Context<'_>) -> Result<Vec<Idea>> {
        self.ideas_where(ctx, "", "t.position").await
    }
    /// The jury's ranking, best first.
    async fn ranking(&self, ctx: &Context<'_>) -> Result<Vec<Idea>> {
        self.ideas_where(ctx, " AND t.jury_rank IS NOT NULL", "t.jury_rank").await
    }
}

impl IdeationEvent {
    async fn ideas_where(&self, ctx: &Context<'_>, extra: &str, order: &str) -> Result<Vec<Idea>> {
        let rows: Vec<IdeaRow> = sql::fetch_small(
            &app(ctx)?.store,
            &format!("{IDEA_SELECT} WHERE t.ideation_event_id = $1{extra} ORDER BY {order}"),
            &[self.0.id.clone().into()],
        )
        .await
        .gql()?;
        Ok(rows.into_iter().map(Idea).collect())
    }
}

read_model_row! {
    struct FollowUpRow {
        kind: String,
        organisation: Option<String>,
        doetank_id: Option<String>,
    }
}

pub struct Idea(IdeaRow);

/// An idea submitted to an ideation day, and what came of it.
#[Object]
impl Idea {
    /// The idea's id; it lives in its ideation day's stream.
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The idea in a line.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The idea.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The member who submitted it.
    async fn submitted_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        match &self.0.submitted_by {
            Some(id) => load_member(ctx, id).await,
            None => Ok(None),
        }
    }
    /// Whether it was pitched to the jury.
    async fn pitched(&self) -> bool {
        self.0.pitched
    }
    /// 1 for the jury's winner.
    async fn jury_rank(&self) -> Option<i64> {
        self.0.jury_rank
    }
    /// The ideation day it was submitted to.
    async fn ideation_event(&self, ctx: &Context<'_>) -> Result<Option<IdeationEvent>> {
        Ok(one::<IdeationRow>(ctx, IDEATION_SELECT, &self.0.ideation_event_id).await?.map(IdeationEvent))
    }
    /// Organisations that took the idea up.
    async fn adopted_by(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self
            .follow_ups(ctx)
            .await?
            .into_iter()
            .filter(|f| f.kind == "ADOPTED")
            .filter_map(|f| f.organisation)
            .collect())
    }
    /// Challenges raised from the idea (`origin: {kind: IDEA}`).
    async fn challenges(&self, ctx: &Context<'_>) -> Result<Vec<super::objects::Challenge>> {
        challenges_from(ctx, "idea", &self.0.id).await
    }
    /// Doetanks the idea was taken into (those the viewer may see).
    async fn doetanks(&self, ctx: &Context<'_>) -> Result<Vec<Doetank>> {
        let mut out = Vec::new();
        for f in self.follow_ups(ctx).await? {
            if let Some(id) = f.doetank_id {
                out.extend(load_doetank(ctx, &id).await?);
            }
        }
        Ok(out)
    }
}

impl Idea {
    async fn follow_ups(&self, ctx: &Context<'_>) -> Result<Vec<FollowUpRow>> {
        sql::fetch_small(
            &app(ctx)?.store,
            "SELECT kind, organisation, doetank_id FROM rm_idea_follow_ups WHERE idea_id = $1 ORDER BY position",
            &[self.0.id.clone().into()],
        )
        .await
        .gql()
    }
}

// ---------------------------------------------------------------- challenges' origins

/// Where a challenge came from, as its `ChallengeRaised` event says, with the café, ideation
/// day and idea it names resolved (each through its own query, with that query's rules).
pub struct Origin(pub ChallengeOrigin);

/// Where a challenge came from (seed 001): a commissioner, a member's own frustration, a café
/// or an idea of an ideation day.
#[Object(name = "ChallengeOrigin")]
impl Origin {
    /// The kind of origin; it says which of the other fields is set.
    async fn kind(&self) -> OriginKind {
        match self.0 {
            ChallengeOrigin::Commissioner { .. } => OriginKind::Commissioner,
            ChallengeOrigin::OwnFrustration => OriginKind::OwnFrustration,
            ChallengeOrigin::Cafe { .. } => OriginKind::Cafe,
            ChallengeOrigin::Idea { .. } => OriginKind::Idea,
        }
    }
    /// For COMMISSIONER: the organisation that brought the challenge.
    async fn organisation(&self) -> Option<&str> {
        match &self.0 {
            ChallengeOrigin::Commissioner { organisation } => Some(organisation),
            _ => None,
        }
    }
    /// For CAFE: the café where it was raised.
    async fn cafe(&self, ctx: &Context<'_>) -> Result<Option<Cafe>> {
        match self.0 {
            ChallengeOrigin::Cafe { cafe_id } => NetworkQuery.cafe(ctx, ID(cafe_id.to_string())).await,
            _ => Ok(None),
        }
    }
    /// For IDEA: the ideation day the idea was submitted to.
    async fn ideation_event(&self, ctx: &Context<'_>) -> Result<Option<IdeationEvent>> {
        match self.0 {
            ChallengeOrigin::Idea { ideation_event_id, .. } => {
                NetworkQuery.ideation_event(ctx, ID(ideation_event_id.to_string())).await
            }
            _ => Ok(None),
        }
    }
    /// For IDEA: the idea it grew out of.
    async fn idea(&self, ctx: &Context<'_>) -> Result<Option<Idea>> {
        match self.0 {
            ChallengeOrigin::Idea { idea_id, .. } => NetworkQuery.idea(ctx, ID(idea_id.to_string())).await,
            _ => Ok(None),
        }
    }
}

// ---------------------------------------------------------------- pilots

/// Where a pilot stands, in the order of rule 7: a mandate before the rule is suspended, an
/// evaluation before the end.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PilotStatus {
    /// Proposed, waiting for a mandate.
    Proposed,
    /// Mandated: its rule may be suspended.
    Mandated,
    /// Its rule is set aside for a period (`suspendedFrom` to `suspendedUntil`).
    RuleSuspended,
    /// Evaluated: it may be concluded.
    Evaluated,
    /// Concluded, with an outcome for the rule.
    Concluded,
}

read_model_row! {
    /// A Right to Challenge pilot: a hindering rule set aside for a while in favour of an alternative
    /// agreed beforehand, with a mandate first and an evaluation before its end (rule 7).
    #[derive(SimpleObject)]
    #[graphql(complex, name = "Pilot")]
    pub struct PilotRow {
        #[graphql(skip)]
        id: String,
        /// The rule that hinders the work.
        hindering_rule: String,
        /// What is done instead, agreed beforehand.
        alternative: String,
        /// What setting the rule aside should bring.
        expected_gain: String,
        #[graphql(skip)]
        applicant_id: String,
        #[graphql(skip)]
        applicant_function: String,
        #[graphql(skip)]
        status: String,
        /// Who granted the mandate (rule 7: needed before the rule is suspended).
        mandate_granted_by: Option<String>,
        #[graphql(skip)]
        suspended_from: Option<String>,
        #[graphql(skip)]
        suspended_until: Option<String>,
        /// What the evaluation found (rule 7: needed before the pilot is concluded).
        findings: Option<String>,
        #[graphql(skip)]
        outcome: Option<String>,
        /// Anything added when it was concluded.
        note: Option<String>,
        /// Its stream's version: the `expectedVersion` for the next command on it.
        version: i64,
        #[graphql(skip)]
        created_position: i64,
    }
}

positioned!(PilotRow, CharterRow, ReuseRow, CafeRow, IdeationRow => created_position);

const PILOT_SELECT: &str = "SELECT t.id, t.hindering_rule, t.alternative, t.expected_gain, t.applicant_id, \
     t.applicant_function, t.status, t.mandate_granted_by, t.suspended_from, t.suspended_until, t.findings, t.outcome, \
     t.note, t.version, t.created_position FROM rm_pilots t";

#[ComplexObject]
impl PilotRow {
    /// The pilot's id (`pilot-<id>` is its stream).
    pub(super) async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// The civil servant who proposed it.
    async fn applicant(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        load_member(ctx, &self.applicant_id).await
    }
    /// The applicant's function: policy or operational (seed 002, rule 7).
    async fn applicant_function(&self) -> Option<ApplicantFunctionInput> {
        parse_enum(&self.applicant_function)
    }
    /// Where the pilot stands.
    async fn status(&self) -> Option<PilotStatus> {
        parse_enum(&self.status)
    }
    /// What came of it for the rule, once concluded.
    async fn outcome(&self) -> Option<PilotOutcomeInput> {
        self.outcome.as_deref().and_then(parse_enum)
    }
    /// The first day its rule is set aside.
    async fn suspended_from(&self) -> Option<NaiveDate> {
        self.suspended_from.as_deref().and_then(parse_date)
    }
    /// The last day its rule is set aside (rule 7: a suspension has an end).
    async fn suspended_until(&self) -> Option<NaiveDate> {
        self.suspended_until.as_deref().and_then(parse_date)
    }
}

// ---------------------------------------------------------------- charters

read_model_row! {
    pub struct CharterRow {
        id: String,
        title: String,
        text: String,
        initiators: String,
        version: i64,
        created_position: i64,
    }
}

const CHARTER_SELECT: &str =
    "SELECT t.id, t.title, t.text, t.initiators, t.version, t.created_position FROM rm_charters t";

/// Who signs a charter.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SignatoryKind {
    /// A member, as themself.
    Member,
    /// An organisation (recorded by a facilitator).
    Organisation,
}

read_model_row! {
    /// One signature under a charter: a member as themself, or an organisation.
    #[derive(SimpleObject)]
    #[graphql(complex)]
    pub struct Signature {
        #[graphql(skip)]
        pub kind: String,
        /// The organisation that signed; null for a member's own signature.
        pub organisation: Option<String>,
        #[graphql(skip)]
        pub member_id: Option<String>,
        #[graphql(skip)]
        pub signed_at: String,
    }
}

#[ComplexObject]
impl Signature {
    /// Who signed: a member as themself, or an organisation.
    async fn kind(&self) -> Option<SignatoryKind> {
        parse_enum(&self.kind)
    }
    /// The member who signed; null for an organisation's signature.
    async fn member(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        match &self.member_id {
            Some(id) => load_member(ctx, id).await,
            None => Ok(None),
        }
    }
    /// When it was signed.
    async fn signed_at(&self) -> DateTime<Utc> {
        parse_time(&self.signed_at)
    }
}

pub struct Charter(CharterRow);

/// A published statement that people and organisations sign, each once (rule 8).
#[Object]
impl Charter {
    /// The charter's id (`charter-<id>` is its stream).
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Its title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The statement.
    async fn text(&self) -> &str {
        &self.0.text
    }
    /// Who took the initiative.
    async fn initiators(&self) -> Vec<String> {
        json_list(&self.0.initiators)
    }
    /// Its stream's version: the `expectedVersion` for the next command on it.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// How many signed it.
    async fn signature_count(&self, ctx: &Context<'_>) -> Result<i64> {
        sql::fetch_small_count(
            &app(ctx)?.store,
            "SELECT COUNT(*) FROM rm_charter_signatures WHERE charter_id = $1",
            &[self.0.id.clone().into()],
        )
        .await
        .gql()
    }
    /// Every signature, in order.
    async fn signatures(&self, ctx: &Context<'_>) -> Result<Vec<Signature>> {
        sql::fetch_small(
            &app(ctx)?.store,
            "SELECT kind, organisation, member_id, signed_at FROM rm_charter_signatures WHERE charter_id = $1 ORDER BY position",
            &[self.0.id.clone().into()],
        )
        .await
        .gql()
    }
}

// ---------------------------------------------------------------- knowledge reuse

read_model_row! {
    pub struct ReuseRow {
        id: String,
        organisation: String,
        source_doetank_id: String,
        source_lesson_id: Option<String>,
        pledge: String,
        fulfilled: bool,
        fulfilment_note: Option<String>,
        reused_at: String,
        version: i64,
        created_position: i64,
    }
}

/// The reuses of a doetank's results (or of one of its lessons), in the order they were
/// recorded: for a doetank the viewer may see, so none of them is hidden from them.
pub(super) async fn reuses_of(
    ctx: &Context<'_>,
    doetank_id: &str,
    lesson_id: Option<&str>,
) -> Result<Vec<Reuse>> {
    let mut f = Filter::default();
    f.push("t.source_doetank_id = ?", doetank_id.to_string());
    if let Some(lesson) = lesson_id {
        f.push("t.source_lesson_id = ?", lesson.to_string());
    }
    let sql_text = format!("{REUSE_SELECT}{} ORDER BY t.created_position", f.where_sql());
    let rows: Vec<ReuseRow> = sql::fetch_small(&app(ctx)?.store, &sql_text, &f.args).await.gql()?;
    Ok(rows.into_iter().map(Reuse).collect())
}

const REUSE_SELECT: &str =
    "SELECT t.id, t.organisation, t.source_doetank_id, t.source_lesson_id, t.pledge, t.fulfilled, \
     t.fulfilment_note, t.reused_at, t.version, t.created_position FROM rm_reuses t";

pub struct Reuse(ReuseRow);

/// An organisation reusing a doetank's results (Lanceerplatform), with its pledge to pass its own
/// knowledge on.
#[Object]
impl Reuse {
    /// The reuse's id (`reuse-<id>` is its stream).
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The organisation that reuses the results.
    async fn organisation(&self) -> &str {
        &self.0.organisation
    }
    /// The doetank whose results are reused.
    async fn source_doetank(&self, ctx: &Context<'_>) -> Result<Option<Doetank>> {
        load_doetank(ctx, &self.0.source_doetank_id).await
    }
    /// The one lesson reused, when that is what was reused.
    async fn source_lesson(&self, ctx: &Context<'_>) -> Result<Option<Lesson>> {
        match &self.0.source_lesson_id {
            Some(lesson_id) => load_lesson(ctx, lesson_id).await,
            None => Ok(None),
        }
    }
    /// What the organisation pledged to pass on in turn.
    async fn pledge(&self) -> &str {
        &self.0.pledge
    }
    /// Whether the pledge was kept.
    async fn fulfilled(&self) -> bool {
        self.0.fulfilled
    }
    /// What was passed on, once the pledge was kept.
    async fn fulfilment_note(&self) -> Option<&str> {
        self.0.fulfilment_note.as_deref()
    }
    /// When the reuse was recorded.
    async fn reused_at(&self) -> DateTime<Utc> {
        parse_time(&self.0.reused_at)
    }
    /// Its stream's version: the `expectedVersion` for the next command on it.
    async fn version(&self) -> i64 {
        self.0.version
    }
}

// ---------------------------------------------------------------- lineage and timeline

/// One thing in a lineage.
#[derive(SimpleObject, Clone, sqlx::FromRow)]
pub struct LineageNode {
    /// idea, ideation_event, cafe, challenge, doetank, lesson, organisation, reuse.
    pub kind: String,
    /// Its id (for an organisation, its name one-spaced and in lower case: the key all its
    /// spellings share; `label` has it as written).
    pub id: String,
    /// Its name or title.
    pub label: String,
    /// Steps from the starting point: negative upstream (where it came from), positive downstream.
    #[sqlx(skip)]
    pub distance: i64,
}

/// One link of a lineage: a thing that led to another.
#[derive(SimpleObject, Clone, sqlx::FromRow)]
pub struct LineageLink {
    /// The kind of thing it leads from.
    pub from_kind: String,
    /// The id of the thing it leads from.
    pub from_id: String,
    /// The kind of thing it leads to.
    pub to_kind: String,
    /// The id of the thing it leads to.
    pub to_id: String,
    /// PRODUCED, RAISED_AT, RAISED_FROM, COMMISSIONED, TAKEN_UP_BY, TAKEN_INTO, ADOPTED_BY, LEARNED,
    /// HANDED_OVER_TO, REUSED_BY, REUSED_IN.
    pub relation: String,
}

/// The multi-stage rocket (seed 003) around one thing: where it came from and where it went.
#[derive(SimpleObject)]
pub struct Lineage {
    /// The thing the walk started from (distance 0).
    pub root: LineageNode,
    /// Every thing reached, upstream and downstream, nearest first.
    pub nodes: Vec<LineageNode>,
    /// Every link between the things reached, in log order.
    pub links: Vec<LineageLink>,
}

read_model_row! {
    /// One line of the network's history.
    #[derive(SimpleObject)]
    #[graphql(complex)]
    pub struct TimelineEntry {
        /// The log position of the event it tells of: the order of the timeline.
        pub position: i64,
        /// The kind of thing: member, challenge, doetank, cafe, ideation_event, pilot, charter, reuse.
        pub kind: String,
        /// The id of the thing the line is about.
        pub subject_id: String,
        /// The event it tells of (`eventTypes` describes each).
        #[graphql(name = "type")]
        pub event_type: String,
        #[graphql(skip)]
        pub occurred_at: String,
        /// One line, as people would tell it (names of things, never of people).
        pub summary: String,
    }
}

#[ComplexObject]
impl TimelineEntry {
    /// When it happened in the world, as far as the events say.
    async fn occurred_at(&self) -> DateTime<Utc> {
        parse_time(&self.occurred_at)
    }
    /// The thing the line is about, as it is now (as `node` gives it).
    async fn subject(&self, ctx: &Context<'_>) -> Result<Option<super::node::Node>> {
        super::node::node_of_kind(ctx, &self.kind, ID(self.subject_id.clone())).await
    }
}

const TIMELINE_SELECT: &str =
    "SELECT t.position, t.kind, t.subject_id, t.event_type, t.occurred_at, t.summary FROM rm_timeline t";

/// Rule 5 for the timeline (aliased `t`): a line about an informal doetank only for those who
/// may see it.
fn restrict_timeline(f: &mut Filter, viewer: &Viewer, sqlite: bool) {
    // One condition (and one bound viewer) for both subqueries, each with its own `vd`.
    if let Some(condition) = visibility::doetank_condition(f, "vd", viewer) {
        f.push_probed(sqlite, |probe| {
            let doetank = probe.sql("FROM rm_doetanks vd WHERE vd.id = t.subject_id", &condition);
            format!("(t.kind <> 'doetank' OR {doetank})")
        });
        // A reuse's lines name the doetank it draws on, so they are seen as that doetank is (as
        // `reuse(id)` and `reuses` show it); until the thirtieth session they told anyone the
        // name of an informal one.
        f.push_probed(sqlite, |probe| {
            let drawn_on = probe.sql(
                "FROM rm_reuses r JOIN rm_doetanks vd ON vd.id = r.source_doetank_id WHERE r.id = t.subject_id",
                &condition,
            );
            format!("(t.kind <> 'reuse' OR {drawn_on})")
        });
    }
}

/// The position of the first rise at or after a time, and of the first fall (0: none is).
const FIRST_RISE: &str =
    "SELECT COALESCE((SELECT r.position FROM rm_timeline_rises r WHERE r.occurred_at >= $1 \
     ORDER BY r.occurred_at LIMIT 1), 0)";
const FIRST_FALL: &str =
    "SELECT COALESCE((SELECT fl.position FROM rm_timeline_falls fl WHERE fl.occurred_at >= $1 \
     ORDER BY fl.occurred_at, fl.position LIMIT 1), 0)";

/// The timeline's lines of the event at `position` that `viewer` may see.
pub(super) async fn timeline_at(
    app: &App,
    viewer: &Viewer,
    position: i64,
) -> Result<Vec<TimelineEntry>, crate::error::AppError> {
    let mut f = Filter::default();
    f.push("t.position = ?", position);
    restrict_timeline(&mut f, viewer, app.store.is_sqlite());
    sql::fetch_small(&app.store, &format!("{TIMELINE_SELECT}{}", f.where_sql()), &f.args).await
}

/// Pairs per `IN (VALUES ...)` list: well below both backends' parameter limits.
const PAIRS_PER_QUERY: usize = 400;

type NodeKey = (String, String);

/// `(a, b) IN (VALUES ($n, $n+1), ...)` for `keys`, numbered from `first`, and its arguments.
fn pairs_in(columns: &str, keys: &[NodeKey], first: usize) -> (String, Vec<Arg>) {
    let list: Vec<String> =
        (0..keys.len()).map(|i| format!("(${}, ${})", first + 2 * i, first + 2 * i + 1)).collect();
    let args = keys.iter().flat_map(|(k, i)| [Arg::Text(k.clone()), Arg::Text(i.clone())]).collect();
    (format!("({columns}) IN (VALUES {})", list.join(", ")), args)
}

/// Of `keys`, the nodes hidden from the viewer: informal doetanks and their lessons (rule 5).
async fn hidden_among(ctx: &Context<'_>, keys: &[NodeKey]) -> Result<HashSet<NodeKey>> {
    let mut f = Filter::default();
    let Some(condition) = visibility::doetank_condition(&mut f, "d", &viewer(ctx)) else {
        return Ok(HashSet::new());
    };
    let backend = app(ctx)?.store.backend();
    let mut hidden = HashSet::new();
    // A reuse is seen as the doetank it draws on is, as `reuse(id)` shows it.
    for (kind, column, select) in [
        ("doetank", "d.id", "SELECT d.id FROM rm_doetanks d WHERE"),
        ("lesson", "l.id", "SELECT l.id FROM rm_lessons l JOIN rm_doetanks d ON d.id = l.doetank_id WHERE"),
        (
            "reuse",
            "r.id",
            "SELECT r.id FROM rm_reuses r JOIN rm_doetanks d ON d.id = r.source_doetank_id WHERE",
        ),
    ] {
        let ids: Vec<&String> = keys.iter().filter(|(k, _)| k == kind).map(|(_, id)| id).collect();
        for chunk in ids.chunks(PAIRS_PER_QUERY) {
            let mut args = f.args.clone();
            let list = placeholders(args.len() + 1, chunk.len());
            args.extend(chunk.iter().map(|id| Arg::Text((*id).clone())));
            let sql_text = format!("{select} {column} IN ({list}) AND NOT {condition}");
            let rows: Vec<IdRow> = sql::fetch_all(backend, &sql_text, &args).await.gql()?;
            hidden.extend(rows.into_iter().map(|r| (kind.to_string(), r.id)));
        }
    }
    Ok(hidden)
}

/// The links leaving `nodes` in the walk's direction (downstream: from them; upstream: to
/// them), in log order.
async fn links_of(ctx: &Context<'_>, nodes: &[NodeKey], downstream: bool) -> Result<Vec<LineageLink>> {
    let backend = app(ctx)?.store.backend();
    let columns = if downstream { "from_kind, from_id" } else { "to_kind, to_id" };
    let mut links = Vec::new();
    for chunk in nodes.chunks(PAIRS_PER_QUERY) {
        let (condition, args) = pairs_in(columns, chunk, 1);
        let sql_text = format!(
            "SELECT from_kind, from_id, to_kind, to_id, relation, position FROM rm_lineage_links WHERE {condition}"
        );
        let rows: Vec<(String, String, String, String, String, i64)> =
            sql::fetch_all(backend, &sql_text, &args).await.gql()?;
        links.extend(rows);
    }
    links.sort_by_key(|l| l.5);
    Ok(links
        .into_iter()
        .map(|(from_kind, from_id, to_kind, to_id, relation, _)| LineageLink {
            from_kind,
            from_id,
            to_kind,
            to_id,
            relation,
        })
        .collect())
}

/// Walks the lineage graph from `id` one frontier at a time: each step reads only the links of
/// the nodes just reached (by index), so the cost follows the lineage, not the network.
pub async fn lineage(ctx: &Context<'_>, id: &str) -> Result<Option<Lineage>> {
    let backend = app(ctx)?.store.backend();
    let mut starts: Vec<LineageNode> = sql::fetch_all(
        backend,
        "SELECT kind, id, label FROM rm_lineage_nodes WHERE id = $1",
        &[id.to_string().into()],
    )
    .await
    .gql()?;
    // An organisation's name as the filters match it: without regard to case or spacing
    // (until the thirty-first session "gemeente utrecht" had no lineage), which is how its
    // node is keyed.
    if starts.is_empty() {
        starts = sql::fetch_all(
            backend,
            "SELECT kind, id, label FROM rm_lineage_nodes WHERE kind = 'organisation' AND id = $1",
            &[doetank_domain::error::name_key(id).into()],
        )
        .await
        .gql()?;
    }
    let keys: Vec<NodeKey> = starts.iter().map(|n| (n.kind.clone(), n.id.clone())).collect();
    let hidden = hidden_among(ctx, &keys).await?;
    let Some(root) = starts.into_iter().find(|n| !hidden.contains(&(n.kind.clone(), n.id.clone()))) else {
        return Ok(None);
    };

    // Downstream along links, then upstream against them, breadth first: a node's distance is
    // the step it was first reached at.
    let key = (root.kind.clone(), root.id.clone());
    let mut distance: HashMap<NodeKey, i64> = HashMap::from([(key.clone(), 0)]);
    let mut links = Vec::new();
    for downstream in [true, false] {
        let mut seen = HashSet::from([key.clone()]);
        let mut frontier = vec![key.clone()];
        let mut step = 0;
        while !frontier.is_empty() {
            step += if downstream { 1 } else { -1 };
            let found = links_of(ctx, &frontier, downstream).await?;
            let ends = |link: &LineageLink| {
                let from = (link.from_kind.clone(), link.from_id.clone());
                let to = (link.to_kind.clone(), link.to_id.clone());
                if downstream {
                    (from, to)
                } else {
                    (to, from)
                }
            };
            // Each link under the node it leaves from, in log order.
            let mut leaving: HashMap<NodeKey, Vec<(NodeKey, &LineageLink)>> = HashMap::new();
            for link in &found {
                let (here, next) = ends(link);
                leaving.entry(here).or_default().push((next, link));
            }
            let reached: Vec<NodeKey> = leaving.values().flatten().map(|(next, _)| next.clone()).collect();
            let hidden = hidden_among(ctx, &reached).await?;
            let mut next_frontier = Vec::new();
            // Node by node in the order they were reached, each one's links in log order.
            for at in &frontier {
                for (next, link) in leaving.remove(at).unwrap_or_default() {
                    if hidden.contains(&next) || !seen.insert(next.clone()) {
                        continue;
                    }
                    distance.entry(next.clone()).or_insert(step);
                    links.push(link.clone());
                    next_frontier.push(next);
                }
            }
            frontier = next_frontier;
        }
    }

    // An organisation is a node only for what links it: one whose every link the viewer may not
    // see is, to them, not there (its name alone told of an informal doetank's reuse).
    if root.kind == "organisation" && links.is_empty() {
        return Ok(None);
    }
    let keys: Vec<NodeKey> = distance.keys().cloned().collect();
    let mut labels: HashMap<NodeKey, String> = HashMap::new();
    for chunk in keys.chunks(PAIRS_PER_QUERY) {
        let (condition, args) = pairs_in("kind, id", chunk, 1);
        let rows: Vec<LineageNode> = sql::fetch_all(
            backend,
            &format!("SELECT kind, id, label FROM rm_lineage_nodes WHERE {condition}"),
            &args,
        )
        .await
        .gql()?;
        labels.extend(rows.into_iter().map(|n| ((n.kind, n.id), n.label)));
    }
    let mut nodes: Vec<LineageNode> = distance
        .into_iter()
        .map(|((kind, id), distance)| {
            let label = labels.get(&(kind.clone(), id.clone())).cloned().unwrap_or_else(|| id.clone());
            LineageNode { kind, id, label, distance }
        })
        .collect();
    nodes.sort_by(|a, b| {
        a.distance.abs().cmp(&b.distance.abs()).then(a.distance.cmp(&b.distance)).then(a.label.cmp(&b.label))
    });
    Ok(Some(Lineage { root, nodes, links }))
}

// ---------------------------------------------------------------- queries

#[derive(Default)]
pub struct NetworkQuery;

#[Object]
impl NetworkQuery {
    /// A Slimmernetwerk Café by its id.
    pub(super) async fn cafe(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The café's id (a UUID).")] id: ID,
    ) -> Result<Option<Cafe>> {
        let uuid = parse_id("id", &id).gql()?;
        Ok(one::<CafeRow>(ctx, CAFE_SELECT, &uuid.to_string()).await?.map(Cafe))
    }

    /// Cafés by date: UPCOMING (scheduled, today or later), PAST, or ALL.
    async fn cafes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which cafés by date; ALL when absent.")] when: Option<When>,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<Cafe>> {
        let paging = Paging::new(first, after).gql()?;
        let today = Utc::now().date_naive().to_string();
        let mut f = Filter::default();
        let latest_first = match when.unwrap_or(When::All) {
            When::Upcoming => {
                f.push("t.status = 'SCHEDULED' AND t.date >= ?", today);
                false
            }
            When::Past => {
                f.push("(t.status <> 'SCHEDULED' OR t.date < ?)", today);
                true
            }
            When::All => false,
        };
        let order = ByPosition::Dated { table: "rm_cafes", latest_first };
        page_by_position(ctx, "rm_cafes t", CAFE_SELECT, f, order, paging, Cafe).await
    }

    /// An ideation day (Stampij!fabriek) by its id.
    pub(super) async fn ideation_event(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ideation day's id (a UUID).")] id: ID,
    ) -> Result<Option<IdeationEvent>> {
        let uuid = parse_id("id", &id).gql()?;
        Ok(one::<IdeationRow>(ctx, IDEATION_SELECT, &uuid.to_string()).await?.map(IdeationEvent))
    }

    /// The ideation days, by date.
    async fn ideation_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<IdeationEvent>> {
        let paging = Paging::new(first, after).gql()?;
        let order = ByPosition::Dated { table: "rm_ideation_events", latest_first: false };
        page_by_position(
            ctx,
            "rm_ideation_events t",
            IDEATION_SELECT,
            Filter::default(),
            order,
            paging,
            IdeationEvent,
        )
        .await
    }

    /// An idea of an ideation day by its id.
    pub(super) async fn idea(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The idea's id (a UUID).")] id: ID,
    ) -> Result<Option<Idea>> {
        let uuid = parse_id("id", &id).gql()?;
        Ok(one::<IdeaRow>(ctx, IDEA_SELECT, &uuid.to_string()).await?.map(Idea))
    }

    /// A Right to Challenge pilot by its id.
    pub(super) async fn pilot(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The pilot's id (a UUID).")] id: ID,
    ) -> Result<Option<PilotRow>> {
        let uuid = parse_id("id", &id).gql()?;
        one::<PilotRow>(ctx, PILOT_SELECT, &uuid.to_string()).await
    }

    /// Right to Challenge pilots, in the order they were proposed.
    async fn pilots(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only pilots with this status.")] status: Option<PilotStatus>,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<PilotRow>> {
        let paging = Paging::new(first, after).gql()?;
        let mut f = Filter::default();
        if let Some(status) = status {
            f.push("t.status = ?", enum_name(status));
        }
        let order = ByPosition::Ascending("t.created_position");
        page_by_position(ctx, "rm_pilots t", PILOT_SELECT, f, order, paging, |p: PilotRow| p).await
    }

    /// The rules set aside on a day (today by default), and until when.
    async fn suspended_rules(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The day; today (UTC) when absent.")] on: Option<NaiveDate>,
    ) -> Result<Vec<PilotRow>> {
        let on = on.unwrap_or_else(|| Utc::now().date_naive());
        // Every suspension lies within the calendar's years (dates are kept as text, whose order
        // is the dates' only for four-digit years): a day outside them has none.
        if !doetank_domain::error::CALENDAR_YEARS.contains(&chrono::Datelike::year(&on)) {
            return Ok(Vec::new());
        }
        let on = on.to_string();
        sql::fetch_all(
            app(ctx)?.store.backend(),
            &format!(
                "{PILOT_SELECT} WHERE t.suspended_from <= $1 AND t.suspended_until >= $1 \
                 AND NOT (t.status = 'CONCLUDED' AND t.outcome = 'RULE_RESTORED') ORDER BY t.suspended_until"
            ),
            &[on.into()],
        )
        .await
        .gql()
    }

    /// A charter by its id.
    pub(super) async fn charter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The charter's id (a UUID).")] id: ID,
    ) -> Result<Option<Charter>> {
        let uuid = parse_id("id", &id).gql()?;
        Ok(one::<CharterRow>(ctx, CHARTER_SELECT, &uuid.to_string()).await?.map(Charter))
    }

    /// The charters, in the order they were published.
    async fn charters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<Charter>> {
        let (order, paging) = (ByPosition::Ascending("t.created_position"), Paging::new(first, after).gql()?);
        page_by_position(ctx, "rm_charters t", CHARTER_SELECT, Filter::default(), order, paging, Charter)
            .await
    }

    /// A reuse, seen by whoever may see the doetank it reuses (as in `reuses`): a reuse of an
    /// informal doetank's results would tell of it (rule 5).
    pub(super) async fn reuse(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The reuse's id (a UUID).")] id: ID,
    ) -> Result<Option<Reuse>> {
        let uuid = parse_id("id", &id).gql()?;
        let Some(row) = one::<ReuseRow>(ctx, REUSE_SELECT, &uuid.to_string()).await? else {
            return Ok(None);
        };
        if load_doetank(ctx, &row.source_doetank_id).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(Reuse(row)))
    }

    /// Reuses of doetanks' results; `fulfilled: false` lists the open pledges.
    async fn reuses(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "True: only kept pledges; false: only open ones; both when absent.")]
        fulfilled: Option<bool>,
        #[graphql(desc = "Page size: 20 when absent, at most 100.")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before.")] after: Option<String>,
    ) -> Result<Page<Reuse>> {
        let paging = Paging::new(first, after).gql()?;
        let mut f = Filter::default();
        if let Some(fulfilled) = fulfilled {
            f.push("t.fulfilled = ?", fulfilled);
        }
        if let Some(condition) = visibility::doetank_condition(&mut f, "vd", &viewer(ctx)) {
            f.clauses.push(
                doetank_store::Probe::Exists
                    .sql("FROM rm_doetanks vd WHERE vd.id = t.source_doetank_id", &condition),
            );
        }
        let order = ByPosition::Ascending("t.created_position");
        page_by_position(ctx, "rm_reuses t", REUSE_SELECT, f, order, paging, Reuse).await
    }

    /// Follows one thing (an idea, café, ideation day, challenge, doetank, lesson, reuse or
    /// organisation name) through the multi-stage rocket, both ways: what it came from and what
    /// came of it. Built from events only.
    async fn lineage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The id of an idea, café, ideation day, challenge, doetank, lesson or reuse, \
                          or an organisation's name.")]
        id: ID,
    ) -> Result<Option<Lineage>> {
        lineage(ctx, id.as_str()).await
    }

    /// The network's history as people would read it, in log order, one line each. Page
    /// forwards with `first`/`after`, or backwards with `last`/`before`: the newest `last`
    /// lines (before the cursor `before`), each page still in log order — a wall's latest news.
    #[allow(clippy::too_many_arguments)] // each is one of the field's GraphQL arguments
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Only lines about these kinds of thing: member, challenge, doetank, cafe, ideation_event, pilot, charter, reuse; all when absent."
        )]
        kinds: Option<Vec<String>>,
        #[graphql(desc = "Only what happened at or after this time.")] from: Option<DateTime<Utc>>,
        #[graphql(desc = "Only what happened before this time.")] to: Option<DateTime<Utc>>,
        #[graphql(desc = "Page forwards: this many lines after `after` (20 when absent, at most 100).")]
        first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the page before, or a position: the lines after it.")]
        after: Option<String>,
        #[graphql(desc = "Page backwards: the last this many lines before `before` (at most 100).")]
        last: Option<i32>,
        #[graphql(desc = "The `startCursor` of the page after, or a position: the lines before it.")]
        before: Option<String>,
    ) -> Result<Page<TimelineEntry>> {
        let paging = LogPaging::new(first, after, last, before).gql()?;
        if let Some(after) = paging.after() {
            crate::history::check_resume(&app(ctx)?.store, after).await.gql()?;
        }
        crate::history::check_window(from, to).gql()?;
        let mut f = Filter::default();
        let kinds = super::catalogue::known_kinds(kinds)?;
        if !kinds.is_empty() {
            let start = f.next_placeholder();
            f.args.extend(kinds.iter().cloned().map(sql::Arg::Text));
            f.clauses.push(format!("t.kind IN ({})", crate::rows::placeholders(start, kinds.len())));
        }
        let store = &app(ctx)?.store;
        // Lines' times are the story's and do not rise with positions, but the first line at
        // or after `from` is at or after the first rise there (see migration
        // `0016_timeline_rises`), and no line at or after the first fall at or after `to` is
        // before `to` (`0017_timeline_falls`): read between them, not the whole timeline. Each
        // is read first and bound as a number: as a subquery its value is unknown to
        // PostgreSQL's planner, which then walks the index for a third of the table rather
        // than scan it (a count to a time in the middle of 1,000,008 lines 98 → 213 ms).
        if let Some(from) = from.map(sql::ts) {
            let first = sql::fetch_small_count(store, FIRST_RISE, &[sql::Arg::Text(from.clone())]).await?;
            f.push("t.occurred_at >= ?", from);
            // None (0): no line is.
            f.push("t.position >= ?", if first == 0 { i64::MAX } else { first });
        }
        if let Some(to) = to.map(sql::ts) {
            let first = sql::fetch_small_count(store, FIRST_FALL, &[sql::Arg::Text(to.clone())]).await?;
            f.push("t.occurred_at < ?", to);
            // None (0): every line can be.
            if first > 0 {
                f.push("t.position < ?", first);
            }
        }
        restrict_timeline(&mut f, &viewer(ctx), store.is_sqlite());
        // Keyset pages: a cursor is a line's position, so a page deep in a long history costs
        // what the first does (until the thirty-first session cursors were offsets, and a page
        // at offset 900,000 of 1,000,000 lines took a researcher 0.26 s), and pages do not
        // shift while the history grows.
        // The count is of the whole timeline the filters leave, without the cursor's clause.
        let counted = Counted::if_asked(ctx, "rm_timeline t", &f);
        // Backwards, the newest lines first along the same index, then put in log order.
        let (beyond_cursor, order) = if paging.backwards {
            ("t.position < ?", "t.position DESC")
        } else {
            ("t.position > ?", "t.position")
        };
        if let Some(cursor) = paging.cursor {
            f.push(beyond_cursor, cursor);
        }
        let window = Window { offset: 0, limit: paging.limit };
        let mut lines: Vec<TimelineEntry> =
            super::query::fetch_window(store, TIMELINE_SELECT, &f, order, window.probing()).await?;
        if paging.backwards {
            lines.reverse();
        }
        let (has_previous, has_next, shown) = paging.trim(&mut lines);
        let total = total_if_asked(counted, store.backend(), shown).await?;
        Ok(in_log_order(lines, |line| line.position, has_previous, has_next, total))
    }
}
