//! `ClusterState`: the whole replicated state in memory, and `apply`, the deterministic transition function
//! every node runs on every committed command.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::{
    Command, DeleteError, Deletion, NewSession, OpenChange, Placement, Rejection, Response, ServerChangeError,
};
use crate::model::{
    ApiClient, AuthServer, Server, ServerInfo, Session, SessionState, SessionType, Substate, UnixMillis,
};

pub const UNREACHABLE_REASON: &str = "The broker cannot reach the session's agent";
pub const REMOVED_REASON: &str = "The server was removed after its agent stayed unreachable";

/// How many CreateSessions request ids are remembered for idempotent retries.
pub const REQUEST_ID_MEMORY: usize = 10_000;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    pub cluster_id: Option<String>,
    signing_key: Option<Vec<u8>>,
    api_clients: BTreeMap<String, ApiClient>,
    sessions: BTreeMap<String, Session>,
    servers: BTreeMap<String, Server>,
    /// Sessions waiting for a server, first come first served: sequence number to session id.
    placing: BTreeMap<u64, String>,
    placing_seq_of: BTreeMap<String, u64>,
    next_placing_seq: u64,
    /// Recently applied CreateSessions request ids and the session ids they created.
    recent_requests: BTreeMap<String, Vec<String>>,
    recent_request_order: VecDeque<String>,
    /// Sessions waiting for their agent to confirm a deletion.
    deleting: BTreeSet<String>,
    /// Sessions bound to a server whose agent has not confirmed them yet (PENDING_PREPARATION).
    preparing: BTreeSet<String>,
    /// DELETED sessions by the time they ended, oldest first, for the purge after `delete-session-duration-hours`.
    ended: BTreeSet<(UnixMillis, String)>,
    /// External authorization servers whose tokens the API accepts, by JWKS URL.
    auth_servers: BTreeMap<String, AuthServer>,
}

impl ClusterState {
    pub fn apply(&mut self, command: &Command) -> Response {
        match command {
            Command::Noop => Response::Ok,
            Command::InitCluster { cluster_id, signing_key } => {
                if self.signing_key.is_none() {
                    self.cluster_id = Some(cluster_id.clone());
                    self.signing_key = Some(signing_key.clone());
                }
                Response::Ok
            }
            Command::RegisterApiClient { client } => self.register_api_client(client),
            Command::CreateSessions { request_id, now, sessions } => self.create_sessions(request_id, *now, sessions),
            Command::PlaceSessions { now, placements } => self.place_sessions(*now, placements),
            Command::SessionReady { session_id, server_id, now: _ } => self.session_ready(session_id, server_id),
            Command::SessionFailed { session_id, server_id, reason, max_attempts, now } => {
                self.session_failed(session_id, server_id, reason, *max_attempts, *now)
            }
            Command::UpsertServer { server, now } => self.upsert_server(server, *now),
            Command::PlacementFailed { sessions, now } => self.placement_failed(sessions, *now),
            Command::SessionsReady { sessions, now: _ } => {
                // Each confirmation is checked on its own; a stale one is skipped, not fatal to the batch.
                for (session_id, server_id) in sessions {
                    self.session_ready(session_id, server_id);
                }
                Response::Ok
            }
            Command::SetServersOpen { changes, now } => {
                Response::ServersChanged { results: changes.iter().map(|c| self.set_open(c, *now)).collect() }
            }
            Command::DeleteSessions { deletions, now } => {
                Response::SessionsDeleting { results: deletions.iter().map(|d| self.delete_session(d, *now)).collect() }
            }
            Command::SetServersReachable { changes, now } => {
                for (server_id, reachable) in changes {
                    self.set_reachable(server_id, *reachable, *now);
                }
                Response::Ok
            }
            Command::RemoveServers { server_ids, now } => {
                for server_id in server_ids {
                    self.remove_server(server_id, *now);
                }
                Response::Ok
            }
            Command::SessionsDeleted { sessions, now } => {
                for (session_id, server_id) in sessions {
                    let confirmed = self.sessions.get(session_id).is_some_and(|s| {
                        s.state == SessionState::Deleting && s.server_id.as_deref() == Some(server_id.as_str())
                    });
                    if confirmed {
                        self.end_session(session_id, None, *now);
                    }
                }
                Response::Ok
            }
            Command::UnregisterApiClient { client_id } => match self.api_clients.remove(client_id) {
                Some(_) => Response::Ok,
                None => Response::Rejected(Rejection::UnknownClient(client_id.clone())),
            },
            Command::RegisterAuthServer { server } => {
                // Registering the same URL again keeps the first registration (a retried proposal is harmless).
                self.auth_servers.entry(server.url.clone()).or_insert_with(|| server.clone());
                Response::Ok
            }
            Command::UnregisterAuthServer { url } => match self.auth_servers.remove(url) {
                Some(_) => Response::Ok,
                None => Response::Rejected(Rejection::UnknownAuthServer(url.clone())),
            },
            Command::PurgeSessions { session_ids, now: _ } => {
                for session_id in session_ids {
                    self.purge_session(session_id);
                }
                Response::Ok
            }
            Command::SetSessionPermissions { session_id, permissions_file, now: _ } => {
                match self.sessions.get_mut(session_id) {
                    Some(session) if session.state != SessionState::Deleted => {
                        session.spec.permissions_file = permissions_file.clone();
                        Response::Ok
                    }
                    _ => Response::Rejected(Rejection::UnknownSession(session_id.clone())),
                }
            }
        }
    }

    /// Forgets a DELETED session for good; a session in any other state is kept.
    fn purge_session(&mut self, session_id: &str) {
        let Some(session) = self.sessions.get(session_id) else { return };
        if session.state != SessionState::Deleted {
            return;
        }
        if let Some(ended_at) = session.ended_at {
            self.ended.remove(&(ended_at, session_id.to_owned()));
        }
        self.sessions.remove(session_id);
    }

    /// Marks `session_id` DELETED at `now` (the caller has already released capacity and indexes).
    fn mark_deleted(&mut self, session_id: &str, reason: Option<String>, now: UnixMillis) {
        let Some(session) = self.sessions.get_mut(session_id) else { return };
        session.state = SessionState::Deleted;
        session.substate = None;
        if reason.is_some() {
            session.state_reason = reason;
        }
        if let Some(previous) = session.ended_at.replace(now) {
            self.ended.remove(&(previous, session_id.to_owned()));
        }
        self.ended.insert((now, session_id.to_owned()));
    }

    /// An agent lost or found again. Its ready sessions are UNKNOWN while the broker cannot reach it.
    fn set_reachable(&mut self, server_id: &str, reachable: bool, now: UnixMillis) {
        let Some(server) = self.servers.get_mut(server_id) else { return };
        if server.reachable == reachable {
            return;
        }
        server.reachable = reachable;
        server.updated_at = now;
        let (from, to, reason) = if reachable {
            (SessionState::Unknown, SessionState::Ready, None)
        } else {
            (SessionState::Ready, SessionState::Unknown, Some(UNREACHABLE_REASON.to_owned()))
        };
        for session in self.sessions.values_mut() {
            if session.server_id.as_deref() == Some(server_id) && session.state == from {
                session.state = to;
                session.state_reason = reason.clone();
            }
        }
    }

    fn remove_server(&mut self, server_id: &str, now: UnixMillis) {
        if self.servers.remove(server_id).is_none() {
            return;
        }
        let ended: Vec<String> = self
            .sessions
            .values()
            .filter(|s| s.server_id.as_deref() == Some(server_id) && s.state != SessionState::Deleted)
            .map(|s| s.id.clone())
            .collect();
        for session_id in ended {
            self.end_session(&session_id, Some(REMOVED_REASON.to_owned()), now);
        }
    }

    fn delete_session(&mut self, deletion: &Deletion, now: UnixMillis) -> Result<SessionState, DeleteError> {
        let session = self.sessions.get(&deletion.session_id).ok_or(DeleteError::NotFound)?;
        if session.state == SessionState::Deleted {
            return Err(DeleteError::NotFound);
        }
        if deletion.owner.as_deref().is_some_and(|owner| owner != session.spec.owner) {
            return Err(DeleteError::NotFound);
        }
        if session.server_id.is_none() || deletion.force {
            // Nothing runs yet, or the caller forces it: the session ends in the broker now.
            self.end_session(&deletion.session_id, None, now);
            return Ok(SessionState::Deleted);
        }
        let session = self.sessions.get_mut(&deletion.session_id).expect("checked above");
        session.state = SessionState::Deleting;
        session.substate = None;
        self.preparing.remove(&deletion.session_id);
        self.deleting.insert(deletion.session_id.clone());
        Ok(SessionState::Deleting)
    }

    /// Marks a session DELETED, frees its server's capacity and takes it out of every work index.
    fn end_session(&mut self, session_id: &str, reason: Option<String>, now: UnixMillis) {
        self.dequeue_from_placement(session_id);
        self.deleting.remove(session_id);
        self.preparing.remove(session_id);
        let Some(session) = self.sessions.get_mut(session_id) else { return };
        let kind = session.spec.kind();
        let held = session.holds_capacity();
        let server_id = session.server_id.clone();
        self.mark_deleted(session_id, reason, now);
        if let (true, Some(server_id)) = (held, server_id) {
            if let Some(server) = self.servers.get_mut(&server_id) {
                release(server, kind);
            }
        }
    }

    fn set_open(&mut self, change: &OpenChange, now: UnixMillis) -> Result<(), ServerChangeError> {
        let server = self.servers.get_mut(&change.server_id).ok_or(ServerChangeError::NotFound)?;
        let sessions = server.session_count();
        if !change.open && sessions > 0 && !change.force {
            return Err(ServerChangeError::HasSessions { sessions });
        }
        server.open = change.open;
        server.updated_at = now;
        Ok(())
    }

    fn register_api_client(&mut self, client: &ApiClient) -> Response {
        match self.api_clients.get(&client.client_id) {
            // A retried proposal of the same registration is not an error.
            Some(existing) if existing == client => return Response::Ok,
            Some(_) => return Response::Rejected(Rejection::DuplicateClient(client.client_id.clone())),
            None => {}
        }
        self.api_clients.insert(client.client_id.clone(), client.clone());
        Response::Ok
    }

    fn create_sessions(&mut self, request_id: &str, now: UnixMillis, new_sessions: &[NewSession]) -> Response {
        if let Some(ids) = self.recent_requests.get(request_id) {
            // A retried proposal (e.g. after a leader change) must not create the sessions twice.
            let sessions = ids.iter().filter_map(|id| self.sessions.get(id).cloned()).collect();
            return Response::SessionsCreated { sessions };
        }
        let mut created = Vec::with_capacity(new_sessions.len());
        for new in new_sessions {
            if self.sessions.contains_key(&new.id) {
                continue;
            }
            let session = Session {
                id: new.id.clone(),
                spec: new.spec.clone(),
                state: SessionState::Creating,
                substate: Some(Substate::SessionPlacing),
                state_reason: None,
                server_id: None,
                creation_time: now,
                last_disconnection_time: None,
                num_of_connections: 0,
                failed_servers: Vec::new(),
                ended_at: None,
            };
            self.enqueue_for_placement(&new.id);
            self.sessions.insert(new.id.clone(), session.clone());
            created.push(session);
        }
        self.remember_request(request_id, created.iter().map(|s| s.id.clone()).collect());
        Response::SessionsCreated { sessions: created }
    }

    fn remember_request(&mut self, request_id: &str, ids: Vec<String>) {
        self.recent_requests.insert(request_id.to_owned(), ids);
        self.recent_request_order.push_back(request_id.to_owned());
        while self.recent_request_order.len() > REQUEST_ID_MEMORY {
            if let Some(old) = self.recent_request_order.pop_front() {
                self.recent_requests.remove(&old);
            }
        }
    }

    fn enqueue_for_placement(&mut self, session_id: &str) {
        let seq = self.next_placing_seq;
        self.next_placing_seq += 1;
        self.placing.insert(seq, session_id.to_owned());
        self.placing_seq_of.insert(session_id.to_owned(), seq);
    }

    fn dequeue_from_placement(&mut self, session_id: &str) {
        if let Some(seq) = self.placing_seq_of.remove(session_id) {
            self.placing.remove(&seq);
        }
    }

    fn place_sessions(&mut self, now: UnixMillis, placements: &[Placement]) -> Response {
        let results = placements.iter().map(|p| self.place_one(now, p)).collect();
        Response::Placed { results }
    }

    /// Reserves capacity, re-checking against the state at apply time so that two placements decided on a
    /// stale view can never overfill a server.
    fn place_one(&mut self, _now: UnixMillis, placement: &Placement) -> Result<(), String> {
        let session = self
            .sessions
            .get(&placement.session_id)
            .ok_or_else(|| Rejection::UnknownSession(placement.session_id.clone()).to_string())?;
        if session.state != SessionState::Creating || session.substate != Some(Substate::SessionPlacing) {
            return Err(Rejection::WrongState {
                session_id: session.id.clone(),
                state: session.state.as_api_str().to_owned(),
            }
            .to_string());
        }
        let kind = session.spec.kind();
        let server = self
            .servers
            .get_mut(&placement.server_id)
            .ok_or_else(|| Rejection::UnknownServer(placement.server_id.clone()).to_string())?;
        if let Some(reason) = server.unavailability() {
            return Err(format!("server {} is unavailable: {}", server.info.id, reason.as_api_str()));
        }
        if !server.has_room_for(kind) {
            return Err(format!("server {} has no room for a {} session", server.info.id, kind.as_api_str()));
        }
        reserve(server, kind);
        let session = self.sessions.get_mut(&placement.session_id).expect("checked above");
        session.server_id = Some(placement.server_id.clone());
        session.substate = Some(Substate::PendingPreparation);
        self.preparing.insert(placement.session_id.clone());
        self.dequeue_from_placement(&placement.session_id);
        Ok(())
    }

    fn session_ready(&mut self, session_id: &str, server_id: &str) -> Response {
        let Some(session) = self.sessions.get_mut(session_id) else {
            return Response::Rejected(Rejection::UnknownSession(session_id.to_owned()));
        };
        if session.state != SessionState::Creating || session.server_id.as_deref() != Some(server_id) {
            return Response::Rejected(Rejection::WrongState {
                session_id: session_id.to_owned(),
                state: session.state.as_api_str().to_owned(),
            });
        }
        session.state = SessionState::Ready;
        session.substate = None;
        session.state_reason = None;
        self.preparing.remove(session_id);
        Response::Ok
    }

    /// A creation failed on `server_id`: free the reservation, then place again elsewhere or give up.
    fn session_failed(
        &mut self,
        session_id: &str,
        server_id: &str,
        reason: &str,
        max_attempts: u32,
        now: UnixMillis,
    ) -> Response {
        let Some(session) = self.sessions.get(session_id) else {
            return Response::Rejected(Rejection::UnknownSession(session_id.to_owned()));
        };
        if session.state != SessionState::Creating || session.server_id.as_deref() != Some(server_id) {
            return Response::Rejected(Rejection::WrongState {
                session_id: session_id.to_owned(),
                state: session.state.as_api_str().to_owned(),
            });
        }
        let kind = session.spec.kind();
        if let Some(server) = self.servers.get_mut(server_id) {
            release(server, kind);
        }
        let session = self.sessions.get_mut(session_id).expect("checked above");
        session.server_id = None;
        self.preparing.remove(session_id);
        session.failed_servers.push(server_id.to_owned());
        let attempts = session.failed_servers.len() as u32;
        let retry = !session.spec.disable_retry_on_failure && attempts < max_attempts;
        if retry {
            session.substate = Some(Substate::SessionPlacing);
            session.state_reason = Some(reason.to_owned());
            self.enqueue_for_placement(session_id);
        } else {
            self.mark_deleted(session_id, Some(reason.to_owned()), now);
        }
        Response::Retried(retry)
    }

    fn placement_failed(&mut self, failures: &[(String, String)], now: UnixMillis) -> Response {
        for (session_id, reason) in failures {
            let still_placing = self
                .sessions
                .get(session_id)
                .is_some_and(|s| s.state == SessionState::Creating && s.substate == Some(Substate::SessionPlacing));
            if !still_placing {
                continue;
            }
            self.dequeue_from_placement(session_id);
            self.mark_deleted(session_id, Some(reason.clone()), now);
        }
        Response::Ok
    }

    fn upsert_server(&mut self, info: &ServerInfo, now: UnixMillis) -> Response {
        match self.servers.get_mut(&info.id) {
            Some(server) => {
                server.info = info.clone();
                server.updated_at = now;
                self.set_reachable(&info.id, true, now);
            }
            None => {
                self.servers.insert(
                    info.id.clone(),
                    Server {
                        info: info.clone(),
                        open: true,
                        reachable: true,
                        registered_at: now,
                        updated_at: now,
                        console_session_count: 0,
                        virtual_session_count: 0,
                    },
                );
            }
        }
        Response::Ok
    }

    // ---- reads ----

    pub fn signing_key(&self) -> Option<&[u8]> {
        self.signing_key.as_deref()
    }

    pub fn api_client(&self, client_id: &str) -> Option<&ApiClient> {
        self.api_clients.get(client_id)
    }

    pub fn api_clients(&self) -> impl Iterator<Item = &ApiClient> {
        self.api_clients.values()
    }

    pub fn auth_servers(&self) -> impl Iterator<Item = &AuthServer> {
        self.auth_servers.values()
    }

    /// Up to `limit` DELETED sessions that ended before `cutoff`, oldest first: the next purge.
    pub fn ended_before(&self, cutoff: UnixMillis, limit: usize) -> Vec<String> {
        self.ended.iter().take_while(|(ended_at, _)| *ended_at < cutoff).take(limit).map(|(_, id)| id.clone()).collect()
    }

    pub fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.get(id)
    }

    pub fn server(&self, id: &str) -> Option<&Server> {
        self.servers.get(id)
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Sessions in id order strictly after `after`. Walking by key keeps pagination stable: an item that exists
    /// for the whole walk is seen exactly once whatever is created or deleted meanwhile.
    pub fn sessions_after<'a>(&'a self, after: Option<&str>) -> Box<dyn Iterator<Item = &'a Session> + 'a> {
        match after {
            Some(key) => Box::new(
                self.sessions
                    .range::<str, _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                    .map(|(_, s)| s),
            ),
            None => Box::new(self.sessions.values()),
        }
    }

    pub fn servers_after<'a>(&'a self, after: Option<&str>) -> Box<dyn Iterator<Item = &'a Server> + 'a> {
        match after {
            Some(key) => Box::new(
                self.servers
                    .range::<str, _>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                    .map(|(_, s)| s),
            ),
            None => Box::new(self.servers.values()),
        }
    }

    pub fn servers(&self) -> impl Iterator<Item = &Server> {
        self.servers.values()
    }

    /// Sessions waiting for a server, oldest first.
    pub fn placing_queue(&self) -> impl Iterator<Item = &Session> {
        self.placing.values().filter_map(|id| self.sessions.get(id))
    }

    /// Sessions waiting for their agent to confirm a deletion.
    pub fn deleting(&self) -> impl Iterator<Item = &Session> {
        self.deleting.iter().filter_map(|id| self.sessions.get(id))
    }

    /// Sessions bound to a server whose agent has not confirmed them yet (an index, never a scan).
    pub fn pending_preparation(&self) -> impl Iterator<Item = &Session> {
        self.preparing
            .iter()
            .filter_map(|id| self.sessions.get(id))
            .filter(|s| s.state == SessionState::Creating && s.substate == Some(Substate::PendingPreparation))
    }
}

fn reserve(server: &mut Server, kind: SessionType) {
    match kind {
        SessionType::Console => server.console_session_count += 1,
        SessionType::Virtual => server.virtual_session_count += 1,
    }
}

fn release(server: &mut Server, kind: SessionType) {
    match kind {
        SessionType::Console => server.console_session_count = server.console_session_count.saturating_sub(1),
        SessionType::Virtual => server.virtual_session_count = server.virtual_session_count.saturating_sub(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SessionSpec;

    fn server(id: &str, max_virtual: Option<u32>) -> ServerInfo {
        ServerInfo {
            id: id.into(),
            hostname: format!("{id}.test"),
            max_virtual_sessions: max_virtual,
            ..Default::default()
        }
    }

    fn create(state: &mut ClusterState, request_id: &str, ids: &[&str], kind: SessionType) -> Response {
        state.apply(&Command::CreateSessions {
            request_id: request_id.into(),
            now: UnixMillis(1_000),
            sessions: ids
                .iter()
                .map(|id| NewSession {
                    id: (*id).into(),
                    spec: SessionSpec {
                        name: format!("name-{id}"),
                        owner: "alice".into(),
                        session_type: Some(kind),
                        ..Default::default()
                    },
                })
                .collect(),
        })
    }

    fn place(state: &mut ClusterState, session: &str, server: &str) -> Result<(), String> {
        match state.apply(&Command::PlaceSessions {
            now: UnixMillis(2_000),
            placements: vec![Placement { session_id: session.into(), server_id: server.into() }],
        }) {
            Response::Placed { mut results } => results.remove(0),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn created_sessions_wait_for_placement_in_order() {
        let mut state = ClusterState::default();
        create(&mut state, "r1", &["b", "a"], SessionType::Virtual);
        let queue: Vec<_> = state.placing_queue().map(|s| s.id.as_str()).collect();
        assert_eq!(queue, ["b", "a"]);
        let a = state.session("a").unwrap();
        assert_eq!(a.state, SessionState::Creating);
        assert_eq!(a.substate, Some(Substate::SessionPlacing));
        assert_eq!(a.creation_time, UnixMillis(1_000));
    }

    #[test]
    fn a_retried_request_id_creates_nothing_twice() {
        let mut state = ClusterState::default();
        let first = create(&mut state, "r1", &["a"], SessionType::Virtual);
        let second = create(&mut state, "r1", &["a"], SessionType::Virtual);
        assert_eq!(first, second);
        assert_eq!(state.session_count(), 1);
        assert_eq!(state.placing_queue().count(), 1);
    }

    #[test]
    fn placement_reserves_capacity_and_refuses_overfill() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", Some(1))), now: UnixMillis(0) });
        create(&mut state, "r1", &["a", "b"], SessionType::Virtual);
        assert_eq!(place(&mut state, "a", "s1"), Ok(()));
        let err = place(&mut state, "b", "s1").unwrap_err();
        assert!(err.contains("no room"), "{err}");
        assert_eq!(state.server("s1").unwrap().virtual_session_count, 1);
        assert_eq!(state.session("a").unwrap().substate, Some(Substate::PendingPreparation));
        assert_eq!(state.placing_queue().map(|s| s.id.clone()).collect::<Vec<_>>(), ["b"]);
        assert_eq!(state.pending_preparation().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn one_console_session_per_server() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", None)), now: UnixMillis(0) });
        create(&mut state, "r1", &["c1", "c2"], SessionType::Console);
        assert_eq!(place(&mut state, "c1", "s1"), Ok(()));
        assert!(place(&mut state, "c2", "s1").unwrap_err().contains("no room"));
    }

    #[test]
    fn placing_twice_is_refused() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", None)), now: UnixMillis(0) });
        state.apply(&Command::UpsertServer { server: Box::new(server("s2", None)), now: UnixMillis(0) });
        create(&mut state, "r1", &["a"], SessionType::Virtual);
        assert_eq!(place(&mut state, "a", "s1"), Ok(()));
        assert!(place(&mut state, "a", "s2").is_err());
        assert_eq!(state.server("s2").unwrap().virtual_session_count, 0);
    }

    #[test]
    fn ready_needs_the_reserving_server() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", None)), now: UnixMillis(0) });
        create(&mut state, "r1", &["a"], SessionType::Virtual);
        place(&mut state, "a", "s1").unwrap();
        let wrong =
            state.apply(&Command::SessionReady { session_id: "a".into(), server_id: "s2".into(), now: UnixMillis(3) });
        assert!(matches!(wrong, Response::Rejected(_)));
        let ok =
            state.apply(&Command::SessionReady { session_id: "a".into(), server_id: "s1".into(), now: UnixMillis(3) });
        assert_eq!(ok, Response::Ok);
        let a = state.session("a").unwrap();
        assert_eq!((a.state, a.substate), (SessionState::Ready, None));
        assert_eq!(state.pending_preparation().count(), 0);
    }

    #[test]
    fn a_batch_of_confirmations_skips_the_stale_ones() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", None)), now: UnixMillis(0) });
        create(&mut state, "r1", &["a", "b"], SessionType::Virtual);
        place(&mut state, "a", "s1").unwrap();
        place(&mut state, "b", "s1").unwrap();
        let batch = vec![("a".into(), "s1".into()), ("b".into(), "wrong".into()), ("zzz".into(), "s1".into())];
        assert_eq!(state.apply(&Command::SessionsReady { sessions: batch, now: UnixMillis(5) }), Response::Ok);
        assert_eq!(state.session("a").unwrap().state, SessionState::Ready);
        assert_eq!(state.session("b").unwrap().state, SessionState::Creating);
    }

    #[test]
    fn failure_frees_capacity_and_retries_until_the_limit() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", Some(1))), now: UnixMillis(0) });
        state.apply(&Command::UpsertServer { server: Box::new(server("s2", Some(1))), now: UnixMillis(0) });
        create(&mut state, "r1", &["a"], SessionType::Virtual);
        place(&mut state, "a", "s1").unwrap();
        let fail = |state: &mut ClusterState, server: &str| {
            state.apply(&Command::SessionFailed {
                session_id: "a".into(),
                server_id: server.into(),
                reason: "boom".into(),
                max_attempts: 2,
                now: UnixMillis(4),
            })
        };
        assert_eq!(fail(&mut state, "s1"), Response::Retried(true));
        assert_eq!(state.server("s1").unwrap().virtual_session_count, 0);
        assert_eq!(state.session("a").unwrap().failed_servers, ["s1"]);
        place(&mut state, "a", "s2").unwrap();
        assert_eq!(fail(&mut state, "s2"), Response::Retried(false));
        let a = state.session("a").unwrap();
        assert_eq!(a.state, SessionState::Deleted);
        assert_eq!(a.state_reason.as_deref(), Some("boom"));
        assert_eq!(state.placing_queue().count(), 0);
    }

    #[test]
    fn closing_a_busy_server_needs_force_and_reopening_restores_it() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", None)), now: UnixMillis(0) });
        create(&mut state, "r1", &["a"], SessionType::Virtual);
        place(&mut state, "a", "s1").unwrap();
        let change = |open, force| OpenChange { server_id: "s1".into(), open, force };
        let unknown = OpenChange { server_id: "nope".into(), open: false, force: true };
        let apply = |state: &mut ClusterState, changes: Vec<OpenChange>| match state
            .apply(&Command::SetServersOpen { changes, now: UnixMillis(9) })
        {
            Response::ServersChanged { results } => results,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            apply(&mut state, vec![change(false, false), unknown]),
            vec![Err(ServerChangeError::HasSessions { sessions: 1 }), Err(ServerChangeError::NotFound)]
        );
        assert!(state.server("s1").unwrap().open);
        assert_eq!(apply(&mut state, vec![change(false, true)]), vec![Ok(())]);
        let closed = state.server("s1").unwrap();
        assert_eq!(closed.unavailability(), Some(crate::model::UnavailabilityReason::ServerClosed));
        assert_eq!(state.session("a").unwrap().server_id.as_deref(), Some("s1"), "sessions keep running");
        assert_eq!(apply(&mut state, vec![change(true, false)]), vec![Ok(())]);
        assert_eq!(state.server("s1").unwrap().unavailability(), None);
    }

    #[test]
    fn deletion_ends_unplaced_sessions_at_once_and_placed_ones_on_confirmation() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", Some(2))), now: UnixMillis(0) });
        create(&mut state, "r1", &["placed", "waiting", "forced"], SessionType::Virtual);
        place(&mut state, "placed", "s1").unwrap();
        place(&mut state, "forced", "s1").unwrap();
        let delete = |state: &mut ClusterState, id: &str, owner: Option<&str>, force: bool| {
            let deletion = Deletion { session_id: id.into(), owner: owner.map(Into::into), force };
            match state.apply(&Command::DeleteSessions { deletions: vec![deletion], now: UnixMillis(5) }) {
                Response::SessionsDeleting { mut results } => results.remove(0),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(delete(&mut state, "nope", None, false), Err(DeleteError::NotFound));
        assert_eq!(delete(&mut state, "placed", Some("bob"), false), Err(DeleteError::NotFound), "wrong owner");
        assert_eq!(delete(&mut state, "waiting", None, false), Ok(SessionState::Deleted));
        assert_eq!(state.placing_queue().count(), 0);
        assert_eq!(delete(&mut state, "placed", Some("alice"), false), Ok(SessionState::Deleting));
        assert_eq!(state.deleting().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["placed"]);
        assert_eq!(state.server("s1").unwrap().virtual_session_count, 2, "capacity held until the agent confirms");
        assert_eq!(delete(&mut state, "forced", None, true), Ok(SessionState::Deleted));
        assert_eq!(state.server("s1").unwrap().virtual_session_count, 1);
        state.apply(&Command::SessionsDeleted { sessions: vec![("placed".into(), "s1".into())], now: UnixMillis(6) });
        assert_eq!(state.session("placed").unwrap().state, SessionState::Deleted);
        assert_eq!(state.server("s1").unwrap().virtual_session_count, 0);
        assert_eq!(state.deleting().count(), 0);
        assert_eq!(delete(&mut state, "placed", None, false), Err(DeleteError::NotFound), "already deleted");
    }

    #[test]
    fn an_unreachable_agent_makes_its_sessions_unknown_until_it_returns_or_is_removed() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", None)), now: UnixMillis(0) });
        create(&mut state, "r1", &["a", "b"], SessionType::Virtual);
        place(&mut state, "a", "s1").unwrap();
        place(&mut state, "b", "s1").unwrap();
        state.apply(&Command::SessionReady { session_id: "a".into(), server_id: "s1".into(), now: UnixMillis(1) });
        state.apply(&Command::SetServersReachable { changes: vec![("s1".into(), false)], now: UnixMillis(2) });
        let s1 = state.server("s1").unwrap();
        assert_eq!(s1.unavailability(), Some(crate::model::UnavailabilityReason::UnreachableAgent));
        assert_eq!(state.session("a").unwrap().state, SessionState::Unknown);
        assert_eq!(state.session("b").unwrap().state, SessionState::Creating, "not yet ready: left to retry");
        // The agent registers again: its sessions are ready again.
        state.apply(&Command::UpsertServer { server: Box::new(server("s1", None)), now: UnixMillis(3) });
        assert_eq!(state.session("a").unwrap().state, SessionState::Ready);
        assert_eq!(state.session("a").unwrap().state_reason, None);
        state.apply(&Command::SetServersReachable { changes: vec![("s1".into(), false)], now: UnixMillis(4) });
        state.apply(&Command::RemoveServers { server_ids: vec!["s1".into()], now: UnixMillis(5) });
        assert!(state.server("s1").is_none());
        for id in ["a", "b"] {
            let session = state.session(id).unwrap();
            assert_eq!(session.state, SessionState::Deleted, "{id}");
            assert_eq!(session.state_reason.as_deref(), Some(REMOVED_REASON));
        }
    }

    #[test]
    fn the_signing_key_is_set_once() {
        let mut state = ClusterState::default();
        state.apply(&Command::InitCluster { cluster_id: "c1".into(), signing_key: vec![1] });
        state.apply(&Command::InitCluster { cluster_id: "c2".into(), signing_key: vec![2] });
        assert_eq!(state.signing_key(), Some(&[1u8][..]));
        assert_eq!(state.cluster_id.as_deref(), Some("c1"));
    }

    #[test]
    fn pagination_by_key_sees_each_survivor_once() {
        let mut state = ClusterState::default();
        create(&mut state, "r1", &["a", "c", "e"], SessionType::Virtual);
        let first: Vec<_> = state.sessions_after(None).take(2).map(|s| s.id.clone()).collect();
        assert_eq!(first, ["a", "c"]);
        create(&mut state, "r2", &["b", "d"], SessionType::Virtual);
        let rest: Vec<_> = state.sessions_after(Some("c")).map(|s| s.id.clone()).collect();
        assert_eq!(rest, ["d", "e"]);
    }
}
