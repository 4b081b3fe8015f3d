//! The functions, each declared once: its name, its handler and its OpenAPI operation. The
//! dispatcher, the names it answers to and `/functions/v1`'s part of `/openapi.json` are all
//! read from [`FUNCTIONS`]; a name that is not there is a 404.

use std::{future::Future, pin::Pin};

use axum::{body::Bytes, http::StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tally_core::{
    RequestContext,
    openapi::{Access, Op, any_object},
};
use utoipa::openapi::HttpMethod::Post;

use crate::{
    analytics_query,
    error::{FnError, FnResult},
    exports, insights, integrations, logs, orgs,
    state::FunctionsState,
    sync, timers, timesheets, tokens, uploads,
};

/// A function's answer: its status and JSON body.
pub type Answer = FnResult<(StatusCode, Value)>;

/// A function's handler: the state, the caller and the raw JSON body.
type Run = for<'a> fn(
    &'a FunctionsState,
    &'a RequestContext,
    &'a Bytes,
) -> Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

/// One function of `/functions/v1`.
pub struct Function {
    /// Its canonical name (`log-create`); it also answers to `log.create` and `log_create`.
    pub name: &'static str,
    /// One line for `/openapi.json`.
    summary: &'static str,
    /// Its body and answers, added to the operation.
    describe: fn(Op) -> Op,
    run: Run,
}

impl Function {
    /// Whether `name` calls this function: its name, with dots or underscores for dashes, in
    /// any case.
    pub fn answers_to(&self, name: &str) -> bool {
        name.replace(['.', '_'], "-")
            .eq_ignore_ascii_case(self.name)
    }

    /// Runs it for `ctx`.
    pub async fn run(&self, state: &FunctionsState, ctx: &RequestContext, body: &Bytes) -> Answer {
        (self.run)(state, ctx, body).await
    }

    /// Its OpenAPI operation (`POST /{name}`, a bearer token).
    pub fn operation(&self) -> Op {
        (self.describe)(
            Op::new(Post, &format!("/{}", self.name), self.summary).access(Access::Bearer),
        )
    }
}

/// The functions that write nothing a caller reads back (`sync-pull` only counts its calls):
/// calling them keeps the caller's reads on replicas.
const READ_ONLY: [&str; 2] = ["sync-pull", "orgs-list"];

/// Whether the function `name` answers to only reads.
pub fn only_reads(name: &str) -> bool {
    find(name).is_some_and(|f| READ_ONLY.contains(&f.name))
}

/// The function `name` answers to.
pub fn find(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.answers_to(name))
}

/// Reads a JSON body; anything else is a 400 naming the problem.
fn parse<T: DeserializeOwned>(body: &Bytes) -> FnResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| FnError::bad_request(format!("Invalid request body: {e}")))
}

/// 200 with `value`.
fn ok(value: FnResult<Value>) -> Answer {
    value.map(|v| (StatusCode::OK, v))
}

/// Every function called with a JSON body, in the order `/openapi.json` lists them.
pub static FUNCTIONS: [Function; 18] = [
    Function {
        name: "log-create",
        summary: "Log work from a line of text (classified in the background)",
        describe: |op| {
            op.json_body::<logs::create::CreateLog>().answers(
                201,
                "`{log}`: the stored log, `pending` until classified",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { logs::create::run(state, ctx, parse(body)?).await })
        },
    },
    Function {
        name: "ai-classify",
        summary: "Classify a log now",
        describe: |op| {
            op.json_body::<logs::classify::ClassifyLog>().answers(
                200,
                "The classified log and each field's confidence",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(logs::classify::run(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "log-finalize",
        summary: "Confirm a log with the person's corrections",
        describe: |op| {
            op.json_body::<logs::finalize::FinalizeLog>().answers(
                200,
                "The finalized log",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(logs::finalize::run(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "recall",
        summary: "The caller's logs most similar to a query",
        describe: |op| {
            op.json_body::<logs::recall::Recall>().answers(
                200,
                "Logs with their similarity",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(logs::recall::run(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "timer-start",
        summary: "Start a timer (the running one, if any, stops at the same instant)",
        describe: |op| {
            op.json_body::<timers::start::StartTimer>().answers(
                201,
                "`{log, stopped}`: the running log, and the timer it stopped or null",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { timers::start::run(state, ctx, parse(body)?).await })
        },
    },
    Function {
        name: "timer-stop",
        summary: "Stop a running timer by the server's clock",
        describe: |op| {
            op.json_body::<timers::stop::StopTimer>().answers(
                200,
                "`{log, capped}`: the stopped log; `capped` when it ran over a day",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(timers::stop::run(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "timesheet-submit",
        summary: "Submit the caller's timesheet for the period holding a day",
        describe: |op| {
            op.json_body::<timesheets::Submit>().answers(
                200,
                "`{timesheet}`: the period, now submitted",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(timesheets::submit(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "timesheet-review",
        summary: "Approve, reject (with a reason) or reopen a timesheet",
        describe: |op| {
            op.json_body::<timesheets::Review>().answers(
                200,
                "`{timesheet}`: the period with its new status",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(timesheets::review(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "upload-presign",
        summary: "An attachment and a signed URL to upload its file",
        describe: |op| {
            op.json_body::<uploads::Presign>().answers(
                201,
                "The attachment, the signed upload URL and its token",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { uploads::run(state, ctx, parse(body)?).await })
        },
    },
    Function {
        name: "insights-rollup",
        summary: "Recompute day summaries for a date range",
        describe: |op| {
            op.json_body::<insights::Rollup>().answers(
                200,
                "How many days and people were summed up",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(insights::run(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "export-create",
        summary: "Export logs or summaries to a file",
        describe: |op| {
            op.json_body::<exports::Export>().answers(
                201,
                "The export with a signed download URL",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { exports::run(state, ctx, parse(body)?).await })
        },
    },
    Function {
        name: "sync-pull",
        summary: "Offline sync: the changes since a cursor",
        describe: |op| {
            op.json_body::<sync::pull::Pull>().answers(
                200,
                "`{changes, cursor, has_more}`",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move {
                let pulled = sync::pull::run(state.reads(), state.sync(), ctx, parse(body)?).await;
                ok(pulled.map_err(FnError::from))
            })
        },
    },
    Function {
        name: "sync-push",
        summary: "Offline sync: apply queued mutations (the server wins)",
        describe: |op| {
            op.json_body::<sync::push::Push>().answers(
                200,
                "`{results, cursor}`: one result per mutation",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move {
                let pushed = sync::push::run(state.pool(), state.sync(), ctx, parse(body)?).await;
                ok(pushed.map_err(FnError::from))
            })
        },
    },
    Function {
        name: "integration-secret",
        summary: "Set an integration's signing secret and API credential",
        describe: |op| {
            op.json_body::<integrations::manage::SetSecret>().answers(
                200,
                "The secret (shown once) and the webhook URL",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move {
                let set = integrations::manage::run(state.integration_doors(), ctx, parse(body)?);
                ok(set.await.map_err(FnError::from))
            })
        },
    },
    Function {
        name: "analytics-query",
        summary: "Minutes over any range by period, person, project, activity or work mode",
        describe: |op| {
            op.json_body::<analytics_query::AnalyticsQuery>().answers(
                200,
                "`{source, scope, interval, rows: [{period, minutes, …}]}`",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(analytics_query::run(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "orgs-list",
        summary: "The caller's organizations and their role in each",
        describe: |op| {
            op.json_body::<orgs::ListOrgs>().answers(
                200,
                "`{orgs: [{org_id, name, role, timezone}]}`",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(orgs::run(state, ctx, parse(body)?).await) })
        },
    },
    Function {
        name: "token-create",
        summary: "Make a personal API token (shown once)",
        describe: |op| {
            op.json_body::<tokens::CreateToken>().answers(
                201,
                "`{token, id, name, scopes, prefix, created_at, expires_at}`",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move {
                let made = tokens::create(state, ctx, parse(body)?).await?;
                Ok((StatusCode::CREATED, made))
            })
        },
    },
    Function {
        name: "token-revoke",
        summary: "Revoke one of your personal API tokens",
        describe: |op| {
            op.json_body::<tokens::RevokeToken>().answers(
                200,
                "`{revoked: true}`",
                Some(any_object()),
            )
        },
        run: |state, ctx, body| {
            Box::pin(async move { ok(tokens::revoke(state, ctx, parse(body)?).await) })
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_answer_with_dashes_dots_or_underscores_and_nothing_else() {
        assert_eq!(find("log-create").map(|f| f.name), Some("log-create"));
        assert_eq!(find("log.create").map(|f| f.name), Some("log-create"));
        assert_eq!(find("Log_Create").map(|f| f.name), Some("log-create"));
        assert!(find("log-creat").is_none());
        assert!(find("webhooks-ingest").is_none(), "not a JSON function");
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FUNCTIONS.len(), "each name once");
    }
}
