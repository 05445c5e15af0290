//! The state machine: `ClusterState` in memory behind a lock the API layer reads through, rebuilt at startup
//! from the snapshot persisted in the `KvStore`; openraft then re-applies the log after it.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use broker_core::{ClusterState, NodeId, Response};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::codec::{decode, encode, CodecError};
use super::flusher::Flusher;
use super::kv::{KvStore, MetaKey, SledKv};
use super::StorageOpenError;
use crate::types::{BerthNode, Entry, LogId, StorageError, TypeConfig};

type Membership = StoredMembership<NodeId, BerthNode>;
type Meta = SnapshotMeta<NodeId, BerthNode>;

/// The snapshot bytes: the state and the position it reflects. Generic so that building encodes a borrowed
/// state (no copy under the lock) and loading decodes an owned one; both have the same encoding.
#[derive(Serialize, Deserialize)]
struct SnapshotPayload<S> {
    state: S,
    last_applied: Option<LogId>,
    membership: Membership,
}

/// The `MetaKey::Snapshot` record. `seq` restores the snapshot id counter after a restart.
#[derive(Serialize, Deserialize)]
struct PersistedSnapshot<D> {
    meta: Meta,
    seq: u64,
    data: D,
}

#[derive(Debug, thiserror::Error)]
#[error("snapshot data reflects log id {data:?} but its meta says {meta:?}")]
struct SnapshotMismatch {
    data: Option<LogId>,
    meta: Option<LogId>,
}

#[derive(Clone, Debug, Default)]
struct Applied {
    last_applied: Option<LogId>,
    membership: Membership,
}

/// Counters of snapshots, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    pub built: u64,
    pub installed: u64,
}

struct Shared {
    state: Arc<RwLock<ClusterState>>,
    /// Changed only while `state` is write-locked, so a reader holding `state` sees the matching position.
    applied: Mutex<Applied>,
    applied_tx: watch::Sender<u64>,
    /// Meta of the persisted snapshot: a slow build must not overwrite a newer installed snapshot.
    persisted: Mutex<Option<Meta>>,
    next_seq: AtomicU64,
    built: AtomicU64,
    installed: AtomicU64,
}

fn write_snapshot_error<E: std::error::Error + 'static>(meta: Option<&Meta>, e: &E) -> StorageIOError<NodeId> {
    StorageIOError::write_snapshot(meta.map(Meta::signature), e)
}

fn read_snapshot_error<E: std::error::Error + 'static>(meta: Option<&Meta>, e: &E) -> StorageIOError<NodeId> {
    StorageIOError::read_snapshot(meta.map(Meta::signature), e)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The applied index as published on the watch: 0 until something is applied. Index 0 is the cluster's
/// initial membership entry, which carries no command, so the ambiguity costs nothing.
fn index_of(log_id: Option<LogId>) -> u64 {
    log_id.map_or(0, |id| id.index)
}

/// A cloneable read handle on the state machine for the API layer.
#[derive(Clone)]
pub struct StateReader {
    state: Arc<RwLock<ClusterState>>,
    applied: watch::Receiver<u64>,
}

impl StateReader {
    /// Blocks appliers while held: keep it short and never across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, ClusterState> {
        read(&self.state)
    }

    /// The index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the applied index reaches `index` (a read-index read on a follower); Err if the state
    /// machine is gone.
    pub async fn wait_applied(&self, index: u64) -> Result<u64, watch::error::RecvError> {
        let mut rx = self.applied.clone();
        let reached = rx.wait_for(|applied| *applied >= index).await?;
        Ok(*reached)
    }
}

/// The openraft state machine over `ClusterState`.
pub struct StateMachineStore<K: KvStore = SledKv> {
    kv: K,
    flusher: Flusher,
    shared: Arc<Shared>,
}

impl<K: KvStore> StateMachineStore<K> {
    /// Loads the persisted snapshot, if any, as the starting state.
    pub(super) fn open(kv: K, flusher: Flusher) -> Result<Self, StorageOpenError> {
        let read_error = |what, e: CodecError| StorageOpenError::Read { what, source: Box::new(e) };
        let record = kv
            .get_meta(MetaKey::Snapshot)
            .map_err(|e| StorageOpenError::Read { what: "the snapshot", source: Box::new(e) })?;
        let (state, applied, persisted, next_seq) = match record {
            None => (ClusterState::default(), Applied::default(), None, 0),
            Some(bytes) => {
                let record: PersistedSnapshot<Vec<u8>> = decode(&bytes).map_err(|e| read_error("the snapshot", e))?;
                let payload: SnapshotPayload<ClusterState> =
                    decode(&record.data).map_err(|e| read_error("the snapshot data", e))?;
                let applied =
                    Applied { last_applied: record.meta.last_log_id, membership: record.meta.last_membership.clone() };
                (payload.state, applied, Some(record.meta), record.seq + 1)
            }
        };
        let (applied_tx, _) = watch::channel(index_of(applied.last_applied));
        let shared = Shared {
            state: Arc::new(RwLock::new(state)),
            applied: Mutex::new(applied),
            applied_tx,
            persisted: Mutex::new(persisted),
            next_seq: AtomicU64::new(next_seq),
            built: AtomicU64::new(0),
            installed: AtomicU64::new(0),
        };
        Ok(Self { kv, flusher, shared: Arc::new(shared) })
    }

    /// The live state. Write-locked only while a batch of entries is applied or a snapshot installed.
    pub fn state(&self) -> Arc<RwLock<ClusterState>> {
        self.shared.state.clone()
    }

    pub fn reader(&self) -> StateReader {
        StateReader { state: self.shared.state.clone(), applied: self.shared.applied_tx.subscribe() }
    }

    /// The index of the last applied entry, updated after every applied batch and installed snapshot.
    pub fn applied_index_watch(&self) -> watch::Receiver<u64> {
        self.shared.applied_tx.subscribe()
    }

    pub fn snapshot_stats(&self) -> SnapshotStats {
        SnapshotStats {
            built: self.shared.built.load(Ordering::Relaxed),
            installed: self.shared.installed.load(Ordering::Relaxed),
        }
    }
}

/// Writes `data` as the current snapshot and flushes it. With `only_if_newer`, a snapshot older than the
/// persisted one is left out (Ok(false)): openraft builds snapshots in a task that can finish after an
/// install of a newer one.
async fn persist_snapshot<K: KvStore>(
    kv: &K,
    flusher: &Flusher,
    shared: &Shared,
    meta: &Meta,
    seq: u64,
    data: &[u8],
    only_if_newer: bool,
) -> Result<bool, StorageError> {
    let record = encode(&PersistedSnapshot { meta: meta.clone(), seq, data })
        .map_err(|e| write_snapshot_error(Some(meta), &e))?;
    {
        let mut persisted = lock(&shared.persisted);
        if only_if_newer && persisted.as_ref().is_some_and(|p| p.last_log_id > meta.last_log_id) {
            return Ok(false);
        }
        kv.put_meta(MetaKey::Snapshot, record).map_err(|e| write_snapshot_error(Some(meta), &e))?;
        *persisted = Some(meta.clone());
    }
    flusher.flush().await.map_err(|e| write_snapshot_error(Some(meta), &e))?;
    Ok(true)
}

impl<K: KvStore> RaftStateMachine<TypeConfig> for StateMachineStore<K> {
    type SnapshotBuilder = SnapshotBuilder<K>;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        let applied = lock(&self.shared.applied).clone();
        Ok((applied.last_applied, applied.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        let last_applied = {
            let mut state = write(&self.shared.state);
            let mut applied = lock(&self.shared.applied);
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => Response::Ok,
                    EntryPayload::Normal(command) => state.apply(&command),
                    EntryPayload::Membership(membership) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                        Response::Ok
                    }
                };
                responses.push(response);
            }
            applied.last_applied
        };
        if !responses.is_empty() {
            self.shared.applied_tx.send_replace(index_of(last_applied));
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { kv: self.kv.clone(), flusher: self.flusher.clone(), shared: self.shared.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<Cursor<Vec<u8>>>) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let payload: SnapshotPayload<ClusterState> = decode(&data).map_err(|e| read_snapshot_error(Some(meta), &e))?;
        if payload.last_applied != meta.last_log_id {
            let mismatch = SnapshotMismatch { data: payload.last_applied, meta: meta.last_log_id };
            return Err(read_snapshot_error(Some(meta), &mismatch).into());
        }
        let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed);
        // Durable before the state changes: a failed install leaves the old state and snapshot in place.
        persist_snapshot(&self.kv, &self.flusher, &self.shared, meta, seq, &data, false).await?;
        {
            let mut state = write(&self.shared.state);
            let mut applied = lock(&self.shared.applied);
            *state = payload.state;
            *applied = Applied { last_applied: meta.last_log_id, membership: meta.last_membership.clone() };
        }
        self.shared.installed.fetch_add(1, Ordering::Relaxed);
        self.shared.applied_tx.send_replace(index_of(meta.last_log_id));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Some(bytes) = self.kv.get_meta(MetaKey::Snapshot).map_err(|e| read_snapshot_error(None, &e))? else {
            return Ok(None);
        };
        let record: PersistedSnapshot<Vec<u8>> = decode(&bytes).map_err(|e| read_snapshot_error(None, &e))?;
        Ok(Some(Snapshot { meta: record.meta, snapshot: Box::new(Cursor::new(record.data)) }))
    }
}

/// Builds a snapshot of the state at the moment it runs (it read-locks the state while encoding).
pub struct SnapshotBuilder<K: KvStore = SledKv> {
    kv: K,
    flusher: Flusher,
    shared: Arc<Shared>,
}

impl<K: KvStore> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<K> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let shared = self.shared.clone();
        // Encoding a large state is CPU work that would stall the runtime thread.
        let encoded = tokio::task::spawn_blocking(move || {
            let state = read(&shared.state);
            let applied = lock(&shared.applied).clone();
            let payload =
                SnapshotPayload { state: &*state, last_applied: applied.last_applied, membership: applied.membership };
            encode(&payload).map(|data| (data, payload.last_applied, payload.membership))
        })
        .await
        .map_err(|e| write_snapshot_error(None, &e))?;
        let (data, last_log_id, last_membership) = encoded.map_err(|e| write_snapshot_error(None, &e))?;

        let seq = self.shared.next_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, seq),
            None => format!("0-none-{seq}"),
        };
        let meta = Meta { last_log_id, last_membership, snapshot_id };
        if !persist_snapshot(&self.kv, &self.flusher, &self.shared, &meta, seq, &data, true).await? {
            tracing::info!(snapshot = %meta.snapshot_id, "a newer snapshot was installed meanwhile; not persisting");
        }
        self.shared.built.fetch_add(1, Ordering::Relaxed);
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}
