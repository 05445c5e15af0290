//! Placement: which server takes which waiting session. A pure function of the state; the leader proposes its
//! result and `apply` re-checks every reservation.

use std::collections::BTreeMap;

use crate::command::Placement;
use crate::model::{Server, Session, SessionType};
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

/// Plans up to `limit` sessions from the head of the waiting queue. Reservations made earlier in the same round
/// count, so one round never overfills a server.
pub fn plan(state: &ClusterState, limit: usize) -> PlacementPlan {
    let mut extra: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let mut plan = PlacementPlan::default();
    for session in state.placing_queue().take(limit) {
        match choose_server(state, session, &extra) {
            Some(server) => {
                let entry = extra.entry(server.info.id.as_str()).or_default();
                match session.spec.kind() {
                    SessionType::Console => entry.0 += 1,
                    SessionType::Virtual => entry.1 += 1,
                }
                plan.placements.push(Placement { session_id: session.id.clone(), server_id: server.info.id.clone() });
            }
            None if session.spec.enqueue_request => plan.still_waiting += 1,
            None => plan.unplaceable.push((session.id.clone(), NO_SERVER_REASON.to_owned())),
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
            let plan = plan(&state, 100);
            let placed: Vec<_> =
                plan.placements.iter().map(|p| (p.session_id.as_str(), p.server_id.as_str())).collect();
            assert_eq!(placed, case.want_placed, "{}", case.name);
            let unplaceable: Vec<_> = plan.unplaceable.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(unplaceable, case.want_unplaceable, "{}", case.name);
            assert_eq!(plan.still_waiting, case.want_waiting, "{}", case.name);
        }
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
        let plan = plan(&state, 10);
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
        let plan = plan(&state, 10);
        assert_eq!(plan.placements, vec![Placement { session_id: "a".into(), server_id: "s2".into() }]);
    }
}
