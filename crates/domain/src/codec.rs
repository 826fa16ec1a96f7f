//! How events are written to and read from the log: a type name, a schema version and a JSON
//! payload. Reading runs the payload through the upcasters first, so old events stay readable.

use serde_json::{Map, Value};

use crate::aggregate::DomainEvent;
use crate::upcast;

/// An event as the log stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("event could not be serialised: {0}")]
    Serialise(String),
    #[error("event {event_type} v{schema_version} could not be read: {reason}")]
    Deserialise { event_type: String, schema_version: i32, reason: String },
}

/// Splits `{"Variant": {...}}` (serde's external tagging) into type name and payload.
pub fn encode<E: DomainEvent>(event: &E) -> Result<EncodedEvent, CodecError> {
    let value = serde_json::to_value(event).map_err(|e| CodecError::Serialise(e.to_string()))?;
    let event_type = event.event_type();
    let payload = match value {
        Value::Object(mut map) => map.remove(event_type).unwrap_or(Value::Object(Map::new())),
        other => return Err(CodecError::Serialise(format!("unexpected event shape {other}"))),
    };
    Ok(EncodedEvent {
        event_type: event_type.to_string(),
        schema_version: upcast::current_version(event_type),
        payload,
    })
}

/// Upcasts the payload to the current schema version and deserialises it.
pub fn decode<E: DomainEvent>(
    event_type: &str,
    schema_version: i32,
    payload: &Value,
) -> Result<E, CodecError> {
    decode_owned(event_type, schema_version, payload.clone())
}

/// [`decode`] of a payload the caller no longer needs: a rebuild reads every event once, and
/// copying each payload's map was a measurable share of its reading.
pub fn decode_owned<E: DomainEvent>(
    event_type: &str,
    schema_version: i32,
    payload: Value,
) -> Result<E, CodecError> {
    let fail = |reason: String| CodecError::Deserialise {
        event_type: event_type.to_string(),
        schema_version,
        reason,
    };
    let current = upcast::upcast(event_type, schema_version, payload).map_err(fail)?;
    let mut tagged = Map::new();
    tagged.insert(event_type.to_string(), current);
    serde_json::from_value(Value::Object(tagged)).map_err(|e| fail(e.to_string()))
}

/// A payload as a reader of the log has it: parsed, or as the log's JSON text.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Value(&'a Value),
    Text(&'a str),
}

impl<'a> From<&'a Value> for Payload<'a> {
    fn from(value: &'a Value) -> Self {
        Payload::Value(value)
    }
}

/// [`decode`] or [`decode_text`], as the payload comes.
pub fn decode_payload<E: DomainEvent>(
    event_type: &str,
    schema_version: i32,
    payload: Payload<'_>,
) -> Result<E, CodecError> {
    match payload {
        Payload::Value(value) => decode(event_type, schema_version, value),
        Payload::Text(text) => decode_text(event_type, schema_version, text),
    }
}

/// [`decode`] of a payload as the log's JSON text. A payload of the current schema version goes
/// straight from the text into its type: a rebuild decodes every event, and building a
/// `Value` tree first and then the type from it cost twice the parse (a tenth of a rebuild's
/// CPU). An older payload is parsed to a `Value` and upcast, as [`decode`] does.
pub fn decode_text<E: DomainEvent>(
    event_type: &str,
    schema_version: i32,
    payload: &str,
) -> Result<E, CodecError> {
    let fail = |reason: String| CodecError::Deserialise {
        event_type: event_type.to_string(),
        schema_version,
        reason,
    };
    if schema_version != upcast::current_version(event_type) {
        let value = serde_json::from_str(payload).map_err(|e| fail(e.to_string()))?;
        return decode_owned(event_type, schema_version, value);
    }
    // Serde's external tagging, `{"Type": payload}`. The type name is written as a JSON string
    // so that no name can break out of it.
    let name = serde_json::to_string(event_type).map_err(|e| fail(e.to_string()))?;
    let mut tagged = String::with_capacity(name.len() + payload.len() + 3);
    tagged.push('{');
    tagged.push_str(&name);
    tagged.push(':');
    tagged.push_str(payload);
    tagged.push('}');
    serde_json::from_str(&tagged).map_err(|e| fail(e.to_string()))
}
