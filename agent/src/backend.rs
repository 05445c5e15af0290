//! Session backends: what actually runs a session on this host. `SimulatedBackend` keeps sessions in the agent's
//! memory only, for benchmarks and the quick start on a bare machine, and says so in every line it logs.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use broker_core::agent_proto::RunningSession;
use broker_core::model::{Endpoint, EndpointProtocol, SessionSpec, SessionType};

use crate::config::AgentConfig;

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
}

#[derive(Clone, Debug)]
struct SimulatedSession {
    owner: String,
    kind: SessionType,
}

/// Sessions that exist only in this agent's memory: nothing is started, and nothing survives a restart.
pub struct SimulatedBackend {
    max_virtual_sessions: Option<u32>,
    max_sessions_per_user: Option<u32>,
    sessions: Mutex<BTreeMap<String, SimulatedSession>>,
}

impl SimulatedBackend {
    pub fn new(max_virtual_sessions: Option<u32>, max_sessions_per_user: Option<u32>) -> SimulatedBackend {
        SimulatedBackend { max_virtual_sessions, max_sessions_per_user, sessions: Mutex::default() }
    }

    pub fn from_config(config: &AgentConfig) -> SimulatedBackend {
        SimulatedBackend::new(config.max_virtual_sessions, config.max_concurrent_sessions_per_user)
    }

    fn try_create(&self, session_id: &str, spec: &SessionSpec) -> Result<bool, BackendError> {
        let mut sessions = self.sessions.lock().expect("simulated sessions lock");
        if sessions.contains_key(session_id) {
            return Ok(false);
        }
        if spec.owner.trim().is_empty() {
            return Err(BackendError::NoOwner);
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
        sessions.insert(session_id.to_owned(), SimulatedSession { owner: spec.owner.clone(), kind });
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
