//! Step 5: the HTTP response — status (200/201/204/206/406/416), `Content-Range`, content
//! type, `Preference-Applied`, and the body as the database wrote it.

use axum::{
    body::Body,
    http::{HeaderValue, Method, StatusCode, header},
    response::Response,
};
use tally_core::urls::encode_component;

use crate::{
    error::{RestError, RestResult},
    execute::Outcome,
    request::{ApiRequest, prefer::Return},
};

/// PGRST116 unless exactly one row.
pub fn check_single(request: &ApiRequest, outcome: &Outcome) -> RestResult<()> {
    if request.single && outcome.page != 1 {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST116",
            "Cannot coerce the result to a single JSON object",
        )
        .details(format!("The result contains {} rows", outcome.page)));
    }
    Ok(())
}

/// PGRST124 when `handling=strict` and `max-affected` is exceeded.
pub fn check_max_affected(request: &ApiRequest, outcome: &Outcome) -> RestResult<()> {
    match request.prefer.max_affected {
        Some(max) if request.prefer.strict && outcome.page > max => Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "PGRST124",
            "Query result exceeds max-affected preference constraint",
        )
        .details(format!("The query affects {} rows", outcome.page))),
        _ => Ok(()),
    }
}

fn content_range(offset: i64, page: i64, total: Option<i64>) -> String {
    let range = if page > 0 {
        format!("{}-{}", offset, offset + page - 1)
    } else {
        "*".to_owned()
    };
    let total = total.map_or_else(|| "*".to_owned(), |t| t.to_string());
    format!("{range}/{total}")
}

fn build(
    status: StatusCode,
    request: &ApiRequest,
    range: Option<String>,
    body: Option<String>,
) -> Response {
    let mut builder = Response::builder().status(status);
    let content_type = if request.csv {
        "text/csv; charset=utf-8"
    } else if request.single {
        "application/vnd.pgrst.object+json; charset=utf-8"
    } else {
        "application/json; charset=utf-8"
    };
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(range) = range {
        builder = builder.header(header::CONTENT_RANGE, range);
    }
    if !request.prefer.applied.is_empty()
        && let Ok(v) = HeaderValue::from_str(&request.prefer.applied.join(", "))
    {
        builder = builder.header("preference-applied", v);
    }
    let body = if request.method == Method::HEAD {
        None
    } else {
        body
    };
    builder
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A read's response (also a set-returning RPC's).
pub fn read(request: &ApiRequest, outcome: Outcome) -> RestResult<Response> {
    let offset = request.modifiers(&[]).offset.unwrap_or(0);
    if let Some(total) = outcome.total
        && offset > 0
        && offset >= total
        && total > 0
    {
        return Err(RestError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "PGRST103",
            "Requested range not satisfiable",
        )
        .details(format!(
            "An offset of {offset} was requested, but there are only {total} rows."
        )));
    }
    let status = match outcome.total {
        Some(total) if outcome.page < total => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    let body = if request.single {
        outcome.first.clone()
    } else {
        outcome.body.clone()
    };
    Ok(build(
        status,
        request,
        Some(content_range(offset, outcome.page, outcome.total)),
        body,
    ))
}

/// A write's response.
pub fn write(request: &ApiRequest, outcome: Outcome) -> Response {
    let representation = request.prefer.return_ == Return::Representation;
    let status = match (&request.method, representation) {
        // An upsert whose every row already existed created nothing.
        (&Method::POST, true) if outcome.inserted == Some(0) && outcome.page > 0 => StatusCode::OK,
        (&Method::POST, _) => StatusCode::CREATED,
        (_, true) => StatusCode::OK,
        _ => StatusCode::NO_CONTENT,
    };
    let range = match request.method {
        Method::POST => format!(
            "*/{}",
            if request.prefer.count.is_some() {
                outcome.page.to_string()
            } else {
                "*".into()
            }
        ),
        // With `count=`, an update's or delete's total is the rows it affected: `0-3/4`.
        _ => content_range(
            0,
            outcome.page,
            request.prefer.count.is_some().then_some(outcome.page),
        ),
    };
    let body = match (representation, request.single) {
        (false, _) => None,
        (true, true) => outcome.first,
        (true, false) => outcome.body,
    };
    build(status, request, Some(range), body)
}

/// `return=headers-only`: 201 with `Location: /table?pk=eq.value` of the (first) new row.
pub fn created_at(request: &ApiRequest, table: &str, outcome: &Outcome) -> Response {
    let mut response = build(StatusCode::CREATED, request, Some("*/*".to_owned()), None);
    let key: Option<serde_json::Map<String, serde_json::Value>> = outcome
        .first
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok());
    if let Some(key) = key {
        let query: Vec<String> = key
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{}=eq.{}", encode_component(k), encode_component(&v))
            })
            .collect();
        if let Ok(value) =
            HeaderValue::from_str(&format!("/{}?{}", encode_component(table), query.join("&")))
        {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    response
}

/// An RPC's response: 204 for void, the scalar or object for a single result — one item, so
/// `0-0/*`, or `0-0/1` when a count was asked for.
pub fn single_value(request: &ApiRequest, outcome: Outcome) -> Response {
    let body = outcome.first.or_else(|| Some("null".to_owned()));
    let range = content_range(0, 1, request.prefer.count.is_some().then_some(1));
    build(StatusCode::OK, request, Some(range), body)
}

/// 204 No Content.
pub fn no_content(request: &ApiRequest) -> Response {
    build(StatusCode::NO_CONTENT, request, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(0, 25, Some(3573)), "0-24/3573");
        assert_eq!(content_range(0, 0, Some(0)), "*/0");
        assert_eq!(content_range(10, 5, None), "10-14/*");
    }
}
