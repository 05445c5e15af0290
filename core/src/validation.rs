//! Checks on a CreateSessions element that need no state: required fields, session type, file paths that must
//! stay inside the agent's folders, and the autorun argument limits.

use crate::model::{SessionSpec, SessionType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgumentLimits {
    pub max_arguments: usize,
    pub max_argument_length: usize,
}

impl Default for ArgumentLimits {
    /// `autorun-file-arguments-max-size` and `autorun-file-arguments-max-argument-length` of the original.
    fn default() -> Self {
        ArgumentLimits { max_arguments: 50, max_argument_length: 150 }
    }
}

/// The fields of a CreateSessions element before validation (what the client sent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionRequest {
    pub name: Option<String>,
    pub owner: Option<String>,
    pub session_type: Option<String>,
    pub dcv_gl_enabled: Option<bool>,
    pub max_concurrent_clients: Option<i64>,
    pub init_file: Option<String>,
    pub autorun_file: Option<String>,
    pub autorun_file_arguments: Vec<String>,
    pub permissions_file: Option<String>,
    pub requirements: Option<String>,
    pub enqueue_request: bool,
    pub disable_retry_on_failure: bool,
    pub storage_root: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSession {
    #[error("The {0} parameter is required")]
    Missing(&'static str),
    #[error("Invalid session type '{0}': expected CONSOLE or VIRTUAL")]
    BadType(String),
    #[error("The {field} '{path}' must be a path relative to the agent's {field} folder and stay inside it")]
    EscapingPath { field: &'static str, path: String },
    #[error("Too many autorun file arguments: {count} (the limit is {limit})")]
    TooManyArguments { count: usize, limit: usize },
    #[error("Autorun file argument {index} is {length} characters long (the limit is {limit})")]
    ArgumentTooLong { index: usize, length: usize, limit: usize },
    #[error("MaxConcurrentClients must be positive, got {0}")]
    BadMaxConcurrentClients(i64),
    #[error("Invalid Requirements: {0}")]
    BadRequirements(crate::requirements::ParseError),
    #[error("The PermissionsFile parameter must be the base64 of a DCV permissions file")]
    BadPermissionsFile,
}

/// Standard base64 with padding (RFC 4648), as DCV permissions files are sent; core has no codec dependency,
/// and only the form matters here (the agent decodes).
pub fn is_base64(text: &str) -> bool {
    let bytes = text.trim().as_bytes();
    let body = bytes.iter().rposition(|b| *b != b'=').map_or(0, |last| last + 1);
    let padding = bytes.len() - body;
    bytes.len().is_multiple_of(4)
        && padding <= 2
        && bytes[..body].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Turns a request element into a spec, or names the first problem.
pub fn validate(request: SessionRequest, limits: ArgumentLimits) -> Result<SessionSpec, InvalidSession> {
    let name = required(request.name, "Name")?;
    let owner = required(request.owner, "Owner")?;
    let session_type = match request.session_type.as_deref() {
        None => None,
        Some(text) => Some(SessionType::parse_api(text).ok_or_else(|| InvalidSession::BadType(text.to_owned()))?),
    };
    if let Some(path) = &request.init_file {
        check_inside_folder("InitFile", path)?;
    }
    if let Some(path) = &request.autorun_file {
        check_inside_folder("AutorunFile", path)?;
    }
    if request.autorun_file_arguments.len() > limits.max_arguments {
        return Err(InvalidSession::TooManyArguments {
            count: request.autorun_file_arguments.len(),
            limit: limits.max_arguments,
        });
    }
    for (index, argument) in request.autorun_file_arguments.iter().enumerate() {
        let length = argument.chars().count();
        if length > limits.max_argument_length {
            return Err(InvalidSession::ArgumentTooLong { index, length, limit: limits.max_argument_length });
        }
    }
    if let Some(text) = &request.requirements {
        crate::requirements::parse(text).map_err(InvalidSession::BadRequirements)?;
    }
    if request.permissions_file.as_deref().is_some_and(|file| !is_base64(file)) {
        return Err(InvalidSession::BadPermissionsFile);
    }
    if let Some(max) = request.max_concurrent_clients {
        if max <= 0 {
            return Err(InvalidSession::BadMaxConcurrentClients(max));
        }
    }
    Ok(SessionSpec {
        name,
        owner,
        session_type,
        dcv_gl_enabled: request.dcv_gl_enabled,
        max_concurrent_clients: request.max_concurrent_clients,
        init_file: request.init_file,
        autorun_file: request.autorun_file,
        autorun_file_arguments: request.autorun_file_arguments,
        permissions_file: request.permissions_file,
        requirements: request.requirements,
        enqueue_request: request.enqueue_request,
        disable_retry_on_failure: request.disable_retry_on_failure,
        storage_root: request.storage_root,
    })
}

fn required(value: Option<String>, field: &'static str) -> Result<String, InvalidSession> {
    match value {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(InvalidSession::Missing(field)),
    }
}

/// A file named relative to an agent folder may not be absolute nor climb out with `..`.
pub fn check_inside_folder(field: &'static str, path: &str) -> Result<(), InvalidSession> {
    let escapes = path.is_empty()
        || path.starts_with('/')
        || path.starts_with('\\')
        || path.contains('\0')
        || path.as_bytes().get(1) == Some(&b':')
        || path.split(['/', '\\']).any(|part| part == "..");
    if escapes {
        return Err(InvalidSession::EscapingPath { field, path: path.to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SessionRequest {
        SessionRequest { name: Some("n".into()), owner: Some("alice".into()), ..Default::default() }
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, SessionRequest, Result<(), InvalidSession>)> = vec![
            ("minimal", base(), Ok(())),
            ("no name", SessionRequest { name: None, ..base() }, Err(InvalidSession::Missing("Name"))),
            (
                "blank owner",
                SessionRequest { owner: Some(" ".into()), ..base() },
                Err(InvalidSession::Missing("Owner")),
            ),
            ("lower-case type", SessionRequest { session_type: Some("virtual".into()), ..base() }, Ok(())),
            (
                "bad type",
                SessionRequest { session_type: Some("DESKTOP".into()), ..base() },
                Err(InvalidSession::BadType("DESKTOP".into())),
            ),
            ("nested init file", SessionRequest { init_file: Some("a/b.sh".into()), ..base() }, Ok(())),
            (
                "absolute init file",
                SessionRequest { init_file: Some("/etc/passwd".into()), ..base() },
                Err(InvalidSession::EscapingPath { field: "InitFile", path: "/etc/passwd".into() }),
            ),
            (
                "climbing autorun file",
                SessionRequest { autorun_file: Some("x/../../bin/sh".into()), ..base() },
                Err(InvalidSession::EscapingPath { field: "AutorunFile", path: "x/../../bin/sh".into() }),
            ),
            (
                "too many arguments",
                SessionRequest { autorun_file_arguments: vec!["a".into(); 51], ..base() },
                Err(InvalidSession::TooManyArguments { count: 51, limit: 50 }),
            ),
            (
                "argument too long",
                SessionRequest { autorun_file_arguments: vec!["ok".into(), "x".repeat(151)], ..base() },
                Err(InvalidSession::ArgumentTooLong { index: 1, length: 151, limit: 150 }),
            ),
            ("requirements", SessionRequest { requirements: Some("tag:color = 'red'".into()), ..base() }, Ok(())),
            (
                "permissions file not base64",
                SessionRequest { permissions_file: Some("/dcv/permissions.file".into()), ..base() },
                Err(InvalidSession::BadPermissionsFile),
            ),
            (
                "permissions file",
                SessionRequest { permissions_file: Some("W3Blcm1pc3Npb25zXQo=".into()), ..base() },
                Ok(()),
            ),
            (
                "zero clients",
                SessionRequest { max_concurrent_clients: Some(0), ..base() },
                Err(InvalidSession::BadMaxConcurrentClients(0)),
            ),
        ];
        let bad = SessionRequest { requirements: Some("tag:color = ".into()), ..base() };
        let err = validate(bad, ArgumentLimits::default()).unwrap_err().to_string();
        assert!(err.starts_with("Invalid Requirements: position 13:"), "{err}");
        for (name, request, want) in cases {
            let got = validate(request, ArgumentLimits::default()).map(|_| ());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn base64_forms() {
        for good in ["", "QQ==", "QUI=", "QUJD", "a+/9", "W3Blcm1pc3Npb25zXQo="] {
            assert!(is_base64(good), "{good}");
        }
        for bad in ["Q", "QQ=", "Q===", "QU=I", "not base64!", "/dcv/permissions.file"] {
            assert!(!is_base64(bad), "{bad}");
        }
    }
}
