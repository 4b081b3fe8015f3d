//! `/functions/v1`'s part of `/openapi.json`: one operation per function, its body the type
//! the function reads (so the schema is the one requests are checked against).

use tally_core::openapi::{Access, Doc, Op, any_object, object};
use utoipa::openapi::{HttpMethod::Post, OpenApi, schema::Type};

use crate::{
    exports::Export,
    insights::Rollup,
    integrations::manage::SetSecret,
    logs::{classify::ClassifyLog, create::CreateLog, finalize::FinalizeLog, recall::Recall},
    sync::{pull::Pull, push::Push},
    uploads::Presign,
};

/// The functions. Each also answers to its dotted name (`log.create`).
pub fn openapi() -> OpenApi {
    let json = || Some(any_object());
    let call = |name: &str, summary: &str| {
        Op::new(Post, &format!("/{name}"), summary).access(Access::Bearer)
    };
    Doc::new(
        "functions",
        "FunctionError",
        object(&[("error", Type::String, true), ("message", Type::String, true)]),
    )
    .op(call("log-create", "Log work from a line of text (classified in the background)")
        .json_body::<CreateLog>()
        .answers(201, "`{log}`: the stored log, `pending` until classified", json()))
    .op(call("ai-classify", "Classify a log now")
        .json_body::<ClassifyLog>()
        .answers(200, "The classified log and each field's confidence", json()))
    .op(call("log-finalize", "Confirm a log with the person's corrections")
        .json_body::<FinalizeLog>()
        .answers(200, "The finalized log", json()))
    .op(call("recall", "The caller's logs most similar to a query")
        .json_body::<Recall>()
        .answers(200, "Logs with their similarity", json()))
    .op(call("upload-presign", "An attachment and a signed URL to upload its file")
        .json_body::<Presign>()
        .answers(201, "The attachment, the signed upload URL and its token", json()))
    .op(call("insights-rollup", "Recompute day summaries for a date range")
        .json_body::<Rollup>()
        .answers(200, "How many days and people were summed up", json()))
    .op(call("export-create", "Export logs or summaries to a file")
        .json_body::<Export>()
        .answers(201, "The export with a signed download URL", json()))
    .op(call("sync-pull", "Offline sync: the changes since a cursor")
        .json_body::<Pull>()
        .answers(200, "`{changes, cursor, has_more}`", json()))
    .op(call("sync-push", "Offline sync: apply queued mutations (the server wins)")
        .json_body::<Push>()
        .answers(200, "`{results, cursor}`: one result per mutation", json()))
    .op(call("integration-secret", "Set an integration's signing secret and API credential")
        .json_body::<SetSecret>()
        .answers(200, "The secret (shown once) and the webhook URL", json()))
    .op(Op::new(
        Post,
        "/webhooks-ingest/{provider}/{integration_id}",
        "Receive a provider's webhook (slack, jira, graph, calendar, generic)",
    )
    .access(Access::Open)
    .describe("No user token: the provider's signature is the credential. A redelivered event answers 200 and changes nothing.")
    .body("application/json", any_object())
    .query("validationToken", "Graph's subscription handshake: echoed back as text")
    .answers(200, "Stored (or already stored), or a handshake answered", None)
    .answers(202, "Graph's change notifications, stored", None))
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_is_described_and_nothing_else() {
        let doc = openapi();
        let mut described: Vec<&str> = doc.paths.paths.keys().map(|p| &p[1..]).collect();
        described.sort_unstable();
        let mut expected: Vec<&str> = crate::FUNCTIONS.to_vec();
        expected.push("webhooks-ingest/{provider}/{integration_id}");
        expected.sort_unstable();
        assert_eq!(described, expected);
    }
}
