use serde_json::json;

use super::fixtures::*;
use crate::codec::{decode, encode};
use crate::*;

#[test]
fn every_doetank_event_round_trips_through_the_codec() {
    let mut events = coached(3);
    events.push(DoetankEvent::DoetankMadePublic {});
    for event in events {
        let encoded = encode(&event).expect("encode");
        assert_eq!(encoded.event_type, event.event_type());
        let decoded: DoetankEvent =
            decode(&encoded.event_type, encoded.schema_version, &encoded.payload).expect("decode");
        assert_eq!(decoded, event);
    }
}

#[test]
fn lessons_are_written_as_schema_version_2() {
    let event = DoetankEvent::LessonRecorded {
        lesson_id: id(1),
        recorded_by: id(2),
        phase: Phase::Discover,
        kind: LessonKind::Works,
        title: "t".into(),
        body: "b".into(),
        tags: vec![],
    };
    assert_eq!(encode(&event).expect("encode").schema_version, 2);
}

#[test]
fn a_v1_lesson_payload_is_read_as_v2() {
    let v1 = json!({
        "lesson_id": id(1),
        "recorded_by": id(2),
        "phase": "TRY_OUT",
        "kind": "DOES_NOT_WORK",
        "text": "Alleen via LinkedIn werven werkt niet. Een café levert meer aanmeldingen op."
    });
    let event: DoetankEvent = decode("LessonRecorded", 1, &v1).expect("upcast v1");
    assert_eq!(
        event,
        DoetankEvent::LessonRecorded {
            lesson_id: id(1),
            recorded_by: id(2),
            phase: Phase::TryOut,
            kind: LessonKind::DoesNotWork,
            title: "Alleen via LinkedIn werven werkt niet".into(),
            body: "Alleen via LinkedIn werven werkt niet. Een café levert meer aanmeldingen op.".into(),
            tags: vec![],
        }
    );
}

#[test]
fn a_payload_from_a_newer_build_is_refused_not_misread() {
    let err = decode::<DoetankEvent>("LessonRecorded", 3, &json!({})).expect_err("too new");
    assert!(err.to_string().contains("newer"), "{err}");
}
