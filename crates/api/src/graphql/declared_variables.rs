//! Variables held to the types their operation declares. async-graphql checks a variable's
//! value only against the argument it is passed to, so `query($n: Int!)` given `{"n": null}`
//! ran as if `$n` were absent wherever the argument may be null (a filter that filtered
//! nothing, a change that changed nothing), where the GraphQL spec (CoerceVariableValues)
//! refuses the request. A non-null variable given `null`, or a `null` item where the
//! declaration's list holds non-null items, is refused as a whole, and so is one left without
//! a value and without a default. Only nullability needs checking here: validation makes sure
//! each variable's type fits where it is used, and its value is coerced to that type as the
//! operation runs.
//!
//! Checked where each transport has the parsed text, before async-graphql runs it, rather than
//! in an async-graphql extension: with any extension installed async-graphql runs every field
//! through the extensions' chain, and the computed doetank of the benchmarks lost a quarter of
//! its throughput (the trivial query an eighth). So a request that breaks a declaration and
//! also fails validation is told of the variable first.

use async_graphql::parser::types::{BaseType, ExecutableDocument, Type};
use async_graphql::{ErrorExtensions, Name, Pos, Request, Response, ServerError, Value, Variables};

use super::errors::unset_variable_message;

/// The refusal of `request` (its text parsed, else none) when a variable's value breaks the
/// type the operation declares for it.
pub fn refusal_of(request: &mut Request) -> Option<Response> {
    // Taken out while the parsed text is borrowed, and put back: no copy of them per request.
    let variables = std::mem::take(&mut request.variables);
    let name = request.operation_name.take();
    let refused = match request.parsed_query() {
        Ok(document) => refusal(document, name.as_deref(), &variables),
        Err(_) => None,
    };
    (request.variables, request.operation_name) = (variables, name);
    refused.map(|error| Response::from_errors(vec![error]))
}

/// The refusal of the first variable of the operation to run whose value breaks its declared
/// type's nullability, if any. An operation that is not there is left to validation.
fn refusal(document: &ExecutableDocument, name: Option<&str>, variables: &Variables) -> Option<ServerError> {
    let operation = super::operation(document, name)?;
    operation.node.variable_definitions.iter().find_map(|positioned| {
        let definition = &positioned.node;
        let name = &definition.name.node;
        let message = match variables.get(name) {
            None if !definition.var_type.node.nullable && definition.default_value.is_none() => {
                unset_variable_message(name)
            }
            None => return None,
            Some(value) => {
                let mut at = Vec::new();
                if !null_where_not_allowed(&definition.var_type.node, value, &mut at) {
                    return None;
                }
                let at: String = at.iter().map(|i| format!("[{i}]")).collect();
                let at = if at.is_empty() { at } else { format!(" at {at}") };
                format!("variable ${name} is declared `{}` but is given null{at}", definition.var_type.node)
            }
        };
        Some(bad_input(name, message, positioned.pos))
    })
}

/// Whether `value` holds a null that `ty` does not allow; `at` then holds where (the indexes
/// down the lists to it, none for the value itself). Nothing is written for a value that passes.
fn null_where_not_allowed(ty: &Type, value: &Value, at: &mut Vec<usize>) -> bool {
    match (&ty.base, value) {
        (_, Value::Null) => !ty.nullable,
        (BaseType::List(item), Value::List(items)) => items.iter().enumerate().any(|(i, value)| {
            at.push(i);
            let found = null_where_not_allowed(item, value, at);
            if !found {
                at.pop();
            }
            found
        }),
        _ => false,
    }
}

/// The refusal of variable `name`, declared at `pos`.
fn bad_input(name: &Name, message: String, pos: Pos) -> ServerError {
    let error = async_graphql::Error::new(message).extend_with(|_, e| {
        e.set("code", "BAD_INPUT");
        e.set("field", format!("${name}"));
    });
    let mut refusal = ServerError::new(error.message, Some(pos));
    refusal.extensions = error.extensions;
    refusal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(query: &str, variables: serde_json::Value) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        let variables = Variables::from_json(variables);
        refusal(&document, None, &variables).map(|error| error.message)
    }

    #[test]
    fn a_null_is_refused_where_the_declaration_holds_none() {
        let refusal = refused("query($n: Int!) { a(n: $n) }", serde_json::json!({ "n": null }));
        assert_eq!(refusal.as_deref(), Some("variable $n is declared `Int!` but is given null"));
        let refusal =
            refused("query($ids: [ID!]) { a(ids: $ids) }", serde_json::json!({ "ids": ["a", null] }));
        assert_eq!(refusal.as_deref(), Some("variable $ids is declared `[ID!]` but is given null at [1]"));
        let refusal =
            refused("query($m: [[ID!]]) { a(m: $m) }", serde_json::json!({ "m": [null, ["a", null]] }));
        assert_eq!(refusal.as_deref(), Some("variable $m is declared `[[ID!]]` but is given null at [1][1]"));
        let unset = refused("query($n: Int!) { a(n: $n) }", serde_json::json!({})).unwrap_or_default();
        assert!(unset.starts_with("variable $n has no value"), "{unset}");
    }

    #[test]
    fn nulls_the_declaration_allows_pass() {
        for (query, variables) in [
            ("query($n: Int) { a(n: $n) }", serde_json::json!({ "n": null })),
            ("query($n: Int) { a(n: $n) }", serde_json::json!({})),
            ("query($n: Int! = 3) { a(n: $n) }", serde_json::json!({})),
            ("query($ids: [ID]!) { a(ids: $ids) }", serde_json::json!({ "ids": [null] })),
            ("query($n: Int!) { a(n: $n) }", serde_json::json!({ "n": 0 })),
            // Another operation's variables are not this one's.
            ("query A($n: Int!) { a(n: $n) } query B { b }", serde_json::json!({})),
        ] {
            assert_eq!(refused(query, variables.clone()), None, "{query} {variables}");
        }
    }
}
