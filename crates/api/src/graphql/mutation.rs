//! Mutations: one per command of the domain. Each runs the command, appends its events and
//! answers with the updated read model, the stream version and the global position.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};
use doetank_domain::aggregates::challenge::ChallengeOrigin;
use doetank_domain::aggregates::doetank::NewLesson;
use doetank_domain::{Challenge as ChallengeAgg, Doetank as DoetankAgg, Member as MemberAgg};
use uuid::Uuid;

use super::errors::GqlResult;
use super::objects::{load_lesson, Challenge, Doetank, Lesson, Member};
use super::scalars::*;
use super::viewer;
use crate::app::{App, CommandOptions, CommandOutcome};
use crate::auth::Viewer;
use crate::commands::{PersonalChange, PersonalData};
use crate::error::AppError;
use crate::rows::*;
use crate::sql;

/// Concurrency control and idempotency, accepted by every mutation.
#[derive(InputObject, Default, Clone)]
pub struct CommandControl {
    /// Refuse with VERSION_CONFLICT unless the stream is still at this version. Without it, a
    /// concurrent write makes the server decide the command again on the fresh state.
    pub expected_version: Option<i64>,
    /// Idempotency key (a UUID): sending the command again with it writes nothing and returns
    /// the first result.
    pub command_id: Option<ID>,
}

pub(super) fn options(ctx: &Context<'_>, control: &CommandControl) -> Result<CommandOptions> {
    let viewer = viewer(ctx);
    let actor = viewer.actor();
    let command_id = control.command_id.as_ref().map(|id| parse_id("commandId", id)).transpose().gql()?;
    if control.expected_version.is_some_and(|v| v < 0) {
        // No stream is ever at a negative version: that is a mistake in the input, not a race.
        return Err(AppError::bad_input("expectedVersion", "must be 0 or more")).gql();
    }
    let fingerprint = match command_id {
        Some(_) => Some(super::command_fingerprint::of_mutation(ctx, &actor)?),
        None => None,
    };
    Ok(CommandOptions {
        actor,
        expected_version: control.expected_version,
        command_id,
        correlation_id: None,
        fingerprint,
        acting_member: viewer.member_id,
    })
}

pub(super) fn app<'a>(ctx: &'a Context<'_>) -> Result<&'a App> {
    ctx.data::<App>()
}

/// A new entity's id: the one given, else the command id, else a fresh one. Taking the command
/// id means a retry with the same idempotency key names the same entity, so it finds the first
/// result instead of a new id whose stream never saw that key.
pub(super) fn new_or(field: &str, id: &Option<ID>, control: &CommandControl) -> Result<Uuid> {
    match (id, &control.command_id) {
        (Some(id), _) => parse_id(field, id).gql(),
        (None, Some(command_id)) => parse_id("commandId", command_id).gql(),
        (None, None) => Ok(Uuid::new_v4()),
    }
}

/// [`new_or`] for a new `kind` of thing (as `node` names kinds): an id the client chose (or its
/// command id) that already names a thing of another kind is refused, so that an id names one
/// thing across every kind, as `node(id)` and Relay take it. A retry with the same id for the
/// same kind passes on, to be answered as a retry.
pub(super) async fn new_id(
    ctx: &Context<'_>,
    kind: &str,
    field: &str,
    id: &Option<ID>,
    control: &CommandControl,
) -> Result<Uuid> {
    let new = new_or(field, id, control)?;
    if id.is_none() && control.command_id.is_none() {
        return Ok(new);
    }
    let taken = super::node::kinds_of(ctx, &new.to_string()).await?;
    match taken.iter().find(|other| *other != kind) {
        Some(other) => {
            let field = if id.is_some() { field } else { "commandId" };
            let message = format!("{new} is already the id of a {}", other.replace('_', " "));
            Err(AppError::bad_input(field, message)).gql()
        }
        None => Ok(new),
    }
}

/// How far a client's clock may run ahead of the server's.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// When a recorded fact happened: `at` as given, now when absent. A fact is recorded once it
/// has happened, so a time in the future (beyond clocks that disagree a little) is refused.
fn happened(at: Option<DateTime<Utc>>) -> Result<DateTime<Utc>> {
    let now = Utc::now();
    match at {
        Some(at) if at > now + CLOCK_SKEW => Err(AppError::bad_input(
            "at",
            format!("{} is in the future: record what has happened", at.to_rfc3339()),
        ))
        .gql(),
        Some(at) => Ok(at),
        None => Ok(now),
    }
}

/// The date where today began first (UTC+14): a café or an ideation day "on" a date has begun
/// once that date has come anywhere, so no one whose day it is, is refused.
pub(super) fn today_somewhere() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(14)).date_naive()
}

/// Lessons are recorded in one's own name.
fn recorder(ctx: &Context<'_>, recorded_by: &Option<ID>) -> Result<Uuid> {
    let viewer = viewer(ctx);
    viewer.require_signed_in().gql()?;
    let me = viewer
        .member_id
        .ok_or_else(|| AppError::Forbidden("lessons are recorded by members".into()))
        .gql()?;
    match recorded_by {
        Some(given) if id("recordedBy", given)? != me => {
            Err(AppError::Forbidden("lessons are recorded in one's own name".into())).gql()
        }
        _ => Ok(me),
    }
}

pub(super) fn id(field: &str, id: &ID) -> Result<Uuid> {
    parse_id(field, id).gql()
}

/// What every mutation answers besides the read model.
#[derive(SimpleObject)]
pub struct CommandResult {
    /// The stream's version after the command: the `expectedVersion` for the next one.
    pub stream_version: i64,
    /// Global position of the last event written.
    pub position: i64,
    /// True when the command id had been seen and nothing new was written.
    pub deduplicated: bool,
}

impl From<CommandOutcome> for CommandResult {
    fn from(o: CommandOutcome) -> Self {
        CommandResult { stream_version: o.stream_version, position: o.position, deduplicated: o.deduplicated }
    }
}

/// What a member command answers.
#[derive(SimpleObject)]
pub struct MemberPayload {
    /// The member as the command left it (the read model already reflects the write).
    pub member: Option<Member>,
    /// Where the member's stream and the log stand after the command.
    pub result: CommandResult,
}

/// What a challenge command answers.
#[derive(SimpleObject)]
pub struct ChallengePayload {
    /// The challenge as the command left it (the read model already reflects the write).
    pub challenge: Option<Challenge>,
    /// Where the challenge's stream and the log stand after the command.
    pub result: CommandResult,
}

/// What a doetank command answers.
#[derive(SimpleObject)]
pub struct DoetankPayload {
    /// The doetank as the command left it (the read model already reflects the write); null if the
    /// viewer may not see it.
    pub doetank: Option<Doetank>,
    /// Where the doetank's stream and the log stand after the command.
    pub result: CommandResult,
    /// The lesson `recordLesson` recorded, so a client learns its id without choosing one; null
    /// for the other commands.
    pub lesson: Option<Lesson>,
}

// Payloads read the row directly, not through the request's loaders, so a request
// with several mutations sees each one's write.
async fn member_payload(app: &App, outcome: CommandOutcome) -> Result<MemberPayload> {
    let sql_text = format!("{MEMBER_SELECT} WHERE m.id = $1");
    let row: Option<MemberRow> =
        sql::fetch_small_optional(&app.store, &sql_text, &[outcome.id.into()]).await.gql()?;
    Ok(MemberPayload { member: row.map(Member), result: outcome.into() })
}

async fn challenge_payload(app: &App, outcome: CommandOutcome) -> Result<ChallengePayload> {
    let sql_text = format!("{CHALLENGE_SELECT} WHERE id = $1");
    let row: Option<ChallengeRow> =
        sql::fetch_small_optional(&app.store, &sql_text, &[outcome.id.into()]).await.gql()?;
    Ok(ChallengePayload { challenge: row.map(Challenge), result: outcome.into() })
}

async fn doetank_payload(app: &App, outcome: CommandOutcome) -> Result<DoetankPayload> {
    let sql_text = format!("{DOETANK_SELECT} WHERE d.id = $1");
    let row: Option<DoetankRow> =
        sql::fetch_small_optional(&app.store, &sql_text, &[outcome.id.into()]).await.gql()?;
    Ok(DoetankPayload { doetank: row.map(Doetank::live), result: outcome.into(), lesson: None })
}

/// A new member of the network.
#[derive(InputObject)]
pub struct RegisterMemberInput {
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub id: Option<ID>,
    /// Personal data: kept outside the event log and erased for good by `eraseMember`.
    pub name: String,
    /// Personal data, like the name: kept outside the event log and erased by `eraseMember`. Never
    /// shown by the API. An address mail can be sent to: `name@organisation.nl`, no spaces, at
    /// most 254 characters.
    pub email: Option<String>,
    /// The organisation the member works for, 1 to 200 characters.
    pub organisation: String,
    /// Where the member works: the public sector, as an external adviser, or in academia.
    pub sector: Sector,
    /// What the member knows about, in their own words (`members(expertise:)` finds them by it):
    /// at most 50 entries of at most 200 characters; a repeat in another case is kept once.
    #[graphql(default)]
    pub expertise: Vec<String>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A change to a member's profile; only the fields given change.
#[derive(InputObject)]
pub struct UpdateMemberProfileInput {
    /// The member to change: the signed-in member, or anyone for a facilitator.
    pub member_id: ID,
    /// The new name, 1 to 200 characters (personal data, kept outside the log).
    pub name: Option<String>,
    /// The new e-mail address (personal data, kept outside the log); a blank one removes it.
    pub email: Option<String>,
    /// The new organisation, 1 to 200 characters.
    pub organisation: Option<String>,
    /// The new list of expertise, replacing the old one (at most 50 entries of at most 200
    /// characters).
    pub expertise: Option<Vec<String>>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A command on one member.
#[derive(InputObject)]
pub struct MemberCommandInput {
    /// The member.
    pub member_id: ID,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// Where a challenge came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum OriginKind {
    /// A public organisation brought it and wants it solved (give `organisation`).
    Commissioner,
    /// A member's own frustration on the work floor.
    OwnFrustration,
    /// Raised at a Slimmernetwerk Café (give `cafeId`).
    Cafe,
    /// Grew out of an idea of an ideation day (give `ideationEventId` and `ideaId`).
    Idea,
}

/// Where a challenge came from; which other field is required depends on `kind`.
#[derive(InputObject)]
pub struct ChallengeOriginInput {
    /// The kind of origin; it says which of the other fields is required.
    pub kind: OriginKind,
    /// For COMMISSIONER.
    pub organisation: Option<String>,
    /// For CAFE.
    pub cafe_id: Option<ID>,
    /// For IDEA.
    pub ideation_event_id: Option<ID>,
    /// For IDEA: the idea, submitted to `ideationEventId`.
    pub idea_id: Option<ID>,
}

impl ChallengeOriginInput {
    fn into_domain(self) -> Result<ChallengeOrigin> {
        let required = |field: &str, v: Option<ID>| -> Result<Uuid> {
            let v = v.ok_or_else(|| AppError::bad_input(field, "is required for this origin")).gql()?;
            id(field, &v)
        };
        Ok(match self.kind {
            OriginKind::Commissioner => ChallengeOrigin::Commissioner {
                organisation: self
                    .organisation
                    .ok_or_else(|| AppError::bad_input("organisation", "is required for a commissioner"))
                    .gql()?,
            },
            OriginKind::OwnFrustration => ChallengeOrigin::OwnFrustration,
            OriginKind::Cafe => ChallengeOrigin::Cafe { cafe_id: required("cafeId", self.cafe_id)? },
            OriginKind::Idea => ChallengeOrigin::Idea {
                ideation_event_id: required("ideationEventId", self.ideation_event_id)?,
                idea_id: required("ideaId", self.idea_id)?,
            },
        })
    }
}

/// A new challenge: a practical problem from the work floor that stands for a wider public-sector
/// question.
#[derive(InputObject)]
pub struct RaiseChallengeInput {
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub id: Option<ID>,
    /// 1 to 200 characters.
    pub title: String,
    /// The problem, 1 to 20,000 characters.
    pub description: String,
    /// The member raising it: the signed-in member, or anyone for a facilitator.
    pub raised_by: ID,
    /// Where it came from.
    pub origin: ChallengeOriginInput,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A member's pledge to work on a challenge.
#[derive(InputObject)]
pub struct PledgeSupportInput {
    /// The challenge.
    pub challenge_id: ID,
    /// The member who wants to work on it: the signed-in member, or anyone for a facilitator.
    pub member_id: ID,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// An organisation that commissions work on a challenge.
#[derive(InputObject)]
pub struct FindCommissionerInput {
    /// The challenge.
    pub challenge_id: ID,
    /// The commissioning organisation, 1 to 200 characters.
    pub organisation: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A new doetank on a challenge. It starts informal (rule 5).
#[derive(InputObject)]
pub struct FormDoetankInput {
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub id: Option<ID>,
    /// 1 to 200 characters.
    pub name: String,
    /// The challenge it takes on.
    pub challenge_id: ID,
    /// The lead (trekker), who coordinates; one of its innovators (rule 3). The signed-in member,
    /// unless a facilitator forms it.
    pub lead_id: ID,
    /// Founding members besides the lead.
    #[graphql(default)]
    pub member_ids: Vec<ID>,
    /// When it happened; now when absent. Not in the future.
    pub at: Option<DateTime<Utc>>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A member joining or leaving a doetank, or becoming its lead.
#[derive(InputObject)]
pub struct DoetankMemberInput {
    /// The doetank.
    pub doetank_id: ID,
    /// The member who joins, leaves or becomes the lead.
    pub member_id: ID,
    /// When it happened; now when absent (for recording history after the fact). Not in the
    /// future, nor before the doetank's latest dated fact (its story moves forward).
    pub at: Option<DateTime<Utc>>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A coach for a doetank.
#[derive(InputObject)]
pub struct AssignCoachInput {
    /// The doetank.
    pub doetank_id: ID,
    /// The member who coaches it; not one of its members (rule 3).
    pub coach_id: ID,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A command on one doetank.
#[derive(InputObject)]
pub struct DoetankCommandInput {
    /// The doetank.
    pub doetank_id: ID,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// An organisation that commissions a doetank's work.
#[derive(InputObject)]
pub struct AttachCommissionerInput {
    /// The doetank.
    pub doetank_id: ID,
    /// The commissioning organisation, 1 to 200 characters.
    pub organisation: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A doetank's kick-off meeting.
#[derive(InputObject)]
pub struct HoldKickoffInput {
    /// The doetank.
    pub doetank_id: ID,
    /// The day it was held: on or after the day the doetank was formed, and not in the future.
    pub date: NaiveDate,
    /// Where, 1 to 200 characters.
    pub venue: String,
    /// The members who attended (each once; at most 1,000).
    #[graphql(default)]
    pub attendee_ids: Vec<ID>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// The end of a doetank's current phase; the next one starts with it.
#[derive(InputObject)]
pub struct CompletePhaseInput {
    /// The doetank; its lead completes phases.
    pub doetank_id: ID,
    /// The phase being completed: it must be the current one (rule 4).
    pub phase: Phase,
    /// What the phase brought, 1 to 10,000 characters.
    pub summary: String,
    /// When it was completed; now when absent (for recording history after the fact). Not in
    /// the future, nor before the doetank's latest dated fact (the phase's start among them).
    pub at: Option<DateTime<Utc>>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// An expert a doetank consulted.
#[derive(InputObject)]
pub struct ConsultExpertInput {
    /// The doetank.
    pub doetank_id: ID,
    /// What the expert was asked about, 1 to 200 characters.
    pub topic: String,
    /// Who was consulted (a name or a role), 1 to 200 characters.
    pub expert: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A lesson for the network's knowledge base.
#[derive(InputObject)]
pub struct RecordLessonInput {
    /// The doetank it was learned in.
    pub doetank_id: ID,
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub lesson_id: Option<ID>,
    /// A member or the coach of the doetank (rule 4): the signed-in member; defaults to them.
    pub recorded_by: Option<ID>,
    /// The phase the lesson belongs to; the current phase when absent.
    pub phase: Option<Phase>,
    /// What it tells: what works, what does not, or an insight.
    pub kind: LessonKind,
    /// 1 to 200 characters; weighs more than the body in a search.
    pub title: String,
    /// The lesson itself, 1 to 20,000 characters.
    pub body: String,
    /// Keywords; `lessons(filter: {tag})` finds lessons by one, and they weigh more than the body
    /// in a search. Kept in lower case, each once; at most 50 of at most 200 characters.
    #[graphql(default)]
    pub tags: Vec<String>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// An update a doetank published about its work.
#[derive(InputObject)]
pub struct PublishUpdateInput {
    /// The doetank; its members and coach publish updates.
    pub doetank_id: ID,
    /// Where it was published.
    pub channel: Channel,
    /// 1 to 200 characters.
    pub title: String,
    /// Where to read it: an absolute http(s) URL with a host, up to 2,000 characters; kept in
    /// its normal form (`HTTPS://Example.org` as `https://example.org/`).
    pub link: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// The business case a doetank hands over to an organisation that carries it on.
#[derive(InputObject)]
pub struct HandOverInput {
    /// The doetank; its lead hands over.
    pub doetank_id: ID,
    /// The organisation that takes it over, 1 to 200 characters.
    pub organisation: String,
    /// What is handed over, 1 to 10,000 characters.
    pub summary: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// The end of a doetank; after it, the doetank takes no command (rule 6).
#[derive(InputObject)]
pub struct ConcludeDoetankInput {
    /// The doetank; its lead concludes it.
    pub doetank_id: ID,
    /// Whether it finished its work or stopped before.
    pub outcome: DoetankOutcome,
    /// What it learned as a whole, 1 to 20,000 characters.
    pub reflection: String,
    /// When it concluded; now when absent (for recording history after the fact). Not in the
    /// future, nor before the doetank's latest dated fact.
    pub at: Option<DateTime<Utc>>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

#[derive(Default)]
pub struct Mutation;

#[Object(name = "DoetankMutation")]
impl Mutation {
    /// Registers a member of the network (`MemberRegistered`); facilitators only. The name and
    /// e-mail are personal data, kept outside the log.
    async fn register_member(&self, ctx: &Context<'_>, input: RegisterMemberInput) -> Result<MemberPayload> {
        viewer(ctx).require_facilitator().gql()?;
        let app = app(ctx)?;
        let member_id = new_id(ctx, "member", "id", &input.id, &input.control).await?;
        let personal = PersonalData { name: input.name, email: input.email };
        let outcome = app
            .register_member(
                &options(ctx, &input.control)?,
                member_id,
                personal,
                &input.organisation,
                input.sector.into(),
                input.expertise,
            )
            .await
            .gql()?;
        member_payload(app, outcome).await
    }

    /// Changes a member's organisation, expertise or name; the member or a facilitator.
    async fn update_member_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateMemberProfileInput,
    ) -> Result<MemberPayload> {
        viewer(ctx).require_self_or_facilitator(id("memberId", &input.member_id)?).gql()?;
        let app = app(ctx)?;
        let member_id = id("memberId", &input.member_id)?;
        let outcome = app
            .update_member_profile(
                &options(ctx, &input.control)?,
                member_id,
                PersonalChange { name: input.name.as_deref(), email: input.email.as_deref() },
                input.organisation.as_deref(),
                input.expertise,
            )
            .await
            .gql()?;
        member_payload(app, outcome).await
    }

    /// Appoints a member to the support committee that opens doors at the top; facilitators
    /// only.
    async fn appoint_to_support_committee(
        &self,
        ctx: &Context<'_>,
        input: MemberCommandInput,
    ) -> Result<MemberPayload> {
        viewer(ctx).require_facilitator().gql()?;
        let app = app(ctx)?;
        let member_id = id("memberId", &input.member_id)?;
        let outcome = app
            .execute::<MemberAgg>(member_id, &options(ctx, &input.control)?, |m| {
                m.appoint_to_support_committee()
            })
            .await
            .gql()?;
        member_payload(app, outcome).await
    }

    /// Removes the member's personal data for good; the pseudonymous id stays in history.
    async fn erase_member(&self, ctx: &Context<'_>, input: MemberCommandInput) -> Result<MemberPayload> {
        viewer(ctx).require_self_or_facilitator(id("memberId", &input.member_id)?).gql()?;
        let app = app(ctx)?;
        let member_id = id("memberId", &input.member_id)?;
        let outcome =
            app.execute::<MemberAgg>(member_id, &options(ctx, &input.control)?, |m| m.erase()).await.gql()?;
        member_payload(app, outcome).await
    }

    /// Puts a problem from the work floor to the network, with where it came from: raised by
    /// the signed-in member, or by a facilitator in any member's name.
    async fn raise_challenge(
        &self,
        ctx: &Context<'_>,
        input: RaiseChallengeInput,
    ) -> Result<ChallengePayload> {
        viewer(ctx).require_self_or_facilitator(id("raisedBy", &input.raised_by)?).gql()?;
        let app = app(ctx)?;
        let challenge_id = new_id(ctx, "challenge", "id", &input.id, &input.control).await?;
        let raised_by = id("raisedBy", &input.raised_by)?;
        app.innovator(raised_by).await.gql()?;
        let origin = input.origin.into_domain()?;
        app.origin_exists(&origin, today_somewhere()).await.gql()?;
        let outcome = app
            .execute::<ChallengeAgg>(challenge_id, &options(ctx, &input.control)?, |c| {
                c.raise(challenge_id, &input.title, &input.description, raised_by, origin.clone())
            })
            .await
            .gql()?;
        challenge_payload(app, outcome).await
    }

    /// The member wants to work on the challenge; the member or a facilitator.
    async fn pledge_support(&self, ctx: &Context<'_>, input: PledgeSupportInput) -> Result<ChallengePayload> {
        viewer(ctx).require_self_or_facilitator(id("memberId", &input.member_id)?).gql()?;
        let app = app(ctx)?;
        let outcome = app
            .pledge_support(
                &options(ctx, &input.control)?,
                id("challengeId", &input.challenge_id)?,
                id("memberId", &input.member_id)?,
            )
            .await
            .gql()?;
        challenge_payload(app, outcome).await
    }

    /// An organisation commissions work on the challenge; facilitators only.
    async fn find_commissioner(
        &self,
        ctx: &Context<'_>,
        input: FindCommissionerInput,
    ) -> Result<ChallengePayload> {
        viewer(ctx).require_facilitator().gql()?;
        let app = app(ctx)?;
        let outcome = app
            .execute::<ChallengeAgg>(
                id("challengeId", &input.challenge_id)?,
                &options(ctx, &input.control)?,
                |c| c.find_commissioner(&input.organisation),
            )
            .await
            .gql()?;
        challenge_payload(app, outcome).await
    }

    /// Forms an informal doetank (rule 5) on a challenge: the lead, the signed-in member unless a
    /// facilitator forms it, and founding members, 3 to 9 innovators in all (rule 1), external
    /// advisers fewer than the public-sector members (rule 2).
    async fn form_doetank(&self, ctx: &Context<'_>, input: FormDoetankInput) -> Result<DoetankPayload> {
        viewer(ctx).require_self_or_facilitator(id("leadId", &input.lead_id)?).gql()?;
        let app = app(ctx)?;
        let doetank_id = new_id(ctx, "doetank", "id", &input.id, &input.control).await?;
        let members = input.member_ids.iter().map(|m| id("memberIds", m)).collect::<Result<Vec<_>>>()?;
        let outcome = app
            .form_doetank(
                &options(ctx, &input.control)?,
                doetank_id,
                &input.name,
                id("challengeId", &input.challenge_id)?,
                id("leadId", &input.lead_id)?,
                &members,
                happened(input.at)?,
            )
            .await
            .gql()?;
        doetank_payload(app, outcome).await
    }

    /// An innovator joins (rules 1 and 2: a tenth is refused); the member, the lead or a
    /// facilitator. An informal doetank is joined only as its lead or a facilitator adds one
    /// (rule 5: to others it does not exist).
    async fn join_doetank(&self, ctx: &Context<'_>, input: DoetankMemberInput) -> Result<DoetankPayload> {
        let app = app(ctx)?;
        let doetank_id = id("doetankId", &input.doetank_id)?;
        let member_id = id("memberId", &input.member_id)?;
        authorize(app, &viewer(ctx), doetank_id, Who::SelfLeadOrFacilitator(member_id)).await.gql()?;
        let outcome = app
            .join_doetank(&options(ctx, &input.control)?, doetank_id, member_id, happened(input.at)?)
            .await
            .gql()?;
        doetank_payload(app, outcome).await
    }

    /// A member leaves; the member, the lead or a facilitator. The lead cannot leave (rule 3),
    /// and external advisers must stay fewer than the public-sector members (rule 2).
    async fn leave_doetank(&self, ctx: &Context<'_>, input: DoetankMemberInput) -> Result<DoetankPayload> {
        let member_id = id("memberId", &input.member_id)?;
        let at = happened(input.at)?;
        doetank_command(ctx, &input.doetank_id, Who::SelfLeadOrFacilitator(member_id), &input.control, |d| {
            d.leave(member_id, at)
        })
        .await
    }

    /// Another member leads (rule 3: the lead is a member); the lead or a facilitator.
    async fn change_lead(&self, ctx: &Context<'_>, input: DoetankMemberInput) -> Result<DoetankPayload> {
        let app = app(ctx)?;
        let doetank_id = id("doetankId", &input.doetank_id)?;
        let member_id = id("memberId", &input.member_id)?;
        authorize(app, &viewer(ctx), doetank_id, Who::LeadOrFacilitator).await.gql()?;
        let outcome = app.change_lead(&options(ctx, &input.control)?, doetank_id, member_id).await.gql()?;
        doetank_payload(app, outcome).await
    }

    /// Assigns a coach, who may not be a member of the doetank (rule 3); facilitators only.
    async fn assign_coach(&self, ctx: &Context<'_>, input: AssignCoachInput) -> Result<DoetankPayload> {
        viewer(ctx).require_facilitator().gql()?;
        let app = app(ctx)?;
        let outcome = app
            .assign_coach(
                &options(ctx, &input.control)?,
                id("doetankId", &input.doetank_id)?,
                id("coachId", &input.coach_id)?,
            )
            .await
            .gql()?;
        doetank_payload(app, outcome).await
    }

    /// The coach stops guiding the doetank; facilitators only.
    async fn release_coach(&self, ctx: &Context<'_>, input: DoetankCommandInput) -> Result<DoetankPayload> {
        doetank_command(ctx, &input.doetank_id, Who::Facilitator, &input.control, |d| d.release_coach()).await
    }

    /// An organisation commissions the doetank's work; the lead or a facilitator.
    async fn attach_commissioner(
        &self,
        ctx: &Context<'_>,
        input: AttachCommissionerInput,
    ) -> Result<DoetankPayload> {
        doetank_command(ctx, &input.doetank_id, Who::LeadOrFacilitator, &input.control, |d| {
            d.attach_commissioner(&input.organisation)
        })
        .await
    }

    /// Records the kick-off: date, venue, attendees; the lead, the coach or a facilitator.
    async fn hold_kickoff(&self, ctx: &Context<'_>, input: HoldKickoffInput) -> Result<DoetankPayload> {
        let app = app(ctx)?;
        let doetank_id = id("doetankId", &input.doetank_id)?;
        // Who may comes first: a request refused anyway looks no attendee up.
        authorize(app, &viewer(ctx), doetank_id, Who::LeadCoachOrFacilitator).await.gql()?;
        let attendees =
            input.attendee_ids.iter().map(|m| id("attendeeIds", m)).collect::<Result<Vec<_>>>()?;
        let options = options(ctx, &input.control)?;
        let outcome = app
            .hold_kickoff(&options, doetank_id, input.date, &input.venue, attendees, today_somewhere())
            .await
            .gql()?;
        doetank_payload(app, outcome).await
    }

    /// Completes the current phase and starts the next (rule 4).
    async fn complete_phase(&self, ctx: &Context<'_>, input: CompletePhaseInput) -> Result<DoetankPayload> {
        let at = happened(input.at)?;
        doetank_command(ctx, &input.doetank_id, Who::Lead, &input.control, |d| {
            d.complete_phase(input.phase.into(), &input.summary, at)
        })
        .await
    }

    /// Records an expert consulted on a topic; the doetank's members and coach.
    async fn consult_expert(&self, ctx: &Context<'_>, input: ConsultExpertInput) -> Result<DoetankPayload> {
        doetank_command(ctx, &input.doetank_id, Who::Team, &input.control, |d| {
            d.consult_expert(&input.topic, &input.expert)
        })
        .await
    }

    /// Records what worked, what did not, or an insight, in the signed-in member's name; by the
    /// doetank's members or its coach (rule 4).
    async fn record_lesson(&self, ctx: &Context<'_>, input: RecordLessonInput) -> Result<DoetankPayload> {
        let lesson_id = new_id(ctx, "lesson", "lessonId", &input.lesson_id, &input.control).await?;
        let lesson = NewLesson {
            lesson_id,
            recorded_by: recorder(ctx, &input.recorded_by)?,
            phase: input.phase.map(Into::into),
            kind: input.kind.into(),
            title: input.title,
            body: input.body,
            tags: input.tags,
        };
        let mut payload = doetank_command(ctx, &input.doetank_id, Who::Member, &input.control, |d| {
            d.record_lesson(lesson.clone())
        })
        .await?;
        payload.lesson = load_lesson(ctx, &lesson_id.to_string()).await?;
        Ok(payload)
    }

    /// Tells the outside world of the doetank's progress (LinkedIn, blog, website); the
    /// doetank's members and coach.
    async fn publish_update(&self, ctx: &Context<'_>, input: PublishUpdateInput) -> Result<DoetankPayload> {
        doetank_command(ctx, &input.doetank_id, Who::Team, &input.control, |d| {
            d.publish_update(input.channel.into(), &input.title, &input.link)
        })
        .await
    }

    /// Hands the result over to an organisation that carries it on; the lead.
    async fn hand_over_business_case(
        &self,
        ctx: &Context<'_>,
        input: HandOverInput,
    ) -> Result<DoetankPayload> {
        doetank_command(ctx, &input.doetank_id, Who::Lead, &input.control, |d| {
            d.hand_over_business_case(&input.organisation, &input.summary)
        })
        .await
    }

    /// Ends the informal period: the doetank becomes visible to everyone (rule 5).
    async fn make_doetank_public(
        &self,
        ctx: &Context<'_>,
        input: DoetankCommandInput,
    ) -> Result<DoetankPayload> {
        doetank_command(ctx, &input.doetank_id, Who::Facilitator, &input.control, |d| d.make_public()).await
    }

    /// Ends the doetank, completed or discontinued, with a reflection; afterwards it takes no
    /// command (rule 6). The lead or a facilitator.
    async fn conclude_doetank(
        &self,
        ctx: &Context<'_>,
        input: ConcludeDoetankInput,
    ) -> Result<DoetankPayload> {
        let at = happened(input.at)?;
        doetank_command(ctx, &input.doetank_id, Who::LeadOrFacilitator, &input.control, |d| {
            d.conclude(input.outcome.into(), &input.reflection, at)
        })
        .await
    }
}

/// Who may send a command to a doetank.
#[derive(Clone, Copy, Debug)]
pub(super) enum Who {
    /// Only its lead (rule: the lead coordinates).
    Lead,
    /// Its lead, or a facilitator.
    LeadOrFacilitator,
    /// Its lead or coach, or a facilitator.
    LeadCoachOrFacilitator,
    /// Its members and its coach.
    Team,
    /// Network staff only.
    Facilitator,
    /// Anyone signed in as a member (who may see the doetank); the domain's rules decide the rest.
    Member,
    /// The member concerned, the lead, or a facilitator.
    SelfLeadOrFacilitator(Uuid),
}

pub(super) async fn authorize(
    app: &App,
    viewer: &Viewer,
    doetank_id: Uuid,
    who: Who,
) -> Result<(), AppError> {
    viewer.require_signed_in()?;
    let facilitator_may = matches!(
        who,
        Who::LeadOrFacilitator
            | Who::LeadCoachOrFacilitator
            | Who::Facilitator
            | Who::SelfLeadOrFacilitator(_)
    );
    if facilitator_may && viewer.is_facilitator() {
        return Ok(());
    }
    if matches!(who, Who::Facilitator) {
        return Err(AppError::Forbidden("only facilitators may do this".into()));
    }
    let doetank = app.require::<DoetankAgg>(doetank_id, "doetank").await?;
    let me = viewer.member_id;
    let is_lead = me.is_some() && doetank.lead == me;
    let is_coach = me.is_some() && doetank.coach == me;
    let in_team = me.is_some_and(|m| doetank.is_member(m)) || is_coach;
    // Rule 5 for commands: to whoever may not see it, an informal doetank is one that does not
    // exist. A refusal that said "not allowed" told the holder of its id that it exists, and
    // a self-join by that id let an outsider in under the radar.
    if !doetank.is_public && !in_team && !viewer.is_facilitator() {
        return Err(AppError::not_found("doetank", doetank_id));
    }
    let allowed = match who {
        Who::Lead | Who::LeadOrFacilitator => is_lead,
        Who::LeadCoachOrFacilitator => is_lead || is_coach,
        Who::Team => in_team,
        Who::SelfLeadOrFacilitator(member) => is_lead || me == Some(member),
        Who::Facilitator => false,
        Who::Member => true,
    };
    if allowed {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "{} may not do this in this doetank",
            viewer.member_id.map_or("this viewer".to_string(), |m| format!("member {m}"))
        )))
    }
}

/// A command that needs nothing but the doetank itself.
async fn doetank_command(
    ctx: &Context<'_>,
    doetank_id: &ID,
    who: Who,
    control: &CommandControl,
    decide: impl Fn(&DoetankAgg) -> Result<Vec<doetank_domain::DoetankEvent>, doetank_domain::DomainError>,
) -> Result<DoetankPayload> {
    let app = app(ctx)?;
    let doetank_id = id("doetankId", doetank_id)?;
    authorize(app, &viewer(ctx), doetank_id, who).await.gql()?;
    let outcome = app.execute::<DoetankAgg>(doetank_id, &options(ctx, control)?, decide).await.gql()?;
    doetank_payload(app, outcome).await
}
