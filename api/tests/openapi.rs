//! The served API definition: the committed file is what the code generates, and it keeps the reference's
//! operations, tags and schemas, which generated clients take their class, method and field names from.
//!
//! `BERTH_UPDATE_SPEC=1 cargo test -p broker-api --test openapi` rewrites `api/dcv-session-manager-api.yaml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use yaml_serde::Value;

fn spec_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dcv-session-manager-api.yaml")
}

#[test]
fn committed_spec_is_what_the_code_generates() {
    let generated = broker_api::openapi::generate_yaml().expect("the definition generates");
    let path = spec_path();
    if std::env::var("BERTH_UPDATE_SPEC").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not what api/src/dto.rs and api/src/openapi.rs generate; regenerate it with\n    \
         BERTH_UPDATE_SPEC=1 cargo test -p broker-api --test openapi\nand commit it",
        path.display()
    );
    // The binary serves the file as it was when this crate was compiled.
    assert_eq!(broker_api::openapi::SPEC_YAML, committed, "rebuild: the served copy is stale");
}

fn ours() -> Value {
    let yaml = broker_api::openapi::generate_yaml().expect("the definition generates");
    yaml_serde::from_str(&yaml).expect("the definition is YAML")
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| v.get(*key).unwrap_or_else(|| panic!("no {path:?} ({key})")))
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value:?}"))
}

/// operationId, method, path, tag, request body (schema, is it an array, is it required), 200 schema.
type Operation =
    (&'static str, &'static str, &'static str, &'static str, Option<(&'static str, bool, bool)>, &'static str);

/// The reference's operations, as generated clients know them. Written out here because CI's clone has no copy
/// of the reference; `matches_the_reference_files` checks this table's facts against the files where they exist.
#[rustfmt::skip]
const OPERATIONS: &[Operation] = &[
    ("describeSessions", "post", "/describeSessions", "sessions", Some(("DescribeSessionsRequestData", false, false)), "DescribeSessionsResponse"),
    ("describeServers", "post", "/describeServers", "servers", Some(("DescribeServersRequestData", false, false)), "DescribeServersResponse"),
    ("createSessions", "post", "/createSessions", "sessions", Some(("CreateSessionRequestData", true, true)), "CreateSessionsResponse"),
    ("deleteSessions", "post", "/deleteSessions", "sessions", Some(("DeleteSessionRequestData", true, true)), "DeleteSessionsResponse"),
    ("updateSessionPermissions", "put", "/sessionPermissions", "sessionPermissions", Some(("UpdateSessionPermissionsRequestData", true, true)), "UpdateSessionPermissionsResponse"),
    ("GetSessionConnectionData", "get", "/sessionConnectionData/{sessionId}/{user}", "GetSessionConnectionData", None, "GetSessionConnectionDataResponse"),
    ("getSessionScreenshots", "post", "/getSessionScreenshots", "sessions", Some(("GetSessionScreenshotRequestData", true, true)), "GetSessionScreenshotsResponse"),
    ("openServers", "post", "/openServers", "servers", Some(("OpenServerRequestData", true, true)), "OpenServersResponse"),
    ("closeServers", "post", "/closeServers", "servers", Some(("CloseServerRequestData", true, true)), "CloseServersResponse"),
];

/// Every schema the reference operations reach, with its properties.
#[rustfmt::skip]
const SCHEMAS: &[(&str, &[&str])] = &[
    ("KeyValuePair", &["Key", "Value"]),
    ("Server", &["Id", "Ip", "Hostname", "DefaultDnsName", "Port", "Endpoints", "WebUrlPath", "Version", "SessionManagerAgentVersion", "Availability", "UnavailabilityReason", "ConsoleSessionCount", "VirtualSessionCount", "Host", "Tags"]),
    ("Endpoint", &["IpAddress", "Port", "WebUrlPath", "Protocol"]),
    ("Host", &["Os", "Memory", "Swap", "Aws", "CpuInfo", "CpuLoadAverage", "Gpus", "LoggedInUsers"]),
    ("Os", &["Family", "Name", "Version", "KernelVersion", "BuildNumber"]),
    ("Memory", &["TotalBytes", "UsedBytes"]),
    ("Swap", &["TotalBytes", "UsedBytes"]),
    ("CpuInfo", &["Vendor", "ModelName", "Architecture", "NumberOfCpus", "PhysicalCoresPerCpu"]),
    ("CpuLoadAverage", &["OneMinute", "FiveMinutes", "FifteenMinutes"]),
    ("Gpu", &["Vendor", "ModelName"]),
    ("LoggedInUser", &["Username"]),
    ("Aws", &["Region", "EC2InstanceType", "EC2InstanceId", "EC2ImageId"]),
    ("Session", &["Id", "Name", "Owner", "Server", "Type", "MaxConcurrentClients", "State", "Substate", "StateReason", "CreationTime", "LastDisconnectionTime", "NumOfConnections", "StorageRoot"]),
    ("DescribeSessionsRequestData", &["SessionIds", "Filters", "MaxResults", "NextToken"]),
    ("DescribeSessionsResponse", &["RequestId", "Sessions", "NextToken"]),
    ("DescribeServersRequestData", &["ServerIds", "MaxResults", "NextToken"]),
    ("DescribeServersResponse", &["RequestId", "Servers", "NextToken"]),
    ("CreateSessionRequestData", &["Name", "Owner", "Type", "DcvGlEnabled", "MaxConcurrentClients", "InitFilePath", "InitFile", "AutorunFile", "AutorunFileArguments", "PermissionsFile", "Requirements", "EnqueueRequest", "DisableRetryOnFailure", "StorageRoot"]),
    ("UnsuccessfulCreateSessionRequestData", &["CreateSessionRequestData", "FailureReason"]),
    ("CreateSessionsResponse", &["RequestId", "SuccessfulList", "UnsuccessfulList"]),
    ("DeleteSessionRequestData", &["SessionId", "Owner", "Force"]),
    ("DeleteSessionSuccessfulResponse", &["SessionId", "State"]),
    ("DeleteSessionUnsuccessfulResponse", &["SessionId", "FailureReason"]),
    ("DeleteSessionsResponse", &["RequestId", "SuccessfulList", "UnsuccessfulList"]),
    ("UpdateSessionPermissionsRequestData", &["SessionId", "Owner", "PermissionsFile"]),
    ("UpdateSessionPermissionsSuccessfulResponse", &["SessionId"]),
    ("UpdateSessionPermissionsUnsuccessfulResponse", &["SessionId", "FailureReason"]),
    ("UpdateSessionPermissionsResponse", &["RequestId", "SuccessfulList", "UnsuccessfulList"]),
    ("GetSessionConnectionDataResponse", &["Session", "ConnectionToken"]),
    ("GetSessionScreenshotRequestData", &["SessionId", "MaxWidth", "MaxHeight"]),
    ("GetSessionScreenshotsResponse", &["RequestId", "SuccessfulList", "UnsuccessfulList"]),
    ("GetSessionScreenshotSuccessfulResponse", &["SessionScreenshot"]),
    ("GetSessionScreenshotUnsuccessfulResponse", &["GetSessionScreenshotRequestData", "FailureReason"]),
    ("SessionScreenshot", &["SessionId", "Images"]),
    ("SessionScreenshotImage", &["Format", "Data", "CreationTime", "Primary"]),
    ("OpenServerRequestData", &["ServerId"]),
    ("OpenServersResponse", &["RequestId", "SuccessfulList", "UnsuccessfulList"]),
    ("OpenServerSuccessfulResponse", &["ServerId"]),
    ("OpenServerUnsuccessfulResponse", &["OpenServerRequestData", "FailureCode", "FailureReason"]),
    ("CloseServerRequestData", &["ServerId", "Force"]),
    ("CloseServersResponse", &["RequestId", "SuccessfulList", "UnsuccessfulList"]),
    ("CloseServerSuccessfulResponse", &["ServerId"]),
    ("CloseServerUnsuccessfulResponse", &["CloseServerRequestData", "FailureCode", "FailureReason"]),
];

/// Beyond the reference: the token endpoint, and the error body our error responses carry.
const EXTRA_OPERATIONS: &[(&str, &str, &str, &str)] = &[("getAccessToken", "post", "/oauth2/token", "oauth2")];
const EXTRA_SCHEMAS: &[&str] = &["ErrorBody", "TokenResponse"];

/// The schema name a `$ref` names, and whether it sits in an array.
fn referenced(schema: &Value) -> (String, bool) {
    match schema.get("$ref") {
        Some(target) => (str_of(target).trim_start_matches("#/components/schemas/").to_owned(), false),
        None => {
            assert_eq!(schema.get("type").and_then(Value::as_str), Some("array"), "{schema:?}");
            (referenced(get(schema, &["items"])).0, true)
        }
    }
}

fn operations_of(document: &Value) -> BTreeMap<String, (String, String, &Value)> {
    let mut found = BTreeMap::new();
    for (path, item) in get(document, &["paths"]).as_mapping().unwrap() {
        for (method, operation) in item.as_mapping().unwrap() {
            let id = str_of(get(operation, &["operationId"])).to_owned();
            let previous = found.insert(id.clone(), (str_of(method).to_owned(), str_of(path).to_owned(), operation));
            assert!(previous.is_none(), "operationId {id} twice");
        }
    }
    found
}

fn tags_of(operation: &Value) -> Vec<&str> {
    get(operation, &["tags"]).as_sequence().unwrap().iter().map(str_of).collect()
}

fn property_names(document: &Value, schema: &str) -> BTreeSet<String> {
    let schema = get(document, &["components", "schemas", schema]);
    match schema.get("properties").and_then(Value::as_mapping) {
        Some(properties) => properties.keys().map(|k| str_of(k).to_owned()).collect(),
        None => BTreeSet::new(),
    }
}

#[test]
fn keeps_the_operations_and_schemas_clients_are_generated_from() {
    let doc = ours();
    assert!(str_of(get(&doc, &["openapi"])).starts_with("3.0."), "served as OpenAPI 3.0");
    let operations = operations_of(&doc);
    for (id, method, path, tag, body, answer) in OPERATIONS {
        let (m, p, operation) = operations.get(*id).unwrap_or_else(|| panic!("no operation {id}"));
        assert_eq!((m.as_str(), p.as_str()), (*method, *path), "{id}");
        assert_eq!(tags_of(operation), [*tag], "{id}");
        let ok = get(operation, &["responses", "200", "content", "application/json", "schema"]);
        assert_eq!(referenced(ok), (answer.to_string(), false), "{id}");
        match body {
            None => assert!(operation.get("requestBody").is_none(), "{id}"),
            Some((schema, array, required)) => {
                let request = get(operation, &["requestBody"]);
                let content = get(request, &["content", "application/json", "schema"]);
                assert_eq!(referenced(content), (schema.to_string(), *array), "{id}");
                let is_required = request.get("required").and_then(Value::as_bool).unwrap_or(false);
                assert_eq!(is_required, *required, "{id}: requestBody.required");
            }
        }
        for status in ["400", "401", "503"] {
            let error = get(operation, &["responses", status, "content", "application/json", "schema"]);
            assert_eq!(referenced(error), ("ErrorBody".to_owned(), false), "{id} {status}");
        }
    }
    for (id, method, path, tag) in EXTRA_OPERATIONS {
        let (m, p, operation) = operations.get(*id).unwrap_or_else(|| panic!("no operation {id}"));
        assert_eq!((m.as_str(), p.as_str(), tags_of(operation)), (*method, *path, vec![*tag]), "{id}");
    }
    let known: BTreeSet<&str> = OPERATIONS.iter().map(|o| o.0).chain(EXTRA_OPERATIONS.iter().map(|o| o.0)).collect();
    let served: BTreeSet<&str> = operations.keys().map(String::as_str).collect();
    assert_eq!(served, known, "an operation was added or lost: update the tables here");

    for (name, properties) in SCHEMAS {
        let expected: BTreeSet<String> = properties.iter().map(|p| p.to_string()).collect();
        assert_eq!(property_names(&doc, name), expected, "schema {name}");
    }
    let schemas: BTreeSet<&str> =
        get(&doc, &["components", "schemas"]).as_mapping().unwrap().keys().map(str_of).collect();
    let known: BTreeSet<&str> = SCHEMAS.iter().map(|s| s.0).chain(EXTRA_SCHEMAS.iter().copied()).collect();
    assert_eq!(schemas, known, "a schema was added or lost: update the tables here");
    assert_eq!(property_names(&doc, "ErrorBody"), BTreeSet::from(["error".to_owned()]));

    let bearer = get(&doc, &["components", "securitySchemes", "bearerAuth"]);
    assert_eq!((str_of(get(bearer, &["type"])), str_of(get(bearer, &["scheme"]))), ("http", "bearer"));
    let security = get(&doc, &["security"]).as_sequence().unwrap();
    assert!(security.iter().any(|s| s.get("bearerAuth").is_some()), "bearer auth applies to every operation");
    let token = operations["getAccessToken"].2;
    let token_security = get(token, &["security"]).as_sequence().unwrap();
    assert!(token_security.iter().all(|s| s.get("basicAuth").is_some()), "the token endpoint takes Basic auth");
}

/// The reference files, where this checkout has them (`../shared/reference/` beside the project).
fn reference_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// `type`, `format`, `nullable` and the referenced schema of a property or array item: what decides the field's
/// type in a generated client.
fn shape(schema: &Value) -> String {
    if let Some(target) = schema.get("$ref") {
        return format!("ref {}", str_of(target));
    }
    let field = |key: &str| schema.get(key).map(|v| yaml_serde::to_string(v).unwrap().trim().to_owned());
    let mut shape = format!("{} {}", field("type").unwrap_or_default(), field("format").unwrap_or_default());
    if field("nullable").as_deref() == Some("true") {
        shape.push_str(" nullable");
    }
    if let Some(items) = schema.get("items") {
        shape = format!("{shape} of {}", self::shape(items));
    }
    shape
}

/// Every schema reachable from `name` through `$ref`s.
fn reachable(document: &Value, name: &str, seen: &mut BTreeSet<String>) {
    if !seen.insert(name.to_owned()) {
        return;
    }
    fn walk(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Mapping(map) => {
                for (key, child) in map {
                    if key.as_str() == Some("$ref") {
                        found.push(str_of(child).trim_start_matches("#/components/schemas/").to_owned());
                    }
                    walk(child, found);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|child| walk(child, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(get(document, &["components", "schemas", name]), &mut found);
    for next in found {
        reachable(document, &next, seen);
    }
}

#[test]
fn matches_the_reference_files() {
    let files = reference_files();
    if files.is_empty() {
        eprintln!("no ../shared/reference beside the project: checked against the committed tables only");
        return;
    }
    let doc = ours();
    let operations = operations_of(&doc);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let reference: Value = yaml_serde::from_str(&text).unwrap();
        let name = file.file_name().unwrap().to_string_lossy();
        let mut used = BTreeSet::new();
        for (id, (method, path, theirs)) in operations_of(&reference) {
            let (m, p, mine) = operations.get(&id).unwrap_or_else(|| panic!("{name}: we lack operation {id}"));
            assert_eq!((m, p), (&method, &path), "{name}: {id}");
            assert_eq!(tags_of(mine), tags_of(theirs), "{name}: {id} tags");
            let table = OPERATIONS.iter().find(|o| o.0 == id).unwrap_or_else(|| panic!("{id} not in OPERATIONS"));
            assert_eq!((table.1, table.2), (method.as_str(), path.as_str()), "OPERATIONS row {id}");
            match (theirs.get("requestBody"), mine.get("requestBody")) {
                (None, None) => {}
                (Some(theirs), Some(mine)) => {
                    let schema = ["content", "application/json", "schema"];
                    assert_eq!(referenced(get(mine, &schema)), referenced(get(theirs, &schema)), "{name}: {id} body");
                    let required = |b: &Value| b.get("required").and_then(Value::as_bool).unwrap_or(false);
                    assert_eq!(required(mine), required(theirs), "{name}: {id} body required");
                    used.insert(referenced(get(theirs, &schema)).0);
                }
                (theirs, mine) => panic!("{name}: {id} request body {theirs:?} against ours {mine:?}"),
            }
            let ok = ["responses", "200", "content", "application/json", "schema"];
            assert_eq!(referenced(get(mine, &ok)), referenced(get(theirs, &ok)), "{name}: {id} answer");
            used.insert(referenced(get(theirs, &ok)).0);
            if let Some(parameters) = theirs.get("parameters").and_then(Value::as_sequence) {
                let names = |ps: &Value| -> Vec<(String, String)> {
                    ps.as_sequence()
                        .unwrap()
                        .iter()
                        .map(|p| (str_of(get(p, &["name"])).to_owned(), str_of(get(p, &["in"])).to_owned()))
                        .collect()
                };
                let theirs = names(&Value::Sequence(parameters.clone()));
                assert_eq!(names(get(mine, &["parameters"])), theirs, "{name}: {id} parameters");
            }
        }
        let mut reached = BTreeSet::new();
        for schema in &used {
            reachable(&reference, schema, &mut reached);
        }
        for schema in &reached {
            let properties = |d: &Value| -> BTreeMap<String, String> {
                get(d, &["components", "schemas", schema])
                    .get("properties")
                    .and_then(Value::as_mapping)
                    .map(|m| m.iter().map(|(k, v)| (str_of(k).to_owned(), shape(v))).collect())
                    .unwrap_or_default()
            };
            let (theirs, mine) = (properties(&reference), properties(&doc));
            for (property, their_shape) in &theirs {
                let my_shape = mine.get(property).unwrap_or_else(|| panic!("{name}: {schema} lacks {property}"));
                assert_eq!(my_shape, their_shape, "{name}: {schema}.{property}");
            }
            let table = SCHEMAS.iter().find(|s| s.0 == schema).unwrap_or_else(|| panic!("{schema} not in SCHEMAS"));
            let listed: BTreeSet<&str> = table.1.iter().copied().collect();
            assert!(
                theirs.keys().all(|p| listed.contains(p.as_str())),
                "SCHEMAS row {schema} lacks a property of {name}"
            );
        }
        let bearer = |d: &Value| {
            d.get("components").and_then(|c| c.get("securitySchemes")).and_then(|s| s.get("bearerAuth")).cloned()
        };
        if let Some(theirs) = bearer(&reference) {
            assert_eq!(bearer(&doc), Some(theirs), "{name}: bearerAuth");
        }
    }
}

#[tokio::test]
async fn is_served_as_yaml() {
    use axum::response::IntoResponse;
    let response = broker_api::openapi::serve_yaml().await.into_response();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert_eq!(body, broker_api::openapi::SPEC_YAML.as_bytes());
}

#[test]
fn translates_nullable_types_and_refuses_other_3_1_forms() {
    use broker_api::openapi::to_openapi_3_0;
    let translate = |yaml: &str| {
        let mut document: Value = yaml_serde::from_str(yaml).unwrap();
        to_openapi_3_0(&mut document).map(|()| document)
    };
    let document = translate(
        "openapi: 3.1.0\ncomponents: {schemas: {A: {properties: {\
         W: {type: [integer, 'null'], format: int64}, type: {type: string}}}}}",
    )
    .unwrap();
    assert_eq!(str_of(get(&document, &["openapi"])), "3.0.3");
    let w = get(&document, &["components", "schemas", "A", "properties", "W"]);
    assert_eq!(shape(w), "integer int64 nullable");
    let refused = |schema: &str| translate(&format!("openapi: 3.1.0\ncomponents: {{schemas: {{A: {schema}}}}}"));
    // An `Option<Dto>` field without `nullable = false`.
    assert!(refused("{oneOf: [{$ref: '#/components/schemas/B'}, {type: 'null'}]}").unwrap_err().contains("type: null"));
    assert!(refused("{type: [integer, string]}").is_err());
    assert!(refused("{type: integer, exclusiveMinimum: 0}").is_err());
    assert!(refused("{type: string, examples: [a]}").is_err());
    assert!(translate("openapi: 3.0.0\n").is_err(), "a utoipa that writes another version needs a look");
}
