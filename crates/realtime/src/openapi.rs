//! `/realtime/v1`'s part of `/openapi.json`: the websocket (its messages are Phoenix channel
//! frames, which OpenAPI does not describe).

use tally_core::openapi::{Access, Doc, Op, object};
use utoipa::openapi::{HttpMethod::Get, OpenApi, schema::Type};

/// The websocket's upgrade request.
pub fn openapi() -> OpenApi {
    Doc::new(
        "realtime",
        "RealtimeError",
        object(&[("error", Type::String, true)]),
    )
    .op(Op::new(Get, "/websocket", "Open the realtime websocket (Phoenix channels)")
        .access(Access::Open)
        .describe("Join `realtime:<topic>` channels for Postgres changes, broadcast and presence. A user's token goes in the join payload (`access_token`).")
        .query("apikey", "The anon or service_role key (or the `x-api-key` header)")
        .query("vsn", "The serializer: `1.0.0` (JSON arrays, default) or `2.0.0` (adds binary frames)")
        .answers(101, "Switching protocols", None))
    .build()
}
