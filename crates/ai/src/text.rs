//! Words of a log line as the matchers see them: lower-cased tokens, and phrases that match a
//! run of tokens exactly, by stem ("debugging" for "debug") or with one typo ("meetng").

use std::sync::LazyLock;

use regex::Regex;

static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[a-z0-9]+(?:[-:'.][a-z0-9]+)*").unwrap_or_else(|e| panic!("token regex: {e}"))
});

/// The tokens of `text`, lower-cased.
pub fn tokens(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    TOKEN
        .find_iter(&lower)
        .map(|m| m.as_str().trim_end_matches('.').to_owned())
        .collect()
}

/// How well one word of the text matches one word of a phrase: 1 exact, 0.9 by stem, 0.8 with
/// one typo, 0 not at all.
pub fn word_match(word: &str, phrase_word: &str) -> f32 {
    if word == phrase_word {
        return 1.0;
    }
    let (w, p) = (word.len(), phrase_word.len());
    if p >= 3 && inflects(word, phrase_word) {
        return 0.9;
    }
    // Done again: "redesigning" ← "design".
    if p >= 5
        && let Some(rest) = word.strip_prefix("re")
        && (rest == phrase_word || inflects(rest, phrase_word))
    {
        return 0.85;
    }
    // One slip: a letter missing or doubled, two swapped, or (in longer words, where a swap
    // rarely makes another word) one mistyped — never the first letter, so "fixing" is not a
    // typo of "filing" nor "filling" of "billing".
    if p >= 5
        && w.abs_diff(p) <= 1
        && word.as_bytes().first() == phrase_word.as_bytes().first()
        && strsim::osa_distance(word, phrase_word) == 1
    {
        let substitution = w == p && strsim::levenshtein(word, phrase_word) == 1;
        if !substitution || p >= 7 {
            return 0.8;
        }
    }
    0.0
}

/// Endings that make another form of the same word.
const SUFFIXES: &[&str] = &[
    "s", "es", "ed", "d", "ing", "er", "ers", "ion", "ions", "ment", "ments", "ly",
];

/// Whether `word` is `stem` with an inflection: "fixed" ← "fix", "debugging" ← "debug",
/// "investigating" ← "investigate", "estimating" ← "estimate".
fn inflects(word: &str, stem: &str) -> bool {
    if let Some(rest) = word.strip_prefix(stem) {
        // A doubled last letter: "debugging" ← "debug" + "g" + "ing".
        let undoubled = rest
            .strip_prefix(&stem[stem.len() - 1..])
            .is_some_and(|r| SUFFIXES.contains(&r));
        return SUFFIXES.contains(&rest) || undoubled;
    }
    // A silent e dropped before a vowel: "investigating" ← "investigate".
    stem.strip_suffix('e').is_some_and(|base| {
        base.len() >= 3
            && word
                .strip_prefix(base)
                .is_some_and(|rest| matches!(rest, "ing" | "ion" | "ions" | "ed" | "or" | "ors"))
    })
}

/// The best match of a phrase (already tokenized) anywhere in `tokens`: the product of its
/// words' matches, or 0.
pub fn phrase_match(tokens: &[String], phrase: &[String]) -> f32 {
    phrase_find(tokens, phrase).map_or(0.0, |(score, _)| score)
}

/// The best match of a phrase in `tokens` and the index of the first token where it scores
/// that, or `None`.
pub fn phrase_find(tokens: &[String], phrase: &[String]) -> Option<(f32, usize)> {
    if phrase.is_empty() || tokens.len() < phrase.len() {
        return None;
    }
    tokens
        .windows(phrase.len())
        .enumerate()
        .map(|(at, window)| {
            let score = window
                .iter()
                .zip(phrase)
                .map(|(w, p)| word_match(w, p))
                .product::<f32>();
            (score, at)
        })
        .filter(|(score, _)| *score > 0.0)
        .fold(None, |best: Option<(f32, usize)>, (score, at)| match best {
            Some((b, _)) if b >= score => best,
            _ => Some((score, at)),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_codes_and_times_whole() {
        assert_eq!(
            tokens("Fixed APOLLO-12 login bug, 1:1 w/ Sam."),
            ["fixed", "apollo-12", "login", "bug", "1:1", "w", "sam"]
        );
    }

    #[test]
    fn words_match_by_stem_and_typo() {
        assert_eq!(word_match("review", "review"), 1.0);
        assert_eq!(word_match("debugging", "debug"), 0.9);
        assert_eq!(word_match("meetng", "meeting"), 0.8);
        assert_eq!(word_match("reveiw", "review"), 0.8);
        assert_eq!(word_match("bug", "bugfix"), 0.0);
        assert_eq!(word_match("cat", "car"), 0.0);
        assert_eq!(word_match("fixing", "filing"), 0.0);
        assert_eq!(word_match("filling", "billing"), 0.0);
        assert_eq!(word_match("fixed", "fix"), 0.9);
        assert_eq!(word_match("fixes", "fix"), 0.9);
        assert_eq!(word_match("investigating", "investigate"), 0.9);
        assert_eq!(word_match("estimating", "estimate"), 0.9);
        assert_eq!(word_match("debugging", "debug"), 0.9);
        assert_eq!(word_match("designer", "design"), 0.9);
        assert_eq!(word_match("fixture", "fix"), 0.0);
        assert_eq!(word_match("planet", "plan"), 0.0);
        assert_eq!(word_match("redesigning", "design"), 0.85);
        assert_eq!(word_match("meetimg", "meeting"), 0.8);
        let t = tokens("did a code reveiw for Bob");
        assert_eq!(phrase_match(&t, &tokens("code review")), 0.8);
        assert_eq!(phrase_match(&t, &tokens("pull request")), 0.0);
    }
}
