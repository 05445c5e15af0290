//! Placement: which server takes which waiting session. A pure function of the state; the leader proposes its
//! result and `apply` re-checks every reservation.

use std::collections::BTreeMap;

use crate::command::Placement;
use crate::model::{Server, Session, SessionType, UnixMillis};
use crate::state::ClusterState;

/// The outcome of one placement round over the waiting queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlacementPlan {
    pub placements: Vec<Placement>,
    /// Sessions that no server can take and that did not ask to be queued, with the reason.
    pub unplaceable: Vec<(String, String)>,
    /// Sessions left waiting because they asked to be queued (EnqueueRequest).
    pub still_waiting: usize,
}

pub const NO_SERVER_REASON: &str = "No DCV server available to host the session";

/// The bounds of the queue of requests that asked to wait (EnqueueRequest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    /// `create-sessions-queue-max-size`: requests beyond it are refused.
    pub max_size: usize,
    /// `create-sessions-queue-max-time-seconds`, in milliseconds: a request queued longer fails.
    pub max_time_ms: i64,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits { max_size: 1000, max_time_ms: 1800 * 1000 }
    }
}

pub fn queue_full_reason(limits: QueueLimits) -> String {
    format!("No DCV server available and the request queue is full ({} requests)", limits.max_size)
}

pub fn queue_timeout_reason(limits: QueueLimits) -> String {
    format!("No DCV server became available within {} seconds", limits.max_time_ms / 1000)
}

/// Plans up to `limit` sessions from the head of the waiting queue. Reservations made earlier in the same round
/// count, so one round never overfills a server. A session no server can take fails, unless it asked to be
/// queued and the queue has room; a queued one fails once it has waited longer than the queue allows. The
/// queue is walked in order and nothing blocks it, so requests that need different servers never wait on
/// each other, and requests of one kind are served first come, first served.
pub fn plan(state: &ClusterState, limit: usize, now: UnixMillis, limits: QueueLimits) -> PlacementPlan {
    let mut extra: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let mut plan = PlacementPlan::default();
    // `limit` bounds the decisions of one round (one Raft entry); requests left waiting are not decisions, so
    // a long queue of one class never hides a later request of another class from this round.
    for session in state.placing_queue() {
        if plan.placements.len() + plan.unplaceable.len() >= limit {
            break;
        }
        match choose_server(state, session, &extra) {
            Some(server) => {
                let entry = extra.entry(server.info.id.as_str()).or_default();
                match session.spec.kind() {
                    SessionType::Console => entry.0 += 1,
                    SessionType::Virtual => entry.1 += 1,
                }
                plan.placements.push(Placement { session_id: session.id.clone(), server_id: server.info.id.clone() });
            }
            None if !session.spec.enqueue_request => {
                plan.unplaceable.push((session.id.clone(), NO_SERVER_REASON.to_owned()))
            }
            None if now.0 - session.creation_time.0 > limits.max_time_ms => {
                plan.unplaceable.push((session.id.clone(), queue_timeout_reason(limits)))
            }
            None if plan.still_waiting >= limits.max_size => {
                plan.unplaceable.push((session.id.clone(), queue_full_reason(limits)))
            }
            None => plan.still_waiting += 1,
        }
    }
    plan
}

/// The least loaded available server with room for the session, ties broken by id so that the choice is
/// deterministic. `extra` holds (console, virtual) reservations already planned in this round.
fn choose_server<'a>(
    state: &'a ClusterState,
    session: &Session,
    extra: &BTreeMap<&str, (u32, u32)>,
) -> Option<&'a Server> {
    let kind = session.spec.kind();
    // Validated when the request came in; an expression that no longer parses matches no server.
    let requirement = match session.spec.requirements.as_deref() {
        Some(text) => Some(crate::requirements::parse(text).ok()?),
        None => None,
    };
    state
        .servers()
        .filter(|server| !session.failed_servers.iter().any(|failed| failed == &server.info.id))
        .filter(|server| requirement.as_ref().is_none_or(|r| r.matches(&server.info)))
        .filter_map(|server| {
            let (console, virt) = extra.get(server.info.id.as_str()).copied().unwrap_or_default();
            let usable = server.open && server.reachable && server.has_room_with(kind, console, virt);
            usable.then_some((server.session_count() + console + virt, server))
        })
        .min_by(|(load_a, a), (load_b, b)| load_a.cmp(load_b).then_with(|| a.info.id.cmp(&b.info.id)))
        .map(|(_, server)| server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, NewSession};
    use crate::model::{ServerInfo, SessionSpec, UnixMillis};

    struct Case {
        name: &'static str,
        servers: &'static [(&'static str, Option<u32>)],
        sessions: &'static [(&'static str, SessionType, bool)],
        want_placed: &'static [(&'static str, &'static str)],
        want_unplaceable: &'static [&'static str],
        want_waiting: usize,
    }

    const CASES: &[Case] = &[
        Case {
            name: "spreads over the least loaded servers",
            servers: &[("s1", None), ("s2", None)],
            sessions: &[("a", SessionType::Virtual, false), ("b", SessionType::Virtual, false)],
            want_placed: &[("a", "s1"), ("b", "s2")],
            want_unplaceable: &[],
            want_waiting: 0,
        },
        Case {
            name: "respects max virtual sessions within one round",
            servers: &[("s1", Some(1))],
            sessions: &[("a", SessionType::Virtual, false), ("b", SessionType::Virtual, false)],
            want_placed: &[("a", "s1")],
            want_unplaceable: &["b"],
            want_waiting: 0,
        },
        Case {
            name: "one console per server",
            servers: &[("s1", None), ("s2", None)],
            sessions: &[
                ("a", SessionType::Console, false),
                ("b", SessionType::Console, false),
                ("c", SessionType::Console, true),
            ],
            want_placed: &[("a", "s1"), ("b", "s2")],
            want_unplaceable: &[],
            want_waiting: 1,
        },
        Case {
            name: "no server at all",
            servers: &[],
            sessions: &[("a", SessionType::Virtual, false), ("b", SessionType::Virtual, true)],
            want_placed: &[],
            want_unplaceable: &["a"],
            want_waiting: 1,
        },
    ];

    #[test]
    fn placement_table() {
        for case in CASES {
            let mut state = ClusterState::default();
            for (id, max) in case.servers {
                state.apply(&Command::UpsertServer {
                    server: Box::new(ServerInfo { id: (*id).into(), max_virtual_sessions: *max, ..Default::default() }),
                    now: UnixMillis(0),
                });
            }
            state.apply(&Command::CreateSessions {
                request_id: "r".into(),
                now: UnixMillis(0),
                sessions: case
                    .sessions
                    .iter()
                    .map(|(id, kind, enqueue)| NewSession {
                        id: (*id).into(),
                        spec: SessionSpec {
                            name: "n".into(),
                            owner: "o".into(),
                            session_type: Some(*kind),
                            enqueue_request: *enqueue,
                            ..Default::default()
                        },
                    })
                    .collect(),
            });
            let plan = plan(&state, 100, UnixMillis(0), QueueLimits::default());
            let placed: Vec<_> =
                plan.placements.iter().map(|p| (p.session_id.as_str(), p.server_id.as_str())).collect();
            assert_eq!(placed, case.want_placed, "{}", case.name);
            let unplaceable: Vec<_> = plan.unplaceable.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(unplaceable, case.want_unplaceable, "{}", case.name);
            assert_eq!(plan.still_waiting, case.want_waiting, "{}", case.name);
        }
    }

    #[test]
    fn the_queue_is_bounded_in_size_and_time() {
        let mut state = ClusterState::default();
        let queued =
            |id: &str| NewSession { id: id.into(), spec: SessionSpec { enqueue_request: true, ..Default::default() } };
        state.apply(&Command::CreateSessions {
            request_id: "old".into(),
            now: UnixMillis(0),
            sessions: vec![queued("a")],
        });
        state.apply(&Command::CreateSessions {
            request_id: "new".into(),
            now: UnixMillis(50_000),
            sessions: vec![queued("b"), queued("c"), queued("d")],
        });
        let limits = QueueLimits { max_size: 2, max_time_ms: 60_000 };
        let early = plan(&state, 100, UnixMillis(55_000), limits);
        assert_eq!(early.still_waiting, 2);
        assert_eq!(
            early.unplaceable,
            vec![("c".to_owned(), queue_full_reason(limits)), ("d".to_owned(), queue_full_reason(limits))]
        );
        let late = plan(&state, 100, UnixMillis(61_000), limits);
        assert_eq!(late.unplaceable[0], ("a".to_owned(), queue_timeout_reason(limits)));
        assert_eq!(late.still_waiting, 2, "b and c keep their places once a has gone");
        // A server appears: the queue drains in order.
        state.apply(&Command::UpsertServer {
            server: Box::new(ServerInfo { id: "s1".into(), ..Default::default() }),
            now: UnixMillis(61_000),
        });
        let drained = plan(&state, 100, UnixMillis(61_000), limits);
        let order: Vec<_> = drained.placements.iter().map(|p| p.session_id.as_str()).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_waiting_class_does_not_block_another() {
        let mut state = ClusterState::default();
        state.apply(&Command::UpsertServer {
            server: Box::new(ServerInfo {
                id: "blue".into(),
                tags: vec![("color".into(), "blue".into())],
                ..Default::default()
            }),
            now: UnixMillis(0),
        });
        let wants = |id: String, color: &str| NewSession {
            id,
            spec: SessionSpec {
                enqueue_request: true,
                requirements: Some(format!("tag:color = '{color}'")),
                ..Default::default()
            },
        };
        // Many requests for a red server that does not exist, then one for blue.
        let mut sessions: Vec<NewSession> = (0..50).map(|n| wants(format!("red-{n:02}"), "red")).collect();
        sessions.push(wants("blue-1".into(), "blue"));
        state.apply(&Command::CreateSessions { request_id: "r".into(), now: UnixMillis(0), sessions });
        let round = plan(&state, 4, UnixMillis(1), QueueLimits::default());
        let placed: Vec<_> = round.placements.iter().map(|p| p.session_id.as_str()).collect();
        assert_eq!(placed, ["blue-1"], "the blue request is placed in the first round");
        assert_eq!(round.still_waiting, 50);
    }

    #[test]
    fn requirements_choose_among_the_servers() {
        let mut state = ClusterState::default();
        for (id, color) in [("s1", "red"), ("s2", "blue"), ("s3", "blue")] {
            state.apply(&Command::UpsertServer {
                server: Box::new(ServerInfo {
                    id: id.into(),
                    tags: vec![("color".into(), color.into())],
                    ..Default::default()
                }),
                now: UnixMillis(0),
            });
        }
        let sessions = [("a", "tag:color = 'blue'"), ("b", "tag:color = 'blue'"), ("c", "tag:color = 'green'")];
        state.apply(&Command::CreateSessions {
            request_id: "r".into(),
            now: UnixMillis(0),
            sessions: sessions
                .iter()
                .map(|(id, requirement)| NewSession {
                    id: (*id).into(),
                    spec: SessionSpec { requirements: Some((*requirement).into()), ..Default::default() },
                })
                .collect(),
        });
        let plan = plan(&state, 10, UnixMillis(0), QueueLimits::default());
        let placed: Vec<_> = plan.placements.iter().map(|p| (p.session_id.as_str(), p.server_id.as_str())).collect();
        assert_eq!(placed, [("a", "s2"), ("b", "s3")]);
        assert_eq!(plan.unplaceable.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn a_server_that_failed_the_session_is_avoided() {
        let mut state = ClusterState::default();
        for id in ["s1", "s2"] {
            state.apply(&Command::UpsertServer {
                server: Box::new(ServerInfo { id: id.into(), ..Default::default() }),
                now: UnixMillis(0),
            });
        }
        state.apply(&Command::CreateSessions {
            request_id: "r".into(),
            now: UnixMillis(0),
            sessions: vec![NewSession { id: "a".into(), spec: SessionSpec::default() }],
        });
        state.apply(&Command::PlaceSessions {
            now: UnixMillis(0),
            placements: vec![Placement { session_id: "a".into(), server_id: "s1".into() }],
        });
        state.apply(&Command::SessionFailed {
            session_id: "a".into(),
            server_id: "s1".into(),
            reason: "x".into(),
            max_attempts: 3,
            now: UnixMillis(0),
        });
        let plan = plan(&state, 10, UnixMillis(0), QueueLimits::default());
        assert_eq!(plan.placements, vec![Placement { session_id: "a".into(), server_id: "s2".into() }]);
    }
}
