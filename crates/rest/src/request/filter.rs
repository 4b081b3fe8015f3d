//! Horizontal filters (`col=op.value`, `not.`, quantifiers, full-text configs) and logic
//! trees (`or=(…)`, `and=(…)`). Values stay strings here; the planner binds them, typed by
//! the column.

use super::limits;
use crate::error::{RestError, RestResult};

/// `->` (JSON) or `->>` (text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrow {
    /// `->`.
    Json,
    /// `->>`.
    Text,
}

/// A JSON path key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKey {
    /// An object field.
    Field(String),
    /// An array index.
    Index(i64),
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStep {
    /// The arrow.
    pub arrow: Arrow,
    /// The key.
    pub key: PathKey,
}

/// A column with an optional JSON path.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Column name.
    pub name: String,
    /// JSON path.
    pub path: Vec<PathStep>,
}

/// Filter operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `eq neq gt gte lt lte like ilike match imatch isdistinct cs cd ov sl sr nxl nxr adj`.
    Binary(&'static str),
    /// `is` with null/true/false/unknown.
    Is(&'static str),
    /// `in.(…)`.
    In,
    /// A binary operator applied to a list: `eq(any).{…}`.
    Quantified(&'static str, bool),
    /// Full-text search: the function and an optional configuration.
    Fts(&'static str, Option<String>),
}

/// One filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The column.
    pub field: Field,
    /// `not.`.
    pub negated: bool,
    /// The operator.
    pub op: Op,
    /// The value(s), as written.
    pub values: Vec<String>,
}

/// A filter or a logic tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Logic {
    /// One filter.
    Filter(Filter),
    /// `and(...)` / `or(...)`, maybe negated.
    Tree {
        /// `or` (true) or `and`.
        or: bool,
        /// `not.`.
        negated: bool,
        /// Children.
        items: Vec<Logic>,
    },
}

const BINARY: &[(&str, &str)] = &[
    ("eq", "="),
    ("neq", "<>"),
    ("gt", ">"),
    ("gte", ">="),
    ("lt", "<"),
    ("lte", "<="),
    ("like", "like"),
    ("ilike", "ilike"),
    ("match", "~"),
    ("imatch", "~*"),
    ("isdistinct", "is distinct from"),
    ("cs", "@>"),
    ("cd", "<@"),
    ("ov", "&&"),
    ("sl", "<<"),
    ("sr", ">>"),
    ("nxl", "&>"),
    ("nxr", "&<"),
    ("adj", "-|-"),
];

const FTS: &[(&str, &str)] = &[
    ("fts", "to_tsquery"),
    ("plfts", "plainto_tsquery"),
    ("phfts", "phraseto_tsquery"),
    ("wfts", "websearch_to_tsquery"),
];

fn parse_error(what: &str, detail: impl Into<String>) -> RestError {
    RestError::parse(format!("\"failed to parse filter ({what})\""), detail)
}

/// Splits a filter key into an embed path and the field: `rel.col` → (["rel"], "col").
pub fn split_key(key: &str) -> RestResult<(Vec<String>, &str)> {
    let head_end = key.find("->").unwrap_or(key.len());
    match key[..head_end].rfind('.') {
        Some(dot) => Ok((
            key[..dot].split('.').map(str::to_owned).collect(),
            &key[dot + 1..],
        )),
        None => Ok((Vec::new(), key)),
    }
}

/// Parses `col`, `col->a->>b`, `col->0`.
pub fn parse_field(text: &str) -> RestResult<(String, Vec<PathStep>)> {
    let mut rest = text;
    let name_end = rest.find("->").unwrap_or(rest.len());
    // `"column whitespace"`: a quoted name is the name inside the quotes.
    let name = unquote(&rest[..name_end]).to_owned();
    if name.is_empty() {
        return Err(parse_error(text, "a column name is missing"));
    }
    rest = &rest[name_end..];
    limits::json_path(text, rest.matches("->").count())?;
    let mut path = Vec::new();
    while !rest.is_empty() {
        let (arrow, after) = if let Some(r) = rest.strip_prefix("->>") {
            (Arrow::Text, r)
        } else if let Some(r) = rest.strip_prefix("->") {
            (Arrow::Json, r)
        } else {
            return Err(parse_error(text, "expected -> or ->>"));
        };
        let end = after.find("->").unwrap_or(after.len());
        let key = after[..end].trim_matches('\'').to_owned();
        if key.is_empty() {
            return Err(parse_error(text, "an empty JSON key"));
        }
        let key = match key.parse::<i64>() {
            Ok(i) => PathKey::Index(i),
            Err(_) => PathKey::Field(key),
        };
        path.push(PathStep { arrow, key });
        rest = &after[end..];
    }
    Ok((name, path))
}

/// `"name"` → `name`; anything else as it is.
fn unquote(name: &str) -> &str {
    name.strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name)
}

/// Parses the value side `[not.]op[(mod)].value` of a filter on `field`.
pub fn parse_filter(field: &str, value: &str) -> RestResult<Filter> {
    let (name, path) = parse_field(field)?;
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (op_text, operand) = rest
        .split_once('.')
        .ok_or_else(|| parse_error(value, format!("expected an operator in \"{value}\"")))?;
    let (op_name, modifier) = match op_text.split_once('(') {
        Some((op, m)) => (
            op,
            Some(
                m.strip_suffix(')')
                    .ok_or_else(|| parse_error(value, "unclosed parenthesis"))?,
            ),
        ),
        None => (op_text, None),
    };
    let field = Field { name, path };
    let filter = |op: Op, values: Vec<String>| Filter {
        field: field.clone(),
        negated,
        op,
        values,
    };
    if let Some((_, func)) = FTS.iter().find(|(n, _)| *n == op_name) {
        return Ok(filter(
            Op::Fts(func, modifier.map(str::to_owned)),
            vec![operand.to_owned()],
        ));
    }
    if op_name == "is" {
        let keyword = match operand.to_lowercase().as_str() {
            "null" => "null",
            "true" => "true",
            "false" => "false",
            "unknown" => "unknown",
            _ => {
                return Err(parse_error(
                    value,
                    "is accepts null, true, false or unknown",
                ));
            }
        };
        return Ok(filter(Op::Is(keyword), vec![]));
    }
    if op_name == "in" {
        let inner = operand
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .ok_or_else(|| parse_error(value, "in expects a list: in.(a,b)"))?;
        return Ok(filter(Op::In, split_list(inner)));
    }
    let (_, sql) = BINARY
        .iter()
        .find(|(n, _)| *n == op_name)
        .ok_or_else(|| parse_error(value, format!("unknown operator \"{op_name}\"")))?;
    match modifier {
        None => Ok(filter(Op::Binary(sql), vec![operand.to_owned()])),
        Some(q @ ("any" | "all")) => {
            let inner = operand
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .ok_or_else(|| parse_error(value, "a quantified operator expects a list: {a,b}"))?;
            Ok(filter(Op::Quantified(sql, q == "any"), split_list(inner)))
        }
        Some(other) => Err(parse_error(value, format!("unknown modifier \"{other}\""))),
    }
}

/// Splits `a,"b,c",d` (double quotes protect commas; `\` escapes).
pub fn split_list(inner: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        match c {
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if any {
        out.push(current);
    }
    out
}

/// Parses a logic tree value: `(a.eq.1,or(b.gt.2,c.is.null))`, nested at most
/// [`limits::MAX_NESTING`] deep.
pub fn parse_logic(word: &str, negated: bool, value: &str) -> RestResult<Logic> {
    limits::nesting(word, value)?;
    logic_tree(word, negated, value)
}

fn logic_tree(word: &str, negated: bool, value: &str) -> RestResult<Logic> {
    let inner = value
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| parse_error(value, format!("{word} expects a parenthesised list")))?;
    Ok(Logic::Tree {
        or: word == "or",
        negated,
        items: split_top(inner)?
            .into_iter()
            .map(|item| parse_item(&item))
            .collect::<RestResult<_>>()?,
    })
}

fn parse_item(item: &str) -> RestResult<Logic> {
    let (negated, rest) = match item.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, item),
    };
    for word in ["and", "or"] {
        if let Some(tree) = rest.strip_prefix(word).filter(|r| r.starts_with('(')) {
            return logic_tree(word, negated, tree);
        }
    }
    if negated {
        return Err(parse_error(
            item,
            "negate a filter as column.not.operator.value",
        ));
    }
    let (field, op_value) = item
        .split_once('.')
        .ok_or_else(|| parse_error(item, "expected column.operator.value"))?;
    let mut filter = parse_filter(field, op_value)?;
    // Inside a tree, a value with reserved characters comes double-quoted.
    if let [value] = filter.values.as_mut_slice()
        && value.len() >= 2
        && value.starts_with('"')
        && value.ends_with('"')
    {
        *value = split_list(value).pop().unwrap_or_default();
    }
    Ok(Logic::Filter(filter))
}

/// Splits on top-level commas (not inside parentheses or quotes).
fn split_top(inner: &str) -> RestResult<Vec<String>> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut current = String::new();
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                current.push(c);
                escaped = true;
                continue;
            }
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(parse_error(inner, "unbalanced parentheses"));
        }
        current.push(c);
    }
    if depth != 0 || quoted {
        return Err(parse_error(inner, "unbalanced parentheses or quotes"));
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(field: &str, value: &str) -> Filter {
        parse_filter(field, value).expect("valid in this test")
    }

    #[test]
    fn every_binary_operator() {
        for (name, sql) in BINARY {
            let filter = f("a", &format!("{name}.5"));
            assert_eq!(filter.op, Op::Binary(sql));
            assert_eq!(filter.values, vec!["5"]);
        }
    }

    #[test]
    fn not_is_in_quantifiers_and_fts() {
        let filter = f("a", "not.is.null");
        assert!(filter.negated);
        assert_eq!(filter.op, Op::Is("null"));
        assert!(parse_filter("a", "is.maybe").is_err());
        assert_eq!(
            f("a", "in.(1,\"x,y\",\"q\\\"z\")").values,
            vec!["1", "x,y", "q\"z"]
        );
        assert_eq!(f("a", "in.()").values, Vec::<String>::new());
        assert_eq!(f("a", "like(any).{a*,*b}").op, Op::Quantified("like", true));
        assert_eq!(f("a", "eq(all).{1,2}").op, Op::Quantified("=", false));
        assert_eq!(
            f("a", "wfts(english).the cat").op,
            Op::Fts("websearch_to_tsquery", Some("english".into()))
        );
        assert_eq!(f("a", "fts.cat").op, Op::Fts("to_tsquery", None));
        assert!(parse_filter("a", "nope.1").is_err());
        assert!(parse_filter("a", "eq").is_err());
        assert!(parse_filter("a", "eq(some).{1}").is_err());
    }

    #[test]
    fn json_paths_and_keys() {
        let filter = f("data->tags->0->>name", "eq.x");
        assert_eq!(filter.field.name, "data");
        assert_eq!(filter.field.path.len(), 3);
        assert_eq!(filter.field.path[1].key, PathKey::Index(0));
        assert_eq!(
            split_key("project.code").expect("valid in this test"),
            (vec!["project".to_owned()], "code")
        );
        assert_eq!(
            split_key("a.b.c").expect("valid in this test"),
            (vec!["a".to_owned(), "b".to_owned()], "c")
        );
        assert_eq!(
            split_key("data->>k.x").expect("valid in this test").0,
            Vec::<String>::new()
        );
    }

    #[test]
    fn logic_trees() {
        let tree = parse_logic(
            "or",
            false,
            "(a.eq.1,and(b.gt.2,c.not.is.null),not.or(d.in.(1,2),e.like.*x*))",
        )
        .expect("valid in this test");
        let Logic::Tree { or, items, .. } = tree else {
            panic!()
        };
        assert!(or);
        assert_eq!(items.len(), 3);
        let Logic::Tree {
            or,
            negated,
            items: inner,
        } = &items[2]
        else {
            panic!()
        };
        assert!(*or && *negated);
        let Logic::Tree {
            items: and_items, ..
        } = &items[1]
        else {
            panic!()
        };
        let Logic::Filter(c) = &and_items[1] else {
            panic!()
        };
        assert!(c.negated && c.op == Op::Is("null"));
        assert_eq!(inner.len(), 2);
        assert!(parse_logic("or", false, "(a.eq.1").is_err());
        assert!(parse_logic("or", false, "a.eq.1").is_err());
    }
}
