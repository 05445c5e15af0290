//! The leader's supervisor: started when this node becomes leader, stopped when it stops being leader. It
//! spawns and respawns its children and keeps the registry of server and session actors.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use broker_core::{liveness, Command, SessionSpec};
use broker_raft::ClusterHandle;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::task::JoinHandle;

use crate::deletion::{DeletionActor, DeletionArgs, DeletionMsg};
use crate::placement::{PlacementActor, PlacementArgs, PlacementMsg};
use crate::readiness::{ReadinessActor, ReadinessMsg};
use crate::server::{AgentLink, ServerActor, ServerArgs, ServerMsg};
use crate::session::{SessionActor, SessionArgs};
use crate::ActorConfig;

pub enum SupervisorMsg {
    /// The gateway accepted and registered an agent; its actor takes over the link.
    AgentRegistered { server_id: String, link: Box<AgentLink> },
    /// Capacity is reserved on `server_id`: prepare the session there.
    SessionPlaced { session_id: String, server_id: String, spec: Box<SessionSpec> },
    /// Placement should run (new sessions, servers or capacity). Coalesced by `kick_pending`.
    Kick,
    /// A session actor asks for the actor of its server.
    FindServer { server_id: String, reply: RpcReplyPort<Option<ActorRef<ServerMsg>>> },
    /// Review agent liveness (every second).
    Tick,
}

pub struct Supervisor;

pub struct SupervisorArgs {
    pub cluster: ClusterHandle,
    pub config: ActorConfig,
    pub signing_key: Option<Vec<u8>>,
}

pub struct SupervisorState {
    cluster: ClusterHandle,
    config: ActorConfig,
    servers: HashMap<String, ActorRef<ServerMsg>>,
    sessions: HashMap<String, ActorRef<crate::session::SessionMsg>>,
    placement: ActorRef<PlacementMsg>,
    readiness: ActorRef<ReadinessMsg>,
    deletion: ActorRef<DeletionMsg>,
    kick_pending: Arc<AtomicBool>,
    applied_watch: JoinHandle<()>,
    leader_since: broker_core::UnixMillis,
    ticker: JoinHandle<()>,
}

impl Supervisor {
    async fn spawn_deletion(
        myself: &ActorRef<SupervisorMsg>,
        cluster: &ClusterHandle,
    ) -> Result<ActorRef<DeletionMsg>, ActorProcessingErr> {
        let args = DeletionArgs { cluster: cluster.clone(), supervisor: myself.clone() };
        let (deletion, _) = Actor::spawn_linked(None, DeletionActor, args, myself.get_cell()).await?;
        Ok(deletion)
    }

    async fn spawn_placement(
        myself: &ActorRef<SupervisorMsg>,
        cluster: &ClusterHandle,
        config: &ActorConfig,
        kick_pending: &Arc<AtomicBool>,
    ) -> Result<ActorRef<PlacementMsg>, ActorProcessingErr> {
        let args = PlacementArgs {
            cluster: cluster.clone(),
            supervisor: myself.clone(),
            kick_pending: kick_pending.clone(),
            batch: config.placement_batch,
            queue: config.queue,
        };
        let (placement, _) = Actor::spawn_linked(None, PlacementActor, args, myself.get_cell()).await?;
        Ok(placement)
    }
}

/// Sends one Kick unless one is already waiting, so the mailbox stays bounded whatever the write rate.
pub(crate) fn kick(supervisor: &ActorRef<SupervisorMsg>, pending: &AtomicBool) {
    if !pending.swap(true, Ordering::AcqRel) {
        let _ = supervisor.cast(SupervisorMsg::Kick);
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let kick_pending = Arc::new(AtomicBool::new(false));
        let placement = Self::spawn_placement(&myself, &args.cluster, &args.config, &kick_pending).await?;
        let (readiness, _) = Actor::spawn_linked(None, ReadinessActor, args.cluster.clone(), myself.get_cell()).await?;
        let deletion = Self::spawn_deletion(&myself, &args.cluster).await?;

        if args.cluster.read(|s| s.signing_key().is_none()) {
            if let Some(key) = args.signing_key {
                let cluster = args.cluster.clone();
                tokio::spawn(async move {
                    let command =
                        Command::InitCluster { cluster_id: uuid::Uuid::new_v4().to_string(), signing_key: key };
                    if let Err(e) = cluster.write(command).await {
                        tracing::warn!(error = %e, "could not initialize the cluster signing key");
                    }
                });
            }
        }

        // Every applied entry may free capacity or add work: kick placement (coalesced).
        let mut applied = args.cluster.raft().metrics();
        let watcher = myself.clone();
        let pending = kick_pending.clone();
        let applied_watch = tokio::spawn(async move {
            let mut last = None;
            while applied.changed().await.is_ok() {
                let now = applied.borrow().last_applied;
                if now != last {
                    last = now;
                    kick(&watcher, &pending);
                }
            }
        });

        // Sessions a previous leader placed but did not finish preparing.
        let pending_sessions: Vec<_> = args.cluster.read(|s| {
            s.pending_preparation()
                .filter_map(|session| {
                    session.server_id.clone().map(|server| (session.id.clone(), server, session.spec.clone()))
                })
                .collect()
        });
        for (session_id, server_id, spec) in pending_sessions {
            myself.cast(SupervisorMsg::SessionPlaced { session_id, server_id, spec: Box::new(spec) })?;
        }
        kick(&myself, &kick_pending);
        let tick_target = myself.clone();
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(std::time::Duration::from_secs(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                if tick_target.cast(SupervisorMsg::Tick).is_err() {
                    return;
                }
            }
        });
        tracing::info!("leader actors started");
        Ok(SupervisorState {
            cluster: args.cluster,
            config: args.config,
            servers: HashMap::new(),
            sessions: HashMap::new(),
            placement,
            readiness,
            deletion,
            kick_pending,
            applied_watch,
            leader_since: crate::now(),
            ticker,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::AgentRegistered { server_id, link } => {
                if let Some(old) = state.servers.remove(&server_id) {
                    old.stop(Some("the agent connected again".into()));
                }
                let args = ServerArgs {
                    server_id: server_id.clone(),
                    link: *link,
                    cluster: state.cluster.clone(),
                    config: state.config.clone(),
                };
                let (server, _) = Actor::spawn_linked(None, ServerActor, args, myself.get_cell()).await?;
                state.servers.insert(server_id.clone(), server);
                // Work that waited for this agent can go ahead now: deletions (kicked) and sessions whose
                // preparation gave up while the agent was away (their actors are restarted here).
                kick(&myself, &state.kick_pending);
                let stalled: Vec<_> = state.cluster.read(|s| {
                    s.pending_preparation()
                        .filter(|session| session.server_id.as_deref() == Some(server_id.as_str()))
                        .filter(|session| !state.sessions.contains_key(&session.id))
                        .map(|session| (session.id.clone(), session.spec.clone()))
                        .collect()
                });
                for (session_id, spec) in stalled {
                    myself.cast(SupervisorMsg::SessionPlaced {
                        session_id,
                        server_id: server_id.clone(),
                        spec: Box::new(spec),
                    })?;
                }
            }
            SupervisorMsg::SessionPlaced { session_id, server_id, spec } => {
                if state.sessions.contains_key(&session_id) {
                    return Ok(());
                }
                let args = SessionArgs {
                    session_id: session_id.clone(),
                    server_id,
                    spec: *spec,
                    cluster: state.cluster.clone(),
                    supervisor: myself.clone(),
                    readiness: state.readiness.clone(),
                    config: state.config.clone(),
                };
                let (session, _) = Actor::spawn_linked(None, SessionActor, args, myself.get_cell()).await?;
                state.sessions.insert(session_id, session);
            }
            SupervisorMsg::Kick => {
                // Let the placement actor clear the flag when it starts its round.
                state.placement.cast(PlacementMsg::Run)?;
                state.deletion.cast(DeletionMsg::Run)?;
            }
            SupervisorMsg::FindServer { server_id, reply } => {
                let _ = reply.send(state.servers.get(&server_id).cloned());
            }
            SupervisorMsg::Tick => {
                // Queued requests time out even when nothing else happens.
                kick(&myself, &state.kick_pending);
                let connected: BTreeSet<String> = state.servers.keys().cloned().collect();
                let now = crate::now();
                let rules = state.config.liveness;
                let review = state.cluster.read(|s| liveness::review(s, &connected, state.leader_since, now, rules));
                let mut commands = Vec::new();
                if !review.unreachable.is_empty() {
                    tracing::warn!(servers = ?review.unreachable, "agents unreachable");
                    let changes = review.unreachable.into_iter().map(|id| (id, false)).collect();
                    commands.push(Command::SetServersReachable { changes, now });
                }
                if !review.remove.is_empty() {
                    tracing::warn!(servers = ?review.remove, "removing servers whose agents stayed unreachable");
                    commands.push(Command::RemoveServers { server_ids: review.remove, now });
                }
                if !review.end_sessions.is_empty() {
                    tracing::warn!(
                        sessions = review.end_sessions.len(),
                        "ending the sessions of servers unreachable too long"
                    );
                    let deletions = review
                        .end_sessions
                        .into_iter()
                        .map(|session_id| broker_core::Deletion { session_id, owner: None, force: true })
                        .collect();
                    commands.push(Command::DeleteSessions { deletions, now });
                }
                if !review.purge.is_empty() {
                    tracing::debug!(
                        sessions = review.purge.len(),
                        "purging DELETED sessions past delete-session-duration-hours"
                    );
                    commands.push(Command::PurgeSessions { session_ids: review.purge, now });
                }
                // Written beside the actor: a write may wait for a quorum, and the mailbox must keep moving.
                let cluster = state.cluster.clone();
                for command in commands {
                    let cluster = cluster.clone();
                    tokio::spawn(async move {
                        if let Err(e) = cluster.write(command).await {
                            tracing::warn!(error = %e, "liveness change not replicated; the next tick tries again");
                        }
                    });
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why): (ActorCell, String) = match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, reason.unwrap_or_default()),
            SupervisionEvent::ActorFailed(cell, error) => (cell, format!("failed: {error}")),
            _ => return Ok(()),
        };
        let id = cell.get_id();
        if id == state.placement.get_id() {
            tracing::warn!(reason = %why, "placement actor stopped; respawning it");
            state.placement =
                Self::spawn_placement(&myself, &state.cluster, &state.config, &state.kick_pending).await?;
            kick(&myself, &state.kick_pending);
        } else if id == state.deletion.get_id() {
            tracing::warn!(reason = %why, "deletion actor stopped; respawning it");
            state.deletion = Self::spawn_deletion(&myself, &state.cluster).await?;
        } else if id == state.readiness.get_id() {
            tracing::warn!(reason = %why, "readiness actor stopped; respawning it");
            let (readiness, _) =
                Actor::spawn_linked(None, ReadinessActor, state.cluster.clone(), myself.get_cell()).await?;
            state.readiness = readiness;
        } else {
            state.servers.retain(|_, server| server.get_id() != id);
            state.sessions.retain(|_, session| session.get_id() != id);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.applied_watch.abort();
        state.ticker.abort();
        myself.stop_children(Some("this node is no longer the leader".into()));
        tracing::info!("leader actors stopped");
        Ok(())
    }
}

/// The running actor tree of a leader.
pub struct LeaderActors {
    pub supervisor: ActorRef<SupervisorMsg>,
    join: JoinHandle<()>,
}

impl LeaderActors {
    pub async fn stop(self) {
        self.supervisor.stop(Some("leadership lost".into()));
        let _ = self.join.await;
    }
}

pub async fn start_leader_actors(
    cluster: ClusterHandle,
    config: ActorConfig,
    signing_key: Option<Vec<u8>>,
) -> Result<LeaderActors, ractor::SpawnErr> {
    let (supervisor, join) = Actor::spawn(None, Supervisor, SupervisorArgs { cluster, config, signing_key }).await?;
    Ok(LeaderActors { supervisor, join })
}
