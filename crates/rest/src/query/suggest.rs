//! "Perhaps you meant…": the closest of some names to one that was not found, as PostgREST
//! hints in PGRST200 and PGRST202.

/// The candidate nearest to `wanted` by edit distance, when near enough to be a likely typo
/// (at most a third of its length, and at least 2, edits away).
pub fn closest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (wanted.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(wanted, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_suggested_far_ones_not() {
        assert_eq!(closest("autors", ["books", "authors"]), Some("authors"));
        assert_eq!(closest("zzz", ["books", "authors"]), None);
    }
}
