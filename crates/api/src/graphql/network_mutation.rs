//! Mutations for the network around the doetanks: one per command of the Cafe, IdeationEvent,
//! Pilot, Charter and KnowledgeReuse aggregates. Scheduling, juries, mandates and charters are
//! the facilitators' work; members submit ideas, propose pilots and sign charters as themselves.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use chrono::NaiveDate;
use doetank_domain::aggregates::charter::Signatory;
use doetank_domain::aggregates::pilot::{Applicant, ApplicantFunction, PilotOutcome};
use doetank_domain::aggregates::reuse::ReuseSource;
use doetank_domain::{Cafe, Charter, Doetank, DomainError, IdeationEvent, KnowledgeReuse, Member, Pilot};
use uuid::Uuid;

use super::errors::GqlResult;
use super::mutation::{
    app, authorize, id, new_id, options, today_somewhere, CommandControl, CommandResult, Who,
};
use super::viewer;
use crate::app::CommandOutcome;
use crate::error::AppError;

/// What a network mutation answers: the thing's id and where its stream and the log stand.
/// Read the updated thing with the matching query (`cafe`, `ideationEvent`, `pilot`, ...),
/// which already reflects the write.
#[derive(SimpleObject)]
pub struct NetworkPayload {
    /// The id of the thing the command made (a café, an idea, a pilot, ...), else of the thing
    /// whose stream it wrote (an idea's pitch: its ideation day).
    pub id: ID,
    /// Where the thing's stream and the log stand after the command.
    pub result: CommandResult,
    /// Every query, to read the updated read model in the same response (it reflects the write).
    pub query: super::Query,
}

impl From<CommandOutcome> for NetworkPayload {
    fn from(o: CommandOutcome) -> Self {
        NetworkPayload { id: ID(o.id.to_string()), result: o.into(), query: super::Query::default() }
    }
}

/// A new Slimmernetwerk Café.
#[derive(InputObject)]
pub struct ScheduleCafeInput {
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub id: Option<ID>,
    /// 1 to 200 characters.
    pub title: String,
    /// The day it will be held.
    pub date: NaiveDate,
    /// Where, 1 to 200 characters.
    pub venue: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A talk or a workshop on a café's programme.
#[derive(InputObject)]
pub struct AnnounceInput {
    /// The café.
    pub cafe_id: ID,
    /// The talk's topic or the workshop's title.
    pub title: String,
    /// The speaker or the workshop's host.
    pub person: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A café that took place.
#[derive(InputObject)]
pub struct HoldCafeInput {
    /// The café.
    pub cafe_id: ID,
    /// How many people came: 1 to 1,000,000 (a café no one came to is cancelled).
    pub attendance: u32,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A café called off.
#[derive(InputObject)]
pub struct CancelCafeInput {
    /// The café.
    pub cafe_id: ID,
    /// Why, 1 to 2,000 characters.
    pub reason: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A new ideation day (Stampij!fabriek).
#[derive(InputObject)]
pub struct ScheduleIdeationEventInput {
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub id: Option<ID>,
    /// 1 to 200 characters.
    pub name: String,
    /// The question the day's ideas answer, 1 to 1,000 characters.
    pub central_question: String,
    /// The day it will be held.
    pub date: NaiveDate,
    /// Where, 1 to 200 characters.
    pub venue: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// An idea for an ideation day, submitted by the signed-in member in their own name.
#[derive(InputObject)]
pub struct SubmitIdeaInput {
    /// The ideation day.
    pub ideation_event_id: ID,
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub idea_id: Option<ID>,
    /// 1 to 200 characters.
    pub title: String,
    /// The idea, 1 to 10,000 characters.
    pub description: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// One idea of an ideation day.
#[derive(InputObject)]
pub struct IdeaInput {
    /// The ideation day.
    pub ideation_event_id: ID,
    /// The idea, submitted to that day.
    pub idea_id: ID,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// The jury's ranking of an ideation day's ideas.
#[derive(InputObject)]
pub struct JuryVerdictInput {
    /// The ideation day.
    pub ideation_event_id: ID,
    /// Best first; only ideas submitted to this event (rule 8).
    pub ranking: Vec<ID>,
    /// Why the jury ranked them so.
    #[graphql(default)]
    pub motivation: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// The end of an ideation day.
#[derive(InputObject)]
pub struct ConcludeIdeationEventInput {
    /// The ideation day.
    pub ideation_event_id: ID,
    /// How many people took part: 1 to 1,000,000.
    pub participant_count: u32,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// An organisation taking an idea up.
#[derive(InputObject)]
pub struct AdoptIdeaInput {
    /// The ideation day the idea was submitted to.
    pub ideation_event_id: ID,
    /// The idea.
    pub idea_id: ID,
    /// The organisation that takes it up, 1 to 200 characters.
    pub organisation: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// An idea that a doetank works on.
#[derive(InputObject)]
pub struct TakeIdeaIntoDoetankInput {
    /// The ideation day the idea was submitted to.
    pub ideation_event_id: ID,
    /// The idea.
    pub idea_id: ID,
    /// The doetank that takes it on.
    pub doetank_id: ID,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// The function of a pilot's applicant. Only policy or operational civil servants in the primary
/// process may apply (rule 7).
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ApplicantFunction", remote = "doetank_domain::aggregates::pilot::ApplicantFunction")]
pub enum ApplicantFunctionInput {
    /// A policy maker: may apply.
    Policy,
    /// Works in operations: may apply.
    Operational,
    /// A manager: may not apply.
    Management,
    /// Works in a support function: may not apply.
    Support,
    /// An adviser from outside: may not apply.
    ExternalAdviser,
}

/// What came of a pilot for the rule it set aside.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "PilotOutcome", remote = "doetank_domain::aggregates::pilot::PilotOutcome")]
pub enum PilotOutcomeInput {
    /// The rule was changed.
    RuleChanged,
    /// The rule applies again, as before.
    RuleRestored,
    /// The rule was abolished.
    RuleAbolished,
    /// No conclusion about the rule.
    Inconclusive,
}

/// A Right to Challenge pilot: a hindering rule set aside for a while in favour of an alternative
/// agreed beforehand.
#[derive(InputObject)]
pub struct ProposePilotInput {
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub id: Option<ID>,
    /// The rule that hinders the work, 1 to 2,000 characters.
    pub hindering_rule: String,
    /// What is done instead, 1 to 5,000 characters.
    pub alternative: String,
    /// What setting the rule aside should bring, 1 to 5,000 characters.
    pub expected_gain: String,
    /// The applicant: the signed-in member (a facilitator may name one).
    pub applicant_id: Option<ID>,
    /// The applicant's function: policy or operational (rule 7).
    pub applicant_function: ApplicantFunctionInput,
    /// Whether the applicant works in the primary process; required by rule 7.
    pub in_primary_process: bool,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// The mandate a pilot needs before its rule is suspended (rule 7).
#[derive(InputObject)]
pub struct GrantMandateInput {
    /// The pilot.
    pub pilot_id: ID,
    /// Who granted it (an authority or office), 1 to 200 characters.
    pub granted_by: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A pilot's rule set aside for a period, only after its mandate (rule 7).
#[derive(InputObject)]
pub struct SuspendRuleInput {
    /// The pilot.
    pub pilot_id: ID,
    /// The first day the rule is set aside.
    pub from: NaiveDate,
    /// Required by rule 7: a suspension has an end.
    pub until: Option<NaiveDate>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// What a pilot found; needed before it is concluded (rule 7).
#[derive(InputObject)]
pub struct EvaluatePilotInput {
    /// The pilot.
    pub pilot_id: ID,
    /// 1 to 20,000 characters.
    pub findings: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// The end of a pilot, after its evaluation (rule 7).
#[derive(InputObject)]
pub struct ConcludePilotInput {
    /// The pilot.
    pub pilot_id: ID,
    /// What came of it for the rule.
    pub outcome: PilotOutcomeInput,
    /// Anything to add.
    #[graphql(default)]
    pub note: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A new charter for people and organisations to sign.
#[derive(InputObject)]
pub struct PublishCharterInput {
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub id: Option<ID>,
    /// 1 to 200 characters.
    pub title: String,
    /// The statement, 1 to 50,000 characters.
    pub text: String,
    /// Who took the initiative (people or organisations, by name): at most 50 of at most 200
    /// characters, each once.
    #[graphql(default)]
    pub initiators: Vec<String>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A signature under a charter; each signatory signs once (rule 8).
#[derive(InputObject)]
pub struct SignCharterInput {
    /// The charter.
    pub charter_id: ID,
    /// Sign for an organisation (facilitators record these); absent, the member signs themself.
    pub organisation: Option<String>,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// An organisation reusing a doetank's results (Lanceerplatform), with its pledge to pass its own
/// knowledge on.
#[derive(InputObject)]
pub struct ReuseKnowledgeInput {
    /// The new id. Without it, the `commandId` when one is given (so a retry names the same
    /// thing and gets the first result), else a fresh one.
    pub id: Option<ID>,
    /// The organisation that reuses them, 1 to 200 characters.
    pub organisation: String,
    /// The doetank whose results are reused.
    pub doetank_id: ID,
    /// One lesson of the doetank, when that is what is reused.
    pub lesson_id: Option<ID>,
    /// What the organisation will pass on in turn, 1 to 5,000 characters.
    pub pledge: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

/// A pledge kept.
#[derive(InputObject)]
pub struct FulfilPledgeInput {
    /// The reuse whose pledge is kept.
    pub reuse_id: ID,
    /// What was passed on, 1 to 5,000 characters.
    pub note: String,
    #[graphql(flatten)]
    pub control: CommandControl,
}

fn facilitator(ctx: &Context<'_>) -> Result<()> {
    viewer(ctx).require_facilitator().gql()
}

/// Runs a command on aggregate `A` with id `target`.
async fn run<A: doetank_domain::Aggregate>(
    ctx: &Context<'_>,
    target: Uuid,
    control: &CommandControl,
    decide: impl Fn(&A) -> Result<Vec<A::Event>, DomainError>,
) -> Result<NetworkPayload> {
    let outcome = app(ctx)?.execute::<A>(target, &options(ctx, control)?, decide).await.gql()?;
    Ok(outcome.into())
}

#[derive(Default)]
pub struct NetworkMutation;

/// The signed-in member, who must be one of the network's: what they do in their own name (an
/// idea, a signature) names them, as a pledge of support does, and a token for an id that names
/// no member is refused rather than leaving a reference to no one.
async fn registered(ctx: &Context<'_>, member_id: Uuid) -> Result<Uuid> {
    app(ctx)?.require::<Member>(member_id, "member").await.gql()?;
    Ok(member_id)
}

#[Object]
impl NetworkMutation {
    /// Plans a network café; facilitators only.
    async fn schedule_cafe(&self, ctx: &Context<'_>, input: ScheduleCafeInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        let cafe_id = new_id(ctx, "cafe", "id", &input.id, &input.control).await?;
        run::<Cafe>(ctx, cafe_id, &input.control, |c| {
            c.schedule(cafe_id, &input.title, input.date, &input.venue)
        })
        .await
    }

    /// Announces a speaker for a café; facilitators only.
    async fn announce_speaker(&self, ctx: &Context<'_>, input: AnnounceInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<Cafe>(ctx, id("cafeId", &input.cafe_id)?, &input.control, |c| {
            c.announce_speaker(&input.person, &input.title)
        })
        .await
    }

    /// Announces a workshop at a café; facilitators only.
    async fn announce_workshop(&self, ctx: &Context<'_>, input: AnnounceInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<Cafe>(ctx, id("cafeId", &input.cafe_id)?, &input.control, |c| {
            c.announce_workshop(&input.title, &input.person)
        })
        .await
    }

    /// Records that the café took place, with its attendance; facilitators only.
    async fn hold_cafe(&self, ctx: &Context<'_>, input: HoldCafeInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<Cafe>(ctx, id("cafeId", &input.cafe_id)?, &input.control, |c| {
            c.hold(input.attendance, today_somewhere())
        })
        .await
    }

    /// Cancels a café, with the reason; facilitators only.
    async fn cancel_cafe(&self, ctx: &Context<'_>, input: CancelCafeInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<Cafe>(ctx, id("cafeId", &input.cafe_id)?, &input.control, |c| c.cancel(&input.reason)).await
    }

    /// Plans an ideation day around one central question; facilitators only.
    async fn schedule_ideation_event(
        &self,
        ctx: &Context<'_>,
        input: ScheduleIdeationEventInput,
    ) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        let event_id = new_id(ctx, "ideation_event", "id", &input.id, &input.control).await?;
        run::<IdeationEvent>(ctx, event_id, &input.control, |e| {
            e.schedule(event_id, &input.name, &input.central_question, input.date, &input.venue)
        })
        .await
    }

    /// Any member submits ideas in their own name; facilitators record ideas without one.
    async fn submit_idea(&self, ctx: &Context<'_>, input: SubmitIdeaInput) -> Result<NetworkPayload> {
        let viewer = viewer(ctx);
        viewer.require_signed_in().gql()?;
        let submitted_by = match viewer.member_id.filter(|_| !viewer.is_facilitator()) {
            Some(member_id) => Some(registered(ctx, member_id).await?),
            None => None,
        };
        let idea_id = new_id(ctx, "idea", "ideaId", &input.idea_id, &input.control).await?;
        let payload = run::<IdeationEvent>(
            ctx,
            id("ideationEventId", &input.ideation_event_id)?,
            &input.control,
            |e| e.submit_idea(idea_id, &input.title, &input.description, submitted_by),
        )
        .await?;
        // The new thing is the idea: its id, as `scheduleCafe` answers the new café's.
        Ok(NetworkPayload { id: ID(idea_id.to_string()), ..payload })
    }

    /// Records that the idea was pitched to the jury; facilitators only.
    async fn pitch_idea(&self, ctx: &Context<'_>, input: IdeaInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        let idea = id("ideaId", &input.idea_id)?;
        run::<IdeationEvent>(ctx, id("ideationEventId", &input.ideation_event_id)?, &input.control, |e| {
            e.pitch_idea(idea, today_somewhere())
        })
        .await
    }

    /// The jury ranks only ideas submitted to its own event (rule 8).
    async fn give_jury_verdict(&self, ctx: &Context<'_>, input: JuryVerdictInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        let ranking = input.ranking.iter().map(|i| id("ranking", i)).collect::<Result<Vec<_>>>()?;
        run::<IdeationEvent>(ctx, id("ideationEventId", &input.ideation_event_id)?, &input.control, |e| {
            e.give_jury_verdict(ranking.clone(), &input.motivation, today_somewhere())
        })
        .await
    }

    /// Ends the ideation day with its number of participants; facilitators only.
    async fn conclude_ideation_event(
        &self,
        ctx: &Context<'_>,
        input: ConcludeIdeationEventInput,
    ) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<IdeationEvent>(ctx, id("ideationEventId", &input.ideation_event_id)?, &input.control, |e| {
            e.conclude(input.participant_count, today_somewhere())
        })
        .await
    }

    /// An organisation takes the idea up; facilitators only.
    async fn adopt_idea(&self, ctx: &Context<'_>, input: AdoptIdeaInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        let idea = id("ideaId", &input.idea_id)?;
        run::<IdeationEvent>(ctx, id("ideationEventId", &input.ideation_event_id)?, &input.control, |e| {
            e.adopt_idea(idea, &input.organisation, today_somewhere())
        })
        .await
    }

    /// A facilitator or the lead of the doetank links the idea to it.
    async fn take_idea_into_doetank(
        &self,
        ctx: &Context<'_>,
        input: TakeIdeaIntoDoetankInput,
    ) -> Result<NetworkPayload> {
        let app = app(ctx)?;
        let doetank_id = id("doetankId", &input.doetank_id)?;
        authorize(app, &viewer(ctx), doetank_id, Who::LeadOrFacilitator).await.gql()?;
        let doetank = app.require::<Doetank>(doetank_id, "doetank").await.gql()?;
        let idea = id("ideaId", &input.idea_id)?;
        run::<IdeationEvent>(ctx, id("ideationEventId", &input.ideation_event_id)?, &input.control, |e| {
            e.take_idea_into_doetank(idea, &doetank, today_somewhere())
        })
        .await
    }

    /// Rule 7: applicants are policy or operational civil servants in the primary process.
    async fn propose_pilot(&self, ctx: &Context<'_>, input: ProposePilotInput) -> Result<NetworkPayload> {
        let viewer = viewer(ctx);
        viewer.require_signed_in().gql()?;
        let applicant_id = match &input.applicant_id {
            Some(given) => id("applicantId", given)?,
            None => {
                viewer.member_id.ok_or_else(|| AppError::bad_input("applicantId", "is required")).gql()?
            }
        };
        viewer.require_self_or_facilitator(applicant_id).gql()?;
        let sector = app(ctx)?.innovator(applicant_id).await.gql()?.sector;
        let pilot_id = new_id(ctx, "pilot", "id", &input.id, &input.control).await?;
        let applicant = Applicant {
            member_id: applicant_id,
            function: ApplicantFunction::from(input.applicant_function),
            in_primary_process: input.in_primary_process,
        };
        run::<Pilot>(ctx, pilot_id, &input.control, |p| {
            p.propose(
                pilot_id,
                &input.hindering_rule,
                &input.alternative,
                &input.expected_gain,
                applicant.clone(),
                sector,
            )
        })
        .await
    }

    /// Those responsible for the rule allow the pilot (rule 7: before any suspension);
    /// facilitators only.
    async fn grant_mandate(&self, ctx: &Context<'_>, input: GrantMandateInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<Pilot>(ctx, id("pilotId", &input.pilot_id)?, &input.control, |p| {
            p.grant_mandate(&input.granted_by)
        })
        .await
    }

    /// Rule 7: only after a mandate, and only for a period with an end.
    async fn suspend_rule(&self, ctx: &Context<'_>, input: SuspendRuleInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<Pilot>(ctx, id("pilotId", &input.pilot_id)?, &input.control, |p| {
            p.suspend_rule(input.from, input.until)
        })
        .await
    }

    /// Records what the suspension showed; facilitators only.
    async fn evaluate_pilot(&self, ctx: &Context<'_>, input: EvaluatePilotInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<Pilot>(ctx, id("pilotId", &input.pilot_id)?, &input.control, |p| {
            p.evaluate(&input.findings, today_somewhere())
        })
        .await
    }

    /// Rule 7: a pilot is concluded only after it is evaluated.
    async fn conclude_pilot(&self, ctx: &Context<'_>, input: ConcludePilotInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<Pilot>(ctx, id("pilotId", &input.pilot_id)?, &input.control, |p| {
            p.conclude(PilotOutcome::from(input.outcome), &input.note)
        })
        .await
    }

    /// Publishes a charter that people and organisations sign; facilitators only.
    async fn publish_charter(&self, ctx: &Context<'_>, input: PublishCharterInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        let charter_id = new_id(ctx, "charter", "id", &input.id, &input.control).await?;
        run::<Charter>(ctx, charter_id, &input.control, |c| {
            c.publish(charter_id, &input.title, &input.text, input.initiators.clone())
        })
        .await
    }

    /// Rule 8: a signatory signs once.
    async fn sign_charter(&self, ctx: &Context<'_>, input: SignCharterInput) -> Result<NetworkPayload> {
        let viewer = viewer(ctx);
        viewer.require_signed_in().gql()?;
        let signatory = match input.organisation {
            Some(name) => {
                viewer.require_facilitator().gql()?;
                Signatory::Organisation { name }
            }
            None => {
                let member_id = viewer
                    .member_id
                    .ok_or_else(|| AppError::Forbidden("only members sign in their own name".into()))
                    .gql()?;
                Signatory::Member { member_id: registered(ctx, member_id).await? }
            }
        };
        run::<Charter>(ctx, id("charterId", &input.charter_id)?, &input.control, |c| {
            c.sign(signatory.clone())
        })
        .await
    }

    /// Another organisation reuses a doetank's results or one of its lessons and pledges
    /// something back (the Lanceerplatform); facilitators only.
    async fn reuse_knowledge(&self, ctx: &Context<'_>, input: ReuseKnowledgeInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        let app = app(ctx)?;
        let doetank_id = id("doetankId", &input.doetank_id)?;
        let doetank = app.require::<Doetank>(doetank_id, "doetank").await.gql()?;
        let source = match &input.lesson_id {
            None => ReuseSource::Doetank { doetank_id },
            Some(lesson) => {
                let lesson_id = id("lessonId", lesson)?;
                if !doetank.lessons.contains(&lesson_id) {
                    return Err(AppError::not_found("lesson", lesson_id)).gql();
                }
                ReuseSource::Lesson { doetank_id, lesson_id }
            }
        };
        let reuse_id = new_id(ctx, "reuse", "id", &input.id, &input.control).await?;
        run::<KnowledgeReuse>(ctx, reuse_id, &input.control, |r| {
            r.reuse(reuse_id, &input.organisation, source.clone(), &input.pledge)
        })
        .await
    }

    /// The reusing organisation did what it pledged; facilitators only.
    async fn fulfil_pledge(&self, ctx: &Context<'_>, input: FulfilPledgeInput) -> Result<NetworkPayload> {
        facilitator(ctx)?;
        run::<KnowledgeReuse>(ctx, id("reuseId", &input.reuse_id)?, &input.control, |r| {
            r.fulfil_pledge(&input.note)
        })
        .await
    }
}
