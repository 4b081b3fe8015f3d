//! A channel's `postgres_changes` bindings: `{event, schema, table, filter}` as the client sent
//! them, the integer id the join reply gives each, and the filter `column=op.value` with
//! `op` one of `eq, neq, lt, lte, gt, gte, in`.

use std::{
    borrow::Cow,
    cmp::Ordering,
    hash::{DefaultHasher, Hash, Hasher},
};

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

/// The operation a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A new row.
    Insert,
    /// A changed row.
    Update,
    /// A removed row.
    Delete,
}

impl Op {
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }

    /// Parses `INSERT`, `UPDATE` or `DELETE`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INSERT" => Some(Op::Insert),
            "UPDATE" => Some(Op::Update),
            "DELETE" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// One binding of a channel.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The id the join reply gives it (and changes carry in `ids`).
    pub id: u32,
    /// `None` for `*`.
    op: Option<Op>,
    /// `None` for the whole schema.
    pub table: Option<String>,
    filter: Option<Filter>,
}

/// Why a binding was refused (sent as the `system` message's text).
#[derive(Debug, PartialEq)]
pub struct BindingError(pub String);

impl Binding {
    /// Reads one entry of `config.postgres_changes`.
    pub fn parse(params: &Value) -> Result<Self, BindingError> {
        let text = |name: &str| params.get(name).and_then(Value::as_str);
        let op = match text("event").map(str::to_ascii_uppercase).as_deref() {
            Some("*") => None,
            Some(event) => Some(Op::parse(event).ok_or_else(|| {
                BindingError(format!(
                    "Error parsing `event` params: {event} is not one of INSERT, UPDATE, DELETE, *"
                ))
            })?),
            None => {
                return Err(BindingError(
                    "Error parsing params: `event` is missing".into(),
                ));
            }
        };
        let schema = text("schema").unwrap_or("public");
        let table = text("table").filter(|t| *t != "*").map(str::to_owned);
        if schema != "public" {
            return Err(BindingError(unavailable(schema, table.as_deref())));
        }
        let filter = text("filter")
            .filter(|f| !f.is_empty())
            .map(Filter::parse)
            .transpose()?;
        if filter.is_some() && table.is_none() {
            return Err(BindingError(
                "Error parsing `filter` params: a filter needs a table".into(),
            ));
        }
        Ok(Self {
            id: id_of(params),
            op,
            table,
            filter,
        })
    }

    /// Whether a change of `table` by `op` concerns this binding (before its filter).
    pub fn listens_to(&self, table: &str, op: Op) -> bool {
        self.op.is_none_or(|o| o == op) && self.table.as_deref().is_none_or(|t| t == table)
    }

    /// `(column, value)` of a `column=eq.value` filter whose value compares as text (not as a
    /// number or an instant): a row passes it exactly when its column reads as that text.
    pub fn eq_text(&self) -> Option<(&str, &str)> {
        let filter = self.filter.as_ref()?;
        match filter.values.as_slice() {
            [wanted]
                if filter.cmp == Cmp::Eq && wanted.number.is_none() && wanted.instant.is_none() =>
            {
                Some((filter.column.as_str(), wanted.text.as_str()))
            }
            _ => None,
        }
    }

    /// Whether a row (the columns the subscriber may read) passes the filter.
    pub fn accepts(&self, row: &Map<String, Value>) -> bool {
        self.filter.as_ref().is_none_or(|f| f.accepts(row))
    }
}

/// The id of a binding's params: a 27-bit hash, as Erlang's phash2 gives upstream (safe in
/// every client's integers), the same for the same params.
pub fn id_of(params: &Value) -> u32 {
    let mut hasher = DefaultHasher::new();
    params.to_string().hash(&mut hasher);
    (hasher.finish() & 0x07ff_ffff) as u32
}

/// The message a subscription to a table that cannot be watched gets.
pub fn unavailable(schema: &str, table: Option<&str>) -> String {
    format!(
        "Unable to subscribe to changes with given parameters. Please check Realtime is enabled \
         for the given connect parameters: [schema: {schema}, table: {}]",
        table.unwrap_or("*")
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
}

/// `column=op.value`.
#[derive(Debug, Clone)]
struct Filter {
    column: String,
    cmp: Cmp,
    values: Vec<Wanted>,
}

/// A filter's value, read once: as text, and as a number or an instant when it is one.
#[derive(Debug, Clone)]
struct Wanted {
    text: String,
    number: Option<f64>,
    instant: Option<DateTime<FixedOffset>>,
}

impl Wanted {
    fn new(text: String) -> Self {
        Self {
            number: text.parse().ok(),
            instant: instant(&text),
            text,
        }
    }

    /// How `actual` compares with this value: as numbers or instants when this value is one
    /// and `actual` reads as one too, otherwise as text.
    fn compare(&self, actual: &str) -> Ordering {
        if let Some(wanted) = self.number
            && let Ok(actual) = actual.parse::<f64>()
        {
            return actual.partial_cmp(&wanted).unwrap_or(Ordering::Equal);
        }
        if let Some(wanted) = self.instant
            && let Some(actual) = instant(actual)
        {
            return actual.cmp(&wanted);
        }
        actual.cmp(self.text.as_str())
    }
}

impl Filter {
    fn parse(text: &str) -> Result<Self, BindingError> {
        let error = |why: &str| BindingError(format!("Error parsing `filter` params: {why}"));
        let (column, rest) = text
            .split_once('=')
            .ok_or_else(|| error(&format!("{text} is not `column=operator.value`")))?;
        let (op, value) = rest
            .split_once('.')
            .ok_or_else(|| error(&format!("{rest} is not `operator.value`")))?;
        if column.is_empty() {
            return Err(error("the column is missing"));
        }
        let cmp = match op {
            "eq" => Cmp::Eq,
            "neq" => Cmp::Neq,
            "lt" => Cmp::Lt,
            "lte" => Cmp::Lte,
            "gt" => Cmp::Gt,
            "gte" => Cmp::Gte,
            "in" => Cmp::In,
            other => {
                return Err(error(&format!(
                    "{other} is not one of eq, neq, lt, lte, gt, gte, in"
                )));
            }
        };
        let values = if cmp == Cmp::In {
            let inner = value
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| error("`in` takes a list: in.(a,b,c)"))?;
            inner
                .split(',')
                .map(|v| Wanted::new(v.trim().trim_matches('"').to_owned()))
                .collect()
        } else {
            vec![Wanted::new(value.to_owned())]
        };
        Ok(Self {
            column: column.to_owned(),
            cmp,
            values,
        })
    }

    fn accepts(&self, row: &Map<String, Value>) -> bool {
        let actual = match row.get(&self.column) {
            // A missing column or a null matches nothing, as in SQL.
            None | Some(Value::Null) => return false,
            Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
            Some(other) => Cow::Owned(other.to_string()),
        };
        let order = || self.values[0].compare(&actual);
        match self.cmp {
            Cmp::Eq => order() == Ordering::Equal,
            Cmp::Neq => order() != Ordering::Equal,
            Cmp::Lt => order() == Ordering::Less,
            Cmp::Lte => order() != Ordering::Greater,
            Cmp::Gt => order() == Ordering::Greater,
            Cmp::Gte => order() != Ordering::Less,
            Cmp::In => self
                .values
                .iter()
                .any(|v| v.compare(&actual) == Ordering::Equal),
        }
    }
}

fn instant(s: &str) -> Option<DateTime<FixedOffset>> {
    // Only text shaped like a date is worth a parse (most values are ids and words).
    if s.len() < 10 || !s.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binding(filter: &str) -> Binding {
        Binding::parse(
            &json!({"event": "*", "schema": "public", "table": "time_logs", "filter": filter}),
        )
        .expect("a valid binding")
    }

    fn row(value: Value) -> Map<String, Value> {
        json!({ "v": value })
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn filters_compare_numbers_times_and_text() {
        assert!(binding("v=eq.15").accepts(&row(json!(15))));
        assert!(!binding("v=eq.15").accepts(&row(json!(16))));
        assert!(binding("v=neq.15").accepts(&row(json!(16))));
        assert!(
            binding("v=lt.100").accepts(&row(json!(9))),
            "numbers, not text"
        );
        assert!(binding("v=gte.9").accepts(&row(json!(9))));
        assert!(!binding("v=gt.9").accepts(&row(json!(9))));
        assert!(
            binding("v=lte.2026-01-01T10:00:00Z").accepts(&row(json!("2026-01-01T11:00:00+02:00")))
        );
        assert!(binding("v=in.(ready,\"needs_review\")").accepts(&row(json!("needs_review"))));
        assert!(!binding("v=in.(ready)").accepts(&row(json!("pending"))));
        assert!(
            !binding("v=neq.x").accepts(&row(Value::Null)),
            "null matches nothing"
        );
        assert!(
            !binding("w=eq.1").accepts(&row(json!(1))),
            "a column it cannot see"
        );
    }

    #[test]
    fn only_eq_filters_on_text_are_indexed() {
        assert_eq!(
            binding("user_id=eq.0193a3b4-7c1d-7000-8000-000000000001").eq_text(),
            Some(("user_id", "0193a3b4-7c1d-7000-8000-000000000001"))
        );
        assert_eq!(
            binding("status=eq.ready").eq_text(),
            Some(("status", "ready"))
        );
        assert_eq!(
            binding("v=eq.15").eq_text(),
            None,
            "numbers compare as numbers"
        );
        assert_eq!(
            binding("v=eq.2026-01-01T10:00:00Z").eq_text(),
            None,
            "instants as instants"
        );
        assert_eq!(binding("v=neq.x").eq_text(), None);
        assert_eq!(binding("v=in.(x)").eq_text(), None);
    }

    #[test]
    fn bad_params_are_refused_with_reasons() {
        let parse = |p: Value| Binding::parse(&p).map(|_| ()).map_err(|e| e.0);
        assert!(
            parse(
                json!({"event": "INSERT", "schema": "public", "table": "t", "filter": "a=like.x"})
            )
            .unwrap_err()
            .starts_with("Error parsing `filter` params")
        );
        assert!(parse(json!({"event": "INSERT", "table": "t", "filter": "a=in.x"})).is_err());
        assert!(parse(json!({"event": "TRUNCATE", "table": "t"})).is_err());
        assert!(
            parse(json!({"event": "*", "schema": "auth", "table": "users"}))
                .unwrap_err()
                .starts_with("Unable to subscribe")
        );
        let all = Binding::parse(&json!({"event": "delete", "schema": "public"}))
            .expect("a whole-schema binding");
        assert!(all.listens_to("projects", Op::Delete) && !all.listens_to("projects", Op::Insert));
        assert_eq!(
            Binding::parse(&json!({"event": "*", "table": "t"}))
                .expect("valid")
                .id,
            Binding::parse(&json!({"event": "*", "table": "t"}))
                .expect("valid")
                .id,
            "ids are stable"
        );
    }
}
