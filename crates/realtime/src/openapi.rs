//! `/realtime/v1`'s part of `/openapi.json`: the websocket (its messages are Phoenix channel
//! frames, which OpenAPI does not describe).

use tally_core::openapi::{Access, Doc, Op, any_object, object};
use utoipa::openapi::{
    HttpMethod::{Get, Post},
    OpenApi,
    schema::Type,
};

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
    .op(Op::new(Post, "/api/broadcast", "Broadcast over HTTP (realtime-js `httpSend`)")
        .describe("`{messages: [{topic, event, payload, private?}]}`: each message reaches every socket joined to `realtime:<topic>`, on every instance. Private and org topics need write access by RLS on `realtime.messages`.")
        .body("application/json", any_object())
        .answers(202, "Accepted: the messages are on their way", None)
        .answers(401, "No key, or a bad or revoked token", None)
        .answers(403, "A private topic the caller may not write", None))
    .op(Op::new(Post, "/api/broadcast/{topic}/events/{event}", "Broadcast one message over HTTP (realtime-js `httpSend`)")
        .describe("The body is the message's JSON payload; `?private=true` for a private topic.")
        .query("private", "`true` for a private topic")
        .body("application/json", any_object())
        .answers(202, "Accepted: the message is on its way", None)
        .answers(401, "No key, or a bad or revoked token", None)
        .answers(403, "A private topic the caller may not write", None))
    .build()
}
