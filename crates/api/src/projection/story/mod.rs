//! The network's story, from every event: a one-line timeline entry, and the lineage graph of
//! the multi-stage rocket (seed 003): discussion → idea → doetank → tested results → reuse.
//! Summaries never name people (names are personal data); they name things and organisations.

use chrono::{NaiveDate, TimeZone, Utc};
use doetank_domain::aggregates::challenge::ChallengeOrigin;
use doetank_domain::aggregates::charter::Signatory;
use doetank_domain::aggregates::reuse::ReuseSource;
use doetank_domain::error::name_key;
use doetank_domain::*;
use doetank_store::RecordedEvent;

mod fold;

pub use fold::{Line, StoryFold};

use super::apply::id_of;
use crate::sql::{ts, Stmt};
use crate::stmt;

/// What one event adds to the story.
#[derive(Debug, Default)]
pub struct Chapter {
    /// The subject's display label, when this event names it.
    label: Option<String>,
    /// Other things this event names (kind, id, label).
    nodes: Vec<(&'static str, String, String)>,
    /// (from kind, from id, to kind, to id, relation)
    links: Vec<(&'static str, String, &'static str, String, &'static str)>,
    /// When it happened in the world, if the event says.
    at: Option<String>,
    /// The summary; `{name}` is the subject's label, `{other}` the label of `other`.
    summary: String,
    other: Option<(&'static str, String)>,
}

fn day(date: NaiveDate) -> String {
    ts(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default()))
}

fn lower(value: impl serde::Serialize) -> String {
    serde_json::json!(value).as_str().unwrap_or_default().to_lowercase().replace('_', " ")
}

fn chapter(summary: impl Into<String>) -> Chapter {
    Chapter { summary: summary.into(), ..Chapter::default() }
}

pub fn member(event: &MemberEvent) -> Chapter {
    match event {
        MemberEvent::MemberRegistered { organisation, .. } => {
            chapter(format!("A member from {organisation} joined the network"))
        }
        MemberEvent::MemberProfileUpdated { organisation, .. } => {
            chapter(format!("A member of {organisation} updated their profile"))
        }
        MemberEvent::SupportCommitteeAppointed {} => {
            chapter("A member was appointed to the support committee")
        }
        MemberEvent::MemberErased {} => chapter("A member's personal data was erased"),
    }
}

pub fn challenge(id: &str, event: &ChallengeEvent) -> Chapter {
    match event {
        ChallengeEvent::ChallengeRaised { title, origin, .. } => {
            let mut c = Chapter { label: Some(title.clone()), ..chapter("Challenge raised: {name}") };
            match origin {
                ChallengeOrigin::Cafe { cafe_id } => {
                    c.links.push(("cafe", cafe_id.to_string(), "challenge", id.to_string(), "RAISED_AT"));
                    c.summary = "Challenge raised at café {other}: {name}".into();
                    c.other = Some(("cafe", cafe_id.to_string()));
                }
                ChallengeOrigin::Idea { idea_id, .. } => {
                    c.links.push(("idea", idea_id.to_string(), "challenge", id.to_string(), "RAISED_FROM"));
                    c.summary = "Challenge raised from idea {other}: {name}".into();
                    c.other = Some(("idea", idea_id.to_string()));
                }
                ChallengeOrigin::Commissioner { organisation } => {
                    c.nodes.push(organisation_node(organisation));
                    c.links.push((
                        "organisation",
                        name_key(organisation),
                        "challenge",
                        id.to_string(),
                        "COMMISSIONED",
                    ));
                    c.summary = format!("{organisation} brought a challenge: {{name}}");
                }
                ChallengeOrigin::OwnFrustration => {
                    c.summary = "A member raised a challenge from the work floor: {name}".into()
                }
            }
            c
        }
        ChallengeEvent::SupportPledged { .. } => chapter("A member pledged to work on challenge {name}"),
        ChallengeEvent::CommissionerFound { organisation } => {
            chapter(format!("{organisation} became commissioner of challenge {{name}}"))
        }
    }
}

pub fn doetank(id: &str, event: &DoetankEvent) -> Chapter {
    use DoetankEvent::*;
    match event {
        DoetankFormed { name, challenge_id, founding_members, at, .. } => Chapter {
            label: Some(name.clone()),
            links: vec![("challenge", challenge_id.to_string(), "doetank", id.to_string(), "TAKEN_UP_BY")],
            at: Some(ts(*at)),
            summary: format!(
                "Doetank {{name}} formed with {} innovators to take up {{other}}",
                founding_members.len() + 1
            ),
            other: Some(("challenge", challenge_id.to_string())),
            ..Chapter::default()
        },
        MemberJoined { at, .. } => {
            Chapter { at: Some(ts(*at)), ..chapter("An innovator joined doetank {name}") }
        }
        MemberLeft { at, .. } => Chapter { at: Some(ts(*at)), ..chapter("An innovator left doetank {name}") },
        LeadChanged { .. } => chapter("Doetank {name} has a new lead"),
        CoachAssigned { .. } => chapter("Doetank {name} got a coach"),
        CoachReleased { .. } => chapter("Doetank {name}'s coach stepped back"),
        CommissionerAttached { organisation } => {
            chapter(format!("{organisation} became commissioner of doetank {{name}}"))
        }
        KickoffHeld { date, venue, .. } => Chapter {
            at: Some(day(*date)),
            ..chapter(format!("Doetank {{name}} held its kick-off at {venue}"))
        },
        PhaseStarted { phase, at } => {
            Chapter { at: Some(ts(*at)), ..chapter(format!("Doetank {{name}} started to {}", lower(phase))) }
        }
        PhaseCompleted { phase, summary, at } => Chapter {
            at: Some(ts(*at)),
            ..chapter(format!("Doetank {{name}} completed {}: {summary}", lower(phase)))
        },
        ExpertConsulted { topic, .. } => chapter(format!("Doetank {{name}} consulted an expert on {topic}")),
        LessonRecorded { lesson_id, kind, title, .. } => Chapter {
            nodes: vec![("lesson", lesson_id.to_string(), title.clone())],
            links: vec![("doetank", id.to_string(), "lesson", lesson_id.to_string(), "LEARNED")],
            ..chapter(format!(
                "Doetank {{name}} learned what {}: {title}",
                match kind {
                    LessonKind::Works => "works",
                    LessonKind::DoesNotWork => "does not work",
                    LessonKind::Insight => "it had not seen",
                }
            ))
        },
        UpdatePublished { channel, title, .. } => {
            chapter(format!("Doetank {{name}} posted on {}: {title}", lower(channel)))
        }
        BusinessCaseHandedOver { organisation, .. } => Chapter {
            nodes: vec![organisation_node(organisation)],
            links: vec![(
                "doetank",
                id.to_string(),
                "organisation",
                name_key(organisation),
                "HANDED_OVER_TO",
            )],
            ..chapter(format!("Doetank {{name}} handed its business case over to {organisation}"))
        },
        DoetankMadePublic {} => chapter("Doetank {name} came out from under the radar"),
        DoetankConcluded { outcome, at, .. } => Chapter {
            at: Some(ts(*at)),
            ..chapter(format!("Doetank {{name}} concluded: {}", lower(outcome)))
        },
    }
}

pub fn cafe(event: &CafeEvent) -> Chapter {
    match event {
        CafeEvent::CafeScheduled { title, date, venue, .. } => Chapter {
            label: Some(title.clone()),
            at: Some(day(*date)),
            ..chapter(format!("{{name}} scheduled for {date} in {venue}"))
        },
        CafeEvent::SpeakerAnnounced { topic, .. } => chapter(format!("{{name}} announced a talk: {topic}")),
        CafeEvent::WorkshopAnnounced { title, .. } => {
            chapter(format!("{{name}} announced a workshop: {title}"))
        }
        CafeEvent::CafeHeld { attendance } => {
            chapter(format!("{{name}} was held with {attendance} attendees"))
        }
        CafeEvent::CafeCancelled { reason } => chapter(format!("{{name}} was cancelled: {reason}")),
    }
}

pub fn ideation(id: &str, event: &IdeationEventEvent) -> Chapter {
    use IdeationEventEvent::*;
    match event {
        IdeationEventScheduled { name, central_question, date, .. } => Chapter {
            label: Some(name.clone()),
            at: Some(day(*date)),
            ..chapter(format!("{{name}} scheduled on {date}: “{central_question}”"))
        },
        IdeaSubmitted { idea_id, title, .. } => Chapter {
            nodes: vec![("idea", idea_id.to_string(), title.clone())],
            links: vec![("ideation_event", id.to_string(), "idea", idea_id.to_string(), "PRODUCED")],
            ..chapter(format!("Idea submitted at {{name}}: {title}"))
        },
        IdeaPitched { idea_id } => {
            Chapter { other: Some(("idea", idea_id.to_string())), ..chapter("{other} was pitched at {name}") }
        }
        JuryVerdictGiven { ranking, .. } => Chapter {
            other: ranking.first().map(|i| ("idea", i.to_string())),
            ..chapter(format!("The jury of {{name}} ranked {} ideas, {{other}} first", ranking.len()))
        },
        IdeationEventConcluded { participant_count } => {
            chapter(format!("{{name}} concluded with {participant_count} participants"))
        }
        IdeaAdopted { idea_id, organisation } => Chapter {
            nodes: vec![organisation_node(organisation)],
            links: vec![("idea", idea_id.to_string(), "organisation", name_key(organisation), "ADOPTED_BY")],
            other: Some(("idea", idea_id.to_string())),
            ..chapter(format!("{organisation} took up idea {{other}} from {{name}}"))
        },
        IdeaTakenIntoDoetank { idea_id, doetank_id } => Chapter {
            links: vec![("idea", idea_id.to_string(), "doetank", doetank_id.to_string(), "TAKEN_INTO")],
            other: Some(("idea", idea_id.to_string())),
            ..chapter("Idea {other} from {name} was taken into a doetank")
        },
    }
}

pub fn pilot(event: &PilotEvent) -> Chapter {
    match event {
        PilotEvent::PilotProposed { hindering_rule, .. } => Chapter {
            label: Some(hindering_rule.chars().take(120).collect()),
            ..chapter("Right to Challenge pilot proposed: set aside “{name}”")
        },
        PilotEvent::MandateGranted { granted_by } => {
            chapter(format!("{granted_by} granted the mandate to set aside “{{name}}”"))
        }
        PilotEvent::RuleSuspended { from, until } => Chapter {
            at: Some(day(*from)),
            ..chapter(format!("“{{name}}” suspended from {from} until {until}"))
        },
        PilotEvent::PilotEvaluated { .. } => chapter("The pilot on “{name}” was evaluated"),
        PilotEvent::PilotConcluded { outcome, .. } => {
            chapter(format!("The pilot on “{{name}}” concluded: {}", lower(outcome)))
        }
    }
}

pub fn charter(event: &CharterEvent) -> Chapter {
    match event {
        CharterEvent::CharterPublished { title, .. } => {
            Chapter { label: Some(title.clone()), ..chapter("{name} published") }
        }
        CharterEvent::CharterSigned { signatory: Signatory::Organisation { name } } => {
            chapter(format!("{name} signed the {{name}}"))
        }
        CharterEvent::CharterSigned { signatory: Signatory::Member { .. } } => {
            chapter("A member signed the {name}")
        }
    }
}

pub fn reuse(id: &str, event: &KnowledgeReuseEvent) -> Chapter {
    match event {
        KnowledgeReuseEvent::KnowledgeReused { organisation, source, .. } => {
            let (from_kind, from_id, doetank_id) = match source {
                ReuseSource::Doetank { doetank_id } => ("doetank", doetank_id.to_string(), doetank_id),
                ReuseSource::Lesson { doetank_id, lesson_id } => {
                    ("lesson", lesson_id.to_string(), doetank_id)
                }
            };
            Chapter {
                label: Some(format!("{organisation} reuses")),
                nodes: vec![organisation_node(organisation)],
                links: vec![
                    (from_kind, from_id, "reuse", id.to_string(), "REUSED_BY"),
                    ("reuse", id.to_string(), "organisation", name_key(organisation), "REUSED_IN"),
                ],
                other: Some(("doetank", doetank_id.to_string())),
                ..chapter(format!("{organisation} reuses the results of doetank {{other}} and pledges to pass its own knowledge on"))
            }
        }
        KnowledgeReuseEvent::PledgeFulfilled { .. } => {
            chapter("Pledge fulfilled: {name} and passed its knowledge on")
        }
    }
}

/// The tables the story's statements touch, and no other statement does.
pub const TABLES: &[&str] = &[
    "rm_lineage_nodes",
    "rm_lineage_links",
    "rm_timeline",
    "rm_timeline_rises",
    "rm_timeline_falls",
    "rm_stream_clock",
];

/// A batch's timeline lines (after `$1`, up to `$2`), each with the latest time of the batch's
/// lines before it and the earliest of those after it. Every range is bounded on both ends:
/// PostgreSQL's plans, made for any value, take a range open at one end for a third of the
/// table, and read all of it.
macro_rules! batch_lines {
    () => {
        "SELECT position, occurred_at, \
         MAX(occurred_at) OVER (ORDER BY position ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS latest, \
         MIN(occurred_at) OVER (ORDER BY position ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS earliest \
         FROM rm_timeline WHERE position > $1 AND position <= $2"
    };
}

/// Of `lines`, the rises: later than every line before them, i.e. than the batch's lines
/// before them and than the latest rise so far.
macro_rules! rises {
    () => {
        "INSERT INTO rm_timeline_rises (position, occurred_at) SELECT position, occurred_at FROM lines \
         WHERE (latest IS NULL OR occurred_at > latest) \
         AND occurred_at > COALESCE((SELECT MAX(r.occurred_at) FROM rm_timeline_rises r), '')"
    };
}

/// The falls so far that the batch's lines end: those later than one of them (the newest
/// falls, their times rising).
macro_rules! no_longer_falls {
    () => {
        "DELETE FROM rm_timeline_falls \
         WHERE occurred_at > (SELECT MIN(t.occurred_at) FROM rm_timeline t WHERE t.position > $1 AND t.position <= $2) \
         AND occurred_at <= (SELECT MAX(f.occurred_at) FROM rm_timeline_falls f)"
    };
}

/// Of `lines`, the falls: no later than every line after them.
macro_rules! falls {
    () => {
        "INSERT INTO rm_timeline_falls (position, occurred_at) SELECT position, occurred_at FROM lines \
         WHERE earliest IS NULL OR occurred_at <= earliest"
    };
}

/// The statements that keep the timeline's rises and falls (migrations `0016_timeline_rises`
/// and `0017_timeline_falls`) for the lines a batch has just written, those after position
/// `seen` up to `last`: once a batch, not once a line, and on PostgreSQL in one statement,
/// since every statement is a round trip there (three a line took 16 writers' 4,000 commands
/// from 7.1 to 8.6–10.5 s). The falls' rows are disjoint from those it deletes.
pub fn end_of_batch(seen: i64, last: i64, sqlite: bool) -> Vec<Stmt> {
    if sqlite {
        vec![
            stmt!(concat!("WITH lines AS (", batch_lines!(), ") ", rises!()), seen, last),
            stmt!(no_longer_falls!(), seen, last),
            stmt!(concat!("WITH lines AS (", batch_lines!(), ") ", falls!()), seen, last),
        ]
    } else {
        vec![stmt!(
            concat!(
                "WITH lines AS (",
                batch_lines!(),
                "), rises AS (",
                rises!(),
                "), gone AS (",
                no_longer_falls!(),
                ") ",
                falls!()
            ),
            seen,
            last
        )]
    }
}

/// The statements that write a chapter for `event`.
pub fn write(e: &RecordedEvent, c: Chapter) -> Vec<Stmt> {
    let kind = e.stream_type.clone();
    let id = id_of(e).to_string();
    let mut out = Vec::new();
    if let Some(label) = c.label {
        out.push(upsert_node(kind.clone(), id.clone(), label));
    }
    for (k, i, label) in c.nodes {
        out.push(upsert_node(k.to_string(), i, label));
    }
    if let Some(at) = &c.at {
        out.push(stmt!(
            "INSERT INTO rm_stream_clock (stream_id, at) VALUES ($1, $2) ON CONFLICT (stream_id) DO UPDATE SET at = excluded.at",
            e.stream_id.clone(),
            at.clone(),
        ));
    }
    let (other_kind, other_id) = c.other.map(|(k, i)| (k.to_string(), i)).unwrap_or_default();
    out.push(stmt!(
        "INSERT INTO rm_timeline (position, kind, subject_id, event_type, occurred_at, summary) VALUES ($1, $2, $3, $4, \
         COALESCE($5, (SELECT at FROM rm_stream_clock WHERE stream_id = $6), $7), \
         REPLACE(REPLACE($8, '{name}', COALESCE((SELECT label FROM rm_lineage_nodes WHERE kind = $2 AND id = $3), '?')), \
         '{other}', COALESCE((SELECT label FROM rm_lineage_nodes WHERE kind = $9 AND id = $10), '?')))",
        e.position,
        kind,
        id,
        e.event_type.clone(),
        c.at,
        e.stream_id.clone(),
        ts(e.recorded_at),
        c.summary,
        other_kind,
        other_id,
    ));
    for (from_kind, from_id, to_kind, to_id, relation) in c.links {
        out.push(stmt!(
            "INSERT INTO rm_lineage_links (from_kind, from_id, to_kind, to_id, relation, position) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            from_kind,
            from_id,
            to_kind,
            to_id,
            relation,
            e.position,
        ));
    }
    out
}

/// An organisation's lineage node: keyed by its name as the filters match it (one-spaced, case
/// aside), so that every spelling of one organisation is one node (until the thirty-second
/// session "Gemeente Utrecht" and "gemeente utrecht" were two); labelled as last written.
fn organisation_node(organisation: &str) -> (&'static str, String, String) {
    ("organisation", name_key(organisation), organisation.to_string())
}

fn upsert_node(kind: String, id: String, label: String) -> Stmt {
    stmt!(
        "INSERT INTO rm_lineage_nodes (kind, id, label) VALUES ($1, $2, $3) \
         ON CONFLICT (kind, id) DO UPDATE SET label = excluded.label",
        kind,
        id,
        label,
    )
}
