//! From one recorded event to the SQL statements that bring the read models up to date.
//! Pure: no I/O here, so the same event always yields the same statements.

use doetank_domain::aggregates::challenge::ChallengeOrigin;
use doetank_domain::codec::{decode_payload as decode, Payload};
use doetank_domain::{
    Aggregate, Cafe, CafeEvent, Challenge, ChallengeEvent, Charter, CharterEvent, CodecError, Doetank,
    DoetankEvent, DoetankOutcome, IdeationEvent, IdeationEventEvent, KnowledgeReuse, KnowledgeReuseEvent,
    Member, MemberEvent, Phase, Pilot, PilotEvent,
};
use doetank_store::RecordedEvent;
use serde_json::json;

use super::{network, story};
use crate::search::stems;
use crate::sql::{ts, Stmt};
use crate::stmt;

/// The statements that apply `event`, whose payload is `payload` (its own, or its text as
/// `EventStore::read_all_text` reads it): its aggregate's read model, then its line of the
/// story (timeline and lineage). Events of unknown streams yield none.
pub fn statements(event: &RecordedEvent, payload: Payload<'_>) -> Result<Vec<Stmt>, CodecError> {
    let Some(Projected { mut models, version, chapter }) = project(event, payload)? else {
        return Ok(Vec::new());
    };
    models.extend(version);
    models.extend(story::write(event, chapter));
    Ok(models)
}

/// What an event brings about, in parts a rebuild applies apart: neither the models' statements
/// nor the story read or write a table of the other ([`story::TABLES`]).
#[derive(Debug)]
pub struct Projected {
    /// The aggregates' read models.
    pub models: Vec<Stmt>,
    /// The stream's version on its aggregate's row: see [`version_bump`].
    pub version: Option<Stmt>,
    /// Its chapter of the story (timeline and lineage), told by [`story::write`] or, in a
    /// rebuild, by [`story::StoryFold`].
    pub chapter: story::Chapter,
}

/// `payload` is the event's, given apart: a reader of the log's text decodes it straight into
/// the event's type. `None` for an event of a stream type no read model has.
pub fn project(event: &RecordedEvent, payload: Payload<'_>) -> Result<Option<Projected>, CodecError> {
    let (t, v, p) = (&event.event_type, event.schema_version, payload);
    let id = id_of(event);
    let (models, chapter) = match event.stream_type.as_str() {
        Member::STREAM_TYPE => {
            let e: MemberEvent = decode(t, v, p)?;
            let chapter = story::member(&e);
            (member(event, e), chapter)
        }
        Challenge::STREAM_TYPE => {
            let e: ChallengeEvent = decode(t, v, p)?;
            let chapter = story::challenge(id, &e);
            (challenge(event, e), chapter)
        }
        Doetank::STREAM_TYPE => {
            let e: DoetankEvent = decode(t, v, p)?;
            let chapter = story::doetank(id, &e);
            (doetank(event, e), chapter)
        }
        Cafe::STREAM_TYPE => {
            let e: CafeEvent = decode(t, v, p)?;
            let chapter = story::cafe(&e);
            (network::cafe(event, e), chapter)
        }
        IdeationEvent::STREAM_TYPE => {
            let e: IdeationEventEvent = decode(t, v, p)?;
            let chapter = story::ideation(id, &e);
            (network::ideation(event, e), chapter)
        }
        Pilot::STREAM_TYPE => {
            let e: PilotEvent = decode(t, v, p)?;
            let chapter = story::pilot(&e);
            (network::pilot(event, e), chapter)
        }
        Charter::STREAM_TYPE => {
            let e: CharterEvent = decode(t, v, p)?;
            let chapter = story::charter(&e);
            (network::charter(event, e), chapter)
        }
        KnowledgeReuse::STREAM_TYPE => {
            let e: KnowledgeReuseEvent = decode(t, v, p)?;
            let chapter = story::reuse(id, &e);
            (network::reuse(event, e), chapter)
        }
        _ => return Ok(None),
    };
    Ok(Some(Projected { models, version: version_bump(event), chapter }))
}

/// Records the stream's version on its aggregate's row (a doetank's also when it last
/// changed). Kept apart from the event's other statements because these columns are only ever
/// written by it, never read by a projection statement: a rebuild runs just the last bump of
/// each stream in a batch (a fifth of all its statements were bumps).
fn version_bump(e: &RecordedEvent) -> Option<Stmt> {
    let (id, version) = (id_of(e).to_string(), e.version);
    let table = match e.stream_type.as_str() {
        Doetank::STREAM_TYPE => {
            return Some(stmt!(
                "UPDATE rm_doetanks SET version = $2, updated_at = $3 WHERE id = $1",
                id,
                version,
                ts(e.recorded_at)
            ))
        }
        Member::STREAM_TYPE => "UPDATE rm_members SET version = $2 WHERE id = $1",
        Challenge::STREAM_TYPE => "UPDATE rm_challenges SET version = $2 WHERE id = $1",
        Cafe::STREAM_TYPE => "UPDATE rm_cafes SET version = $2 WHERE id = $1",
        IdeationEvent::STREAM_TYPE => "UPDATE rm_ideation_events SET version = $2 WHERE id = $1",
        Pilot::STREAM_TYPE => "UPDATE rm_pilots SET version = $2 WHERE id = $1",
        Charter::STREAM_TYPE => "UPDATE rm_charters SET version = $2 WHERE id = $1",
        KnowledgeReuse::STREAM_TYPE => "UPDATE rm_reuses SET version = $2 WHERE id = $1",
        _ => return None,
    };
    Some(stmt!(table, id, version))
}

/// The aggregate id: the part of the stream id after `type-`.
pub(super) fn id_of(event: &RecordedEvent) -> &str {
    event.stream_id.get(event.stream_type.len() + 1..).unwrap_or(&event.stream_id)
}

fn member(e: &RecordedEvent, event: MemberEvent) -> Vec<Stmt> {
    let id = id_of(e).to_string();
    match event {
        MemberEvent::MemberRegistered { organisation, sector, expertise, .. } => vec![stmt!(
            "INSERT INTO rm_members (id, organisation, sector, expertise, support_committee, erased, registered_at, \
             version, created_position) VALUES ($1, $2, $3, $4, FALSE, FALSE, $5, $6, $7)",
            id,
            organisation,
            json!(sector).as_str().unwrap_or_default().to_string(),
            json!(expertise).to_string(),
            ts(e.recorded_at),
            e.version,
            e.position,
        )],
        MemberEvent::MemberProfileUpdated { organisation, expertise } => vec![stmt!(
            "UPDATE rm_members SET organisation = $2, expertise = $3 WHERE id = $1",
            id,
            organisation,
            json!(expertise).to_string(),
        )],
        MemberEvent::SupportCommitteeAppointed {} => {
            vec![stmt!("UPDATE rm_members SET support_committee = TRUE WHERE id = $1", id)]
        }
        // Erasure removes the person's data for good, here and after every rebuild.
        MemberEvent::MemberErased {} => vec![
            stmt!("UPDATE rm_members SET erased = TRUE, expertise = '[]' WHERE id = $1", id.clone()),
            stmt!("DELETE FROM member_personal_data WHERE member_id = $1", id),
        ],
    }
}

fn challenge(e: &RecordedEvent, event: ChallengeEvent) -> Vec<Stmt> {
    let id = id_of(e).to_string();
    match event {
        ChallengeEvent::ChallengeRaised { title, description, raised_by, origin, .. } => {
            let commissioner = match &origin {
                ChallengeOrigin::Commissioner { organisation } => Some(organisation.clone()),
                _ => None,
            };
            vec![stmt!(
                "INSERT INTO rm_challenges (id, title, description, raised_by, origin, commissioner, raised_at, \
                 version, created_position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                id,
                title,
                description,
                raised_by,
                json!(origin).to_string(),
                commissioner,
                ts(e.recorded_at),
                e.version,
                e.position,
            )]
        }
        ChallengeEvent::SupportPledged { member_id } => vec![stmt!(
            "INSERT INTO rm_challenge_supporters (challenge_id, member_id) VALUES ($1, $2)",
            id,
            member_id,
        )],
        ChallengeEvent::CommissionerFound { organisation } => {
            vec![stmt!("UPDATE rm_challenges SET commissioner = $2 WHERE id = $1", id, organisation)]
        }
    }
}

fn activity(e: &RecordedEvent, kind: &str, title: String, detail: String) -> Stmt {
    stmt!(
        "INSERT INTO rm_doetank_activities (position, doetank_id, kind, title, detail, at) VALUES ($1, $2, $3, $4, $5, $6)",
        e.position,
        id_of(e),
        kind,
        title,
        detail,
        ts(e.recorded_at),
    )
}

fn doetank(e: &RecordedEvent, event: DoetankEvent) -> Vec<Stmt> {
    use DoetankEvent::*;
    let id = id_of(e).to_string();
    match event {
        DoetankFormed { name, challenge_id, lead, founding_members, at, .. } => {
            let mut out = vec![stmt!(
                "INSERT INTO rm_doetanks (id, name, challenge_id, lead_id, status, is_public, formed_at, version, \
                 created_position, updated_at) VALUES ($1, $2, $3, $4, 'ACTIVE', FALSE, $5, $6, $7, $5)",
                id.clone(),
                name,
                challenge_id,
                lead.member_id,
                ts(at),
                e.version,
                e.position,
            )];
            for (member, role) in std::iter::once((lead, "LEAD")).chain(founding_members.into_iter().map(|m| (m, "MEMBER"))) {
                out.push(stmt!(
                    "INSERT INTO rm_doetank_members (doetank_id, member_id, sector, role, joined_at) VALUES ($1, $2, $3, $4, $5)",
                    id.clone(),
                    member.member_id,
                    json!(member.sector).as_str().unwrap_or_default().to_string(),
                    role,
                    ts(at),
                ));
            }
            out
        }
        MemberJoined { member, at } => vec![stmt!(
            "INSERT INTO rm_doetank_members (doetank_id, member_id, sector, role, joined_at) VALUES ($1, $2, $3, 'MEMBER', $4)",
            id,
            member.member_id,
            json!(member.sector).as_str().unwrap_or_default().to_string(),
            ts(at),
        )],
        MemberLeft { member_id, .. } => vec![stmt!(
            "DELETE FROM rm_doetank_members WHERE doetank_id = $1 AND member_id = $2",
            id,
            member_id
        )],
        LeadChanged { member_id } => vec![
            stmt!(
                "UPDATE rm_doetank_members SET role = CASE WHEN member_id = $2 THEN 'LEAD' ELSE 'MEMBER' END WHERE doetank_id = $1",
                id.clone(),
                member_id,
            ),
            stmt!("UPDATE rm_doetanks SET lead_id = $2 WHERE id = $1", id, member_id),
        ],
        CoachAssigned { coach_id } => {
            vec![stmt!("UPDATE rm_doetanks SET coach_id = $2 WHERE id = $1", id, coach_id)]
        }
        CoachReleased { .. } => vec![stmt!("UPDATE rm_doetanks SET coach_id = NULL WHERE id = $1", id)],
        CommissionerAttached { organisation } => {
            vec![stmt!("UPDATE rm_doetanks SET commissioner = $2 WHERE id = $1", id, organisation)]
        }
        KickoffHeld { date, venue, attendees } => vec![stmt!(
            "INSERT INTO rm_doetank_activities (position, doetank_id, kind, title, detail, on_date, at) \
             VALUES ($1, $2, 'KICKOFF', $3, $4, $5, $6)",
            e.position,
            id,
            venue,
            json!(attendees).to_string(),
            date.to_string(),
            ts(e.recorded_at),
        )],
        PhaseStarted { phase, at } => vec![
            stmt!(
                "INSERT INTO rm_doetank_phases (doetank_id, phase, ordinal, started_at) VALUES ($1, $2, $3, $4)",
                id.clone(),
                phase.as_str(),
                ordinal(phase),
                ts(at),
            ),
            stmt!("UPDATE rm_doetanks SET current_phase = $2 WHERE id = $1", id, phase.as_str()),
        ],
        PhaseCompleted { phase, summary, at } => vec![stmt!(
            "UPDATE rm_doetank_phases SET completed_at = $3, summary = $4 WHERE doetank_id = $1 AND phase = $2",
            id,
            phase.as_str(),
            ts(at),
            summary,
        )],
        ExpertConsulted { topic, expert } => vec![activity(e, "EXPERT", topic, expert)],
        LessonRecorded { lesson_id, recorded_by, phase, kind, title, body, tags } => {
            let tags_text = json!(tags).to_string();
            let mut out = vec![stmt!(
                "INSERT INTO rm_lessons (id, doetank_id, recorded_by, organisation, phase, kind, title, body, tags, \
                 title_stems, body_stems, recorded_at, position, doetank_public) \
                 VALUES ($1, $2, $3, (SELECT organisation FROM rm_members WHERE id = $3), $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                 COALESCE((SELECT is_public FROM rm_doetanks WHERE id = $2), FALSE))",
                lesson_id,
                id,
                recorded_by,
                phase.as_str(),
                kind.as_str(),
                title.clone(),
                body.clone(),
                tags_text,
                stems(&title),
                stems(&body),
                ts(e.recorded_at),
                e.position,
            )];
            for tag in tags {
                out.push(stmt!(
                    "INSERT INTO rm_lesson_tags (lesson_id, tag, position) VALUES ($1, $2, $3)",
                    lesson_id,
                    tag,
                    e.position,
                ));
            }
            out
        }
        UpdatePublished { channel, title, link } => vec![stmt!(
            "INSERT INTO rm_doetank_activities (position, doetank_id, kind, title, detail, channel, link, at) \
             VALUES ($1, $2, 'UPDATE', $3, '', $4, $5, $6)",
            e.position,
            id,
            title,
            json!(channel).as_str().unwrap_or_default().to_string(),
            link,
            ts(e.recorded_at),
        )],
        BusinessCaseHandedOver { organisation, summary } => vec![stmt!(
            "INSERT INTO rm_doetank_activities (position, doetank_id, kind, title, detail, organisation, at) \
             VALUES ($1, $2, 'HAND_OVER', $3, $4, $3, $5)",
            e.position,
            id,
            organisation,
            summary,
            ts(e.recorded_at),
        )],
        DoetankMadePublic {} => vec![
            stmt!("UPDATE rm_doetanks SET is_public = TRUE WHERE id = $1", id.clone()),
            stmt!("UPDATE rm_lessons SET doetank_public = TRUE WHERE doetank_id = $1", id),
        ],
        DoetankConcluded { outcome, reflection, at } => vec![stmt!(
            "UPDATE rm_doetanks SET status = $2, concluded_at = $3, reflection = $4 WHERE id = $1",
            id,
            match outcome {
                DoetankOutcome::Completed => "COMPLETED",
                DoetankOutcome::Discontinued => "DISCONTINUED",
            },
            ts(at),
            reflection,
        )],
    }
}

fn ordinal(phase: Phase) -> i64 {
    Phase::ALL.iter().position(|p| *p == phase).map_or(0, |i| i as i64 + 1)
}
