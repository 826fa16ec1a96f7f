//! An answer's fields in the order the query asked for them. async-graphql polls an object's
//! fields together and writes each into the answer as it completes (its issue #612), so a field
//! that waits for a batched loader comes after those that did not: `{ title origin { ... }
//! doetanks { ... } }` was answered title, doetanks, origin. GraphQL asks for the query's order
//! (spec, "Serialized Map Ordering"), and so does anyone reading an answer in the playground.
//! Objects already in order, nearly all of them, are only walked.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, FragmentDefinition, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Value};

/// Fragments nest at most this deep here (validation refuses cycles; this only bounds the walk).
const MAX_FRAGMENT_DEPTH: usize = 32;

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The order an operation asks for, made once before it runs: for each selection set, its
/// response keys in order, each with the order of what is asked of it (none for a leaf). It
/// owns its names (cheap: a `Name` is shared), so the request can go to execution, and a list
/// of objects is put in order by one plan rather than one per item.
#[derive(Debug, Default)]
struct Plan {
    keys: Vec<(Name, Option<Plan>)>,
}

impl Plan {
    fn of(sets: &[&SelectionSet], fragments: &Fragments) -> Plan {
        let mut asked: Vec<(&Name, Vec<&SelectionSet>)> = Vec::new();
        collect(sets, fragments, &mut asked, 0);
        let keys = asked
            .into_iter()
            .map(|(key, children)| {
                let leaf = children.iter().all(|set| set.items.is_empty());
                (key.clone(), (!leaf).then(|| Plan::of(&children, fragments)))
            })
            .collect();
        Plan { keys }
    }

    /// Puts `value` in this order: each object of it, each item of a list.
    fn apply(&self, value: &mut Value) {
        match value {
            Value::List(items) => items.iter_mut().for_each(|item| self.apply(item)),
            Value::Object(map) => {
                let asked = self.keys.iter().map(|(key, _)| key).filter(|key| map.contains_key(*key));
                if !asked.eq(map.keys()) {
                    let mut answered = std::mem::take(map);
                    for (key, _) in &self.keys {
                        if let Some(value) = answered.shift_remove(key) {
                            map.insert(key.clone(), value);
                        }
                    }
                    map.extend(answered);
                }
                for (key, plan) in &self.keys {
                    // A leaf (a scalar, or JSON such as an event's payload) keeps its own order.
                    if let (Some(plan), Some(value)) = (plan, map.get_mut(key)) {
                        plan.apply(value);
                    }
                }
            }
            _ => {}
        }
    }
}

/// What a request asked, kept to put its answers in order.
pub struct Asked(Option<Plan>);

impl Asked {
    pub fn of(request: &mut async_graphql::Request) -> Self {
        let operation = request.operation_name.clone();
        let Ok(document) = request.parsed_query() else { return Asked(None) };
        Asked(plan(document, operation.as_deref()))
    }

    /// `answers`, each in the order asked (the answers of a subscription, or of a query over a
    /// socket).
    pub fn order_each(
        self,
        answers: impl futures::Stream<Item = async_graphql::Response>,
    ) -> impl futures::Stream<Item = async_graphql::Response> {
        use futures::StreamExt;
        answers.map(move |mut answer| {
            self.order(&mut answer);
            answer
        })
    }

    /// `response`'s data in the order asked.
    pub fn order(&self, response: &mut async_graphql::Response) {
        if let Some(plan) = &self.0 {
            plan.apply(&mut response.data);
        }
    }
}

/// The order of the operation `operation` of `document` (the only one when it is not named).
fn plan(document: &ExecutableDocument, operation: Option<&str>) -> Option<Plan> {
    let operation = crate::graphql::operation(document, operation)?;
    Some(Plan::of(&[&operation.node.selection_set.node], &document.fragments))
}

/// The response keys `sets` ask for, in order, each with the selection sets asked of it
/// (a key may be asked for more than once, through fragments).
fn collect<'a>(
    sets: &[&'a SelectionSet],
    fragments: &'a Fragments,
    keys: &mut Vec<(&'a Name, Vec<&'a SelectionSet>)>,
    depth: usize,
) {
    if depth > MAX_FRAGMENT_DEPTH {
        return;
    }
    for selection in sets.iter().flat_map(|set| &set.items) {
        match &selection.node {
            Selection::Field(field) => {
                let (key, children) = (&field.node.response_key().node, &field.node.selection_set.node);
                match keys.iter_mut().find(|(known, _)| *known == key) {
                    Some((_, sets)) => sets.push(children),
                    None => keys.push((key, vec![children])),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = fragments.get(&spread.node.fragment_name.node) {
                    collect(&[&fragment.node.selection_set.node], fragments, keys, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(&[&inline.node.selection_set.node], fragments, keys, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ordered(query: &str, answer: serde_json::Value) -> String {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        let mut data = Value::from_json(answer).expect("value");
        plan(&document, None).expect("one operation").apply(&mut data);
        serde_json::to_string(&data).expect("json")
    }

    #[test]
    fn fields_come_in_the_order_asked_through_aliases_fragments_and_lists() {
        let query = "{ b: doetank { ...F ... on Doetank { id } payload } a: x } \
                     fragment F on Doetank { name lessons { title kind } }";
        let answer = json!({ "a": 1, "b": { "payload": { "z": 1, "a": 2 }, "id": "i",
                             "lessons": [{ "kind": "K", "title": "T" }], "name": "N" } });
        assert_eq!(
            ordered(query, answer),
            r#"{"b":{"name":"N","lessons":[{"title":"T","kind":"K"}],"id":"i","payload":{"a":2,"z":1}},"a":1}"#
        );
    }

    #[test]
    fn a_field_asked_twice_merges_what_is_asked_of_it() {
        let query = "{ d { o { y } } d { o { x } } }";
        assert_eq!(
            ordered(query, json!({ "d": { "o": { "x": 1, "y": 2 } } })),
            r#"{"d":{"o":{"y":2,"x":1}}}"#
        );
    }
}
