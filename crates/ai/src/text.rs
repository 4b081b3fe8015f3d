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
    // "debugging" ← "debug", "reviewed" ← "review", "meetings" ← "meeting".
    if p >= 4 && w > p && w - p <= 4 && word.starts_with(phrase_word) {
        return 0.9;
    }
    // One slip: a letter missing or doubled, two swapped, or (in longer words, where a swap
    // rarely makes another word) one mistyped. "fixing" is not a typo of "filing".
    if p >= 5 && w.abs_diff(p) <= 1 && strsim::osa_distance(word, phrase_word) == 1 {
        let substitution = w == p && strsim::levenshtein(word, phrase_word) == 1;
        if !substitution || p >= 7 {
            return 0.8;
        }
    }
    0.0
}

/// The best match of a phrase (already tokenized) anywhere in `tokens`: the product of its
/// words' matches, or 0.
pub fn phrase_match(tokens: &[String], phrase: &[String]) -> f32 {
    if phrase.is_empty() || tokens.len() < phrase.len() {
        return 0.0;
    }
    tokens
        .windows(phrase.len())
        .map(|window| {
            window
                .iter()
                .zip(phrase)
                .map(|(w, p)| word_match(w, p))
                .product::<f32>()
        })
        .fold(0.0, f32::max)
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
        assert_eq!(word_match("meetimg", "meeting"), 0.8);
        let t = tokens("did a code reveiw for Bob");
        assert_eq!(phrase_match(&t, &tokens("code review")), 0.8);
        assert_eq!(phrase_match(&t, &tokens("pull request")), 0.0);
    }
}
