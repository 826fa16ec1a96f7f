//! The read models as GraphQL objects. Nested lists go through the request's batched loaders.
//!
//! The database calls inside resolvers are boxed (`Box::pin(...)`): async-graphql boxes each
//! field's whole future, sized by its largest inner future, and allocates and moves it for every
//! field resolved; boxing the sqlx futures shrank a doetank's field future from 2,264 to 680
//! bytes and took ~3 ms off the p99 of the doetank query at 64 connections
//! (`docs/benchmark-history.md`, seventeenth session).

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, ErrorExtensions, Json, Object, Result, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};
use doetank_store::{Backend, RecordedEvent, StreamId};
use uuid::Uuid;

use super::batcher::Batcher;
use super::errors::GqlResult;
use super::kept_rows::Kept;
use super::loaders::*;
use super::scalars::*;
use super::viewer;
use crate::app::App;
use crate::error::AppError;
use crate::rows::*;
use crate::search::SearchTerms;
use crate::visibility;

fn loader_error(e: Arc<AppError>) -> async_graphql::Error {
    e.as_ref().extend()
}

pub async fn load_member(ctx: &Context<'_>, id: &str) -> Result<Option<Member>> {
    let loader = ctx.data::<Batcher<Kept<MemberLoader>>>()?;
    Ok(loader.load_one(id.to_string()).await.map_err(loader_error)?.map(Member))
}

/// The doetank, if it exists and the viewer may see it (rule 5: informal doetanks are seen only
/// by their team and facilitators).
pub async fn load_doetank(ctx: &Context<'_>, id: &str) -> Result<Option<Doetank>> {
    let loader = ctx.data::<Batcher<Kept<DoetankLoader>>>()?;
    let Some(row) = loader.load_one(id.to_string()).await.map_err(loader_error)? else {
        return Ok(None);
    };
    let app = ctx.data::<App>()?;
    if !row.is_public && !Box::pin(visibility::can_see(&app.store, &viewer(ctx), &row.id)).await.gql()? {
        return Ok(None);
    }
    Ok(Some(Doetank::live(row)))
}

/// The lesson, if it exists and the viewer may see its doetank (rule 5).
pub async fn load_lesson(ctx: &Context<'_>, id: &str) -> Result<Option<Lesson>> {
    let app = ctx.data::<App>()?;
    let select = format!("{LESSON_SELECT} WHERE l.id = $1");
    let row: Option<LessonRow> =
        Box::pin(crate::sql::fetch_small_optional(&app.store, &select, &[id.to_string().into()]))
            .await
            .gql()?;
    let Some(row) = row else { return Ok(None) };
    if load_doetank(ctx, &row.doetank_id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(Lesson::listed(row)))
}

pub async fn load_challenge(ctx: &Context<'_>, id: &str) -> Result<Option<Challenge>> {
    let loader = ctx.data::<Batcher<Kept<ChallengeLoader>>>()?;
    Ok(loader.load_one(id.to_string()).await.map_err(loader_error)?.map(Challenge))
}

pub struct Member(pub MemberRow);

/// A person in the network: a civil servant, an external adviser or an academic. The name is
/// personal data and disappears when the member is erased.
#[Object]
impl Member {
    /// The member's id, also in the log's events (`member-<id>` is its stream).
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Null once the member has been erased.
    async fn name(&self) -> Option<&str> {
        if self.0.erased {
            None
        } else {
            self.0.name.as_deref()
        }
    }
    /// How to reach the member: shown to the member themself and to facilitators (who organise
    /// cafés and doetanks), null to everyone else, and once erased.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        let viewer = super::viewer(ctx);
        let own = viewer.member_id.is_some_and(|me| me.to_string() == self.0.id);
        if self.0.erased || !(own || viewer.is_facilitator()) {
            return None;
        }
        self.0.email.as_deref()
    }
    /// The organisation the member works for.
    async fn organisation(&self) -> &str {
        &self.0.organisation
    }
    /// Where the member works: the public sector, as an external adviser, or in academia.
    async fn sector(&self) -> Option<Sector> {
        parse_enum(&self.0.sector)
    }
    /// What the member knows about, in their own words (`members(expertise:)` finds them by it);
    /// empty once erased.
    async fn expertise(&self) -> Vec<String> {
        json_list(&self.0.expertise)
    }
    /// One of the senior figures who open doors at the administrative top (seed 000).
    async fn on_support_committee(&self) -> bool {
        self.0.support_committee
    }
    /// Its personal data was erased for good (`eraseMember`): no name; the id stays in history.
    async fn erased(&self) -> bool {
        self.0.erased
    }
    /// When the member was registered.
    async fn registered_at(&self) -> DateTime<Utc> {
        parse_time(&self.0.registered_at)
    }
    /// Its stream's version: the `expectedVersion` for the next command on it.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The doetanks this member leads, joined or coaches.
    async fn doetanks(&self, ctx: &Context<'_>) -> Result<Vec<DoetankRoleOf>> {
        let app = ctx.data::<App>()?;
        let sql = "SELECT doetank_id AS key, role AS role FROM rm_doetank_members WHERE member_id = $1 \
                   UNION ALL SELECT id AS key, 'COACH' AS role FROM rm_doetanks WHERE coach_id = $1";
        let rows: Vec<RoleRow> =
            Box::pin(crate::sql::fetch_small(&app.store, sql, &[self.0.id.clone().into()])).await.gql()?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(doetank) = load_doetank(ctx, &row.key).await? {
                out.push(DoetankRoleOf {
                    doetank,
                    role: parse_enum(&row.role).unwrap_or(DoetankRole::Member),
                });
            }
        }
        Ok(out)
    }
}

read_model_row! {
    struct RoleRow {
        key: String,
        role: String,
    }
}

/// A doetank a member is part of, and in which role.
#[derive(SimpleObject)]
pub struct DoetankRoleOf {
    /// The doetank.
    pub doetank: Doetank,
    /// The member's part in it: lead, member or coach.
    pub role: DoetankRole,
}

/// A member's place in a doetank.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Membership {
    #[graphql(skip)]
    pub member_id: String,
    /// LEAD for the doetank's lead, else MEMBER (the coach is not a member).
    pub role: DoetankRole,
    /// The member's sector when they joined: what rule 2 counts.
    pub sector: Option<Sector>,
    /// When they joined (for founding members, when the doetank was formed).
    pub joined_at: DateTime<Utc>,
}

#[ComplexObject]
impl Membership {
    /// The member; their name is null once erased.
    async fn member(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        load_member(ctx, &self.member_id).await
    }
}

pub struct Challenge(pub ChallengeRow);

/// A practical problem from the work floor that stands for a wider public-sector question.
#[Object]
impl Challenge {
    /// The challenge's id (`challenge-<id>` is its stream).
    pub(super) async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// What the problem is, in a line.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The problem, as it shows on the work floor and what wider question it stands for.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// The member who raised it.
    async fn raised_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        load_member(ctx, &self.0.raised_by).await
    }
    /// Where it came from: a commissioner, a member's own frustration, a café or an idea.
    async fn origin(&self) -> Result<super::network::Origin> {
        let origin = serde_json::from_str(&self.0.origin)
            .map_err(|e| AppError::Database(sqlx::Error::Decode(Box::new(e))))
            .gql()?;
        Ok(super::network::Origin(origin))
    }
    /// The organisation that commissions work on it.
    async fn commissioner(&self) -> Option<&str> {
        self.0.commissioner.as_deref()
    }
    /// When it was raised.
    async fn raised_at(&self) -> DateTime<Utc> {
        parse_time(&self.0.raised_at)
    }
    /// Its stream's version: the `expectedVersion` for the next command on it.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// The members who pledged to work on it.
    async fn supporters(&self, ctx: &Context<'_>) -> Result<Vec<Member>> {
        let app = ctx.data::<App>()?;
        let ids: Vec<RoleRow> = Box::pin(crate::sql::fetch_small(
            &app.store,
            "SELECT member_id AS key, '' AS role FROM rm_challenge_supporters WHERE challenge_id = $1 ORDER BY member_id",
            &[self.0.id.clone().into()],
        ))
        .await
        .gql()?;
        let mut out = Vec::new();
        for row in ids {
            out.extend(load_member(ctx, &row.key).await?);
        }
        Ok(out)
    }
    /// The doetanks formed on it that the viewer may see (rule 5).
    async fn doetanks(&self, ctx: &Context<'_>) -> Result<Vec<Doetank>> {
        let app = ctx.data::<App>()?;
        let mut f = crate::sql::Filter::default();
        f.push("d.challenge_id = ?", self.0.id.clone());
        visibility::restrict_doetanks(&mut f, "d", &viewer(ctx));
        let sql = format!("{DOETANK_SELECT}{} ORDER BY d.created_position", f.where_sql());
        let rows: Vec<DoetankRow> =
            Box::pin(crate::sql::fetch_small(&app.store, &sql, &f.args)).await.gql()?;
        Ok(rows.into_iter().map(Doetank::live).collect())
    }
}

pub struct Doetank {
    pub row: DoetankRow,
    /// Set for a past state (`asOf` / `atVersion`): the replayed read models to read from.
    pub past: Option<Backend>,
}

impl Doetank {
    pub fn live(row: DoetankRow) -> Self {
        Doetank { row, past: None }
    }

    /// Rows of a nested list: batched through the request's loader now, or read from the
    /// replayed past.
    async fn nested<T: crate::sql::AnyRow>(
        &self,
        now: impl std::future::Future<Output = Result<Vec<T>>>,
        select: &str,
        order: &str,
    ) -> Result<Vec<T>> {
        match &self.past {
            None => now.await,
            Some(past) => {
                let sql = format!("{select} WHERE doetank_id = $1 ORDER BY {order}");
                Box::pin(crate::sql::fetch_all(past, &sql, &[self.row.id.clone().into()])).await.gql()
            }
        }
    }
}

/// One phase of a doetank: when it started and, once completed, when and with what summary.
#[derive(SimpleObject)]
pub struct PhaseProgress {
    /// The phase.
    pub phase: Option<Phase>,
    /// When the phase started (when the one before it was completed; for the first, when the
    /// doetank was formed).
    pub started_at: DateTime<Utc>,
    /// When the phase was completed; null while it runs.
    pub completed_at: Option<DateTime<Utc>>,
    /// What the phase brought, given when it was completed.
    pub summary: Option<String>,
}

/// A doetank's kick-off meeting.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Kickoff {
    /// The day it was held.
    pub date: Option<NaiveDate>,
    /// Where it was held.
    pub venue: String,
    /// The ids of the members who attended.
    pub attendee_ids: Vec<ID>,
}

#[ComplexObject]
impl Kickoff {
    /// The members who attended (names null for those erased since).
    async fn attendees(&self, ctx: &Context<'_>) -> Result<Vec<Member>> {
        let mut out = Vec::with_capacity(self.attendee_ids.len());
        for id in &self.attendee_ids {
            out.extend(load_member(ctx, id.as_str()).await?);
        }
        Ok(out)
    }
}

/// An expert a doetank consulted.
#[derive(SimpleObject)]
pub struct ExpertConsultation {
    /// What the expert was asked about.
    pub topic: String,
    /// Who was consulted.
    pub expert: String,
    /// When the consultation was recorded.
    pub consulted_at: DateTime<Utc>,
}

/// An update a doetank published about its work.
#[derive(SimpleObject)]
pub struct PublishedUpdate {
    /// Where it was published.
    pub channel: Option<Channel>,
    /// Its title.
    pub title: String,
    /// Where to read it.
    pub link: String,
    /// When it was recorded.
    pub published_at: DateTime<Utc>,
}

/// A business case a doetank handed over to an organisation that carries it on.
#[derive(SimpleObject)]
pub struct HandOver {
    /// The organisation that took it over.
    pub organisation: String,
    /// What was handed over.
    pub summary: String,
    /// When it was handed over.
    pub handed_over_at: DateTime<Utc>,
}

impl Doetank {
    async fn activities(&self, ctx: &Context<'_>, kind: &str) -> Result<Vec<ActivityRow>> {
        let now = async {
            let loader = ctx.data::<Batcher<Kept<ActivitiesByDoetank>>>()?;
            Ok(loader.load_one(self.row.id.clone()).await.map_err(loader_error)?.unwrap_or_default())
        };
        let rows = self.nested(now, ACTIVITY_SELECT, "position").await?;
        Ok(rows.into_iter().filter(|r| r.kind == kind).collect())
    }
}

/// A doetank: 3 to 9 innovators (rule 1) with a lead and a coach, taking one challenge through six
/// phases and recording what works and what does not. Informal, seen only by its team and
/// facilitators, until made public (rule 5).
#[Object]
impl Doetank {
    /// The doetank's id (`doetank-<id>` is its stream).
    pub(super) async fn id(&self) -> ID {
        ID(self.row.id.clone())
    }
    /// Its name.
    async fn name(&self) -> &str {
        &self.row.name
    }
    /// The challenge it takes on.
    async fn challenge(&self, ctx: &Context<'_>) -> Result<Option<Challenge>> {
        load_challenge(ctx, &self.row.challenge_id).await
    }
    /// Its lead (trekker), who coordinates; one of its members (rule 3).
    async fn lead(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        load_member(ctx, &self.row.lead_id).await
    }
    /// The innovators (lead included), with their roles; the coach is not one of them.
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<Membership>> {
        let now = async {
            let loader = ctx.data::<Batcher<Kept<MembershipsByDoetank>>>()?;
            Ok(loader.load_one(self.row.id.clone()).await.map_err(loader_error)?.unwrap_or_default())
        };
        let rows = self.nested(now, MEMBERSHIP_SELECT, "role, joined_at, member_id").await?;
        Ok(rows
            .into_iter()
            .map(|r| Membership {
                role: parse_enum(&r.role).unwrap_or(DoetankRole::Member),
                sector: parse_enum(&r.sector),
                joined_at: parse_time(&r.joined_at),
                member_id: r.member_id,
            })
            .collect())
    }
    /// Its innovators, the lead included; the coach is not counted (rule 1: 3 to 9).
    async fn member_count(&self, ctx: &Context<'_>) -> Result<usize> {
        Ok(self.members(ctx).await?.len())
    }
    /// Guides it; never one of its members (rule 3).
    async fn coach(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        match &self.row.coach_id {
            Some(id) => load_member(ctx, id).await,
            None => Ok(None),
        }
    }
    /// The organisation that commissions its work.
    async fn commissioner(&self) -> Option<&str> {
        self.row.commissioner.as_deref()
    }
    /// The phase it is in: discover, research, develop, try out, learn, hand over, in that
    /// order (rule 4).
    async fn current_phase(&self) -> Option<Phase> {
        self.row.current_phase.as_deref().and_then(parse_enum)
    }
    /// Every phase started so far, in order, with dates and (once completed) the summary.
    async fn phases(&self, ctx: &Context<'_>) -> Result<Vec<PhaseProgress>> {
        let now = async {
            let loader = ctx.data::<Batcher<Kept<PhasesByDoetank>>>()?;
            Ok(loader.load_one(self.row.id.clone()).await.map_err(loader_error)?.unwrap_or_default())
        };
        let rows = self.nested(now, PHASE_SELECT, "ordinal").await?;
        Ok(rows
            .into_iter()
            .map(|r| PhaseProgress {
                phase: parse_enum(&r.phase),
                started_at: parse_time(&r.started_at),
                completed_at: parse_opt_time(&r.completed_at),
                summary: r.summary,
            })
            .collect())
    }
    /// The phases it completed, in order, each with its summary.
    async fn completed_phases(&self, ctx: &Context<'_>) -> Result<Vec<PhaseProgress>> {
        Ok(self.phases(ctx).await?.into_iter().filter(|p| p.completed_at.is_some()).collect())
    }
    /// What it learned, in the order recorded.
    async fn lessons(&self, ctx: &Context<'_>) -> Result<Vec<Lesson>> {
        let now = async {
            let loader = ctx.data::<Batcher<Kept<LessonsByDoetank>>>()?;
            Ok(loader.load_one(self.row.id.clone()).await.map_err(loader_error)?.unwrap_or_default())
        };
        let rows = self.nested(now, LESSON_SELECT, "l.position").await?;
        Ok(rows.into_iter().map(Lesson::listed).collect())
    }
    /// Its kick-off meetings.
    async fn kickoffs(&self, ctx: &Context<'_>) -> Result<Vec<Kickoff>> {
        Ok(self
            .activities(ctx, "KICKOFF")
            .await?
            .into_iter()
            .map(|r| Kickoff {
                date: r.on_date.as_deref().and_then(parse_date),
                venue: r.title,
                attendee_ids: json_list(&r.detail).into_iter().map(ID).collect(),
            })
            .collect())
    }
    /// The experts it consulted, in order.
    async fn expert_consultations(&self, ctx: &Context<'_>) -> Result<Vec<ExpertConsultation>> {
        Ok(self
            .activities(ctx, "EXPERT")
            .await?
            .into_iter()
            .map(|r| ExpertConsultation { topic: r.title, expert: r.detail, consulted_at: parse_time(&r.at) })
            .collect())
    }
    /// The updates it published, in order.
    async fn updates(&self, ctx: &Context<'_>) -> Result<Vec<PublishedUpdate>> {
        Ok(self
            .activities(ctx, "UPDATE")
            .await?
            .into_iter()
            .map(|r| PublishedUpdate {
                channel: r.channel.as_deref().and_then(parse_enum),
                title: r.title,
                link: r.link.unwrap_or_default(),
                published_at: parse_time(&r.at),
            })
            .collect())
    }
    /// Organisations that reuse its results or one of its lessons (Lanceerplatform), in the
    /// order recorded; as they are now, also for a past state.
    async fn reuses(&self, ctx: &Context<'_>) -> Result<Vec<super::network::Reuse>> {
        super::network::reuses_of(ctx, &self.row.id, None).await
    }
    /// The business cases it handed over, in order.
    async fn hand_overs(&self, ctx: &Context<'_>) -> Result<Vec<HandOver>> {
        Ok(self
            .activities(ctx, "HAND_OVER")
            .await?
            .into_iter()
            .map(|r| HandOver {
                organisation: r.organisation.unwrap_or_default(),
                summary: r.detail,
                handed_over_at: parse_time(&r.at),
            })
            .collect())
    }
    /// Active, or how it concluded.
    async fn status(&self) -> Option<DoetankStatus> {
        parse_enum(&self.row.status)
    }
    /// False while the doetank works informally, "under the radar".
    async fn is_public(&self) -> bool {
        self.row.is_public
    }
    /// When it was formed, as the command said.
    async fn formed_at(&self) -> DateTime<Utc> {
        parse_time(&self.row.formed_at)
    }
    /// When it concluded; after that it takes no command (rule 6).
    async fn concluded_at(&self) -> Option<DateTime<Utc>> {
        parse_opt_time(&self.row.concluded_at)
    }
    /// What it learned as a whole, given when it concluded.
    async fn reflection(&self) -> Option<&str> {
        self.row.reflection.as_deref()
    }
    /// The stream version: pass it as `expectedVersion` to guard against lost updates.
    async fn version(&self) -> i64 {
        self.row.version
    }
    /// When the log recorded its last event.
    async fn updated_at(&self) -> DateTime<Utc> {
        parse_time(&self.row.updated_at)
    }
    /// The doetank's own events, oldest first, straight from the log: up to its `version`, so
    /// a past state (`asOf`, `atVersion`) tells the history it had then (until the thirty-first
    /// session it told the whole stream, the future included).
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<Event>> {
        let app = ctx.data::<App>()?;
        let id =
            Uuid::parse_str(&self.row.id).map_err(|_| AppError::not_found("doetank", &self.row.id)).gql()?;
        let events = app.store.read_stream(&StreamId::new("doetank", id), 1).await.gql()?;
        Ok(events
            .into_iter()
            .take_while(|e| e.version <= self.row.version)
            .map(|e| Event(Arc::new(e)))
            .collect())
    }
}

pub struct Lesson {
    pub row: LessonRow,
    /// Relevance to the search, when the list came from one (higher is better).
    pub rank: Option<f64>,
    /// What that search looked for, for the excerpt.
    pub search: Option<Arc<SearchTerms>>,
}

impl Lesson {
    /// A lesson not found by a search.
    pub fn listed(row: LessonRow) -> Self {
        Lesson { row, rank: None, search: None }
    }
}

/// What a doetank learned: what works, what does not, or another insight. The network's knowledge
/// base.
#[Object]
impl Lesson {
    /// The lesson's id; it lives in its doetank's stream.
    pub(super) async fn id(&self) -> ID {
        ID(self.row.id.clone())
    }
    /// The doetank it was learned in; null if the viewer may not see it.
    async fn doetank(&self, ctx: &Context<'_>) -> Result<Option<Doetank>> {
        load_doetank(ctx, &self.row.doetank_id).await
    }
    /// The member or coach who recorded it (rule 4).
    async fn recorded_by(&self, ctx: &Context<'_>) -> Result<Option<Member>> {
        load_member(ctx, &self.row.recorded_by).await
    }
    /// The organisation of the member who recorded it, at the time.
    async fn organisation(&self) -> Option<&str> {
        self.row.organisation.as_deref()
    }
    /// The phase of the doetank it belongs to.
    async fn phase(&self) -> Option<Phase> {
        parse_enum(&self.row.phase)
    }
    /// What it tells: what works, what does not, or an insight.
    async fn kind(&self) -> Option<LessonKind> {
        parse_enum(&self.row.kind)
    }
    /// The lesson in a line.
    async fn title(&self) -> &str {
        &self.row.title
    }
    /// The lesson itself.
    async fn body(&self) -> &str {
        &self.row.body
    }
    /// Keywords, lower case (`lessons(filter: {tag})` finds lessons by one).
    async fn tags(&self) -> Vec<String> {
        json_list(&self.row.tags)
    }
    /// When the log recorded it.
    async fn recorded_at(&self) -> DateTime<Utc> {
        parse_time(&self.row.recorded_at)
    }
    /// The log position of the event that recorded it.
    async fn position(&self) -> i64 {
        self.row.position
    }
    /// Organisations that reuse this very lesson (Lanceerplatform), in the order recorded.
    async fn reuses(&self, ctx: &Context<'_>) -> Result<Vec<super::network::Reuse>> {
        super::network::reuses_of(ctx, &self.row.doetank_id, Some(&self.row.id)).await
    }
    /// How well it matched the search, higher is better (BM25 on SQLite, `ts_rank_cd` on
    /// PostgreSQL: compare ranks within one answer only); null outside a search.
    async fn rank(&self) -> Option<f64> {
        self.rank
    }
    /// When the lesson came from a search: about `words` words of its body around the first
    /// word the search matched, each matched word between `**` (Markdown's bold), `…` where
    /// the body goes on; found by its title or tags alone, the body's first words. Null
    /// outside a search.
    async fn excerpt(
        &self,
        #[graphql(default = 24, desc = "About how many words; 24 when absent.")] words: i32,
    ) -> Result<Option<String>> {
        if !(1..=200).contains(&words) {
            return Err(AppError::bad_input("words", "must be 1 to 200")).gql();
        }
        Ok(self.search.as_ref().map(|terms| terms.excerpt(&self.row.body, words as usize)))
    }
}

/// Shared, not copied: a live event goes to every subscriber that may see it.
pub struct Event(pub Arc<RecordedEvent>);

/// One event of the log: an immutable fact, in the one global order.
#[Object]
impl Event {
    /// The event's place in the one global order of the log: gap-free, never reused; the
    /// cursor to resume from (`events(after:)`).
    async fn position(&self) -> i64 {
        self.0.position
    }
    /// Unique id of the event (a UUIDv7, so roughly time-ordered).
    async fn event_id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// The stream it belongs to: `<streamType>-<uuid>` (one aggregate, e.g. a doetank).
    async fn stream_id(&self) -> &str {
        &self.0.stream_id
    }
    /// The kind of stream: member, challenge, doetank, cafe, ideation_event, pilot, charter,
    /// reuse (`eventTypes` lists each one's events).
    async fn stream_type(&self) -> &str {
        &self.0.stream_type
    }
    /// Its number within its stream, from 1: what `expectedVersion` is checked against.
    async fn version(&self) -> i64 {
        self.0.version
    }
    /// What happened: the event type, as `eventTypes` describes it.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The version of the payload's shape it was written with (`eventTypes.readVersions`).
    async fn schema_version(&self) -> i32 {
        self.0.schema_version
    }
    /// The payload as stored, in the shape of its `schemaVersion` (`eventTypes` has a JSON Schema
    /// of the current one).
    async fn payload(&self) -> Json<&serde_json::Value> {
        Json(&self.0.payload)
    }
    /// Who sent the command that wrote it, as `<role>:<token subject>` (`facilitator:…`,
    /// `member:…`), `system:demo` for the demo history. For signed-in readers, as the log is:
    /// null to anonymous readers of a doetank's `history` (a facilitator's token subject may be
    /// an address from an identity provider; until the thirty-first session anyone read it).
    async fn actor(&self, ctx: &Context<'_>) -> Option<&str> {
        super::viewer(ctx).role?;
        self.0.metadata.actor.as_deref()
    }
    /// The command's idempotency key, when its sender gave one; for signed-in readers, as
    /// `actor` is.
    async fn command_id(&self, ctx: &Context<'_>) -> Option<ID> {
        super::viewer(ctx).role?;
        self.0.metadata.command_id.map(|id| ID(id.to_string()))
    }
    /// Shared by every event one command wrote.
    async fn correlation_id(&self) -> ID {
        ID(self.0.metadata.correlation_id.to_string())
    }
    /// The command that caused it: its `commandId`, when the sender gave one.
    async fn causation_id(&self) -> Option<ID> {
        self.0.metadata.causation_id.map(|id| ID(id.to_string()))
    }
    /// When the log recorded it (for the demo history, the date it happened).
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    /// What the event happened to, as it is now (its read model, as `node` gives it): from
    /// the log to the thing in one query. Null once it is no longer there for the viewer.
    async fn subject(&self, ctx: &Context<'_>) -> Result<Option<super::node::Node>> {
        let Some(id) = self.0.aggregate_id() else { return Ok(None) };
        super::node::node_of_kind(ctx, &self.0.stream_type, ID(id.to_string())).await
    }
}
