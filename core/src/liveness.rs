//! Agent liveness on the leader: which servers to declare unreachable, and which to remove. Heartbeats are not
//! replicated; the leader knows which agents are connected and replicates only these transitions.

use std::collections::BTreeSet;

use crate::model::UnixMillis;
use crate::state::ClusterState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LivenessRules {
    /// A new leader waits this long for agents to find it before it calls any of them unreachable.
    pub grace_ms: i64,
    /// `seconds-before-deleting-unreachable-dcv-server`, in milliseconds.
    pub remove_after_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivenessReview {
    pub unreachable: Vec<String>,
    pub remove: Vec<String>,
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
    for server in state.servers() {
        let id = &server.info.id;
        if server.reachable {
            if grace_over && !connected.contains(id) {
                review.unreachable.push(id.clone());
            }
        } else if now.0 - server.updated_at.0 >= rules.remove_after_ms && !connected.contains(id) {
            review.remove.push(id.clone());
        }
    }
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
        let rules = LivenessRules { grace_ms: 5_000, remove_after_ms: 60_000 };
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
