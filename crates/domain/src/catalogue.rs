//! The log's data dictionary, for researchers reading an export: every event type a stream can
//! hold, the schema version it is written with, the versions still read (older ones upcast),
//! what it records, and a JSON Schema of its payload. The schemas are derived from the types
//! that write the payloads, so they cannot drift from what the log holds.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{Map, Value};

use crate::aggregate::Aggregate;
use crate::aggregates::{
    cafe::Cafe, challenge::Challenge, charter::Charter, doetank::Doetank, ideation::IdeationEvent,
    member::Member, pilot::Pilot, reuse::KnowledgeReuse,
};
use crate::upcast;

/// The JSON Schema dialect of every payload schema.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// One event type of the log; serialised as GraphQL's `eventTypes` answers it (`doetank
/// event-types` writes them so).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeEntry {
    #[serde(rename = "type")]
    pub event_type: String,
    pub stream_type: &'static str,
    /// Whether this is the event its stream opens with (and only there).
    pub opens_stream: bool,
    /// The version new events of this type are written with.
    pub schema_version: i32,
    /// Every version the log may hold of it, oldest first: all are read, older ones upcast.
    pub read_versions: Vec<i32>,
    pub description: Option<String>,
    /// The payload as the current version writes it; the definitions it refers to included.
    pub payload_schema: Value,
}

/// Every kind of stream, in the order `catalogue` lists their events.
pub const STREAM_TYPES: [&str; 8] = [
    Member::STREAM_TYPE,
    Challenge::STREAM_TYPE,
    Doetank::STREAM_TYPE,
    Cafe::STREAM_TYPE,
    IdeationEvent::STREAM_TYPE,
    Pilot::STREAM_TYPE,
    Charter::STREAM_TYPE,
    KnowledgeReuse::STREAM_TYPE,
];

/// The event a stream of `stream_type` opens with, `None` for a kind of stream the network
/// does not have (an imported log may hold others).
pub fn opening_event(stream_type: &str) -> Option<&'static str> {
    [
        (Member::STREAM_TYPE, Member::OPENED_BY),
        (Challenge::STREAM_TYPE, Challenge::OPENED_BY),
        (Doetank::STREAM_TYPE, Doetank::OPENED_BY),
        (Cafe::STREAM_TYPE, Cafe::OPENED_BY),
        (IdeationEvent::STREAM_TYPE, IdeationEvent::OPENED_BY),
        (Pilot::STREAM_TYPE, Pilot::OPENED_BY),
        (Charter::STREAM_TYPE, Charter::OPENED_BY),
        (KnowledgeReuse::STREAM_TYPE, KnowledgeReuse::OPENED_BY),
    ]
    .into_iter()
    .find_map(|(stream, opened_by)| (stream == stream_type).then_some(opened_by))
}

/// Every event type of every stream, stream by stream, each in the order its enum declares.
pub fn catalogue() -> Vec<EventTypeEntry> {
    let mut all = Vec::new();
    entries::<Member>(&mut all);
    entries::<Challenge>(&mut all);
    entries::<Doetank>(&mut all);
    entries::<Cafe>(&mut all);
    entries::<IdeationEvent>(&mut all);
    entries::<Pilot>(&mut all);
    entries::<Charter>(&mut all);
    entries::<KnowledgeReuse>(&mut all);
    all
}

/// The entries of one aggregate's events, from the schema of its event enum: serde tags each
/// variant externally (`{"Type": payload}`), so each of the schema's `oneOf` is one event type,
/// its one property the payload.
fn entries<A: Aggregate>(all: &mut Vec<EventTypeEntry>)
where
    A::Event: JsonSchema,
{
    let root = SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<A::Event>();
    let root = root.to_value();
    let definitions = root.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    for variant in root.get("oneOf").and_then(Value::as_array).into_iter().flatten() {
        let Some((event_type, payload)) =
            variant.get("properties").and_then(Value::as_object).and_then(|p| p.iter().next())
        else {
            continue;
        };
        let description = variant.get("description").and_then(Value::as_str).map(str::to_string);
        let schema_version = upcast::current_version(event_type);
        all.push(EventTypeEntry {
            event_type: event_type.clone(),
            stream_type: A::STREAM_TYPE,
            opens_stream: event_type == A::OPENED_BY,
            schema_version,
            read_versions: (1..=schema_version).collect(),
            payload_schema: standalone(event_type, description.as_deref(), payload, &definitions),
            description,
        });
    }
}

/// `payload` as a schema document of its own: dialect, title, description, and the definitions
/// it refers to (directly or through each other), no others.
fn standalone(
    title: &str,
    description: Option<&str>,
    payload: &Value,
    definitions: &Map<String, Value>,
) -> Value {
    let mut schema = Map::new();
    schema.insert("$schema".into(), DIALECT.into());
    schema.insert("title".into(), title.into());
    if let Some(description) = description {
        schema.insert("description".into(), description.into());
    }
    if let Value::Object(payload) = payload {
        schema.extend(payload.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut used = Map::new();
    let mut pending = Vec::new();
    references(payload, &mut pending);
    while let Some(name) = pending.pop() {
        if used.contains_key(&name) {
            continue;
        }
        if let Some(definition) = definitions.get(&name) {
            references(definition, &mut pending);
            used.insert(name, definition.clone());
        }
    }
    if !used.is_empty() {
        schema.insert("$defs".into(), Value::Object(used));
    }
    Value::Object(schema)
}

/// The names of the definitions `schema` refers to (`"$ref": "#/$defs/Name"`).
fn references(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix("#/$defs/") {
                            names.push(name.to_string());
                        }
                    }
                    _ => references(value, names),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, names)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    #[test]
    fn every_variant_of_every_stream_is_listed_once_and_described() {
        let all = catalogue();
        let listed = |stream: &str| -> Vec<&str> {
            all.iter().filter(|e| e.stream_type == stream).map(|e| e.event_type.as_str()).collect()
        };
        assert_eq!(listed(Member::STREAM_TYPE), MemberEvent::EVENT_TYPES);
        assert_eq!(listed(Challenge::STREAM_TYPE), ChallengeEvent::EVENT_TYPES);
        assert_eq!(listed(Doetank::STREAM_TYPE), DoetankEvent::EVENT_TYPES);
        assert_eq!(listed(Cafe::STREAM_TYPE), CafeEvent::EVENT_TYPES);
        assert_eq!(listed(IdeationEvent::STREAM_TYPE), IdeationEventEvent::EVENT_TYPES);
        assert_eq!(listed(Pilot::STREAM_TYPE), PilotEvent::EVENT_TYPES);
        assert_eq!(listed(Charter::STREAM_TYPE), CharterEvent::EVENT_TYPES);
        assert_eq!(listed(KnowledgeReuse::STREAM_TYPE), KnowledgeReuseEvent::EVENT_TYPES);
        // Each kind of stream opens with exactly one of its own events.
        for stream in STREAM_TYPES {
            let opening: Vec<&str> = all
                .iter()
                .filter(|e| e.stream_type == stream && e.opens_stream)
                .map(|e| e.event_type.as_str())
                .collect();
            assert_eq!(opening.len(), 1, "{stream}: {opening:?}");
            assert_eq!(opening_event(stream), opening.first().copied());
        }
        assert_eq!(opening_event("note"), None);
        let mut streams: Vec<&str> = all.iter().map(|e| e.stream_type).collect();
        streams.dedup();
        assert_eq!(streams, STREAM_TYPES, "STREAM_TYPES in the catalogue's order");
        for entry in &all {
            assert!(entry.description.as_deref().is_some_and(|d| !d.is_empty()), "{}", entry.event_type);
            assert_eq!(entry.payload_schema["title"], entry.event_type.as_str());
            assert_eq!(entry.payload_schema["type"], "object", "{}", entry.event_type);
        }
    }

    #[test]
    fn a_payload_schema_carries_the_definitions_it_refers_to_and_no_others() {
        let all = catalogue();
        let formed = all.iter().find(|e| e.event_type == "DoetankFormed").expect("DoetankFormed");
        let schema = &formed.payload_schema;
        assert_eq!(schema["$schema"], DIALECT);
        let required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        for field in ["doetank_id", "name", "challenge_id", "lead", "founding_members", "at"] {
            assert!(required.contains(&field), "{field} in {schema:#}");
        }
        assert_eq!(schema["properties"]["at"]["format"], "date-time");
        // Innovator refers to Sector: both are carried, nothing else is.
        let defs: Vec<&String> = schema["$defs"].as_object().map(|d| d.keys().collect()).unwrap_or_default();
        assert_eq!(defs, ["Innovator", "Sector"], "{schema:#}");
        let lesson = all.iter().find(|e| e.event_type == "LessonRecorded").expect("LessonRecorded");
        assert_eq!((lesson.schema_version, lesson.read_versions.as_slice()), (2, &[1, 2][..]));
        let held = all.iter().find(|e| e.event_type == "CafeHeld").expect("CafeHeld");
        assert!(held.payload_schema.get("$defs").is_none(), "{:#}", held.payload_schema);
    }
}
