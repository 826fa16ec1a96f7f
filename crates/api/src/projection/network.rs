//! Read models of the network around the doetanks: cafés, ideation days, pilots, charters and
//! knowledge reuse.

use doetank_domain::aggregates::charter::Signatory;
use doetank_domain::aggregates::reuse::ReuseSource;
use doetank_domain::{CafeEvent, CharterEvent, IdeationEventEvent, KnowledgeReuseEvent, PilotEvent};
use doetank_store::RecordedEvent;
use serde_json::json;

use super::apply::id_of;
use crate::sql::{ts, Stmt};
use crate::stmt;

fn name<T: serde::Serialize>(value: T) -> String {
    json!(value).as_str().unwrap_or_default().to_string()
}

pub fn cafe(e: &RecordedEvent, event: CafeEvent) -> Vec<Stmt> {
    let id = id_of(e).to_string();
    match event {
        CafeEvent::CafeScheduled { title, date, venue, .. } => vec![stmt!(
            "INSERT INTO rm_cafes (id, title, date, venue, status, version, created_position) \
             VALUES ($1, $2, $3, $4, 'SCHEDULED', $5, $6)",
            id,
            title,
            date.to_string(),
            venue,
            e.version,
            e.position,
        )],
        CafeEvent::SpeakerAnnounced { speaker, topic } => vec![stmt!(
            "INSERT INTO rm_cafe_program (position, cafe_id, kind, title, person) VALUES ($1, $2, 'SPEAKER', $3, $4)",
            e.position,
            id,
            topic,
            speaker,
        )],
        CafeEvent::WorkshopAnnounced { title, host } => vec![stmt!(
            "INSERT INTO rm_cafe_program (position, cafe_id, kind, title, person) VALUES ($1, $2, 'WORKSHOP', $3, $4)",
            e.position,
            id,
            title,
            host,
        )],
        CafeEvent::CafeHeld { attendance } => vec![stmt!(
            "UPDATE rm_cafes SET status = 'HELD', attendance = $2 WHERE id = $1",
            id,
            i64::from(attendance),
        )],
        CafeEvent::CafeCancelled { reason } => vec![stmt!(
            "UPDATE rm_cafes SET status = 'CANCELLED', cancel_reason = $2 WHERE id = $1",
            id,
            reason,
        )],
    }
}

pub fn ideation(e: &RecordedEvent, event: IdeationEventEvent) -> Vec<Stmt> {
    use IdeationEventEvent::*;
    let id = id_of(e).to_string();
    match event {
        IdeationEventScheduled { name, central_question, date, venue, .. } => vec![stmt!(
            "INSERT INTO rm_ideation_events (id, name, central_question, date, venue, status, version, created_position) \
             VALUES ($1, $2, $3, $4, $5, 'SCHEDULED', $6, $7)",
            id,
            name,
            central_question,
            date.to_string(),
            venue,
            e.version,
            e.position,
        )],
        IdeaSubmitted { idea_id, title, description, submitted_by } => vec![stmt!(
            "INSERT INTO rm_ideas (id, ideation_event_id, title, description, submitted_by, pitched, position) \
             VALUES ($1, $2, $3, $4, $5, FALSE, $6)",
            idea_id,
            id,
            title,
            description,
            submitted_by.map(|m| m.to_string()),
            e.position,
        )],
        IdeaPitched { idea_id } => vec![stmt!("UPDATE rm_ideas SET pitched = TRUE WHERE id = $1", idea_id)],
        JuryVerdictGiven { ranking, motivation } => {
            let mut out = vec![stmt!("UPDATE rm_ideation_events SET jury_motivation = $2 WHERE id = $1", id, motivation)];
            for (rank, idea) in ranking.iter().enumerate() {
                out.push(stmt!("UPDATE rm_ideas SET jury_rank = $2 WHERE id = $1", *idea, rank as i64 + 1));
            }
            out
        }
        IdeationEventConcluded { participant_count } => vec![stmt!(
            "UPDATE rm_ideation_events SET status = 'CONCLUDED', participant_count = $2 WHERE id = $1",
            id,
            i64::from(participant_count),
        )],
        IdeaAdopted { idea_id, organisation } => vec![stmt!(
            "INSERT INTO rm_idea_follow_ups (position, idea_id, kind, organisation) VALUES ($1, $2, 'ADOPTED', $3)",
            e.position,
            idea_id,
            organisation,
        )],
        IdeaTakenIntoDoetank { idea_id, doetank_id } => vec![stmt!(
            "INSERT INTO rm_idea_follow_ups (position, idea_id, kind, doetank_id) VALUES ($1, $2, 'DOETANK', $3)",
            e.position,
            idea_id,
            doetank_id,
        )],
    }
}

pub fn pilot(e: &RecordedEvent, event: PilotEvent) -> Vec<Stmt> {
    let id = id_of(e).to_string();
    match event {
        PilotEvent::PilotProposed { hindering_rule, alternative, expected_gain, applicant, .. } => vec![stmt!(
            "INSERT INTO rm_pilots (id, hindering_rule, alternative, expected_gain, applicant_id, applicant_function, \
             status, version, created_position) VALUES ($1, $2, $3, $4, $5, $6, 'PROPOSED', $7, $8)",
            id,
            hindering_rule,
            alternative,
            expected_gain,
            applicant.member_id,
            name(applicant.function),
            e.version,
            e.position,
        )],
        PilotEvent::MandateGranted { granted_by } => vec![stmt!(
            "UPDATE rm_pilots SET status = 'MANDATED', mandate_granted_by = $2 WHERE id = $1",
            id,
            granted_by,
        )],
        PilotEvent::RuleSuspended { from, until } => vec![stmt!(
            "UPDATE rm_pilots SET status = 'RULE_SUSPENDED', suspended_from = $2, suspended_until = $3 WHERE id = $1",
            id,
            from.to_string(),
            until.to_string(),
        )],
        PilotEvent::PilotEvaluated { findings } => vec![stmt!(
            "UPDATE rm_pilots SET status = 'EVALUATED', findings = $2 WHERE id = $1",
            id,
            findings,
        )],
        PilotEvent::PilotConcluded { outcome, note } => vec![stmt!(
            "UPDATE rm_pilots SET status = 'CONCLUDED', outcome = $2, note = $3 WHERE id = $1",
            id,
            name(outcome),
            note,
        )],
    }
}

pub fn charter(e: &RecordedEvent, event: CharterEvent) -> Vec<Stmt> {
    let id = id_of(e).to_string();
    match event {
        CharterEvent::CharterPublished { title, text, initiators, .. } => vec![stmt!(
            "INSERT INTO rm_charters (id, title, text, initiators, version, created_position) VALUES ($1, $2, $3, $4, $5, $6)",
            id,
            title,
            text,
            json!(initiators).to_string(),
            e.version,
            e.position,
        )],
        CharterEvent::CharterSigned { signatory } => {
            let (kind, member, organisation) = match signatory {
                Signatory::Member { member_id } => ("MEMBER", Some(member_id.to_string()), None),
                Signatory::Organisation { name } => ("ORGANISATION", None, Some(name)),
            };
            vec![stmt!(
                "INSERT INTO rm_charter_signatures (position, charter_id, kind, member_id, organisation, signed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                e.position,
                id,
                kind,
                member,
                organisation,
                ts(e.recorded_at),
            )]
        }
    }
}

pub fn reuse(e: &RecordedEvent, event: KnowledgeReuseEvent) -> Vec<Stmt> {
    let id = id_of(e).to_string();
    match event {
        KnowledgeReuseEvent::KnowledgeReused { organisation, source, pledge, .. } => {
            let (kind, doetank, lesson) = match source {
                ReuseSource::Doetank { doetank_id } => ("DOETANK", doetank_id, None),
                ReuseSource::Lesson { doetank_id, lesson_id } => {
                    ("LESSON", doetank_id, Some(lesson_id.to_string()))
                }
            };
            vec![stmt!(
                "INSERT INTO rm_reuses (id, organisation, source_kind, source_doetank_id, source_lesson_id, pledge, fulfilled, \
                 reused_at, version, created_position) VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $9)",
                id,
                organisation,
                kind,
                doetank,
                lesson,
                pledge,
                ts(e.recorded_at),
                e.version,
                e.position,
            )]
        }
        KnowledgeReuseEvent::PledgeFulfilled { note } => {
            vec![
                stmt!("UPDATE rm_reuses SET fulfilled = TRUE, fulfilment_note = $2 WHERE id = $1", id, note,),
            ]
        }
    }
}
