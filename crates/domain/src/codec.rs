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
