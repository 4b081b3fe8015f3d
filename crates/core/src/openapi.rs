//! Each service's part of `/openapi.json`: a service lists its operations with [`Doc`] and
//! [`Op`]; the server nests the parts under their prefixes (`/auth/v1`, ...) and declares
//! the two credentials, [`APIKEY`] and [`BEARER`].

use utoipa::{
    ToSchema,
    openapi::{
        ComponentsBuilder, Content, HttpMethod, OpenApi, OpenApiBuilder, PathItem, PathsBuilder,
        Ref, RefOr, Required, ResponseBuilder, Schema,
        path::{OperationBuilder, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        schema::{ObjectBuilder, Type},
        security::SecurityRequirement,
    },
};

/// The security scheme of the project's `apikey` header (the anon or service_role key).
pub const APIKEY: &str = "apikey";
/// The security scheme of `Authorization: Bearer <user or service token>`.
pub const BEARER: &str = "bearer";

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nobody's key: the request carries its own proof (a signed URL's token, a webhook's
    /// signature, an email link).
    Open,
    /// The `apikey`, and a user's token where there is one (the anon key alone otherwise).
    Key,
    /// The `apikey` and a signed-in user's (or the service role's) token.
    User,
    /// `Authorization: Bearer` alone: a user's token, or the anon or service_role key.
    Bearer,
}

/// One operation.
pub struct Op {
    method: HttpMethod,
    path: String,
    op: OperationBuilder,
    access: Access,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Op {
    /// `method path`, summed up in one line. Path parameters (`{id}`) are declared from the
    /// path itself as required strings.
    pub fn new(method: HttpMethod, path: &str, summary: &str) -> Self {
        let mut op = OperationBuilder::new().summary(Some(summary));
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(string())),
            );
        }
        Self {
            method,
            path: path.to_owned(),
            op,
            access: Access::Key,
            schemas: Vec::new(),
        }
    }

    /// Sets who may call it (the default is [`Access::Key`]).
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// A longer description (Markdown).
    pub fn describe(mut self, text: &str) -> Self {
        self.op = self.op.description(Some(text));
        self
    }

    /// An optional string query parameter.
    pub fn query(self, name: &str, description: &str) -> Self {
        self.optional(ParameterIn::Query, name, description)
    }

    /// An optional request header.
    pub fn header(self, name: &str, description: &str) -> Self {
        self.optional(ParameterIn::Header, name, description)
    }

    fn optional(mut self, place: ParameterIn, name: &str, description: &str) -> Self {
        self.op = self.op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(place)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(string())),
        );
        self
    }

    /// A JSON body of type `T`, registered as a component (with the types it refers to).
    pub fn json_body<T: ToSchema>(mut self) -> Self {
        let name = T::name().into_owned();
        T::schemas(&mut self.schemas);
        self.schemas.push((name.clone(), T::schema()));
        self.body("application/json", Ref::from_schema_name(name))
    }

    /// A body of `content_type` described by `schema`.
    pub fn body(mut self, content_type: &str, schema: impl Into<RefOr<Schema>>) -> Self {
        self.op = self.op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(content_type, Content::new(Some(schema)))
                .build(),
        ));
        self
    }

    /// A success answer: `status`, what it holds, and (when JSON) its schema.
    pub fn answers(mut self, status: u16, description: &str, json: Option<Schema>) -> Self {
        let mut response = ResponseBuilder::new().description(description);
        if let Some(schema) = json {
            response = response.content("application/json", Content::new(Some(schema)));
        }
        self.op = self.op.response(status.to_string(), response.build());
        self
    }
}

/// A service's operations, tagged with its name, and the shape of its errors.
pub struct Doc {
    tag: String,
    error: String,
    paths: PathsBuilder,
    components: ComponentsBuilder,
}

impl Doc {
    /// A service named `tag` whose 4xx answers have the shape `error`, registered as the
    /// component `error_name`.
    pub fn new(tag: &str, error_name: &str, error: Schema) -> Self {
        Self {
            tag: tag.to_owned(),
            error: error_name.to_owned(),
            paths: PathsBuilder::new(),
            components: ComponentsBuilder::new().schema(error_name, error),
        }
    }

    /// Adds an operation; its 4xx answers are the service's errors.
    pub fn op(mut self, op: Op) -> Self {
        // `auth_get_admin_users_id`: unique across services, stable across releases.
        let path = op.path.replace(['/', '{', '}', '.', '-'], "_");
        let mut id = format!("{}_{}{}", self.tag, method_name(&op.method), path);
        while id.contains("__") {
            id = id.replace("__", "_");
        }
        let operation = op
            .op
            .tag(self.tag.clone())
            .response(
                "4XX",
                ResponseBuilder::new()
                    .description("The request was refused; the body says why")
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name(&self.error))),
                    )
                    .build(),
            )
            .securities(Some(match op.access {
                Access::Open => vec![SecurityRequirement::default()],
                Access::Key => vec![
                    SecurityRequirement::new(APIKEY, Vec::<String>::new()),
                    SecurityRequirement::new(APIKEY, Vec::<String>::new())
                        .add(BEARER, Vec::<String>::new()),
                ],
                Access::Bearer => vec![SecurityRequirement::new(BEARER, Vec::<String>::new())],
                Access::User => vec![
                    SecurityRequirement::new(APIKEY, Vec::<String>::new())
                        .add(BEARER, Vec::<String>::new()),
                ],
            }))
            .operation_id(Some(id.trim_end_matches('_')))
            .build();
        self.paths = self
            .paths
            .path(op.path, PathItem::new(op.method, operation));
        self.components = self.components.schemas_from_iter(op.schemas);
        self
    }

    /// Registers a named schema that operations refer to (`#/components/schemas/{name}`).
    pub fn schema(mut self, name: &str, schema: Schema) -> Self {
        self.components = self.components.schema(name, schema);
        self
    }

    /// The finished part.
    pub fn build(self) -> OpenApi {
        OpenApiBuilder::new()
            .paths(self.paths)
            .components(Some(self.components.build()))
            .build()
    }
}

fn method_name(method: &HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Delete => "delete",
        HttpMethod::Options => "options",
        HttpMethod::Head => "head",
        HttpMethod::Patch => "patch",
        HttpMethod::Trace => "trace",
    }
}

/// `{"type": "string"}`.
pub fn string() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).into()
}

/// An object with these fields: (name, type, required).
pub fn object(fields: &[(&str, Type, bool)]) -> Schema {
    fields
        .iter()
        .fold(ObjectBuilder::new(), |o, (name, ty, required)| {
            let o = o.property(*name, ObjectBuilder::new().schema_type(ty.clone()));
            if *required { o.required(*name) } else { o }
        })
        .into()
}

/// A file's bytes, of any media type.
pub fn binary() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/octet-stream")
        .into()
}

/// Any JSON object.
pub fn any_object() -> Schema {
    ObjectBuilder::new().schema_type(Type::Object).into()
}
