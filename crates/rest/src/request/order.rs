//! `order=a.desc.nullslast,b`.

use crate::error::{RestError, RestResult};

use super::filter::{Field, parse_field};

/// One ordering term.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTerm {
    /// The column (maybe with a JSON path).
    pub field: Field,
    /// Descending.
    pub desc: bool,
    /// `Some(true)` nulls first, `Some(false)` nulls last.
    pub nulls_first: Option<bool>,
}

/// Parses an `order` value.
pub fn parse(value: &str) -> RestResult<Vec<OrderTerm>> {
    value
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|term| {
            let mut parts = term.trim().split('.');
            let column = parts.next().unwrap_or_default();
            let (name, path) = parse_field(column)?;
            let mut out = OrderTerm { field: Field { name, path }, desc: false, nulls_first: None };
            for flag in parts {
                match flag {
                    "asc" => out.desc = false,
                    "desc" => out.desc = true,
                    "nullsfirst" => out.nulls_first = Some(true),
                    "nullslast" => out.nulls_first = Some(false),
                    _ => {
                        return Err(RestError::parse(
                            format!("\"failed to parse order ({value})\""),
                            format!("unexpected \"{flag}\" expecting \"asc\", \"desc\", \"nullsfirst\" or \"nullslast\""),
                        ));
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_and_flags() {
        let terms = parse("started_at.desc.nullslast,id").expect("valid in this test");
        assert_eq!(terms.len(), 2);
        assert!(terms[0].desc && terms[0].nulls_first == Some(false));
        assert!(!terms[1].desc && terms[1].nulls_first.is_none());
        assert!(parse("a.sideways").is_err());
    }
}
