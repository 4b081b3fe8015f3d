//! `/storage/v1`'s part of `/openapi.json`. `{path}` is an object's name and may contain `/`.

use tally_core::openapi::{Access, Doc, Op, any_object, binary, object};
use utoipa::openapi::{
    HttpMethod::*,
    OpenApi,
    schema::{ArrayBuilder, ObjectBuilder, Type},
};

use crate::{
    listing::{ListBody, ListV2Body},
    objects::RelocateBody,
};

/// The storage operations.
pub fn openapi() -> OpenApi {
    let json = || Some(any_object());
    let message = || Some(object(&[("message", Type::String, true)]));
    let bucket = || {
        object(&[
            ("id", Type::String, false),
            ("name", Type::String, true),
            ("public", Type::Boolean, false),
            ("file_size_limit", Type::Integer, false),
            ("allowed_mime_types", Type::Array, false),
        ])
    };
    let expires = object(&[("expiresIn", Type::Integer, true)]);
    let paths = ObjectBuilder::new()
        .property("expiresIn", ObjectBuilder::new().schema_type(Type::Integer))
        .property(
            "paths",
            ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)),
        )
        .required("expiresIn")
        .required("paths");
    let prefixes = ObjectBuilder::new()
        .property(
            "prefixes",
            ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)),
        )
        .required("prefixes");
    let uploaded = || {
        Some(object(&[
            ("Id", Type::String, true),
            ("Key", Type::String, true),
        ]))
    };
    let upsert = "`true` replaces an existing object";
    let download = "`download` (any value) asks for `Content-Disposition: attachment`, named by it";
    Doc::new(
        "storage",
        "StorageError",
        object(&[
            ("statusCode", Type::String, true),
            ("error", Type::String, true),
            ("message", Type::String, true),
        ]),
    )
    .op(Op::new(Get, "/bucket", "The buckets the caller may see").answers(200, "Buckets", json()))
    .op(Op::new(Post, "/bucket", "Create a bucket")
        .body("application/json", bucket())
        .answers(200, "`{name}`", json()))
    .op(Op::new(Get, "/bucket/{id}", "One bucket").answers(200, "The bucket", json()))
    .op(Op::new(Put, "/bucket/{id}", "Change a bucket's settings")
        .body("application/json", bucket())
        .answers(200, "Updated", message()))
    .op(
        Op::new(Delete, "/bucket/{id}", "Delete an empty bucket").answers(
            200,
            "Deleted",
            message(),
        ),
    )
    .op(Op::new(
        Post,
        "/bucket/{id}/empty",
        "Remove every object in a bucket",
    )
    .answers(200, "Emptied", message()))
    .op(Op::new(
        Post,
        "/object/list/{bucket}",
        "List objects and folders under a prefix",
    )
    .json_body::<ListBody>()
    .answers(200, "Objects and folders", json()))
    .op(Op::new(
        Post,
        "/object/list-v2/{bucket}",
        "List objects under a prefix (or one level of it), paged by cursor",
    )
    .json_body::<ListV2Body>()
    .answers(
        200,
        "`{hasNext, nextCursor?, folders: [{key, name}], objects}`",
        json(),
    ))
    .op(Op::new(Post, "/object/move", "Move an object")
        .json_body::<RelocateBody>()
        .answers(200, "Moved", message()))
    .op(Op::new(Post, "/object/copy", "Copy an object")
        .json_body::<RelocateBody>()
        .answers(200, "`{Key}` of the copy", json()))
    .op(Op::new(
        Post,
        "/object/sign/{bucket}",
        "Signed download URLs for several objects",
    )
    .body("application/json", paths)
    .answers(200, "One `{path, signedURL, error}` per path", json()))
    .op(Op::new(
        Post,
        "/object/sign/{bucket}/{path}",
        "A signed download URL",
    )
    .body("application/json", expires)
    .answers(200, "`{signedURL}`", json()))
    .op(Op::new(
        Get,
        "/object/sign/{bucket}/{path}",
        "Download through a signed URL",
    )
    .access(Access::Open)
    .query("token", "The URL's token")
    .query("download", download)
    .answers(200, "The file", None))
    .op(Op::new(
        Post,
        "/object/upload/sign/{bucket}/{path}",
        "A signed upload URL",
    )
    .header("x-upsert", upsert)
    .answers(200, "`{url, token}`", json()))
    .op(Op::new(
        Put,
        "/object/upload/sign/{bucket}/{path}",
        "Upload through a signed URL",
    )
    .access(Access::Open)
    .query("token", "The URL's token")
    .body("application/octet-stream", binary())
    .answers(200, "`{Id, Key}`", uploaded()))
    .op(
        Op::new(Get, "/object/info/{bucket}/{path}", "An object's metadata").answers(
            200,
            "Name, size, content type, timestamps",
            json(),
        ),
    )
    .op(Op::new(
        Get,
        "/object/authenticated/{bucket}/{path}",
        "Download as the caller",
    )
    .access(Access::User)
    .query("download", download)
    .answers(200, "The file", None))
    .op(Op::new(
        Get,
        "/object/public/{bucket}/{path}",
        "Download from a public bucket",
    )
    .access(Access::Open)
    .query("download", download)
    .answers(200, "The file", None))
    .op(Op::new(
        Post,
        "/object/{bucket}/{path}",
        "Upload a file (raw body or multipart form)",
    )
    .header("x-upsert", upsert)
    .body("application/octet-stream", binary())
    .answers(200, "`{Id, Key}`", uploaded()))
    .op(Op::new(
        Put,
        "/object/{bucket}/{path}",
        "Upload a file, replacing any",
    )
    .body("application/octet-stream", binary())
    .answers(200, "`{Id, Key}`", uploaded()))
    .op(
        Op::new(Get, "/object/{bucket}/{path}", "Download as the caller")
            .query("download", download)
            .answers(200, "The file", None),
    )
    .op(
        Op::new(Delete, "/object/{bucket}", "Remove several objects")
            .body("application/json", prefixes)
            .answers(200, "The removed objects", json()),
    )
    .op(
        Op::new(Delete, "/object/{bucket}/{path}", "Remove one object").answers(
            200,
            "Removed",
            message(),
        ),
    )
    .op(transformed(
        Op::new(
            Get,
            "/render/image/authenticated/{bucket}/{path}",
            "An image transformed, as the caller",
        )
        .access(Access::User),
    ))
    .op(transformed(
        Op::new(
            Get,
            "/render/image/public/{bucket}/{path}",
            "An image of a public bucket transformed",
        )
        .access(Access::Open),
    ))
    .op(Op::new(
        Get,
        "/render/image/sign/{bucket}/{path}",
        "An image transformed through a signed URL (the token holds the transformation)",
    )
    .access(Access::Open)
    .query("token", "The URL's token")
    .answers(
        200,
        "The image; `x-transformations` says what was applied",
        None,
    ))
    .op(Op::new(
        Post,
        "/upload/resumable",
        "Start a resumable upload (tus 1.0.0: creation, creation-with-upload)",
    )
    .header("tus-resumable", "`1.0.0`")
    .header("upload-length", "The file's size in bytes")
    .header(
        "upload-metadata",
        "`bucketName`, `objectName`, `contentType`, `cacheControl`, `metadata` (base64 each)",
    )
    .header("x-upsert", upsert)
    .answers(201, "Started: `Location` is the upload's URL", None))
    .op(Op::new(
        Head,
        "/upload/resumable/{id}",
        "How far a resumable upload is (`Upload-Offset`)",
    )
    .header("tus-resumable", "`1.0.0`")
    .answers(200, "`Upload-Offset`, `Upload-Length`", None))
    .op(Op::new(
        Patch,
        "/upload/resumable/{id}",
        "Bytes of a resumable upload at `Upload-Offset`; the last completes the object",
    )
    .header("tus-resumable", "`1.0.0`")
    .header("upload-offset", "Where these bytes go")
    .body("application/offset+octet-stream", binary())
    .answers(204, "Appended: the new `Upload-Offset`", None))
    .op(Op::new(
        Delete,
        "/upload/resumable/{id}",
        "Abandon a resumable upload",
    )
    .header("tus-resumable", "`1.0.0`")
    .answers(204, "Abandoned", None))
    .build()
}

/// The transformation parameters of `/render/image/…`.
fn transformed(op: Op) -> Op {
    op.query("width", "Width in pixels (at most 2000; never enlarged)")
        .query("height", "Height in pixels (at most 2000; never enlarged)")
        .query(
            "resize",
            "`cover` (default: fill and crop), `contain` or `fill` (stretch)",
        )
        .query("quality", "JPEG quality, 20 to 100 (default 80)")
        .query("format", "`origin` (default) or `webp`")
        .answers(
            200,
            "The image; `x-transformations` says what was applied",
            None,
        )
}
