//! Times as GoTrue writes them: RFC 3339 with microseconds, in UTC.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// `2026-12-08T01:02:03.456789Z`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// [`time`], or `null`.
pub fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::from(time(t)))
}
