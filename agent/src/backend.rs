//! Session backends: what actually runs a session on this host. `SimulatedBackend` keeps sessions in the agent's
//! memory only, for benchmarks and the quick start on a bare machine, and says so in every line it logs.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use broker_core::agent_proto::{ImageFormat, RunningSession, ScreenImage};
use broker_core::model::{Endpoint, EndpointProtocol, SessionSpec, SessionType};

use crate::config::AgentConfig;
use crate::screenshot;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error("this server already runs its maximum of {max} virtual sessions (max_virtual_sessions)")]
    VirtualSessionLimit { max: u32 },
    #[error("this server already runs a console session ({existing}); there can be only one")]
    ConsoleTaken { existing: String },
    #[error("{owner} already runs {max} sessions on this server (max_concurrent_sessions_per_user)")]
    UserSessionLimit { owner: String, max: u32 },
    #[error("the session needs an owner")]
    NoOwner,
    #[error("user {owner} does not exist on this host")]
    NoSuchUser { owner: String },
    #[error("this server runs no session {0}")]
    NoSuchSession(String),
    #[error("{0}")]
    Screenshot(#[from] crate::screenshot::ImageError),
    #[error("the permissions file is not valid base64: {0}")]
    PermissionsFile(String),
}

/// Runs sessions on this host. Creation is idempotent by session id: the leader re-issues creations it is not
/// sure about after a failover, and a repeat must not start a second desktop.
pub trait SessionBackend: Send + Sync + 'static {
    /// The name operators configure (`backend = "..."`).
    fn name(&self) -> &'static str;

    /// The version reported as the server's `Version`.
    fn server_version(&self) -> String;

    /// Where clients connect to this host's sessions.
    fn endpoints(&self, host_ip: &str) -> Vec<Endpoint>;

    /// Creates the session, or does nothing when it already runs.
    fn create(&self, session_id: &str, spec: &SessionSpec) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Deletes the session; deleting one that does not run succeeds.
    fn delete(&self, session_id: &str) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// The sessions that actually run, reported at every registration so a new leader learns of them.
    fn list(&self) -> impl Future<Output = Vec<RunningSession>> + Send;

    /// The session's screens, each scaled to fit `max_width` x `max_height` and never above its resolution.
    fn screenshot(
        &self,
        session_id: &str,
        max_width: u32,
        max_height: u32,
        format: ImageFormat,
    ) -> impl Future<Output = Result<Vec<ScreenImage>, BackendError>> + Send;

    /// Replaces the session's permissions file (base64 of a DCV permissions file; None: the default).
    fn update_permissions(
        &self,
        session_id: &str,
        permissions_file: Option<&str>,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// The resolution of every simulated session's one screen.
pub const SIMULATED_SCREEN: (u32, u32) = (1920, 1080);

#[derive(Clone, Debug)]
struct SimulatedSession {
    owner: String,
    kind: SessionType,
    permissions_file: Option<String>,
}

/// The colour a simulated session's screen is painted with, derived from its id so that a test can tell one
/// session's screenshot from another's.
pub fn simulated_colour(session_id: &str) -> [u8; 3] {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let hash = session_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    [(hash >> 16) as u8, (hash >> 8) as u8, hash as u8]
}

/// Sessions that exist only in this agent's memory: nothing is started, and nothing survives a restart.
pub struct SimulatedBackend {
    max_virtual_sessions: Option<u32>,
    max_sessions_per_user: Option<u32>,
    /// The host's user accounts (`simulated_users`); None: every owner exists.
    users: Option<Vec<String>>,
    sessions: Mutex<BTreeMap<String, SimulatedSession>>,
}

impl SimulatedBackend {
    pub fn new(max_virtual_sessions: Option<u32>, max_sessions_per_user: Option<u32>) -> SimulatedBackend {
        SimulatedBackend { max_virtual_sessions, max_sessions_per_user, users: None, sessions: Mutex::default() }
    }

    pub fn from_config(config: &AgentConfig) -> SimulatedBackend {
        SimulatedBackend::new(config.max_virtual_sessions, config.max_concurrent_sessions_per_user)
            .with_users(config.simulated_users.clone())
    }

    /// Only these owners exist on the simulated host (None: all do).
    pub fn with_users(mut self, users: Option<Vec<String>>) -> SimulatedBackend {
        self.users = users;
        self
    }

    fn try_create(&self, session_id: &str, spec: &SessionSpec) -> Result<bool, BackendError> {
        let mut sessions = self.sessions.lock().expect("simulated sessions lock");
        if sessions.contains_key(session_id) {
            return Ok(false);
        }
        if spec.owner.trim().is_empty() {
            return Err(BackendError::NoOwner);
        }
        if self.users.as_ref().is_some_and(|users| !users.contains(&spec.owner)) {
            return Err(BackendError::NoSuchUser { owner: spec.owner.clone() });
        }
        let kind = spec.kind();
        match kind {
            SessionType::Console => {
                if let Some((existing, _)) = sessions.iter().find(|(_, s)| s.kind == SessionType::Console) {
                    return Err(BackendError::ConsoleTaken { existing: existing.clone() });
                }
            }
            SessionType::Virtual => {
                if let Some(max) = self.max_virtual_sessions {
                    let running = sessions.values().filter(|s| s.kind == SessionType::Virtual).count();
                    if running >= max as usize {
                        return Err(BackendError::VirtualSessionLimit { max });
                    }
                }
            }
        }
        if let Some(max) = self.max_sessions_per_user {
            if sessions.values().filter(|s| s.owner == spec.owner).count() >= max as usize {
                return Err(BackendError::UserSessionLimit { owner: spec.owner.clone(), max });
            }
        }
        let permissions_file = spec.permissions_file.clone();
        sessions.insert(session_id.to_owned(), SimulatedSession { owner: spec.owner.clone(), kind, permissions_file });
        Ok(true)
    }
}

impl SessionBackend for SimulatedBackend {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn server_version(&self) -> String {
        format!("{}-simulated", crate::facts::AGENT_VERSION)
    }

    fn endpoints(&self, host_ip: &str) -> Vec<Endpoint> {
        vec![Endpoint {
            ip_address: host_ip.to_owned(),
            port: 8443,
            protocol: EndpointProtocol::Http,
            web_url_path: "/".into(),
        }]
    }

    async fn create(&self, session_id: &str, spec: &SessionSpec) -> Result<(), BackendError> {
        let kind = spec.kind().as_api_str();
        match self.try_create(session_id, spec) {
            Ok(true) => {
                tracing::info!(
                    "simulated {kind} session {session_id} created for {} (no desktop: backend 'simulated')",
                    spec.owner
                );
                Ok(())
            }
            Ok(false) => {
                tracing::info!("simulated session {session_id} already exists; creation repeated, nothing to do");
                Ok(())
            }
            Err(e) => {
                tracing::warn!("simulated {kind} session {session_id} for {} refused: {e}", spec.owner);
                Err(e)
            }
        }
    }

    async fn delete(&self, session_id: &str) -> Result<(), BackendError> {
        let removed = self.sessions.lock().expect("simulated sessions lock").remove(session_id);
        match removed {
            Some(session) => {
                tracing::info!("simulated session {session_id} of {} deleted (backend 'simulated')", session.owner)
            }
            None => tracing::info!("simulated session {session_id} was not running; deletion is a no-op"),
        }
        Ok(())
    }

    async fn list(&self) -> Vec<RunningSession> {
        let sessions = self.sessions.lock().expect("simulated sessions lock");
        sessions.iter().map(|(id, s)| RunningSession { session_id: id.clone(), owner: s.owner.clone() }).collect()
    }

    async fn screenshot(
        &self,
        session_id: &str,
        max_width: u32,
        max_height: u32,
        format: ImageFormat,
    ) -> Result<Vec<ScreenImage>, BackendError> {
        if !self.sessions.lock().expect("simulated sessions lock").contains_key(session_id) {
            return Err(BackendError::NoSuchSession(session_id.to_owned()));
        }
        // A solid screen at the fitted size: scaling a solid screen gives the same pixels, so the full-size
        // buffer is never built.
        let (width, height) = screenshot::fit(SIMULATED_SCREEN.0, SIMULATED_SCREEN.1, max_width, max_height);
        let colour = simulated_colour(session_id);
        let rgb: Vec<u8> = colour.iter().copied().cycle().take(width as usize * height as usize * 3).collect();
        let data = screenshot::encode_rgb(&rgb, width, height, format)?;
        Ok(vec![ScreenImage { format, width, height, data, primary: true }])
    }

    async fn update_permissions(&self, session_id: &str, permissions_file: Option<&str>) -> Result<(), BackendError> {
        if let Some(file) = permissions_file {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(file)
                .map_err(|e| BackendError::PermissionsFile(e.to_string()))?;
        }
        let mut sessions = self.sessions.lock().expect("simulated sessions lock");
        let session = sessions.get_mut(session_id).ok_or_else(|| BackendError::NoSuchSession(session_id.to_owned()))?;
        session.permissions_file = permissions_file.map(str::to_owned);
        tracing::info!("simulated session {session_id}: permissions file replaced (backend 'simulated')");
        Ok(())
    }
}

impl SimulatedBackend {
    /// The permissions file (base64) the session runs with, for tests.
    pub fn permissions_file(&self, session_id: &str) -> Option<String> {
        self.sessions.lock().expect("simulated sessions lock").get(session_id)?.permissions_file.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(owner: &str, kind: SessionType) -> SessionSpec {
        SessionSpec { name: "s".into(), owner: owner.into(), session_type: Some(kind), ..SessionSpec::default() }
    }

    #[tokio::test]
    async fn creation_is_idempotent_by_session_id() {
        let backend = SimulatedBackend::new(Some(1), None);
        backend.create("s1", &spec("alice", SessionType::Virtual)).await.unwrap();
        backend.create("s1", &spec("alice", SessionType::Virtual)).await.unwrap();
        assert_eq!(backend.list().await, [RunningSession { session_id: "s1".into(), owner: "alice".into() }]);
    }

    #[tokio::test]
    async fn limits_are_honoured() {
        let backend = SimulatedBackend::new(Some(2), None);
        backend.create("v1", &spec("alice", SessionType::Virtual)).await.unwrap();
        backend.create("v2", &spec("bob", SessionType::Virtual)).await.unwrap();
        let err = backend.create("v3", &spec("carol", SessionType::Virtual)).await.unwrap_err();
        assert_eq!(err, BackendError::VirtualSessionLimit { max: 2 });
        assert!(err.to_string().contains("maximum of 2 virtual sessions"), "{err}");

        // The console session does not count against the virtual limit, but there is only one.
        backend.create("c1", &spec("alice", SessionType::Console)).await.unwrap();
        let err = backend.create("c2", &spec("bob", SessionType::Console)).await.unwrap_err();
        assert_eq!(err, BackendError::ConsoleTaken { existing: "c1".into() });
        assert_eq!(backend.list().await.len(), 3);

        let per_user = SimulatedBackend::new(None, Some(1));
        per_user.create("a1", &spec("alice", SessionType::Virtual)).await.unwrap();
        let err = per_user.create("a2", &spec("alice", SessionType::Virtual)).await.unwrap_err();
        assert_eq!(err, BackendError::UserSessionLimit { owner: "alice".into(), max: 1 });
        per_user.create("b1", &spec("bob", SessionType::Virtual)).await.unwrap();
    }

    #[tokio::test]
    async fn owners_must_exist_on_the_host_when_users_are_listed() {
        let backend = SimulatedBackend::new(None, None).with_users(Some(vec!["alice".into()]));
        backend.create("a", &spec("alice", SessionType::Virtual)).await.unwrap();
        let err = backend.create("c", &spec("carol", SessionType::Virtual)).await.unwrap_err();
        assert_eq!(err.to_string(), "user carol does not exist on this host");
    }

    #[tokio::test]
    async fn deletion_frees_room_and_tolerates_unknown_ids() {
        let backend = SimulatedBackend::new(Some(1), None);
        backend.create("v1", &spec("alice", SessionType::Virtual)).await.unwrap();
        backend.delete("v1").await.unwrap();
        backend.delete("v1").await.unwrap();
        backend.delete("never-existed").await.unwrap();
        assert!(backend.list().await.is_empty());
        backend.create("v2", &spec("bob", SessionType::Virtual)).await.unwrap();
        assert_eq!(backend.list().await.len(), 1);
    }

    #[tokio::test]
    async fn screenshots_fit_the_box_in_the_session_colour() {
        let backend = SimulatedBackend::new(None, None);
        backend.create("s1", &spec("alice", SessionType::Virtual)).await.unwrap();
        let images = backend.screenshot("s1", 160, 100, ImageFormat::Png).await.unwrap();
        assert_eq!(images.len(), 1);
        let image = &images[0];
        assert_eq!((image.width, image.height, image.primary), (160, 90, true));
        let mut reader = png::Decoder::new(std::io::Cursor::new(&image.data)).read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!((info.width, info.height), (160, 90));
        assert_eq!(&pixels[..3], &simulated_colour("s1"));
        assert_ne!(simulated_colour("s1"), simulated_colour("s2"));

        // Never above the real resolution.
        let big = backend.screenshot("s1", 5000, 5000, ImageFormat::Jpeg).await.unwrap();
        assert_eq!((big[0].width, big[0].height), SIMULATED_SCREEN);
        assert_eq!(
            backend.screenshot("nope", 10, 10, ImageFormat::Png).await,
            Err(BackendError::NoSuchSession("nope".into()))
        );
    }

    #[tokio::test]
    async fn permissions_are_replaced_and_checked() {
        let backend = SimulatedBackend::new(None, None);
        backend.create("s1", &spec("alice", SessionType::Virtual)).await.unwrap();
        backend.update_permissions("s1", Some("W2dyb3Vwc10K")).await.unwrap();
        assert_eq!(backend.permissions_file("s1").as_deref(), Some("W2dyb3Vwc10K"));
        assert!(matches!(
            backend.update_permissions("s1", Some("not base64!")).await,
            Err(BackendError::PermissionsFile(_))
        ));
        assert_eq!(backend.permissions_file("s1").as_deref(), Some("W2dyb3Vwc10K"), "a bad file changes nothing");
        assert_eq!(backend.update_permissions("x", None).await, Err(BackendError::NoSuchSession("x".into())));
    }

    #[test]
    fn simulated_backend_names_itself() {
        let backend = SimulatedBackend::new(None, None);
        assert_eq!(backend.name(), "simulated");
        assert!(backend.server_version().ends_with("-simulated"));
        let endpoints = backend.endpoints("10.0.0.7");
        assert_eq!(endpoints.len(), 1);
        assert_eq!((endpoints[0].ip_address.as_str(), endpoints[0].port), ("10.0.0.7", 8443));
        assert_eq!((endpoints[0].protocol, endpoints[0].web_url_path.as_str()), (EndpointProtocol::Http, "/"));
    }
}
