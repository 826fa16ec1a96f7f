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
            out.push_str(known_stem(&mut known, &stemmer, word));
        }
        out
    })
}

/// The stem of `word` (lower case), from those stemmed before when it is among them.
fn known_stem<'k>(known: &'k mut HashMap<String, String>, stemmer: &Stemmer, word: Cow<'_, str>) -> &'k str {
    if !known.contains_key(word.as_ref()) {
        if known.len() >= KNOWN_STEMS {
            known.clear();
        }
        let stem = stemmer.stem(&word).into_owned();
        known.insert(word.clone().into_owned(), stem);
    }
    known.get(word.as_ref()).map_or("", String::as_str)
}

/// How far into a text an excerpt looks for its first match.
const SCANNED: usize = 1_000;

/// Words too common to look for: PostgreSQL's `dutch` stop words (Snowball's list, as
/// `tsearch_data/dutch.stop` holds it), sorted. PostgreSQL's `to_tsquery('dutch', ...)` drops
/// them; a search leaves them out on both backends, so both look for the same words. Until the
/// thirty-third session SQLite looked for them, as prefixes: "de werkgever" asked for a word
/// beginning with "de" (deelnemers, denken, ...) beside "werkgever", and ranked otherwise.
const STOP_WORDS: [&str; 101] = [
    "aan", "al", "alles", "als", "altijd", "andere", "ben", "bij", "daar", "dan", "dat", "de", "der", "deze",
    "die", "dit", "doch", "doen", "door", "dus", "een", "eens", "en", "er", "ge", "geen", "geweest", "haar",
    "had", "heb", "hebben", "heeft", "hem", "het", "hier", "hij", "hoe", "hun", "iemand", "iets", "ik", "in",
    "is", "ja", "je", "kan", "kon", "kunnen", "maar", "me", "meer", "men", "met", "mij", "mijn", "moet",
    "na", "naar", "niet", "niets", "nog", "nu", "of", "om", "omdat", "onder", "ons", "ook", "op", "over",
    "reeds", "te", "tegen", "toch", "toen", "tot", "u", "uit", "uw", "van", "veel", "voor", "want", "waren",
    "was", "wat", "werd", "wezen", "wie", "wil", "worden", "wordt", "zal", "ze", "zelf", "zich", "zij",
    "zijn", "zo", "zonder", "zou",
];

/// The words of `query` a search looks for (lower case, the common ones left out), at most 16.
fn looked_for(query: &str) -> impl Iterator<Item = Cow<'_, str>> + '_ {
    words(query).filter(|word| STOP_WORDS.binary_search(&word.as_ref()).is_err()).take(16)
}

/// Why a search has nothing to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NothingToLookFor {
    /// Punctuation or symbols alone.
    NoWord,
    /// Only words too common to look for ("de het").
    OnlyCommonWords,
}

impl NothingToLookFor {
    /// What the client is told, of its `search`.
    pub fn told(self) -> &'static str {
        match self {
            NothingToLookFor::NoWord => "has no word to look for (letters or digits)",
            NothingToLookFor::OnlyCommonWords => {
                "has only words too common to look for (as \"de\", \"het\", \"een\"): add a word that tells lessons apart"
            }
        }
    }
}

/// What a search looks for: the stems of its words (at most 16, as the index is asked, common
/// words left out), each matching the words whose stem begins with it. Makes the excerpt of a
/// lesson found by it.
#[derive(Debug, Clone)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    /// The terms of `query`, or why it has none.
    pub fn new(query: &str) -> Result<Self, NothingToLookFor> {
        let stemmer = Stemmer::create(Algorithm::Dutch);
        let terms: Vec<String> = looked_for(query).map(|w| stemmer.stem(&w).into_owned()).collect();
        match (terms.is_empty(), words(query).next().is_some()) {
            (false, _) => Ok(SearchTerms(terms)),
            (true, true) => Err(NothingToLookFor::OnlyCommonWords),
            (true, false) => Err(NothingToLookFor::NoWord),
        }
    }

    /// The FTS5 query that matches every term as a prefix.
    pub fn fts5_query(&self) -> String {
        let terms: Vec<String> = self.0.iter().map(|t| format!("\"{}\"*", t.replace('"', ""))).collect();
        terms.join(" AND ")
    }

    fn matches(&self, stemmer: &Stemmer, word: &str) -> bool {
        let word = words(word).next().unwrap_or_default();
        KNOWN.with(|known| {
            let mut known = known.borrow_mut();
            let stem = known_stem(&mut known, stemmer, word);
            self.0.iter().any(|term| stem.starts_with(term.as_str()))
        })
    }

    /// About `length` words of `text` around its first word the search matched, each matched
    /// word between `**` (Markdown's bold); `…` where the text goes on. A text with no
    /// matching word (the lesson was found by its title or tags) gives its first words.
    pub fn excerpt(&self, text: &str, length: usize) -> String {
        let stemmer = Stemmer::create(Algorithm::Dutch);
        let spans = word_spans(text);
        let hit = |&(from, to): &(usize, usize)| self.matches(&stemmer, &text[from..to]);
        let length = length.max(1);
        // A little of what comes before the first match, so it is read in its sentence. Only
        // the words up to it and those shown are stemmed, and a first match is looked for
        // among the first `SCANNED` words only: a long body found by its title costs no more.
        let first = spans.iter().take(SCANNED).position(hit).unwrap_or(0);
        let start = first.saturating_sub(length / 4).min(spans.len().saturating_sub(length));
        let end = (start + length).min(spans.len());
        let matched: Vec<bool> = spans[start..end].iter().map(hit).collect();
        let (Some(&(from, _)), Some(&(_, to))) = (spans.get(start), spans.get(end.saturating_sub(1))) else {
            return String::new();
        };
        let mut out = String::with_capacity(to - from + 16);
        if start > 0 {
            out.push('…');
        }
        let mut at = from;
        for (&(word_from, word_to), &hit) in spans[start..end].iter().zip(&matched) {
            out.push_str(&text[at..word_from]);
            if hit {
                out.push_str("**");
                out.push_str(&text[word_from..word_to]);
                out.push_str("**");
            } else {
                out.push_str(&text[word_from..word_to]);
            }
            at = word_to;
        }
        if end < spans.len() {
            out.push('…');
        }
        out
    }
}

/// The byte ranges of `text`'s words (runs of letters and digits), as `words` splits them.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(from)) => {
                spans.push((from, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        spans.push((from, text.len()));
    }
    spans
}

/// A PostgreSQL `to_tsquery('dutch', ...)` text: every word looked for as a prefix, all
/// required (empty for a text without such words, which [`SearchTerms::new`] refuses first).
/// Words are alphanumeric only, so user input cannot inject tsquery operators.
pub fn tsquery(query: &str) -> String {
    let terms: Vec<String> = looked_for(query).map(|w| format!("{w}:*")).collect();
    terms.join(" & ")
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
    fn an_excerpt_marks_the_words_the_search_found_around_the_first() {
        let terms = SearchTerms::new("werkgevers koppel").expect("terms");
        let text =
            "Oudere medewerkers coachen jongeren. De werkgever koppelt ze in duo's, en elke werkgever wint.";
        assert_eq!(
            terms.excerpt(text, 100),
            "Oudere medewerkers coachen jongeren. De **werkgever** **koppelt** ze in duo's, en elke **werkgever** wint"
        );
        // Short: a quarter of it before the first match, and where the text goes on, `…`.
        assert_eq!(terms.excerpt(text, 4), "…De **werkgever** **koppelt** ze…");
        // Found by its title or tags only: the body's first words.
        assert_eq!(terms.excerpt("Niets hier. Of wel?", 3), "Niets hier. Of…");
        assert_eq!(terms.excerpt("", 10), "");
        assert_eq!(terms.excerpt("  ...  ", 10), "");
        // Words the stemmer leaves alone, and capitals.
        let terms = SearchTerms::new("OR").expect("terms");
        assert_eq!(terms.excerpt("Hack de OR! De or-leden.", 10), "Hack de **OR**! De **or**-leden");
        assert_eq!(SearchTerms::new(" ?! ").err(), Some(NothingToLookFor::NoWord));
    }

    #[test]
    fn a_first_match_is_looked_for_in_the_first_thousand_words_only() {
        let terms = SearchTerms::new("werkgever").expect("terms");
        let far = format!("{}werkgever", "woord ".repeat(SCANNED));
        assert_eq!(terms.excerpt(&far, 3), "woord woord woord…", "past the scanned words: the start");
        let near = format!("{}werkgever eind", "woord ".repeat(SCANNED - 1));
        assert_eq!(terms.excerpt(&near, 4), "…woord woord **werkgever** eind", "the last word scanned");
    }

    proptest::proptest! {
        /// Take the marks out of an excerpt of the whole text and the text's words remain.
        #[test]
        fn an_excerpt_of_everything_is_the_text_marked(text in "[a-zé .,!*]{0,60}") {
            let terms = SearchTerms::new("ab").expect("terms");
            let spans = word_spans(&text);
            let excerpt = terms.excerpt(&text, spans.len().max(1));
            let expected = match (spans.first(), spans.last()) {
                (Some(&(from, _)), Some(&(_, to))) => text[from..to].to_string(),
                _ => String::new(),
            };
            proptest::prop_assert_eq!(excerpt.replace("**", ""), expected.replace("**", ""));
        }
    }

    #[test]
    fn a_query_of_punctuation_alone_is_no_query() {
        let fts5_query = |query: &str| SearchTerms::new(query).map(|terms| terms.fts5_query());
        assert_eq!(fts5_query(" \"*\" "), Err(NothingToLookFor::NoWord));
        assert_eq!(fts5_query("Kennis-behoud").as_deref(), Ok("\"kennis\"* AND \"behoud\"*"));
    }

    #[test]
    fn common_words_are_not_looked_for_on_either_backend() {
        assert!(STOP_WORDS.windows(2).all(|pair| pair[0] < pair[1]), "sorted, for the binary search");
        let fts5_query = |query: &str| SearchTerms::new(query).map(|terms| terms.fts5_query());
        assert_eq!(fts5_query("De werkgever").as_deref(), Ok("\"werkgever\"*"));
        assert_eq!(tsquery("De werkgever"), "werkgever:*");
        assert_eq!(fts5_query("de het").err(), Some(NothingToLookFor::OnlyCommonWords));
        // Only whole words: "deelnemers" begins with "de" and is looked for.
        assert_eq!(tsquery("deelnemers"), "deelnemers:*");
    }
}
