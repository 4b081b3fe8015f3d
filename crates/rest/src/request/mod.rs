//! Step 1 of the pipeline: the HTTP request, parsed into a typed [`ApiRequest`] (the URL
//! grammar of §2.2: select, filters, logic trees, order, paging; and the headers). Nothing
//! here knows the schema; the planner checks names against it.

pub mod filter;
pub mod limits;
pub mod order;
pub mod plan;
pub mod prefer;
pub mod select;

use axum::http::{HeaderMap, Method};

use crate::error::{RestError, RestResult};
pub use filter::{Field, Filter, Logic, Op, PathStep};
pub use order::OrderTerm;
pub use prefer::Preferences;
pub use select::SelectItem;

/// What is being asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A table or view.
    Relation(String),
    /// A function: `/rpc/name`.
    Rpc(String),
}

/// Per-embed modifiers: `rel.order=`, `rel.limit=`, `rel.offset=`, `rel.or=` and filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Modifiers {
    /// Filters and logic trees, ANDed.
    pub logic: Vec<Logic>,
    /// Ordering.
    pub order: Vec<OrderTerm>,
    /// `limit`.
    pub limit: Option<i64>,
    /// `offset`.
    pub offset: Option<i64>,
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The HTTP method.
    pub method: Method,
    /// Table, view or function.
    pub target: Target,
    /// The schema (from `Accept-Profile`/`Content-Profile`, else the first exposed one).
    pub schema: String,
    /// `select=` (default `*`).
    pub select: Vec<SelectItem>,
    /// Modifiers keyed by embed path (empty path = the top level).
    pub modifiers: Vec<(Vec<String>, Modifiers)>,
    /// `columns=` for inserts.
    pub columns: Option<Vec<String>>,
    /// `on_conflict=` for upserts.
    pub on_conflict: Option<Vec<String>>,
    /// Query parameters that are not reserved: function arguments for `GET /rpc`.
    pub rpc_params: Vec<(String, String)>,
    /// `Prefer`.
    pub prefer: Preferences,
    /// `Accept: application/vnd.pgrst.object+json`.
    pub single: bool,
    /// `Accept: text/csv`.
    pub csv: bool,
    /// `Accept: …;nulls=stripped`: null fields are left out of the JSON objects.
    pub strip_nulls: bool,
    /// `Accept: application/vnd.pgrst.plan…`: the query plan instead of the rows.
    pub plan: Option<plan::Plan>,
    /// The JSON body (POST/PATCH and POST /rpc).
    pub body: Option<serde_json::Value>,
}

impl ApiRequest {
    /// The modifiers of an embed path (empty = top level).
    pub fn modifiers(&self, path: &[String]) -> Modifiers {
        self.modifiers
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// Parses a request. `exposed` is the list of schemas clients may use.
pub fn parse(
    method: Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    exposed: &[String],
) -> RestResult<ApiRequest> {
    let path = path.trim_matches('/');
    let target = match path.split_once('/') {
        Some(("rpc", name)) if !name.is_empty() && !name.contains('/') => {
            Target::Rpc(decode(name)?)
        }
        None if !path.is_empty() => Target::Relation(decode(path)?),
        _ => {
            return Err(RestError::new(
                axum::http::StatusCode::NOT_FOUND,
                "PGRST125",
                "Invalid path specified in request URL",
            ));
        }
    };
    let schema = profile(&method, headers, exposed)?;
    let mut request = ApiRequest {
        method,
        target,
        schema,
        select: vec![SelectItem::Star],
        modifiers: Vec::new(),
        columns: None,
        on_conflict: None,
        rpc_params: Vec::new(),
        prefer: Preferences::parse(headers)?,
        single: false,
        csv: false,
        strip_nulls: false,
        plan: None,
        body: None,
    };
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    request.plan = plan::Plan::parse(accept)?;
    // A plan is of the statement its `for=` media type would run.
    let target = request.plan.as_ref().map_or(accept, |p| p.media.as_str());
    request.single = target.contains("application/vnd.pgrst.object+json");
    request.csv = target.starts_with("text/csv");
    request.strip_nulls = accept
        .split(',')
        .any(|a| a.split(';').skip(1).any(|p| p.trim() == "nulls=stripped"));
    if !request.single
        && !request.csv
        && request.plan.is_none()
        && ![
            "application/json",
            "*/*",
            "application/*",
            "application/vnd.pgrst.array+json",
        ]
        .iter()
        .any(|t| accept.split(',').any(|a| a.trim().starts_with(t)))
    {
        return Err(plan::unavailable(accept));
    }
    for (key, value) in pairs(query)? {
        apply(&mut request, &key, &value)?;
    }
    if let Some(range) = headers
        .get(axum::http::header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        apply_range(&mut request, range)?;
    }
    if !body.is_empty() && !body.iter().all(u8::is_ascii_whitespace) {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| RestError::body(format!("Empty or invalid json: {e}")))?;
        request.body = Some(value);
    }
    check_embedded(&request)?;
    Ok(request)
}

/// PostgREST's PGRST108: every modifier or filter for an embed (`rel.limit=`, `rel.id=eq.1`)
/// names an embed of `select=`, by its alias or its name; the first segment of a path that
/// leads nowhere is named.
fn check_embedded(request: &ApiRequest) -> RestResult<()> {
    for (path, _) in &request.modifiers {
        let mut items = &request.select;
        for segment in path {
            let embed = items.iter().find_map(|item| match item {
                SelectItem::Embed {
                    name, alias, items, ..
                } if alias.as_ref() == Some(segment) || name == segment => Some(items),
                _ => None,
            });
            let Some(embedded) = embed else {
                return Err(RestError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "PGRST108",
                    format!("'{segment}' is not an embedded resource in this request"),
                )
                .hint(format!(
                    "Verify that '{segment}' is included in the 'select' query parameter."
                )));
            };
            items = embedded;
        }
    }
    Ok(())
}

fn profile(method: &Method, headers: &HeaderMap, exposed: &[String]) -> RestResult<String> {
    let header = if matches!(*method, Method::GET | Method::HEAD) {
        "accept-profile"
    } else {
        "content-profile"
    };
    match headers.get(header).and_then(|v| v.to_str().ok()) {
        None => Ok(exposed
            .first()
            .cloned()
            .unwrap_or_else(|| "public".to_owned())),
        Some(schema) if exposed.iter().any(|s| s == schema) => Ok(schema.to_owned()),
        Some(schema) => Err(RestError::new(
            axum::http::StatusCode::NOT_ACCEPTABLE,
            "PGRST106",
            format!("Invalid schema: {schema}"),
        )
        .hint(format!(
            "Only the following schemas are exposed: {}",
            exposed.join(", ")
        ))),
    }
}

/// Splits and percent-decodes the query string, keeping order and repeats.
fn pairs(query: &str) -> RestResult<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Percent-decoding (`+` is a space, as in forms); a `%` not followed by two hex digits, or
/// bytes that are not UTF-8, are a 400.
fn decode(s: &str) -> RestResult<String> {
    let malformed = s.match_indices('%').any(|(i, _)| {
        !s.as_bytes()
            .get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(RestError::parse(
            "Invalid percent-encoding in the query string",
            s.to_owned(),
        ));
    }
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| RestError::parse("The query string is not UTF-8", s.to_owned()))
}

/// Reserved keys, optionally prefixed by an embed path: `rel.order`, `a.b.limit`.
fn split_reserved(key: &str) -> Option<(Vec<String>, &str)> {
    let (path, last) = match key.rsplit_once('.') {
        Some((path, last)) => (path.split('.').map(str::to_owned).collect(), last),
        None => (Vec::new(), key),
    };
    matches!(last, "order" | "limit" | "offset" | "or" | "and").then_some((path, last))
}

fn modifiers_mut<'a>(request: &'a mut ApiRequest, path: &[String]) -> &'a mut Modifiers {
    if let Some(i) = request.modifiers.iter().position(|(p, _)| p == path) {
        return &mut request.modifiers[i].1;
    }
    request
        .modifiers
        .push((path.to_vec(), Modifiers::default()));
    let last = request.modifiers.len() - 1;
    &mut request.modifiers[last].1
}

fn apply(request: &mut ApiRequest, key: &str, value: &str) -> RestResult<()> {
    match key {
        "select" => request.select = select::parse(value)?,
        "columns" => request.columns = Some(list_of_names(key, value)?),
        "on_conflict" => request.on_conflict = Some(list_of_names(key, value)?),
        _ => {
            if let Some(word) = key
                .strip_prefix("not.")
                .filter(|w| *w == "or" || *w == "and")
            {
                let m = modifiers_mut(request, &[]);
                m.logic.push(filter::parse_logic(word, true, value)?);
                return Ok(());
            }
            if let Some((path, word)) = split_reserved(key)
                && !key.contains("->")
            {
                let m = modifiers_mut(request, &path);
                match word {
                    "order" => m.order = order::parse(value)?,
                    "limit" => m.limit = Some(number(key, value)?),
                    "offset" => m.offset = Some(number(key, value)?),
                    "or" | "and" => m.logic.push(filter::parse_logic(word, false, value)?),
                    _ => {}
                }
                return Ok(());
            }
            if matches!(request.target, Target::Rpc(_)) && !value.contains('.') {
                request.rpc_params.push((key.to_owned(), value.to_owned()));
                return Ok(());
            }
            let (path, field) = filter::split_key(key)?;
            match filter::parse_filter(field, value) {
                Ok(filter) => modifiers_mut(request, &path)
                    .logic
                    .push(Logic::Filter(filter)),
                // For GET /rpc, a parameter that is not a filter is an argument.
                Err(_) if matches!(request.target, Target::Rpc(_)) && path.is_empty() => {
                    request.rpc_params.push((key.to_owned(), value.to_owned()));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn list_of_names(key: &str, value: &str) -> RestResult<Vec<String>> {
    let names: Vec<String> = value
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    limits::items(key, names.len())?;
    Ok(names)
}

fn number(key: &str, value: &str) -> RestResult<i64> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            RestError::parse(
                format!("\"failed to parse {key} parameter ({value})\""),
                format!("{key}={value}"),
            )
        })
}

/// `Range: a-b` narrows `limit`/`offset`.
fn apply_range(request: &mut ApiRequest, range: &str) -> RestResult<()> {
    let spec = range.trim().trim_start_matches("items=");
    let Some((lo, hi)) = spec.split_once('-') else {
        return Ok(());
    };
    let lo: i64 = lo
        .parse()
        .map_err(|_| RestError::parse("Invalid Range header", range.to_owned()))?;
    let top = modifiers_mut(request, &[]);
    let offset = top.offset.unwrap_or(0).max(lo);
    top.offset = Some(offset);
    if !hi.is_empty() {
        let hi: i64 = hi
            .parse()
            .map_err(|_| RestError::parse("Invalid Range header", range.to_owned()))?;
        let count = (hi - lo + 1).max(0);
        top.limit = Some(top.limit.map_or(count, |l| l.min(count)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query: &str) -> RestResult<ApiRequest> {
        parse(
            Method::GET,
            "/logs",
            query,
            &HeaderMap::new(),
            b"",
            &["public".to_owned()],
        )
    }

    #[test]
    fn reserved_keys_and_embedded_modifiers() {
        let r = get("select=id,project(name)&project.order=name.desc&project.limit=2&order=id&limit=10&offset=5&columns=%22a%22,%22b%22").expect("valid in this test");
        assert_eq!(r.modifiers(&[]).limit, Some(10));
        assert_eq!(r.modifiers(&[]).offset, Some(5));
        assert_eq!(r.modifiers(&["project".to_owned()]).limit, Some(2));
        assert!(r.modifiers(&["project".to_owned()]).order[0].desc);
        assert_eq!(r.columns, Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn modifiers_of_embeds_the_select_lacks_are_pgrst108() {
        for query in [
            "nope.limit=1",
            "nope.id=eq.1",
            "select=id,project(name)&nope.order=id",
            "select=id,project(name)&project.nope.id=eq.1",
            "select=id,p:project(name)&p.nope.limit=1",
        ] {
            let err = get(query).expect_err(query);
            assert_eq!((err.status.as_u16(), err.code.as_str()), (400, "PGRST108"));
            assert!(err.message.starts_with("'nope' "), "{}", err.message);
        }
        for query in [
            "select=id,project(name,team(name))&project.team.limit=1",
            "select=id,p:project(name)&p.limit=1&project.limit=1",
        ] {
            assert!(get(query).is_ok(), "{query}");
        }
    }

    #[test]
    fn bad_paging_is_pgrst100() {
        assert_eq!(
            get("limit=abc").expect_err("expected an error").code,
            "PGRST100"
        );
        assert_eq!(
            get("offset=-1").expect_err("expected an error").code,
            "PGRST100"
        );
    }

    #[test]
    fn unexposed_profile_is_pgrst106() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "accept-profile",
            "secret".parse().expect("valid in this test"),
        );
        let err = parse(Method::GET, "/t", "", &headers, b"", &["public".to_owned()])
            .expect_err("expected an error");
        assert_eq!((err.status.as_u16(), err.code.as_str()), (406, "PGRST106"));
    }

    #[test]
    fn targets() {
        let r = parse(
            Method::POST,
            "/rpc/f",
            "",
            &HeaderMap::new(),
            b"{}",
            &["public".to_owned()],
        )
        .expect("valid in this test");
        assert_eq!(r.target, Target::Rpc("f".into()));
        assert_eq!(
            parse(Method::GET, "/", "", &HeaderMap::new(), b"", &[])
                .expect_err("expected an error")
                .code,
            "PGRST125"
        );
    }
}
