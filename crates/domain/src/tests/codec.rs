use serde_json::json;

use super::fixtures::*;
use crate::codec::{decode, decode_text, encode};
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
        let text = encoded.payload.to_string();
        let from_text: DoetankEvent =
            decode_text(&encoded.event_type, encoded.schema_version, &text).expect("decode text");
        assert_eq!(from_text, event);
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

#[test]
fn a_v1_lesson_payload_as_text_is_upcast_like_a_value() {
    let v1 = json!({ "lesson_id": id(1), "recorded_by": id(2), "phase": "LEARN", "kind": "WORKS", "text": "Eén zin." });
    let from_value: DoetankEvent = decode("LessonRecorded", 1, &v1).expect("value");
    let from_text: DoetankEvent = decode_text("LessonRecorded", 1, &v1.to_string()).expect("text");
    assert_eq!(from_text, from_value);
}

#[test]
fn a_broken_payload_text_is_an_error_that_names_the_event() {
    for (version, text) in [(1, "{\"by\": 1"), (1, "[]"), (2, "not json")] {
        let err = decode_text::<DoetankEvent>("LessonRecorded", version, text).expect_err("broken");
        assert!(err.to_string().contains("LessonRecorded"), "{err}");
    }
    // A type name cannot reach into the payload's JSON.
    let err = decode_text::<DoetankEvent>("DoetankMadePublic\":{},\"x", 1, "{}").expect_err("name");
    assert!(err.to_string().contains("could not be read"), "{err}");
}
