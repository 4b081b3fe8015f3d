//! Word evidence learnt from the vocabulary's own lines: a naive Bayes over which words each
//! term's name, description and examples use. Where the embedding sees "terraform changes" as
//! close to many things, the word "terraform" in a development example says more.

use std::{
    collections::{HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, LazyLock, Mutex},
};

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

/// What each term's lines say, counted once per vocabulary: per term, how many of its lines
/// use each stem, and their sum; and how many stems the vocabulary knows.
struct Model {
    counts: Vec<HashMap<String, f32>>,
    totals: Vec<f32>,
    vocabulary: f32,
}

impl Model {
    fn new(terms: &[Term]) -> Self {
        let counts: Vec<HashMap<String, f32>> = terms
            .iter()
            .map(|t| {
                let mut counts = HashMap::new();
                for line in t.prototype_texts() {
                    let words = text::tokens(&line);
                    for stem in stems(words.iter().map(String::as_str)) {
                        *counts.entry(stem.to_owned()).or_insert(0.0) += 1.0;
                    }
                }
                counts
            })
            .collect();
        let totals = counts.iter().map(|c| c.values().sum()).collect();
        let known: HashSet<&String> = counts.iter().flat_map(HashMap::keys).collect();
        let vocabulary = known.len() as f32;
        Self {
            counts,
            totals,
            vocabulary,
        }
    }

    /// The model of `terms`, counted on first use: every log of an org is classified against
    /// the same vocabulary, so its lines are not read again for each one.
    fn of(terms: &[Term]) -> Arc<Self> {
        /// Vocabularies kept before the cache starts over.
        const KEPT: usize = 256;
        static MODELS: LazyLock<Mutex<HashMap<u64, Arc<Model>>>> = LazyLock::new(Mutex::default);
        let mut hasher = DefaultHasher::new();
        for t in terms {
            (&t.name, &t.description, &t.examples).hash(&mut hasher);
        }
        let key = hasher.finish();
        let cached = MODELS
            .lock()
            .map(|models| models.get(&key).cloned())
            .unwrap_or_default();
        cached.unwrap_or_else(|| {
            let model = Arc::new(Self::new(terms));
            if let Ok(mut models) = MODELS.lock() {
                if models.len() >= KEPT {
                    models.clear();
                }
                models.insert(key, model.clone());
            }
            model
        })
    }
}

/// For each term, the log-likelihood of the line's words (`tokens`, lower-cased) under the
/// words of the term's prototype texts, less the best term's: 0 for the likeliest, negative
/// for the others. Words no term uses count for none; all zeros when no word is known.
pub fn scores(tokens: &[String], terms: &[Term]) -> Vec<f32> {
    let model = Model::of(terms);
    let words: Vec<&str> = stems(tokens.iter().map(String::as_str))
        .into_iter()
        .filter(|w| model.counts.iter().any(|c| c.contains_key(*w)))
        .collect();
    let scores: Vec<f32> = model
        .counts
        .iter()
        .zip(&model.totals)
        .map(|(c, total)| {
            words
                .iter()
                .map(|w| {
                    ((c.get(*w).copied().unwrap_or(0.0) + ALPHA)
                        / (total + ALPHA * model.vocabulary))
                        .ln()
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
