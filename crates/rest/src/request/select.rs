//! `select=`: columns, aliases, casts, JSON paths, embeds with hints and join types, spreads.

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
        let aggregate = name == "count"
            || ["sum", "avg", "min", "max", "count"]
                .iter()
                .any(|f| name.ends_with(&format!(".{f}")));
        if aggregate && chars.get(*pos + 1) == Some(&')') {
            return Err(RestError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "PGRST123",
                "Use of aggregate functions is not allowed",
            ));
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
    let mut cast = None;
    if chars.get(*pos) == Some(&':') && chars.get(*pos + 1) == Some(&':') {
        *pos += 2;
        let ty = token(chars, pos, &[',', ')']);
        if !valid_type(&ty) {
            return Err(error(input, *pos));
        }
        cast = Some(ty);
    }
    let (column, path) = parse_field(&name)?;
    Ok(SelectItem::Column {
        name: column,
        path,
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
        assert_eq!(
            parse("count()").expect_err("expected an error").code,
            "PGRST123"
        );
        assert_eq!(
            parse("pages.sum()").expect_err("expected an error").code,
            "PGRST123"
        );
    }
}
