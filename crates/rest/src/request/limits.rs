//! Bounds on what a URL may ask for, checked before anything is parsed or planned: nested
//! logic trees and embeds (parsed recursively, so unbounded nesting would overflow the stack),
//! JSON paths (PostgreSQL refuses deep ones with 54001) and select lists (PostgreSQL allows
//! 1,664 output columns, 54011).

use crate::error::{RestError, RestResult};

/// Deepest nesting of `or(…)`/`and(…)` trees and of embeds.
pub const MAX_NESTING: usize = 32;
/// Most `->`/`->>` steps in one JSON path.
pub const MAX_JSON_PATH: usize = 64;
/// Most items in a `select=` (all levels together), `columns=` or `on_conflict=`.
pub const MAX_ITEMS: usize = 1000;

/// Refuses `value` when its parentheses (outside double quotes) nest deeper than
/// [`MAX_NESTING`]. `what` names the parameter in the message.
pub fn nesting(what: &str, value: &str) -> RestResult<()> {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '(' if !quoted => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(RestError::parse(
                        format!("\"failed to parse {what} parameter\""),
                        format!("{what} nests deeper than {MAX_NESTING} levels"),
                    ));
                }
            }
            ')' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a JSON path of more than [`MAX_JSON_PATH`] steps.
pub fn json_path(field: &str, steps: usize) -> RestResult<()> {
    if steps > MAX_JSON_PATH {
        return Err(RestError::parse(
            format!("\"failed to parse JSON path ({})\"", preview(field)),
            format!("a JSON path has at most {MAX_JSON_PATH} steps; this one has {steps}"),
        ));
    }
    Ok(())
}

/// Refuses a list of more than [`MAX_ITEMS`] items.
pub fn items(what: &str, count: usize) -> RestResult<()> {
    if count > MAX_ITEMS {
        return Err(RestError::parse(
            format!("\"failed to parse {what} parameter\""),
            format!("{what} names at most {MAX_ITEMS} items; this one has {count}"),
        ));
    }
    Ok(())
}

/// The start of a long input, for messages.
fn preview(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_parentheses_outside_quotes() {
        let deep = |n: usize| format!("{}a.eq.1{}", "or(".repeat(n), ")".repeat(n));
        assert!(nesting("or", &deep(MAX_NESTING)).is_ok());
        let err = nesting("or", &deep(MAX_NESTING + 1)).expect_err("too deep");
        assert_eq!((err.status.as_u16(), err.code.as_str()), (400, "PGRST100"));
        let quoted = format!("a.eq.\"{}\"", "(".repeat(100));
        assert!(nesting("or", &quoted).is_ok());
    }

    #[test]
    fn paths_and_lists_are_bounded() {
        assert!(json_path("a", MAX_JSON_PATH).is_ok());
        assert!(json_path("a", MAX_JSON_PATH + 1).is_err());
        assert!(items("select", MAX_ITEMS).is_ok());
        assert_eq!(
            items("select", MAX_ITEMS + 1)
                .expect_err("too many")
                .status
                .as_u16(),
            400
        );
    }
}
