//! Numbers as people type them in log lines: digits (`1.5`, `1,5`) and words (`two`, `an`).

/// The alternation of number words the rules accept, longest first so `forty-five` wins over `forty`.
pub const WORDS: &str = "twenty[- ]five|forty[- ]five|a couple of|a couple|couple of|a few|\
     an|a|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|\
     forty|fifty|sixty|ninety";

/// A number written with digits or words, or `None` when `text` is neither.
pub fn value(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Some(v) = word(text) {
        return Some(v);
    }
    text.replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

fn word(text: &str) -> Option<f64> {
    let normalized = text.replace('-', " ");
    Some(match normalized.as_str() {
        "a" | "an" | "one" => 1.0,
        "two" | "a couple of" | "a couple" | "couple of" => 2.0,
        "three" | "a few" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" => 12.0,
        "fifteen" => 15.0,
        "twenty" => 20.0,
        "twenty five" => 25.0,
        "thirty" => 30.0,
        "forty" => 40.0,
        "forty five" => 45.0,
        "fifty" => 50.0,
        "sixty" => 60.0,
        "ninety" => 90.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_words_read_alike() {
        assert_eq!(value("2"), Some(2.0));
        assert_eq!(value("1.5"), Some(1.5));
        assert_eq!(value("1,5"), Some(1.5));
        assert_eq!(value("an"), Some(1.0));
        assert_eq!(value("forty-five"), Some(45.0));
        assert_eq!(value("a couple of"), Some(2.0));
        assert_eq!(value("lots"), None);
        assert_eq!(value("inf"), None);
    }
}
