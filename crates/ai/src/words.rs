//! Word evidence learnt from the vocabulary's own lines: a naive Bayes over which words each
//! term's name, description and examples use. Where the embedding sees "terraform changes" as
//! close to many things, the word "terraform" in a development example says more.

use std::collections::{HashMap, HashSet};

use crate::{candidates::Term, text};

/// Additive smoothing of the word counts.
const ALPHA: f32 = 0.1;

/// Words that say nothing about the kind of work.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "of", "to", "for", "and", "on", "in", "with", "at", "by", "from", "my",
    "our", "we", "i", "it", "this", "that", "is", "was", "be", "as", "up", "out", "into",
];

/// A word without its common ending ("fixing", "fixes" → "fix"), as learnt and as looked up.
fn stem(word: &str) -> &str {
    ["ing", "ed", "es", "s"]
        .iter()
        .find(|suffix| word.len() > suffix.len() + 3 && word.ends_with(*suffix))
        .map_or(word, |suffix| &word[..word.len() - suffix.len()])
}

/// The distinct stems of `tokens` that can say something: no stopwords, no bare numbers.
fn stems<'a>(tokens: impl IntoIterator<Item = &'a str>) -> HashSet<&'a str> {
    tokens
        .into_iter()
        .filter(|t| !STOPWORDS.contains(t) && !t.chars().all(|c| !c.is_alphabetic()))
        .map(stem)
        .collect()
}

/// For each term, the log-likelihood of the line's words (`tokens`, lower-cased) under the
/// words of the term's prototype texts, less the best term's: 0 for the likeliest, negative
/// for the others. Words no term uses count for none; all zeros when no word is known.
pub fn scores(tokens: &[String], terms: &[Term]) -> Vec<f32> {
    let lines: Vec<Vec<Vec<String>>> = terms
        .iter()
        .map(|t| {
            t.prototype_texts()
                .iter()
                .map(|p| text::tokens(p))
                .collect()
        })
        .collect();
    let counts: Vec<HashMap<&str, f32>> = lines
        .iter()
        .map(|texts| {
            let mut counts = HashMap::new();
            for words in texts {
                for stem in stems(words.iter().map(String::as_str)) {
                    *counts.entry(stem).or_insert(0.0) += 1.0;
                }
            }
            counts
        })
        .collect();
    let known: HashSet<&str> = counts.iter().flat_map(|c| c.keys().copied()).collect();
    let vocabulary = known.len() as f32;
    let words: Vec<&str> = stems(tokens.iter().map(String::as_str))
        .into_iter()
        .filter(|w| known.contains(w))
        .collect();
    let scores: Vec<f32> = counts
        .iter()
        .map(|c| {
            let total: f32 = c.values().sum();
            words
                .iter()
                .map(|w| {
                    ((c.get(w).copied().unwrap_or(0.0) + ALPHA) / (total + ALPHA * vocabulary)).ln()
                })
                .sum()
        })
        .collect();
    let best = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    scores
        .into_iter()
        .map(|s| if best.is_finite() { s - best } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(key: &str, examples: &[&str]) -> Term {
        let mut t = Term::for_test(key, &[]);
        t.examples = examples.iter().map(|e| (*e).to_owned()).collect();
        t
    }

    #[test]
    fn words_the_examples_use_point_to_their_term() {
        let terms = [
            term(
                "development",
                &[
                    "terraform changes for staging",
                    "fixed the websocket reconnect",
                ],
            ),
            term("meeting", &["weekly sync with the team", "client call"]),
        ];
        let s = scores(&text::tokens("Terraform plan for prod"), &terms);
        assert_eq!(s[0], 0.0);
        assert!(s[1] < -1.0, "{s:?}");
        // Another form of the word counts the same: "syncing" for "sync".
        let s = scores(&text::tokens("syncing with design"), &terms);
        assert!(s[1] == 0.0 && s[0] < 0.0, "{s:?}");
        // Words no term uses, stopwords and numbers say nothing.
        assert_eq!(scores(&text::tokens("the 2 of us"), &terms), [0.0, 0.0]);
    }
}
