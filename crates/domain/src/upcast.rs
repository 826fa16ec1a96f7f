//! Schema versions of event payloads and the upcasters that lift old payloads to the current
//! shape. Events in the log are never rewritten; they are upcast each time they are read.

use serde_json::{json, Value};

/// The schema version new events of this type are written with.
pub fn current_version(event_type: &str) -> i32 {
    match event_type {
        // v2 split the lesson's single `text` into `title` and `body` and added `tags`.
        "LessonRecorded" => 2,
        _ => 1,
    }
}

/// Lifts `payload` from `version` to the current version of `event_type`, one step at a time.
pub fn upcast(event_type: &str, version: i32, mut payload: Value) -> Result<Value, String> {
    let target = current_version(event_type);
    if version > target {
        return Err(format!("schema version {version} is newer than this build understands ({target})"));
    }
    if version < 1 {
        return Err(format!("schema version {version} does not exist"));
    }
    let mut v = version;
    while v < target {
        payload = match (event_type, v) {
            ("LessonRecorded", 1) => lesson_recorded_v1_to_v2(payload)?,
            _ => return Err(format!("no upcaster from {event_type} v{v}")),
        };
        v += 1;
    }
    Ok(payload)
}

/// v1 lessons had one free `text`; its first sentence becomes the title, the whole the body.
fn lesson_recorded_v1_to_v2(payload: Value) -> Result<Value, String> {
    let Value::Object(mut map) = payload else {
        return Err("LessonRecorded v1 payload is not an object".into());
    };
    let text = match map.remove("text") {
        Some(Value::String(text)) => text,
        _ => return Err("LessonRecorded v1 payload has no text".into()),
    };
    let first_sentence = text
        .split_inclusive(['.', '!', '?', '\n'])
        .next()
        .unwrap_or(&text)
        .trim()
        .trim_end_matches(['.', '\n'])
        .to_string();
    let title: String = first_sentence.chars().take(120).collect();
    map.insert("title".into(), json!(title));
    map.insert("body".into(), json!(text));
    map.entry("tags").or_insert_with(|| json!([]));
    Ok(Value::Object(map))
}
