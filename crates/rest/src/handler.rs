//! The `/rest/v1` handler: who is calling (bearer token → role and claims), then
//! parse → plan and build → execute → respond.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use tally_core::{RequestContext, gateway};

use crate::{
    error::{RestError, RestResult},
    execute, query,
    request::{self, Target},
    response,
    schema::quote,
    state::RestState,
};

/// Bodies larger than this are refused (413).
pub const MAX_BODY: usize = 10 * 1024 * 1024;

/// Serves any `/rest/v1/...` request.
pub async fn handle(
    State(state): State<RestState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serve(&state, method, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn caller(state: &RestState, headers: &HeaderMap) -> RestResult<RequestContext> {
    gateway::Caller::of(state, headers)
        .await
        .map(|caller| caller.0)
        .map_err(|e| match e {
            gateway::CallerError::Missing => {
                RestError::new(StatusCode::UNAUTHORIZED, "PGRST301", e.to_string())
            }
            gateway::CallerError::Jwt(tally_core::JwtError::Invalid(m)) => {
                RestError::new(StatusCode::UNAUTHORIZED, "PGRST301", m)
            }
            gateway::CallerError::Jwt(other) => {
                RestError::new(StatusCode::UNAUTHORIZED, "PGRST303", other.to_string())
            }
            gateway::CallerError::SessionRevoked => RestError::new(
                StatusCode::UNAUTHORIZED,
                "PGRST303",
                "JWT session has been revoked",
            ),
            gateway::CallerError::Database(e) => RestError::from_db(&e, false),
        })
}

async fn serve(
    state: &RestState,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> RestResult<Response> {
    if body.len() > MAX_BODY {
        return Err(RestError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PGRST413",
            "Request body is too large",
        ));
    }
    let path = uri.path().strip_prefix("/rest/v1").unwrap_or(uri.path());
    let request = request::parse(
        method.clone(),
        path,
        uri.query().unwrap_or(""),
        headers,
        body,
        state.schemas(),
    )?;
    if !state.features().aggregates && request::select::uses_aggregates(&request.select) {
        return Err(RestError::new(
            StatusCode::BAD_REQUEST,
            "PGRST123",
            "Use of aggregate functions is not allowed",
        ));
    }
    if request.plan.is_some() && !state.features().plan {
        let accept = headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return Err(request::plan::unavailable(accept));
    }
    let ctx = caller(state, headers)
        .await?
        .with_request(method.as_str(), path, headers)
        // PostgREST's: the request's schema, then the extra search path (Supabase's
        // `extra_search_path`: public and extensions), each quoted.
        .with_search_path(format!(
            "{}, \"public\", \"extensions\"",
            quote(&request.schema)
        ));
    let cache = state.cache();
    match (&request.target, &method) {
        (Target::Relation(name), &Method::GET | &Method::HEAD) => {
            let sql = query::read::build(&cache, &request, name)?;
            if let Some(plan) = &request.plan {
                return explain(state, &ctx, sql, true, plan).await;
            }
            let outcome = execute::run(state.reads(), &ctx, sql, true, false, |o| {
                response::check_single(&request, o)
            })
            .await?;
            response::read(&request, outcome)
        }
        (Target::Relation(name), &Method::POST | &Method::PATCH | &Method::DELETE) => {
            if request.body.is_none() && method != Method::DELETE {
                return Err(RestError::body("Empty or invalid json"));
            }
            let headers_only = request.prefer.return_ == request::prefer::Return::HeadersOnly;
            let sql = if headers_only && method == Method::POST {
                // Read back the primary key only, for the Location header.
                let table = query::read::relation(&cache, &request.schema, name)?;
                let mut keyed = request.clone();
                keyed.prefer.return_ = request::prefer::Return::Representation;
                keyed.select = table
                    .primary_key
                    .iter()
                    .map(|c| request::SelectItem::Column {
                        name: c.clone(),
                        path: vec![],
                        alias: None,
                        cast: None,
                    })
                    .collect();
                if keyed.select.is_empty() {
                    keyed.select = vec![request::SelectItem::Star];
                }
                query::write::build(&cache, &keyed, name)?
            } else {
                query::write::build(&cache, &request, name)?
            };
            if let Some(plan) = &request.plan {
                return explain(state, &ctx, sql, false, plan).await;
            }
            let representation = request.prefer.return_ == request::prefer::Return::Representation;
            let outcome = execute::run(
                state.reads(),
                &ctx,
                sql,
                false,
                request.prefer.rollback,
                |o| {
                    response::check_max_affected(&request, o)?;
                    if representation {
                        response::check_single(&request, o)
                    } else {
                        Ok(())
                    }
                },
            )
            .await?;
            if headers_only && method == Method::POST {
                return Ok(response::created_at(&request, name, &outcome));
            }
            Ok(response::write(&request, outcome))
        }
        (Target::Rpc(name), &Method::GET | &Method::HEAD | &Method::POST) => {
            let (sql, returns, read_only) = query::rpc::build(&cache, &request, name)?;
            if let Some(plan) = &request.plan {
                return explain(state, &ctx, sql, read_only, plan).await;
            }
            let single = returns == query::rpc::Returns::Many && request.single;
            let outcome = execute::run(
                state.reads(),
                &ctx,
                sql,
                read_only,
                request.prefer.rollback,
                |o| {
                    // A set-returning function affects the rows it returns: more than
                    // `max-affected` under `handling=strict` rolls it back (PGRST124).
                    if returns == query::rpc::Returns::Many {
                        response::check_max_affected(&request, o)?;
                    }
                    if single {
                        response::check_single(&request, o)
                    } else {
                        Ok(())
                    }
                },
            )
            .await?;
            Ok(match returns {
                query::rpc::Returns::Void => response::no_content(&request),
                query::rpc::Returns::Single => response::single_value(&request, outcome),
                query::rpc::Returns::Many => response::read(&request, outcome)?,
            })
        }
        (Target::Rpc(_), _) => Err(RestError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "PGRST101",
            "Only GET and POST are allowed for functions",
        )),
        _ => Err(RestError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "PGRST117",
            format!("Unsupported HTTP method: {method}"),
        )),
    }
}

/// The plan of a request's statement (`Accept: application/vnd.pgrst.plan…`).
async fn explain(
    state: &RestState,
    ctx: &RequestContext,
    sql: query::Sql,
    read_only: bool,
    plan: &request::plan::Plan,
) -> RestResult<Response> {
    let body = execute::explain(state.reads(), ctx, sql, read_only, plan).await?;
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, plan.content_type())],
        body,
    )
        .into_response())
}
