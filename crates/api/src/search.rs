//! Dutch text for the lesson search: words are lower-cased, stripped of diacritics by the index,
//! and reduced to their Snowball stems, so "werkgevers" finds "werkgever".

use rust_stemmers::{Algorithm, Stemmer};

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase())
}

/// The text as a space-separated list of Dutch stems, for the SQLite full-text index.
pub fn stems(text: &str) -> String {
    let stemmer = Stemmer::create(Algorithm::Dutch);
    words(text).map(|w| stemmer.stem(&w).into_owned()).collect::<Vec<_>>().join(" ")
}

/// An FTS5 query that matches every stem of `query` as a prefix, or `None` when it has no words.
pub fn fts5_query(query: &str) -> Option<String> {
    let stemmer = Stemmer::create(Algorithm::Dutch);
    let terms: Vec<String> =
        words(query).take(16).map(|w| format!("\"{}\"*", stemmer.stem(&w).replace('"', ""))).collect();
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" AND "))
    }
}

/// A PostgreSQL `to_tsquery('dutch', ...)` text: every word as a prefix, all required. Words
/// are alphanumeric only, so user input cannot inject tsquery operators.
pub fn tsquery(query: &str) -> Option<String> {
    let terms: Vec<String> = words(query).take(16).map(|w| format!("{w}:*")).collect();
    if terms.is_empty() {
        None
    } else {
        Some(terms.join(" & "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_and_singular_share_a_stem() {
        assert_eq!(stems("werkgevers"), stems("werkgever"));
        assert_eq!(stems("Jonge medewerkers"), stems("jong medewerker"));
    }

    #[test]
    fn a_query_of_punctuation_alone_is_no_query() {
        assert_eq!(fts5_query(" \"*\" "), None);
        assert_eq!(fts5_query("Kennis-behoud").as_deref(), Some("\"kennis\"* AND \"behoud\"*"));
    }
}
