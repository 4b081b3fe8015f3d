//! `select=`: columns, aliases, casts, JSON paths, aggregates, embeds with hints and join
//! types, spreads.

use crate::error::{RestError, RestResult};

use super::{
    filter::{PathStep, parse_field},
    limits,
};

/// How an embed joins its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Parents without a match are kept (the default).
    Left,
    /// Parents without a match are dropped.
    Inner,
}

/// An aggregate function of `select=` (`count()`, `col.sum()`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `count()` (rows) or `col.count()` (non-null values).
    Count,
    /// `col.sum()`.
    Sum,
    /// `col.avg()`.
    Avg,
    /// `col.min()`.
    Min,
    /// `col.max()`.
    Max,
}

impl Aggregate {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            _ => return None,
        })
    }

    /// The SQL function, which is also the default output name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
        }
    }
}

/// The column an aggregate reads, with its JSON path and the cast applied first.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateInput {
    /// Column name.
    pub name: String,
    /// `->`/`->>` steps.
    pub path: Vec<PathStep>,
    /// `col::type.sum()`.
    pub cast: Option<String>,
}

/// One item of `select=`.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`.
    Star,
    /// A column, maybe with a JSON path, an alias and a cast.
    Column {
        /// Column name.
        name: String,
        /// `->`/`->>` steps.
        path: Vec<PathStep>,
        /// Output name.
        alias: Option<String>,
        /// `::type`.
        cast: Option<String>,
    },
    /// An aggregate over the rows grouped by the other columns of its level.
    Aggregate {
        /// The function.
        function: Aggregate,
        /// What it reads; none for `count()`.
        input: Option<AggregateInput>,
        /// Output name (default: the function's name).
        alias: Option<String>,
        /// `.sum()::type`.
        cast: Option<String>,
    },
    /// An embedded resource.
    Embed {
        /// Table (or relationship) name.
        name: String,
        /// Output name.
        alias: Option<String>,
        /// FK or column hint (`rel!hint`).
        hint: Option<String>,
        /// `!inner` / `!left`.
        join: Join,
        /// `...rel(…)`.
        spread: bool,
        /// What to select from it.
        items: Vec<SelectItem>,
    },
}

/// Parses a `select=` value (embeds nested at most [`limits::MAX_NESTING`] deep, at most
/// [`limits::MAX_ITEMS`] items in all).
pub fn parse(input: &str) -> RestResult<Vec<SelectItem>> {
    limits::nesting("select", input)?;
    // Whitespace is dropped, except inside double quotes (`"column whitespace"`).
    let mut quoted = false;
    let chars: Vec<char> = input
        .chars()
        .filter(|&c| {
            if c == '"' {
                quoted = !quoted;
            }
            quoted || !c.is_whitespace()
        })
        .collect();
    let mut pos = 0;
    let items = items(&chars, &mut pos, input)?;
    if pos != chars.len() {
        return Err(error(input, pos));
    }
    limits::items("select", count(&items))?;
    if items.is_empty() {
        return Ok(vec![SelectItem::Star]);
    }
    Ok(items)
}

/// Whether any level uses an aggregate.
pub fn uses_aggregates(items: &[SelectItem]) -> bool {
    items.iter().any(|item| match item {
        SelectItem::Aggregate { .. } => true,
        SelectItem::Embed { items, .. } => uses_aggregates(items),
        _ => false,
    })
}

/// Items at every level.
fn count(items: &[SelectItem]) -> usize {
    items
        .iter()
        .map(|item| match item {
            SelectItem::Embed { items, .. } => 1 + count(items),
            _ => 1,
        })
        .sum()
}

fn error(input: &str, pos: usize) -> RestError {
    RestError::parse(
        format!("\"failed to parse select parameter ({input})\""),
        format!("unexpected input at position {pos}"),
    )
}

fn items(chars: &[char], pos: &mut usize, input: &str) -> RestResult<Vec<SelectItem>> {
    let mut out = Vec::new();
    loop {
        if *pos >= chars.len() || chars[*pos] == ')' {
            return Ok(out);
        }
        out.push(item(chars, pos, input)?);
        match chars.get(*pos) {
            Some(',') => *pos += 1,
            Some(')') | None => return Ok(out),
            Some(_) => return Err(error(input, *pos)),
        }
    }
}

/// A token up to one of the delimiters, honouring double quotes.
fn token(chars: &[char], pos: &mut usize, stop: &[char]) -> String {
    let mut out = String::new();
    while let Some(&c) = chars.get(*pos) {
        if c == '"' {
            *pos += 1;
            while let Some(&c) = chars.get(*pos) {
                *pos += 1;
                if c == '"' {
                    break;
                }
                out.push(c);
            }
            continue;
        }
        if stop.contains(&c) {
            break;
        }
        out.push(c);
        *pos += 1;
    }
    out
}

fn item(chars: &[char], pos: &mut usize, input: &str) -> RestResult<SelectItem> {
    let spread = chars[*pos..].starts_with(&['.', '.', '.']);
    if spread {
        *pos += 3;
    }
    let first = token(chars, pos, &[',', '(', ')', ':', '!']);
    // `alias:rest` — but not `col::type`.
    let (alias, name) = if chars.get(*pos) == Some(&':') && chars.get(*pos + 1) != Some(&':') {
        *pos += 1;
        (Some(first), token(chars, pos, &[',', '(', ')', ':', '!']))
    } else {
        (None, first)
    };
    if name.is_empty() {
        return Err(error(input, *pos));
    }
    let mut hint = None;
    let mut join = Join::Left;
    while chars.get(*pos) == Some(&'!') {
        *pos += 1;
        let word = token(chars, pos, &[',', '(', ')', ':', '!']);
        match word.as_str() {
            "inner" => join = Join::Inner,
            "left" => join = Join::Left,
            "" => return Err(error(input, *pos)),
            _ => hint = Some(word),
        }
    }
    if chars.get(*pos) == Some(&'(') {
        // `count()` and `col.fn()`: an aggregate, not an embed.
        let (column, function) = match name.rsplit_once('.') {
            Some((column, f)) => (Some(column), f),
            None => (None, name.as_str()),
        };
        if let Some(function) = Aggregate::parse(function)
            && chars.get(*pos + 1) == Some(&')')
            && (column.is_some() || function == Aggregate::Count)
            && !spread
            && hint.is_none()
        {
            *pos += 2;
            let aggregated = match column {
                Some(column) => {
                    let (name, path) = parse_field(column)?;
                    Some(AggregateInput {
                        name,
                        path,
                        cast: None,
                    })
                }
                None => None,
            };
            return aggregate(chars, pos, aggregated, function, alias, input);
        }
        *pos += 1;
        let inner = items(chars, pos, input)?;
        if chars.get(*pos) != Some(&')') {
            return Err(error(input, *pos));
        }
        *pos += 1;
        return Ok(SelectItem::Embed {
            name,
            alias,
            hint,
            join,
            spread,
            // `rel()` (no items) joins without output.
            items: inner,
        });
    }
    if spread || hint.is_some() {
        return Err(error(input, *pos));
    }
    if name == "*" {
        return Ok(SelectItem::Star);
    }
    let cast = cast_suffix(chars, pos, input)?;
    let (column, path) = parse_field(&name)?;
    // `col::type.fn()`: an aggregate of the cast column.
    if cast.is_some() && chars.get(*pos) == Some(&'.') {
        *pos += 1;
        let function = token(chars, pos, &[',', '(', ')', ':', '!']);
        let Some(function) = Aggregate::parse(&function) else {
            return Err(error(input, *pos));
        };
        if !chars[*pos..].starts_with(&['(', ')']) {
            return Err(error(input, *pos));
        }
        *pos += 2;
        let aggregated = AggregateInput {
            name: column,
            path,
            cast,
        };
        return aggregate(chars, pos, Some(aggregated), function, alias, input);
    }
    Ok(SelectItem::Column {
        name: column,
        path,
        alias,
        cast,
    })
}

/// `::type` after an item, if there.
fn cast_suffix(chars: &[char], pos: &mut usize, input: &str) -> RestResult<Option<String>> {
    if chars.get(*pos) != Some(&':') || chars.get(*pos + 1) != Some(&':') {
        return Ok(None);
    }
    *pos += 2;
    let ty = token(chars, pos, &[',', ')', '.', '(']);
    if !valid_type(&ty) {
        return Err(error(input, *pos));
    }
    Ok(Some(ty))
}

/// An aggregate item, after its `()`: the output cast, if any.
fn aggregate(
    chars: &[char],
    pos: &mut usize,
    input: Option<AggregateInput>,
    function: Aggregate,
    alias: Option<String>,
    text: &str,
) -> RestResult<SelectItem> {
    let cast = cast_suffix(chars, pos, text)?;
    Ok(SelectItem::Aggregate {
        function,
        input,
        alias,
        cast,
    })
}

/// Cast targets are spliced into SQL, so only plain type names pass.
fn valid_type(ty: &str) -> bool {
    !ty.is_empty()
        && ty.len() <= 63
        && ty
            .trim_end_matches("[]")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && ty.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::filter::{Arrow, PathKey};

    fn col(name: &str) -> SelectItem {
        SelectItem::Column {
            name: name.into(),
            path: vec![],
            alias: None,
            cast: None,
        }
    }

    #[test]
    fn columns_aliases_casts_and_paths() {
        assert_eq!(
            parse("a, b").expect("valid in this test"),
            vec![col("a"), col("b")]
        );
        assert_eq!(
            parse("").expect("valid in this test"),
            vec![SelectItem::Star]
        );
        assert_eq!(
            parse("total:amount::text").expect("valid in this test"),
            vec![SelectItem::Column {
                name: "amount".into(),
                path: vec![],
                alias: Some("total".into()),
                cast: Some("text".into())
            }]
        );
        let SelectItem::Column { name, path, .. } =
            &parse("data->owner->>name").expect("valid in this test")[0]
        else {
            panic!()
        };
        assert_eq!(name, "data");
        assert_eq!(
            path,
            &vec![
                PathStep {
                    arrow: Arrow::Json,
                    key: PathKey::Field("owner".into())
                },
                PathStep {
                    arrow: Arrow::Text,
                    key: PathKey::Field("name".into())
                },
            ]
        );
        assert!(parse("a::text;drop").is_err());
        assert!(parse("a::te-xt").is_err());
    }

    #[test]
    fn embeds_with_hints_join_types_and_spreads() {
        let items = parse("id,owner:users!author_fk!inner(name,teams(*)),...projects(code)")
            .expect("valid in this test");
        assert_eq!(items.len(), 3);
        let SelectItem::Embed {
            name,
            alias,
            hint,
            join,
            spread,
            items: inner,
        } = &items[1]
        else {
            panic!()
        };
        assert_eq!(
            (
                name.as_str(),
                alias.as_deref(),
                hint.as_deref(),
                *join,
                *spread
            ),
            (
                "users",
                Some("owner"),
                Some("author_fk"),
                Join::Inner,
                false
            )
        );
        assert_eq!(inner.len(), 2);
        let SelectItem::Embed { spread, .. } = &items[2] else {
            panic!()
        };
        assert!(spread);
        assert!(parse("a(b").is_err());
        assert!(parse("a)").is_err());
        assert!(parse("a!x").is_err());
    }

    #[test]
    fn aggregates_with_inputs_aliases_and_casts() {
        let items =
            parse("genre,count(),total:pages.sum()::text,pages::float8.avg(),data->>n.max()")
                .expect("valid in this test");
        assert_eq!(items[0], col("genre"));
        assert_eq!(
            items[1],
            SelectItem::Aggregate {
                function: Aggregate::Count,
                input: None,
                alias: None,
                cast: None
            }
        );
        let SelectItem::Aggregate {
            function,
            input: Some(input),
            alias,
            cast,
        } = &items[2]
        else {
            panic!("{:?}", items[2])
        };
        assert_eq!(
            (
                *function,
                input.name.as_str(),
                alias.as_deref(),
                cast.as_deref()
            ),
            (Aggregate::Sum, "pages", Some("total"), Some("text"))
        );
        let SelectItem::Aggregate {
            function,
            input: Some(input),
            cast,
            ..
        } = &items[3]
        else {
            panic!("{:?}", items[3])
        };
        assert_eq!(
            (*function, input.cast.as_deref(), cast.as_deref()),
            (Aggregate::Avg, Some("float8"), None)
        );
        let SelectItem::Aggregate {
            input: Some(input), ..
        } = &items[4]
        else {
            panic!("{:?}", items[4])
        };
        assert_eq!((input.name.as_str(), input.path.len()), ("data", 1));
        assert!(uses_aggregates(
            &parse("id,books(pages.sum())").expect("valid in this test")
        ));
        assert!(!uses_aggregates(
            &parse("id,books(pages)").expect("valid in this test")
        ));
        assert!(parse("pages::int.median()").is_err());
        assert!(parse("pages.sum()::te-xt").is_err());
    }
}
