//! Parsed query documents, kept by their text. Clients send the same few texts again and again
//! with other variables (a dashboard asking about each doetank in turn, a playground tab run
//! twice); parsing one with async-graphql's parser was a fifth of a new question's CPU, copying
//! the parsed tree costs a fraction of that. Only the parse is kept: validation and execution
//! run for every request, as they depend on the schema's rules, the variables and the viewer.
//!
//! A text is parsed by our own parser where it can (`query_text`, a fraction of the cost of
//! async-graphql's) and kept on its second sighting, so a stream of one-off texts costs a hash
//! and a parse each and does not push the texts that do come back out.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Documents kept at most; past it the cache starts over.
const CAPACITY: usize = 512;
/// Texts seen once remembered at most (by hash); past it that memory starts over.
const SEEN_CAPACITY: usize = 8192;
/// Longer texts are parsed each time rather than kept.
const MAX_TEXT_BYTES: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Kept {
    documents: HashMap<String, Arc<ExecutableDocument>>,
    seen_once: HashSet<u64>,
    hasher: RandomState,
}

#[derive(Debug, Clone, Default)]
pub struct Documents {
    kept: Arc<Mutex<Kept>>,
}

/// Gives `request` the document our parser reads from its text; leaves it to async-graphql's
/// parser where ours gives up (a syntax error among them, so the error is async-graphql's).
fn parse_fast(request: &mut async_graphql::Request) {
    if let Some(document) = super::query_text::parse(&request.query) {
        request.set_parsed_query(document);
    }
}

/// What the cache knows of a text.
enum Sighting {
    Kept(Arc<ExecutableDocument>),
    /// Seen for the first time (or too long to keep): parsed, not kept.
    New,
    /// Seen once before: parsed and kept.
    Again,
}

impl Documents {
    /// Gives `request` its parsed document if its text is kept, and keeps it when the text comes
    /// back. A text that does not parse is never kept: execution reports the syntax error.
    /// A text not kept is parsed by our own parser where it can (see `query_text`).
    pub fn attach(&self, request: &mut async_graphql::Request) {
        let sighting = self.sighting(&request.query);
        if let Sighting::Kept(document) = &sighting {
            request.set_parsed_query((**document).clone());
            return;
        }
        parse_fast(request);
        if !matches!(sighting, Sighting::Again) {
            return;
        }
        let Ok(document) = request.parsed_query() else { return };
        let document = Arc::new(document.clone());
        let Ok(mut kept) = self.kept.lock() else { return };
        if kept.documents.len() >= CAPACITY {
            kept.documents.clear();
        }
        kept.documents.insert(request.query.clone(), document);
    }

    /// Looks `text` up, and remembers a first sighting.
    fn sighting(&self, text: &str) -> Sighting {
        if text.len() > MAX_TEXT_BYTES {
            return Sighting::New;
        }
        let Ok(mut kept) = self.kept.lock() else { return Sighting::New };
        if let Some(document) = kept.documents.get(text) {
            return Sighting::Kept(document.clone());
        }
        let hash = kept.hasher.hash_one(text);
        if kept.seen_once.remove(&hash) {
            return Sighting::Again;
        }
        if kept.seen_once.len() >= SEEN_CAPACITY {
            kept.seen_once.clear();
        }
        kept.seen_once.insert(hash);
        Sighting::New
    }

    #[cfg(test)]
    fn keeps(&self, text: &str) -> bool {
        self.kept.lock().is_ok_and(|kept| kept.documents.contains_key(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "query($id: ID!) { doetank(id: $id) { name lessons { title } } }";

    fn attached(documents: &Documents, text: &str) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(text);
        documents.attach(&mut request);
        request
    }

    #[test]
    fn a_text_is_kept_when_it_comes_back_and_then_served_as_parsed() {
        let documents = Documents::default();
        attached(&documents, TEXT);
        assert!(!documents.keeps(TEXT), "kept on its first sighting");
        attached(&documents, TEXT);
        assert!(documents.keeps(TEXT));
        let mut served = attached(&documents, TEXT);
        let fresh = async_graphql::parser::parse_query(TEXT).expect("parses");
        let served = served.parsed_query().expect("attached");
        assert_eq!(format!("{served:?}"), format!("{fresh:?}"));
    }

    #[test]
    fn a_text_that_does_not_parse_is_never_kept() {
        let documents = Documents::default();
        for _ in 0..3 {
            let mut request = attached(&documents, "{ doetank(id: ");
            assert!(request.parsed_query().is_err());
        }
        assert!(!documents.keeps("{ doetank(id: "));
    }

    #[test]
    fn long_texts_are_not_kept() {
        let documents = Documents::default();
        let long = format!("{{ __typename }} # {}", "x".repeat(MAX_TEXT_BYTES));
        for _ in 0..3 {
            attached(&documents, &long);
        }
        assert!(!documents.keeps(&long));
    }
}
