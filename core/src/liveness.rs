//! Agent liveness on the leader: which servers to declare unreachable, and which to remove. Heartbeats are not
//! replicated; the leader knows which agents are connected and replicates only these transitions.

use std::collections::BTreeSet;

use crate::model::{SessionState, UnixMillis};
use crate::state::ClusterState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LivenessRules {
    /// A new leader waits this long for agents to find it before it calls any of them unreachable.
    pub grace_ms: i64,
    /// `seconds-before-deleting-unreachable-dcv-server`, in milliseconds.
    pub remove_after_ms: i64,
    /// `seconds-before-deleting-sessions-unreachable-server`, in milliseconds: the sessions of a server
    /// unreachable this long end while the server stays. None: they wait for the agent or the removal.
    pub end_sessions_after_ms: Option<i64>,
    /// `delete-session-duration-hours`, in milliseconds: how long DELETED sessions stay visible.
    pub keep_deleted_ms: i64,
}

/// DELETED sessions purged per review, so one entry stays small however many sessions ended at once.
pub const PURGE_BATCH: usize = 1000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivenessReview {
    pub unreachable: Vec<String>,
    pub remove: Vec<String>,
    /// Sessions to end (forced deletion) because their server stayed unreachable too long.
    pub end_sessions: Vec<String>,
    /// DELETED sessions past their visibility, to forget.
    pub purge: Vec<String>,
}

/// Servers the state calls reachable whose agent is not connected (once the grace period has passed), and
/// servers unreachable for longer than the removal delay.
pub fn review(
    state: &ClusterState,
    connected: &BTreeSet<String>,
    leader_since: UnixMillis,
    now: UnixMillis,
    rules: LivenessRules,
) -> LivenessReview {
    let mut review = LivenessReview::default();
    let grace_over = now.0 - leader_since.0 >= rules.grace_ms;
    let mut abandoned = BTreeSet::new();
    for server in state.servers() {
        let id = &server.info.id;
        if server.reachable {
            if grace_over && !connected.contains(id) {
                review.unreachable.push(id.clone());
            }
        } else if connected.contains(id) {
            // Back already: the next heartbeat-driven upsert marks it reachable.
        } else if now.0 - server.updated_at.0 >= rules.remove_after_ms {
            review.remove.push(id.clone());
        } else if rules.end_sessions_after_ms.is_some_and(|after| now.0 - server.updated_at.0 >= after) {
            abandoned.insert(id.as_str());
        }
    }
    if !abandoned.is_empty() {
        review.end_sessions = state
            .sessions_after(None)
            .filter(|s| s.state != SessionState::Deleted)
            .filter(|s| s.server_id.as_deref().is_some_and(|id| abandoned.contains(id)))
            .map(|s| s.id.clone())
            .collect();
    }
    review.purge = state.ended_before(UnixMillis(now.0.saturating_sub(rules.keep_deleted_ms)), PURGE_BATCH);
    review
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use crate::model::ServerInfo;

    #[test]
    fn liveness_table() {
        let mut state = ClusterState::default();
        for id in ["up", "gone", "long-gone"] {
            state.apply(&Command::UpsertServer {
                server: Box::new(ServerInfo { id: id.into(), ..Default::default() }),
                now: UnixMillis(0),
            });
        }
        state.apply(&Command::SetServersReachable {
            changes: vec![("long-gone".into(), false)],
            now: UnixMillis(1_000),
        });
        let rules =
            LivenessRules { grace_ms: 5_000, remove_after_ms: 60_000, end_sessions_after_ms: None, keep_deleted_ms: 0 };
        let connected: BTreeSet<String> = ["up".to_owned()].into();
        let cases = [
            ("within the grace period nothing changes", 0, 4_000, vec![], vec![]),
            ("after it, a silent agent is unreachable", 0, 5_000, vec!["gone"], vec![]),
            ("a long unreachable server is removed", 0, 61_000, vec!["gone"], vec!["long-gone"]),
        ];
        for (name, since, now, unreachable, remove) in cases {
            let got = review(&state, &connected, UnixMillis(since), UnixMillis(now), rules);
            assert_eq!(got.unreachable, unreachable, "{name}");
            assert_eq!(got.remove, remove, "{name}");
        }
    }
}

#[cfg(test)]
mod housekeeping_tests {
    use super::*;
    use crate::command::{Command, Deletion, NewSession, Placement};
    use crate::model::{ServerInfo, SessionSpec};

    fn rules(end_sessions_after_ms: Option<i64>, keep_deleted_ms: i64) -> LivenessRules {
        LivenessRules { grace_ms: 0, remove_after_ms: 600_000, end_sessions_after_ms, keep_deleted_ms }
    }

    /// Two sessions placed on "s1" at t=0; "gone" is deleted at t=1000; s1 becomes unreachable at t=2000.
    fn state() -> ClusterState {
        let mut state = ClusterState::default();
        let server = ServerInfo { id: "s1".into(), ..Default::default() };
        state.apply(&Command::UpsertServer { server: Box::new(server), now: UnixMillis(0) });
        let spec = SessionSpec { name: "n".into(), owner: "o".into(), ..Default::default() };
        let sessions = ["kept", "gone"].map(|id| NewSession { id: id.into(), spec: spec.clone() }).to_vec();
        state.apply(&Command::CreateSessions { request_id: "r".into(), now: UnixMillis(0), sessions });
        let placements =
            ["kept", "gone"].map(|id| Placement { session_id: id.into(), server_id: "s1".into() }).to_vec();
        state.apply(&Command::PlaceSessions { now: UnixMillis(0), placements });
        let deletions = vec![Deletion { session_id: "gone".into(), owner: None, force: true }];
        state.apply(&Command::DeleteSessions { deletions, now: UnixMillis(1_000) });
        state.apply(&Command::SetServersReachable { changes: vec![("s1".into(), false)], now: UnixMillis(2_000) });
        state
    }

    #[test]
    fn deleted_sessions_are_purged_after_their_visibility() {
        let mut state = state();
        let none = BTreeSet::new();
        assert!(review(&state, &none, UnixMillis(0), UnixMillis(60_000), rules(None, 60_000)).purge.is_empty());
        let due = review(&state, &none, UnixMillis(0), UnixMillis(61_001), rules(None, 60_000)).purge;
        assert_eq!(due, ["gone"]);
        // Purging a session that is not DELETED (a stale proposal) leaves it alone.
        state.apply(&Command::PurgeSessions {
            session_ids: vec!["gone".into(), "kept".into()],
            now: UnixMillis(61_001),
        });
        assert!(state.session("gone").is_none());
        assert!(state.session("kept").is_some());
        assert!(review(&state, &none, UnixMillis(0), UnixMillis(99_000), rules(None, 60_000)).purge.is_empty());
    }

    #[test]
    fn sessions_of_a_long_unreachable_server_end_only_when_configured() {
        let state = state();
        let none = BTreeSet::new();
        assert!(review(&state, &none, UnixMillis(0), UnixMillis(500_000), rules(None, i64::MAX))
            .end_sessions
            .is_empty());
        let early = review(&state, &none, UnixMillis(0), UnixMillis(11_999), rules(Some(10_000), i64::MAX));
        assert!(early.end_sessions.is_empty());
        let due = review(&state, &none, UnixMillis(0), UnixMillis(12_000), rules(Some(10_000), i64::MAX));
        assert_eq!(due.end_sessions, ["kept"], "DELETED sessions are not ended twice");
        let back: BTreeSet<String> = ["s1".to_owned()].into();
        assert!(review(&state, &back, UnixMillis(0), UnixMillis(12_000), rules(Some(10_000), i64::MAX))
            .end_sessions
            .is_empty());
    }
}
