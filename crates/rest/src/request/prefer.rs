//! The `Prefer` header: return, count, resolution, missing, tx, handling, max-affected.

use axum::http::HeaderMap;

use crate::error::{RestError, RestResult};

/// What to return from a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    /// Nothing (the default).
    #[default]
    Minimal,
    /// The rows.
    Representation,
    /// Only a `Location` header.
    HeadersOnly,
}

/// How `Prefer: count=` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `count(*)` over the filtered rows.
    Exact,
    /// The planner's row estimate (`EXPLAIN`): cheap on large tables.
    Planned,
    /// Exact up to [`ESTIMATED_EXACT_UP_TO`] planned rows, planned beyond.
    Estimated,
}

/// Up to this many planned rows, `count=estimated` counts exactly.
pub const ESTIMATED_EXACT_UP_TO: i64 = 1000;

/// Parsed preferences.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preferences {
    /// `return=`.
    pub return_: Return,
    /// `count=exact|planned|estimated`.
    pub count: Option<Count>,
    /// `resolution=merge-duplicates` (true) / `ignore-duplicates` (false).
    pub resolution: Option<bool>,
    /// `missing=default`.
    pub missing_default: bool,
    /// `tx=rollback`.
    pub rollback: bool,
    /// `handling=strict`.
    pub strict: bool,
    /// `max-affected=n`.
    pub max_affected: Option<i64>,
    /// The preferences that were applied (for `Preference-Applied`).
    pub applied: Vec<String>,
}

impl Preferences {
    /// Reads every `Prefer` header (values split on commas).
    pub fn parse(headers: &HeaderMap) -> RestResult<Self> {
        let mut prefs = Preferences::default();
        let mut unknown = Vec::new();
        for value in headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let known = match item {
                    "return=minimal" => {
                        prefs.return_ = Return::Minimal;
                        true
                    }
                    "return=representation" => {
                        prefs.return_ = Return::Representation;
                        true
                    }
                    "return=headers-only" => {
                        prefs.return_ = Return::HeadersOnly;
                        true
                    }
                    "count=exact" => {
                        prefs.count = Some(Count::Exact);
                        true
                    }
                    "count=planned" => {
                        prefs.count = Some(Count::Planned);
                        true
                    }
                    "count=estimated" => {
                        prefs.count = Some(Count::Estimated);
                        true
                    }
                    "resolution=merge-duplicates" => {
                        prefs.resolution = Some(true);
                        true
                    }
                    "resolution=ignore-duplicates" => {
                        prefs.resolution = Some(false);
                        true
                    }
                    "missing=default" => {
                        prefs.missing_default = true;
                        true
                    }
                    "missing=null" | "tx=commit" | "handling=lenient" => true,
                    "tx=rollback" => {
                        prefs.rollback = true;
                        true
                    }
                    "handling=strict" => {
                        prefs.strict = true;
                        true
                    }
                    other => match other.strip_prefix("max-affected=").map(str::parse::<i64>) {
                        Some(Ok(n)) => {
                            prefs.max_affected = Some(n);
                            true
                        }
                        _ => false,
                    },
                };
                if known {
                    prefs.applied.push(item.to_owned());
                } else {
                    unknown.push(item.to_owned());
                }
            }
        }
        if prefs.strict && !unknown.is_empty() {
            return Err(RestError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "PGRST122",
                "Invalid preferences given with handling=strict",
            )
            .details(format!("Invalid preferences: {}", unknown.join(", "))));
        }
        Ok(prefs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_and_repeated_headers() {
        let mut headers = HeaderMap::new();
        headers.append(
            "prefer",
            "count=exact, return=representation"
                .parse()
                .expect("valid in this test"),
        );
        headers.append(
            "prefer",
            "resolution=merge-duplicates,tx=rollback"
                .parse()
                .expect("valid in this test"),
        );
        let p = Preferences::parse(&headers).expect("valid in this test");
        assert!(p.count == Some(Count::Exact) && p.rollback);
        assert_eq!(p.return_, Return::Representation);
        assert_eq!(p.resolution, Some(true));
        headers.append(
            "prefer",
            "handling=strict, bogus=1"
                .parse()
                .expect("valid in this test"),
        );
        assert_eq!(
            Preferences::parse(&headers)
                .expect_err("expected an error")
                .code,
            "PGRST122"
        );
    }
}
