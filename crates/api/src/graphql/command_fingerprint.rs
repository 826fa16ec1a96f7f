//! The fingerprint of a command as the client asked it: the mutation, the actor and its
//! arguments, hashed. It is kept with the command id, so that the id sent again with another
//! input is refused rather than answered with the first command's result (a client that reused
//! a key would otherwise lose its second command without a word).

use async_graphql::{Context, Name, Value};
use doetank_store::Fingerprint;
use sha2::{Digest, Sha256};

/// The mutation `ctx` resolves, as `actor` asked it. The same input written another way hashes
/// the same: an inline argument or a variable, fields in any order, a null field or none.
pub(super) fn of_mutation(ctx: &Context<'_>, actor: &str) -> async_graphql::Result<Fingerprint> {
    let field = ctx.field();
    let mut text = Vec::with_capacity(256);
    write_text(&mut text, field.name());
    write_text(&mut text, actor);
    let mut arguments = field.arguments()?;
    arguments.sort_by(|(a, _), (b, _)| a.cmp(b));
    for (name, value) in &arguments {
        write_field(&mut text, name, value);
    }
    Ok(Sha256::digest(&text).into())
}

/// A text with its length first, so that no two sequences of texts write the same bytes.
fn write_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn write_field(out: &mut Vec<u8>, name: &Name, value: &Value) {
    if matches!(value, Value::Null) {
        return;
    }
    write_text(out, name);
    write_value(out, value);
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(b'n'),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            out.push(b'#');
            write_text(out, &n.to_string());
        }
        // An enum inline (`kind: WORKS`) and in variables (`"WORKS"`) is the same input.
        Value::String(s) => {
            out.push(b's');
            write_text(out, s);
        }
        Value::Enum(e) => {
            out.push(b's');
            write_text(out, e);
        }
        Value::Binary(bytes) => {
            out.push(b'b');
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        Value::List(items) => {
            out.push(b'[');
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                write_value(out, item);
            }
        }
        Value::Object(fields) => {
            let mut fields: Vec<_> = fields.iter().collect();
            fields.sort_by_key(|(a, _)| *a);
            out.push(b'{');
            for (name, value) in fields {
                write_field(out, name, value);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Name, Value};

    use super::write_value;

    fn bytes(value: Value) -> Vec<u8> {
        let mut out = Vec::new();
        write_value(&mut out, &value);
        out
    }

    fn object(fields: &[(&str, Value)]) -> Value {
        Value::Object(fields.iter().map(|(k, v)| (Name::new(k), v.clone())).collect())
    }

    #[test]
    fn the_same_input_written_another_way_writes_the_same_bytes() {
        let a = object(&[("title", Value::from("Les")), ("kind", Value::Enum(Name::new("WORKS")))]);
        let b = object(&[
            ("kind", Value::from("WORKS")),
            ("expectedVersion", Value::Null),
            ("title", Value::from("Les")),
        ]);
        assert_eq!(bytes(a), bytes(b));
    }

    #[test]
    fn another_input_writes_other_bytes() {
        let base = bytes(object(&[("title", Value::from("Les")), ("tags", Value::List(vec![]))]));
        assert_ne!(base, bytes(object(&[("title", Value::from("Les!")), ("tags", Value::List(vec![]))])));
        assert_ne!(base, bytes(object(&[("title", Value::from("Les"))])));
        assert_ne!(
            bytes(object(&[("a", Value::from("bc"))])),
            bytes(object(&[("ab", Value::from("c"))])),
            "lengths keep names and texts apart"
        );
    }
}
