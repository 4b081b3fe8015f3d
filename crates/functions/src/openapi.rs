//! `/functions/v1`'s part of `/openapi.json`: one operation per function, its body the type
//! the function reads (so the schema is the one requests are checked against).

use tally_core::openapi::{Access, Doc, Op, any_object, object};
use utoipa::openapi::{HttpMethod::Post, OpenApi, schema::Type};

use crate::registry::FUNCTIONS;

/// The functions of [`FUNCTIONS`], then the webhook receiver. Each also answers to its dotted
/// name (`log.create`).
pub fn openapi() -> OpenApi {
    let doc = Doc::new(
        "functions",
        "FunctionError",
        object(&[
            ("error", Type::String, true),
            ("message", Type::String, true),
        ]),
    );
    FUNCTIONS
        .iter()
        .fold(doc, |doc, function| doc.op(function.operation()))
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
        let mut expected: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        expected.push("webhooks-ingest/{provider}/{integration_id}");
        expected.sort_unstable();
        assert_eq!(described, expected);
    }
}
