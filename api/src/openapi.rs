//! The served API definition, `GET /dcv-session-manager-api.yaml`: an OpenAPI 3.0 document generated with utoipa
//! from the DTOs and the operation stubs below, committed as `api/dcv-session-manager-api.yaml` and served verbatim.
//!
//! Users generate clients from it, so it keeps the reference's paths, operationIds, tags and schema names: those
//! become the generated classes and methods (`SessionsApi.describeSessions`, `DescribeSessionsRequestData` ...).
//! The stubs are never routed; the handlers live in `handlers.rs` and `relayed.rs`.
//!
//! utoipa writes OpenAPI 3.1, and `to_openapi_3_0` rewrites it as 3.0: the reference is 3.0, and code generators
//! still in use (swagger-codegen 3.0, as the DCV guide recommends) do not read 3.1.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use yaml_serde::{Mapping, Value};

use crate::dto::{
    CloseServerRequestData, CloseServersResponse, CreateSessionRequestData, CreateSessionsResponse,
    DeleteSessionRequestData, DeleteSessionsResponse, DescribeServersRequestData, DescribeServersResponse,
    DescribeSessionsRequestData, DescribeSessionsResponse, ErrorBody, GetSessionConnectionDataResponse,
    GetSessionScreenshotRequestData, GetSessionScreenshotsResponse, OpenServerRequestData, OpenServersResponse,
    TokenResponse, UpdateSessionPermissionsRequestData, UpdateSessionPermissionsResponse,
};

/// The committed document; `api/tests/openapi.rs` fails when it differs from `generate_yaml()`.
pub const SPEC_YAML: &str = include_str!("../dcv-session-manager-api.yaml");

/// Served without authentication: a user needs the definition to build the client that gets a token.
pub async fn serve_yaml() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], SPEC_YAML)
}

/// The document as it is committed: a header saying how to regenerate it, then the OpenAPI 3.0 YAML.
pub fn generate_yaml() -> Result<String, String> {
    let mut document = yaml_serde::to_value(ApiDoc::openapi()).map_err(|e| e.to_string())?;
    to_openapi_3_0(&mut document)?;
    add_constraints(&mut document)?;
    let body = yaml_serde::to_string(&document).map_err(|e| e.to_string())?;
    Ok(format!("{HEADER}{body}"))
}

const HEADER: &str = "\
# The Amazon DCV Session Manager API as Berth serves it. Generated from api/src/dto.rs and api/src/openapi.rs;
# do not edit. Regenerate with: BERTH_UPDATE_SPEC=1 cargo test -p broker-api --test openapi
";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DCV Session Manager",
        version = "2023.0",
        description = "The Amazon DCV Session Manager REST API, served by Berth. Every operation but \
            `/oauth2/token` needs `Authorization: Bearer <access token>`; get the token from `/oauth2/token` \
            with the client credentials of a registered API client.",
        license(name = "Apache-2.0"),
    ),
    servers((url = "/", description = "The broker that served this document (any node of the cluster)")),
    paths(
        describe_sessions,
        describe_servers,
        create_sessions,
        delete_sessions,
        update_session_permissions,
        get_session_connection_data,
        get_session_screenshots,
        open_servers,
        close_servers,
        access_token,
    ),
    components(schemas(ErrorBody)),
    modifiers(&CommonParts),
    security(("bearerAuth" = [])),
    tags(
        (name = "sessions", description = "Create, describe, delete and take screenshots of DCV sessions"),
        (name = "sessionPermissions", description = "Replace the permissions file of DCV sessions"),
        (name = "servers", description = "Describe DCV servers, and open or close them for placement"),
        (name = "GetSessionConnectionData", description = "What a DCV client needs to connect to a session"),
        (name = "oauth2", description = "Access tokens for API clients (OAuth 2.0 client credentials grant)"),
    )
)]
struct ApiDoc;

/// Finds sessions
///
/// All sessions, or those asked for by id, filtered by owner or by a tag of their server, in pages. The read
/// sees every write acknowledged before it, whichever node is asked.
#[utoipa::path(
    post,
    path = "/describeSessions",
    operation_id = "describeSessions",
    tag = "sessions",
    request_body(content = DescribeSessionsRequestData, description = "What to describe; no body describes every session"),
    responses(
        (status = 200, description = "A page of sessions", body = DescribeSessionsResponse),
        (status = 400, description = "A body that does not parse, MaxResults outside 1..1000, an unknown filter or a NextToken this cluster did not issue", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn describe_sessions() {}

/// Finds servers
///
/// All DCV servers known to the cluster, or those asked for by id, in pages.
#[utoipa::path(
    post,
    path = "/describeServers",
    operation_id = "describeServers",
    tag = "servers",
    request_body(content = DescribeServersRequestData, description = "What to describe; no body describes every server"),
    responses(
        (status = 200, description = "A page of servers", body = DescribeServersResponse),
        (status = 400, description = "A body that does not parse, MaxResults outside 1..1000 or a NextToken this cluster did not issue", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn describe_servers() {}

/// Creates sessions
///
/// Accepted sessions are answered at once in `CREATING` / `SESSION_PLACING` and become `READY` once a server has
/// created them. An element that fails validation is answered in `UnsuccessfulList` without failing the others.
#[utoipa::path(
    post,
    path = "/createSessions",
    operation_id = "createSessions",
    tag = "sessions",
    request_body(content = Vec<CreateSessionRequestData>, description = "The sessions to create"),
    responses(
        (status = 200, description = "Each session accepted or refused on its own", body = CreateSessionsResponse),
        (status = 400, description = "A body that is not an array of CreateSessionRequestData", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn create_sessions() {}

/// Deletes sessions
///
/// Sessions go to `DELETING`, then `DELETED` once their server has closed them. `Force` forgets a session whose
/// server cannot be reached.
#[utoipa::path(
    post,
    path = "/deleteSessions",
    operation_id = "deleteSessions",
    tag = "sessions",
    request_body(content = Vec<DeleteSessionRequestData>, description = "The sessions to delete"),
    responses(
        (status = 200, description = "Each session deleted or refused on its own", body = DeleteSessionsResponse),
        (status = 400, description = "A body that is not an array of DeleteSessionRequestData", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn delete_sessions() {}

/// Updates session permissions
///
/// Replaces the permissions file of `READY` sessions on their servers.
#[utoipa::path(
    put,
    path = "/sessionPermissions",
    operation_id = "updateSessionPermissions",
    tag = "sessionPermissions",
    request_body(content = Vec<UpdateSessionPermissionsRequestData>, description = "The sessions to update"),
    responses(
        (status = 200, description = "Each session updated or refused on its own", body = UpdateSessionPermissionsResponse),
        (status = 400, description = "A body that is not an array of UpdateSessionPermissionsRequestData", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn update_session_permissions() {}

/// Gets the information to connect to a session
///
/// The session and a connection token that the session's DCV server accepts for this user and this session
/// only, until it expires. A web client connects to
/// `https://{Ip}:{Port}{WebUrlPath}?authToken={ConnectionToken}#{SessionId}`.
#[utoipa::path(
    get,
    path = "/sessionConnectionData/{sessionId}/{user}",
    operation_id = "GetSessionConnectionData",
    tag = "GetSessionConnectionData",
    params(
        ("sessionId" = String, Path, description = "The session to connect to"),
        ("user" = String, Path, description = "The user the connection token is for"),
    ),
    responses(
        (status = 200, description = "The session and a connection token", body = GetSessionConnectionDataResponse),
        (status = 400, description = "The session does not exist or was deleted", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn get_session_connection_data() {}

/// Gets session screenshots
///
/// Asks the servers of `READY` sessions for a screenshot of each screen, no larger than MaxWidth x MaxHeight.
#[utoipa::path(
    post,
    path = "/getSessionScreenshots",
    operation_id = "getSessionScreenshots",
    tag = "sessions",
    request_body(content = Vec<GetSessionScreenshotRequestData>, description = "The sessions to take screenshots of"),
    responses(
        (status = 200, description = "Each screenshot taken or refused on its own", body = GetSessionScreenshotsResponse),
        (status = 400, description = "A body that is not an array of GetSessionScreenshotRequestData", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn get_session_screenshots() {}

/// Opens servers for placement
///
/// An open server takes new sessions again.
#[utoipa::path(
    post,
    path = "/openServers",
    operation_id = "openServers",
    tag = "servers",
    request_body(content = Vec<OpenServerRequestData>, description = "The servers to open"),
    responses(
        (status = 200, description = "Each server opened or refused on its own", body = OpenServersResponse),
        (status = 400, description = "A body that is not an array of OpenServerRequestData", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn open_servers() {}

/// Closes servers for placement
///
/// A closed server takes no new sessions. Without `Force`, a server that runs sessions is not closed; with it,
/// the server closes and its sessions keep running.
#[utoipa::path(
    post,
    path = "/closeServers",
    operation_id = "closeServers",
    tag = "servers",
    request_body(content = Vec<CloseServerRequestData>, description = "The servers to close"),
    responses(
        (status = 200, description = "Each server closed or refused on its own", body = CloseServersResponse),
        (status = 400, description = "A body that is not an array of CloseServerRequestData", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn close_servers() {}

/// Gets an access token
///
/// The OAuth 2.0 client credentials grant: the API client's id and secret in HTTP Basic authentication, and
/// `grant_type=client_credentials` in the query (or in an `application/x-www-form-urlencoded` body).
#[utoipa::path(
    post,
    path = "/oauth2/token",
    operation_id = "getAccessToken",
    tag = "oauth2",
    params(("grant_type" = String, Query, description = "Must be `client_credentials`", example = "client_credentials")),
    security(("basicAuth" = [])),
    responses(
        (status = 200, description = "An access token for the Bearer authorization of the other operations", body = TokenResponse),
        (status = 400, description = "No grant_type, or one other than client_credentials", body = ErrorBody),
        (status = 401, description = "No Basic authorization header, or an unknown client id or wrong secret", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn access_token() {}

/// What every operation shares, added here once instead of in each stub.
struct CommonParts;

/// The operations whose body may be left out (the handlers read an empty body as the default request).
const OPTIONAL_BODIES: [&str; 2] = ["describeSessions", "describeServers"];

impl Modify for CommonParts {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearerAuth", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme("basicAuth", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));

        let error = || ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let unauthorized = ResponseBuilder::new()
            .description(
                "No Authorization header (`{\"error\": \"No authorization header\"}`), or a token that is malformed, \
                 expired or not issued by this cluster",
            )
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(utoipa::openapi::schema::Object::with_type(utoipa::openapi::schema::Type::String)))
                    .description(Some("`Bearer`"))
                    .build(),
            )
            .content("application/json", error())
            .build();
        let unavailable = ResponseBuilder::new()
            .description(
                "The cluster cannot answer now: no leader could be reached within the request deadline (no quorum), \
                 or this node is still joining the cluster. Retry, on this node or another.",
            )
            .content("application/json", error())
            .build();

        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let responses = &mut operation.responses.responses;
                responses.entry("401".into()).or_insert_with(|| unauthorized.clone().into());
                responses.entry("503".into()).or_insert_with(|| unavailable.clone().into());
                let optional = operation.operation_id.as_deref().is_some_and(|id| OPTIONAL_BODIES.contains(&id));
                if let (true, Some(RefOr::T(body))) = (optional, operation.request_body.as_mut()) {
                    body.required = Some(Required::False);
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
}

/// What utoipa's attributes cannot say: the bounds the handlers enforce, so that a client or a fuzzer learns them
/// from the document; and `x-codegen-request-body-name: body`, so that generated clients take the request as
/// `body=`, as the developer guide's examples pass it.
fn add_constraints(document: &mut Value) -> Result<(), String> {
    let root = document.as_mapping_mut().ok_or("the document is not a mapping")?;
    if let Some(paths) = root.get_mut("paths").and_then(Value::as_mapping_mut) {
        for (_, item) in paths.iter_mut() {
            let Some(item) = item.as_mapping_mut() else { continue };
            for (_, operation) in item.iter_mut() {
                let Some(operation) = operation.as_mapping_mut() else { continue };
                if operation.contains_key("requestBody") {
                    operation.insert("x-codegen-request-body-name".into(), "body".into());
                }
                let parameters = operation.get_mut("parameters").and_then(Value::as_sequence_mut);
                for parameter in parameters.into_iter().flatten() {
                    if parameter.get("name").and_then(Value::as_str) == Some("grant_type") {
                        if let Some(schema) = parameter.get_mut("schema").and_then(Value::as_mapping_mut) {
                            schema.insert("enum".into(), Value::Sequence(vec!["client_credentials".into()]));
                        }
                    }
                }
            }
        }
    }
    let schemas = root
        .get_mut("components")
        .and_then(|c| c.get_mut("schemas"))
        .and_then(Value::as_mapping_mut)
        .ok_or("no components.schemas in the document")?;
    for name in ["DescribeSessionsRequestData", "DescribeServersRequestData"] {
        let max_results = schemas
            .get_mut(name)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut("MaxResults"))
            .and_then(Value::as_mapping_mut)
            .ok_or(format!("no {name}.MaxResults in the document"))?;
        max_results.insert("minimum".into(), 1.into());
        max_results.insert("maximum".into(), (crate::paging::MAX_RESULTS as u64).into());
    }
    Ok(())
}

/// Rewrites utoipa's OpenAPI 3.1 output as 3.0. Only the 3.1 forms this document uses are translated; any other
/// is an error, so that a new field cannot slip a 3.1-only construct into the served file unnoticed.
pub fn to_openapi_3_0(document: &mut Value) -> Result<(), String> {
    let root = document.as_mapping_mut().ok_or("the document is not a mapping")?;
    match root.get("openapi").and_then(Value::as_str) {
        Some("3.1.0") => {}
        other => return Err(format!("expected utoipa to write OpenAPI 3.1.0, got {other:?}")),
    }
    root.insert("openapi".into(), "3.0.3".into());
    if let Some(info) = root.get_mut("info").and_then(Value::as_mapping_mut) {
        if let Some(license) = info.get_mut("license").and_then(Value::as_mapping_mut) {
            // 3.1 added `identifier` next to `name`.
            license.remove("identifier");
        }
    }
    for key in ["webhooks", "jsonSchemaDialect"] {
        if root.contains_key(key) {
            return Err(format!("`{key}` has no OpenAPI 3.0 form"));
        }
    }
    rewrite_schemas(document, "#")
}

fn rewrite_schemas(value: &mut Value, at: &str) -> Result<(), String> {
    match value {
        Value::Mapping(map) => {
            // The keys of `properties` are field names, not keywords: a field may well be called `type`.
            if !at.ends_with("/properties") {
                rewrite_one(map, at)?;
            }
            for (key, child) in map.iter_mut() {
                let key = key.as_str().unwrap_or("?");
                rewrite_schemas(child, &format!("{at}/{key}"))?;
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                rewrite_schemas(child, &format!("{at}/{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `type: [T, 'null']` becomes `type: T` with `nullable: true`; the other 3.1-only schema keywords are refused.
fn rewrite_one(map: &mut Mapping, at: &str) -> Result<(), String> {
    for key in ["const", "examples", "prefixItems", "contentMediaType", "contentEncoding", "$schema", "$defs"] {
        // `examples` is also a 3.0 keyword of media types and parameters (a map there, a list in 3.1 schemas).
        if map.get(key).is_some_and(|v| key != "examples" || v.is_sequence()) {
            return Err(format!("{at}: `{key}` has no OpenAPI 3.0 form"));
        }
    }
    for key in ["exclusiveMinimum", "exclusiveMaximum"] {
        if map.get(key).is_some_and(|v| !v.is_bool()) {
            return Err(format!("{at}: numeric `{key}` has no OpenAPI 3.0 form"));
        }
    }
    let Some(Value::Sequence(types)) = map.get("type") else {
        if map.get("type").and_then(Value::as_str) == Some("null") {
            return Err(format!("{at}: `type: null` (an Option of a schema reference?) has no OpenAPI 3.0 form"));
        }
        return Ok(());
    };
    let named: Vec<&str> = types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
    let nullable = named.len() < types.len();
    let [single] = named[..] else {
        return Err(format!("{at}: `type: {types:?}` has no OpenAPI 3.0 form"));
    };
    let single = single.to_owned();
    map.insert("type".into(), single.into());
    if nullable {
        map.insert("nullable".into(), true.into());
    }
    Ok(())
}
