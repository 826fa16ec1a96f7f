//! Dutch text for the lesson search: words are lower-cased, stripped of diacritics by the index,
//! and reduced to their Snowball stems, so "werkgevers" finds "werkgever".

use std::borrow::Cow;
use std::cell::RefCell;

use foldhash::HashMap;

use rust_stemmers::{Algorithm, Stemmer};

/// The words of `text`, lower-cased; borrowed where they already were (most words of a text).
fn words(text: &str) -> impl Iterator<Item = Cow<'_, str>> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| {
        if w.chars().all(|c| c.to_lowercase().eq([c])) {
            Cow::Borrowed(w)
        } else {
            Cow::Owned(w.to_lowercase())
        }
    })
}

/// Words stemmed before, per thread, at most this many (then it starts over). Words repeat (a
/// corpus's frequent words are most of it), and the Snowball stemmer was a tenth of a rebuild.
const KNOWN_STEMS: usize = 65_536;

thread_local! {
    static KNOWN: RefCell<HashMap<String, String>> = RefCell::new(HashMap::default());
}

/// The text as a space-separated list of Dutch stems, for the SQLite full-text index.
pub fn stems(text: &str) -> String {
    let stemmer = Stemmer::create(Algorithm::Dutch);
    KNOWN.with(|known| {
        let mut known = known.borrow_mut();
        let mut out = String::with_capacity(text.len());
        for (i, word) in words(text).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match known.get(word.as_ref()) {
                Some(stem) => out.push_str(stem),
                None => {
                    let stem = stemmer.stem(&word).into_owned();
                    out.push_str(&stem);
                    if known.len() >= KNOWN_STEMS {
                        known.clear();
                    }
                    known.insert(word.into_owned(), stem);
                }
            }
        }
        out
    })
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
    fn stems_kept_from_before_are_the_stemmers() {
        let text = "Werkgevers en werknemers: de werkgevers leren, werknemers ook. Fietsen fietst";
        let fresh = |text: &str| {
            let stemmer = Stemmer::create(Algorithm::Dutch);
            words(text).map(|w| stemmer.stem(&w).into_owned()).collect::<Vec<_>>().join(" ")
        };
        // Twice: the second time every word is known.
        assert_eq!(stems(text), fresh(text));
        assert_eq!(stems(text), fresh(text));
        assert_eq!(stems(""), "");
    }

    proptest::proptest! {
        /// Borrowing the words that are lower case already changes no word.
        #[test]
        fn words_are_the_texts_words_lower_cased(text in "(\\PC|[ǅΣΑİẞⅫ])*") {
            let lowered: Vec<String> = text
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            proptest::prop_assert_eq!(words(&text).map(Cow::into_owned).collect::<Vec<_>>(), lowered);
        }
    }

    #[test]
    fn a_query_of_punctuation_alone_is_no_query() {
        assert_eq!(fts5_query(" \"*\" "), None);
        assert_eq!(fts5_query("Kennis-behoud").as_deref(), Some("\"kennis\"* AND \"behoud\"*"));
    }
}
