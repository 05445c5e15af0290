//! Describe queries: which sessions and servers a DescribeSessions / DescribeServers page holds. Pages walk by
//! id, so an item that exists for the whole walk is seen exactly once whatever changes meanwhile.

use crate::model::{EndpointProtocol, Server, Session, SessionState};
use crate::state::ClusterState;

/// A DescribeSessions filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionFilter {
    Owner(String),
    /// A tag of the server that holds the session: key, value.
    Tag(String, String),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Unsupported filter '{0}': use owner or tag:<key>")]
pub struct UnsupportedFilter(pub String);

impl SessionFilter {
    pub fn parse(key: &str, value: &str) -> Result<SessionFilter, UnsupportedFilter> {
        if key == "owner" {
            Ok(SessionFilter::Owner(value.to_owned()))
        } else if let Some(tag) = key.strip_prefix("tag:") {
            Ok(SessionFilter::Tag(tag.to_owned(), value.to_owned()))
        } else {
            Err(UnsupportedFilter(key.to_owned()))
        }
    }

    fn matches(&self, state: &ClusterState, session: &Session) -> bool {
        match self {
            SessionFilter::Owner(owner) => &session.spec.owner == owner,
            SessionFilter::Tag(key, value) => session
                .server_id
                .as_deref()
                .and_then(|id| state.server(id))
                .is_some_and(|server| server.info.tags.iter().any(|(k, v)| k == key && v == value)),
        }
    }
}

/// One page, and the key to continue after when more items remain.
#[derive(Debug, PartialEq)]
pub struct Page<'a, T> {
    pub items: Vec<&'a T>,
    pub continue_after: Option<String>,
}

/// Takes up to `limit` items; `continue_after` is set only when another item follows.
fn page<'a, T>(candidates: impl Iterator<Item = &'a T>, key: impl Fn(&T) -> &str, limit: usize) -> Page<'a, T> {
    let mut items: Vec<&T> = candidates.take(limit + 1).collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let continue_after = if more { items.last().map(|item| key(item).to_owned()) } else { None };
    Page { items, continue_after }
}

/// Asked-for ids, looked up directly (never a scan), in id order like a full walk, after `after`.
fn by_ids<'a, T>(
    ids: &[String],
    after: Option<&str>,
    lookup: impl Fn(&str) -> Option<&'a T>,
    key: impl Fn(&T) -> &str,
) -> Vec<&'a T> {
    let mut found: Vec<&T> = ids.iter().filter_map(|id| lookup(id)).collect();
    found.sort_by(|a, b| key(a).cmp(key(b)));
    found.dedup_by(|a, b| key(a) == key(b));
    found.retain(|item| after.is_none_or(|after| key(item) > after));
    found
}

fn session_id(session: &Session) -> &str {
    &session.id
}

fn server_id(server: &Server) -> &str {
    &server.info.id
}

/// A DescribeSessions page: the asked-for ids (all sessions when empty) that pass every filter.
pub fn sessions<'a>(
    state: &'a ClusterState,
    ids: &[String],
    filters: &[SessionFilter],
    after: Option<&str>,
    limit: usize,
) -> Page<'a, Session> {
    let passes = |session: &&Session| filters.iter().all(|filter| filter.matches(state, session));
    if ids.is_empty() {
        page(state.sessions_after(after).filter(passes), session_id, limit)
    } else {
        let found = by_ids(ids, after, |id| state.session(id), session_id);
        page(found.into_iter().filter(passes), session_id, limit)
    }
}

/// A DescribeServers page: the asked-for ids (all servers when empty).
pub fn servers<'a>(state: &'a ClusterState, ids: &[String], after: Option<&str>, limit: usize) -> Page<'a, Server> {
    if ids.is_empty() {
        page(state.servers_after(after), server_id, limit)
    } else {
        page(by_ids(ids, after, |id| state.server(id), server_id).into_iter(), server_id, limit)
    }
}

/// Where the DCV Connection Gateway sends a client of a session (`POST /resolveSession`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub session_id: String,
    pub protocol: EndpointProtocol,
    pub address: String,
    pub port: u16,
    pub web_url_path: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("The requested dcvSession does not exist")]
    UnknownSession,
    #[error("The session is not ready (state {0})")]
    NotReady(&'static str),
    #[error("The session's server has no {0} endpoint")]
    NoEndpoint(&'static str),
}

/// The endpoint of a READY session's server for `protocol`.
pub fn resolve_session(
    state: &ClusterState,
    session_id: &str,
    protocol: EndpointProtocol,
) -> Result<Resolution, ResolveError> {
    let session =
        state.session(session_id).filter(|s| s.state != SessionState::Deleted).ok_or(ResolveError::UnknownSession)?;
    if session.state != SessionState::Ready {
        return Err(ResolveError::NotReady(session.state.as_api_str()));
    }
    let server = session.server_id.as_deref().and_then(|id| state.server(id)).ok_or(ResolveError::UnknownSession)?;
    let endpoint = server
        .info
        .endpoints
        .iter()
        .find(|e| e.protocol == protocol)
        .ok_or(ResolveError::NoEndpoint(protocol.as_api_str()))?;
    Ok(Resolution {
        session_id: session.id.clone(),
        protocol,
        address: endpoint.ip_address.clone(),
        port: endpoint.port,
        web_url_path: endpoint.web_url_path.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, NewSession, Placement};
    use crate::model::{ServerInfo, SessionSpec, UnixMillis};

    /// Servers s1 (color red) and s2 (color blue); sessions a..e created out of order, a, c and e owned by alice,
    /// b and d by bob; a placed on s1, b on s2.
    fn fixture() -> ClusterState {
        let mut state = ClusterState::default();
        for (id, color) in [("s1", "red"), ("s2", "blue")] {
            state.apply(&Command::UpsertServer {
                server: Box::new(ServerInfo {
                    id: id.into(),
                    tags: vec![("color".into(), color.into())],
                    ..Default::default()
                }),
                now: UnixMillis(0),
            });
        }
        let sessions = [("c", "alice"), ("a", "alice"), ("e", "alice"), ("b", "bob"), ("d", "bob")]
            .iter()
            .map(|(id, owner)| NewSession {
                id: (*id).into(),
                spec: SessionSpec { owner: (*owner).into(), ..Default::default() },
            })
            .collect();
        state.apply(&Command::CreateSessions { request_id: "r".into(), now: UnixMillis(0), sessions });
        state.apply(&Command::PlaceSessions {
            now: UnixMillis(0),
            placements: vec![
                Placement { session_id: "a".into(), server_id: "s1".into() },
                Placement { session_id: "b".into(), server_id: "s2".into() },
            ],
        });
        state
    }

    fn ids<T>(page: &Page<'_, T>, key: impl Fn(&T) -> &str) -> Vec<String> {
        page.items.iter().map(|item| key(item).to_owned()).collect()
    }

    /// name, asked-for ids, filters, after, limit, the page's ids, where the next page starts.
    type Case = (
        &'static str,
        Vec<&'static str>,
        Vec<SessionFilter>,
        Option<&'static str>,
        usize,
        Vec<&'static str>,
        Option<&'static str>,
    );

    #[test]
    fn session_pages_table() {
        let state = fixture();
        let owner = |o: &str| SessionFilter::Owner(o.into());
        let tag = |k: &str, v: &str| SessionFilter::Tag(k.into(), v.into());
        let cases: Vec<Case> = vec![
            ("everything, in id order", vec![], vec![], None, 10, vec!["a", "b", "c", "d", "e"], None),
            ("a first page", vec![], vec![], None, 2, vec!["a", "b"], Some("b")),
            ("the next page", vec![], vec![], Some("b"), 2, vec!["c", "d"], Some("d")),
            ("the last page has no continuation", vec![], vec![], Some("d"), 2, vec!["e"], None),
            ("by owner", vec![], vec![owner("alice")], None, 10, vec!["a", "c", "e"], None),
            ("by server tag", vec![], vec![tag("color", "blue")], None, 10, vec!["b"], None),
            ("filters combine", vec![], vec![owner("alice"), tag("color", "red")], None, 10, vec!["a"], None),
            (
                "asked-for ids, unknown and repeated ones dropped",
                vec!["e", "zz", "a", "e"],
                vec![],
                None,
                10,
                vec!["a", "e"],
                None,
            ),
            ("asked-for ids page too", vec!["e", "c", "a"], vec![], None, 2, vec!["a", "c"], Some("c")),
            ("asked-for ids after a key", vec!["e", "c", "a"], vec![], Some("c"), 2, vec!["e"], None),
            ("asked-for ids with a filter", vec!["a", "b"], vec![owner("bob")], None, 10, vec!["b"], None),
        ];
        for (name, asked, filters, after, limit, want, want_next) in cases {
            let asked: Vec<String> = asked.into_iter().map(Into::into).collect();
            let got = sessions(&state, &asked, &filters, after, limit);
            assert_eq!(ids(&got, session_id), want, "{name}");
            assert_eq!(got.continue_after.as_deref(), want_next, "{name}");
        }
    }

    #[test]
    fn server_pages() {
        let state = fixture();
        assert_eq!(ids(&servers(&state, &[], None, 1), server_id), ["s1"]);
        assert_eq!(servers(&state, &[], None, 1).continue_after.as_deref(), Some("s1"));
        assert_eq!(ids(&servers(&state, &[], Some("s1"), 1), server_id), ["s2"]);
        assert_eq!(ids(&servers(&state, &["s2".into(), "nope".into()], None, 10), server_id), ["s2"]);
    }

    #[test]
    fn filters_parse() {
        assert_eq!(SessionFilter::parse("owner", "x"), Ok(SessionFilter::Owner("x".into())));
        assert_eq!(SessionFilter::parse("tag:k", "v"), Ok(SessionFilter::Tag("k".into(), "v".into())));
        let err = SessionFilter::parse("color", "red").unwrap_err();
        assert_eq!(err.to_string(), "Unsupported filter 'color': use owner or tag:<key>");
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;
    use crate::command::{Command, NewSession, Placement};
    use crate::model::{Endpoint, ServerInfo, SessionSpec, UnixMillis};

    #[test]
    fn resolution_table() {
        let mut state = ClusterState::default();
        let endpoint =
            |protocol, port| Endpoint { ip_address: "10.0.0.5".into(), port, protocol, web_url_path: "/dcv".into() };
        let info = ServerInfo {
            id: "s1".into(),
            endpoints: vec![endpoint(EndpointProtocol::Http, 8443), endpoint(EndpointProtocol::Quic, 8444)],
            ..Default::default()
        };
        state.apply(&Command::UpsertServer { server: Box::new(info), now: UnixMillis(0) });
        let spec = SessionSpec { name: "n".into(), owner: "o".into(), ..Default::default() };
        let sessions = ["ready", "waiting"].map(|id| NewSession { id: id.into(), spec: spec.clone() }).to_vec();
        state.apply(&Command::CreateSessions { request_id: "r".into(), now: UnixMillis(0), sessions });
        let placements = vec![Placement { session_id: "ready".into(), server_id: "s1".into() }];
        state.apply(&Command::PlaceSessions { now: UnixMillis(0), placements });
        state.apply(&Command::SessionReady { session_id: "ready".into(), server_id: "s1".into(), now: UnixMillis(1) });

        let http = resolve_session(&state, "ready", EndpointProtocol::Http).unwrap();
        assert_eq!((http.address.as_str(), http.port, http.web_url_path.as_str()), ("10.0.0.5", 8443, "/dcv"));
        assert_eq!(resolve_session(&state, "ready", EndpointProtocol::Quic).unwrap().port, 8444);
        assert_eq!(resolve_session(&state, "nope", EndpointProtocol::Http), Err(ResolveError::UnknownSession));
        assert_eq!(resolve_session(&state, "waiting", EndpointProtocol::Http), Err(ResolveError::NotReady("CREATING")));
    }
}
