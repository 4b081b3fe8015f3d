//! `Accept: application/vnd.pgrst.plan[+json|+text]; for="…"; options=analyze|verbose|…`:
//! the request's query plan instead of its rows, as PostgREST answers it.

use axum::http::StatusCode;

use crate::error::{RestError, RestResult};

/// `EXPLAIN` options PostgREST accepts in `options=`.
const OPTIONS: [&str; 5] = ["analyze", "verbose", "settings", "buffers", "wal"];

/// A plan asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `+text` (or no suffix): PostgreSQL's text format; else JSON.
    pub text: bool,
    /// The media type the plan is for (`for=`; default `application/json`).
    pub media: String,
    /// `EXPLAIN` options, in PostgREST's order.
    pub options: Vec<&'static str>,
}

impl Plan {
    /// The plan media type of an `Accept` header, if it asks for one.
    pub fn parse(accept: &str) -> RestResult<Option<Self>> {
        let Some(entry) = accept
            .split(',')
            .map(str::trim)
            .find(|a| a.starts_with("application/vnd.pgrst.plan"))
        else {
            return Ok(None);
        };
        let mut parts = entry.split(';').map(str::trim);
        let text = match parts.next() {
            Some("application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+text") => true,
            Some("application/vnd.pgrst.plan+json") => false,
            _ => return Err(unavailable(accept)),
        };
        let mut plan = Plan {
            text,
            media: "application/json".to_owned(),
            options: Vec::new(),
        };
        for part in parts {
            match part.split_once('=') {
                Some(("for", media)) => plan.media = media.trim_matches('"').to_owned(),
                Some(("options", list)) => {
                    // `options=;` (postgrest-js without options) asks for none.
                    for option in list.split('|').filter(|o| !o.is_empty()) {
                        let known = OPTIONS
                            .iter()
                            .find(|o| **o == option)
                            .ok_or_else(|| unavailable(accept))?;
                        plan.options.push(known);
                    }
                }
                _ => {}
            }
        }
        if ![
            "application/json",
            "text/csv",
            "application/vnd.pgrst.object+json",
        ]
        .contains(&plan.media.as_str())
        {
            return Err(unavailable(accept));
        }
        Ok(Some(plan))
    }

    /// `explain (format …, options…)`.
    pub fn explain(&self) -> String {
        let mut options = vec![if self.text {
            "format text"
        } else {
            "format json"
        }];
        options.extend(self.options.iter().copied());
        format!("explain ({})", options.join(", "))
    }

    /// The response's `Content-Type`.
    pub fn content_type(&self) -> String {
        format!(
            "application/vnd.pgrst.plan+{}; for=\"{}\"; charset=utf-8",
            if self.text { "text" } else { "json" },
            self.media
        )
    }
}

/// 406 PGRST107, as for any media type Tally cannot give.
pub fn unavailable(accept: &str) -> RestError {
    RestError::new(
        StatusCode::NOT_ACCEPTABLE,
        "PGRST107",
        format!("None of these media types are available: {accept}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_targets_and_options() {
        let plan = Plan::parse(
            "application/vnd.pgrst.plan+json; for=\"text/csv\"; options=analyze|buffers",
        )
        .expect("valid in this test")
        .expect("a plan");
        assert_eq!(plan.explain(), "explain (format json, analyze, buffers)");
        assert_eq!(
            plan.content_type(),
            "application/vnd.pgrst.plan+json; for=\"text/csv\"; charset=utf-8"
        );
        let text = Plan::parse("application/vnd.pgrst.plan")
            .expect("valid in this test")
            .expect("a plan");
        assert_eq!(text.explain(), "explain (format text)");
        assert_eq!(Plan::parse("application/json").expect("valid"), None);
        assert!(Plan::parse("application/vnd.pgrst.plan+json; options=drop").is_err());
        // As postgrest-js sends it without options.
        let none =
            Plan::parse("application/vnd.pgrst.plan+json; for=\"application/json\"; options=;")
                .expect("valid")
                .expect("a plan");
        assert_eq!(none.explain(), "explain (format json)");
        assert!(Plan::parse("application/vnd.pgrst.plan+xml").is_err());
    }
}
