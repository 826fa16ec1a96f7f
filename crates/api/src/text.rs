//! What text the network stores: no control characters but tab and line breaks. U+0000 in
//! particular cannot be stored by PostgreSQL at all (in `TEXT` nor in `jsonb`), so a text that
//! SQLite would take would make the same log unreadable on the other backend; the others are
//! never meant, and break exports, terminals and CSV readers.

use serde_json::Value;

use crate::error::AppError;

/// Why a text was refused.
const CONTROL: &str = "must not contain control characters (such as U+0000) other than tab and line breaks";

fn is_clean(text: &str) -> bool {
    !text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// `text`, for the input field `field`, unless it holds a control character.
pub fn check(field: &str, text: &str) -> Result<(), AppError> {
    if is_clean(text) {
        Ok(())
    } else {
        Err(AppError::bad_input(field, CONTROL))
    }
}

/// The text an exact-match filter (an organisation, a tag, an expertise, a stream id) matches,
/// trimmed and one-spaced, as the domain keeps names and keywords. A blank one would match
/// nothing, which reads as an empty list, so it is refused: leaving the filter out matches
/// everything. (Until the thirtieth session a blank tag,
/// organisation or stream id answered nothing.) A filter that looks for a text within another
/// (a name, a title, a search) takes a blank one as no filter: every text holds it.
pub fn exact_key(field: &str, text: &str) -> Result<String, AppError> {
    let key = doetank_domain::error::one_spaced(text);
    if key.is_empty() {
        return Err(AppError::bad_input(field, "must not be blank: leave the filter out to match every one"));
    }
    Ok(key)
}

/// Every text of an event's payload, so that no command can write one the log should not hold;
/// the field named is the payload's key, as the GraphQL input calls it (`hindering_rule` is
/// `hinderingRule`).
pub fn check_payload(payload: &Value) -> Result<(), AppError> {
    fn walk(value: &Value, key: &str) -> Result<(), AppError> {
        match value {
            Value::String(text) => check(&camel_case(key), text),
            Value::Array(items) => items.iter().try_for_each(|item| walk(item, key)),
            Value::Object(fields) => fields.iter().try_for_each(|(key, value)| walk(value, key)),
            _ => Ok(()),
        }
    }
    walk(payload, "payload")
}

fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether PostgreSQL refused a text it cannot store (U+0000, in `TEXT` or `jsonb`): the input
/// was at fault, not the database. Reads meet it too, for a filter that holds one.
pub fn refused_by_postgres(err: &sqlx::Error) -> bool {
    // 22021 character_not_in_repertoire ("invalid byte sequence for encoding UTF8: 0x00"),
    // 22P05 untranslatable_character ("unsupported Unicode escape sequence").
    err.as_database_error().and_then(|e| e.code()).is_some_and(|code| code == "22021" || code == "22P05")
}

/// The error for a text PostgreSQL refused: which input held it is not known there.
pub fn refused_text() -> AppError {
    AppError::bad_input("text", CONTROL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabs_and_line_breaks_pass_other_control_characters_do_not() {
        assert!(check("body", "twee\tkolommen\r\nen regels\n").is_ok());
        assert!(check("body", "café, één, 🚲").is_ok());
        for bad in ["a\u{0}b", "bel\u{7}", "esc\u{1b}[31m", "c1\u{85}", "del\u{7f}"] {
            let Err(AppError::BadInput { field, .. }) = check("body", bad) else { panic!("{bad:?} passed") };
            assert_eq!(field, "body");
        }
    }

    #[test]
    fn a_payload_names_the_input_field_that_holds_the_character() {
        let payload = json!({ "hindering_rule": "ok", "applicant": { "in_primary_process": true }, "tags": ["a", "b\u{0}"] });
        let Err(AppError::BadInput { field, .. }) = check_payload(&payload) else { panic!("passed") };
        assert_eq!(field, "tags");
        let payload = json!({ "expected_gain": "x\u{0}" });
        let Err(AppError::BadInput { field, .. }) = check_payload(&payload) else { panic!("passed") };
        assert_eq!(field, "expectedGain");
        assert!(check_payload(&json!({ "title": "goed", "count": 3, "list": [1, null] })).is_ok());
    }
}
