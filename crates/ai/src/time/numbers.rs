//! Numbers as people type them in log lines: digits (`1.5`, `1,5`, `.5`), fractions (`1/2`,
//! `2 1/2`, `1½`) and words (`two`, `an`, `forty-five`, `a hundred`, `a couple of`).

/// Units and teens as words, longest first where one is the start of another.
const SMALL: &[(&str, f64)] = &[
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("thirteen", 13.0),
    ("fourteen", 14.0),
    ("fifteen", 15.0),
    ("sixteen", 16.0),
    ("seventeen", 17.0),
    ("eighteen", 18.0),
    ("nineteen", 19.0),
    ("ten", 10.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
];

/// Tens as words.
const TENS: &[(&str, f64)] = &[
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("forty", 40.0),
    ("fifty", 50.0),
    ("sixty", 60.0),
    ("seventy", 70.0),
    ("eighty", 80.0),
    ("ninety", 90.0),
];

/// Words that stand for a vague count.
const VAGUE: &[(&str, f64)] = &[
    ("a couple of", 2.0),
    ("a couple", 2.0),
    ("couple of", 2.0),
    ("a few", 3.0),
];

/// The alternation of number words the rules accept: vague counts, `a hundred`, tens with an
/// optional unit (`forty-five`), teens and units, then the articles `an` and `a`.
pub fn words() -> String {
    let names = |table: &[(&str, f64)]| table.iter().map(|(w, _)| *w).collect::<Vec<_>>().join("|");
    format!(
        "{vague}|(?:a|one) hundred|(?:{tens})(?:[- ](?:{units}))?|{small}|an|a",
        vague = names(VAGUE),
        tens = names(TENS),
        units = names(&SMALL[10..]),
        small = names(SMALL),
    )
}

/// The regex of a number in digits: decimals, a leading point, fractions, mixed numbers and
/// the fraction glyphs. It carries its own word boundary where one applies.
pub const DIGITS: &str =
    r"(?:\b\d+(?:[.,]\d+)?(?:\s+\d/\d{1,2}|\s*[½¼¾])?|\b\d/\d{1,2}|[.,]\d+|[½¼¾])";

/// A number written with digits or words, or `None` when `text` is neither.
pub fn value(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Some(v) = word(text) {
        return Some(v);
    }
    // A mixed number: "2 1/2", "1½".
    let (whole, fraction) = match text
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || glyph(*c).is_some())
    {
        Some((at, _)) => (text[..at].trim(), text[at..].trim()),
        None => (text, ""),
    };
    let whole = if whole.is_empty() { 0.0 } else { plain(whole)? };
    let fraction = if fraction.is_empty() {
        0.0
    } else {
        plain(fraction)?
    };
    Some(whole + fraction).filter(|v| v.is_finite())
}

/// One number with no space in it: `1.5`, `,5`, `3/4`, `½`.
fn plain(text: &str) -> Option<f64> {
    let mut chars = text.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && let Some(v) = glyph(c)
    {
        return Some(v);
    }
    if let Some((n, d)) = text.split_once('/') {
        let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
        return (d > 0.0).then(|| n / d);
    }
    let text = text.replace(',', ".");
    let text = if text.starts_with('.') {
        format!("0{text}")
    } else {
        text
    };
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn glyph(c: char) -> Option<f64> {
    match c {
        '½' => Some(0.5),
        '¼' => Some(0.25),
        '¾' => Some(0.75),
        _ => None,
    }
}

/// A number in words: `an`, `forty five`, `a hundred`, `a couple of`.
pub fn word(text: &str) -> Option<f64> {
    let normalized = text.replace('-', " ");
    let text = normalized.split_whitespace().collect::<Vec<_>>().join(" ");
    let find =
        |table: &[(&str, f64)], w: &str| table.iter().find(|(k, _)| *k == w).map(|(_, v)| *v);
    match text.as_str() {
        "a" | "an" => return Some(1.0),
        "a hundred" | "one hundred" => return Some(100.0),
        _ => {}
    }
    if let Some(v) = find(VAGUE, &text).or_else(|| find(SMALL, &text)) {
        return Some(v);
    }
    match text.split_once(' ') {
        Some((tens, unit)) => Some(find(TENS, tens)? + find(&SMALL[10..], unit)?),
        None => find(TENS, &text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_fractions_and_words_read_alike() {
        assert_eq!(value("2"), Some(2.0));
        assert_eq!(value("1.5"), Some(1.5));
        assert_eq!(value("1,5"), Some(1.5));
        assert_eq!(value(".5"), Some(0.5));
        assert_eq!(value("3/4"), Some(0.75));
        assert_eq!(value("2 1/2"), Some(2.5));
        assert_eq!(value("1½"), Some(1.5));
        assert_eq!(value("½"), Some(0.5));
        assert_eq!(value("an"), Some(1.0));
        assert_eq!(value("forty-five"), Some(45.0));
        assert_eq!(value("seventy five"), Some(75.0));
        assert_eq!(value("nineteen"), Some(19.0));
        assert_eq!(value("a hundred"), Some(100.0));
        assert_eq!(value("a couple of"), Some(2.0));
        assert_eq!(value("1/0"), None);
        assert_eq!(value("lots"), None);
        assert_eq!(value("inf"), None);
        assert_eq!(value("twenty nine"), Some(29.0));
        assert_eq!(value("twenty eleven"), None);
    }

    #[test]
    fn the_word_pattern_reads_every_word_it_names() {
        let re = regex::Regex::new(&format!("^(?:{})$", words())).expect("compiles");
        for w in [
            "a couple of",
            "a hundred",
            "forty-five",
            "thirty five",
            "fourteen",
            "four",
            "an",
        ] {
            assert!(re.is_match(w), "{w}");
            assert!(value(w).is_some(), "{w}");
        }
    }
}
