//! Tests of the storage layer: openraft's own store suite, restart, batched fsyncs, fsync failures, and
//! durability of acknowledged writes across a process exit.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;

use broker_core::{ApiClient, ClusterState, Command, UnixMillis};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine, StorageHelper};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, EntryPayload, Membership, RaftLogReader, RaftSnapshotBuilder, StorageIOError, Vote};
use tempfile::TempDir;

use super::codec::decode;
use super::*;
use crate::types::{BerthNode, Entry, LogId, StorageError, TypeConfig};

const CACHE: u64 = 8 * 1024 * 1024;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn command_entry(term: u64, index: u64) -> Entry {
    let client = ApiClient {
        client_id: format!("client-{index}"),
        client_name: format!("client number {index}"),
        secret_salt: "salt".to_owned(),
        secret_sha256: "00".repeat(32),
        created: UnixMillis(index as i64),
    };
    Entry { log_id: log_id(term, index), payload: EntryPayload::Normal(Command::RegisterApiClient { client }) }
}

fn membership_entry(term: u64, index: u64) -> Entry {
    let node = BerthNode {
        peer_address: "127.0.0.1:7000".to_owned(),
        api_url: "https://127.0.0.1:8443".to_owned(),
        agent_address: "127.0.0.1:7001".to_owned(),
    };
    let membership = Membership::new(vec![BTreeSet::from([1])], BTreeMap::from([(1, node)]));
    Entry { log_id: log_id(term, index), payload: EntryPayload::Membership(membership) }
}

/// Index 0 carries the membership, the rest are commands: the shape of a freshly initialised cluster's log.
fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes.map(|i| if i == 0 { membership_entry(term, 0) } else { command_entry(term, i) }).collect()
}

struct TempStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for TempStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let (log, state_machine) = open_storage(dir.path(), CACHE).map_err(|e| StorageIOError::write(&e))?;
        Ok((dir, log, state_machine))
    }
}

#[test]
fn openraft_store_suite() -> Result<(), StorageError> {
    Suite::test_all(TempStoreBuilder)
}

#[tokio::test]
async fn restart_restores_vote_log_committed_snapshot_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Vote::new(3, 1);
    let log_entries = entries(3, 0..=8);
    let (snapshot_meta, state_at_5, state_at_8, membership) = {
        let (mut log, mut sm) = open_storage(dir.path(), CACHE).unwrap();
        log.save_vote(&vote).await.unwrap();
        log.blocking_append(log_entries.clone()).await.unwrap();
        sm.apply(log_entries[..=5].to_vec()).await.unwrap();
        let state_at_5 = sm.state().read().unwrap().clone();
        let snapshot = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
        sm.apply(log_entries[6..].to_vec()).await.unwrap();
        let state_at_8 = sm.state().read().unwrap().clone();
        log.save_committed(Some(log_id(3, 8))).await.unwrap();
        log.purge(log_id(3, 3)).await.unwrap();
        let (_, membership) = sm.applied_state().await.unwrap();
        assert_eq!(sm.snapshot_stats(), SnapshotStats { built: 1, installed: 0 });
        (snapshot.meta, state_at_5, state_at_8, membership)
    };
    assert_ne!(state_at_5, state_at_8, "the commands after the snapshot must change the state");
    assert_eq!(snapshot_meta.last_log_id, Some(log_id(3, 5)));
    assert!(snapshot_meta.snapshot_id.starts_with("3-5-"), "snapshot id {}", snapshot_meta.snapshot_id);

    let (mut log, mut sm) = open_storage(dir.path(), CACHE).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(vote));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(3, 8)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(3, 3)));
    assert_eq!(state.last_log_id, Some(log_id(3, 8)));
    assert_eq!(log.try_get_log_entries(0..100).await.unwrap(), log_entries[4..].to_vec());

    let snapshot = sm.get_current_snapshot().await.unwrap().expect("the snapshot is persisted");
    assert_eq!(snapshot.meta, snapshot_meta);
    assert_eq!(sm.applied_state().await.unwrap(), (Some(log_id(3, 5)), membership.clone()));
    assert_eq!(*sm.state().read().unwrap(), state_at_5);
    assert_eq!(*sm.applied_index_watch().borrow(), 5);

    // What openraft does at startup: re-apply the log from the snapshot up to the saved committed id.
    let reader = sm.reader();
    let initial = StorageHelper::new(&mut log, &mut sm).get_initial_state().await.unwrap();
    assert_eq!(initial.vote_ref(), &vote);
    assert_eq!(sm.applied_state().await.unwrap(), (Some(log_id(3, 8)), membership));
    assert_eq!(*reader.read(), state_at_8);
    assert_eq!(reader.applied_index(), 8);
    assert_eq!(reader.wait_applied(8).await.unwrap(), 8);

    // A snapshot built after the restart gets a fresh id even at the same log position.
    let rebuilt = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    assert_ne!(rebuilt.meta.snapshot_id, snapshot_meta.snapshot_id);
}

#[tokio::test]
async fn install_snapshot_replaces_state_and_survives_reopen() {
    let (_leader_dir, _leader_log, mut leader) = TempStoreBuilder.build().await.unwrap();
    leader.apply(entries(2, 0..=6)).await.unwrap();
    let built = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
    let leader_state = leader.state().read().unwrap().clone();

    let dir = tempfile::tempdir().unwrap();
    {
        let (_log, mut follower) = open_storage(dir.path(), CACHE).unwrap();
        follower.apply(entries(1, 0..=2)).await.unwrap();
        let mut applied = follower.applied_index_watch();
        let mut receiving = follower.begin_receiving_snapshot().await.unwrap();
        *receiving = *built.snapshot;
        follower.install_snapshot(&built.meta, receiving).await.unwrap();
        assert!(applied.has_changed().unwrap());
        assert_eq!(*applied.borrow_and_update(), 6);
        assert_eq!(*follower.state().read().unwrap(), leader_state);
        assert_eq!(follower.snapshot_stats(), SnapshotStats { built: 0, installed: 1 });
    }
    let (_log, mut follower) = open_storage(dir.path(), CACHE).unwrap();
    assert_eq!(follower.get_current_snapshot().await.unwrap().unwrap().meta, built.meta);
    assert_eq!(follower.applied_state().await.unwrap().0, Some(log_id(2, 6)));
    assert_eq!(*follower.state().read().unwrap(), leader_state);
}

#[tokio::test]
async fn install_snapshot_rejects_data_that_does_not_match_its_meta() {
    let (_dir, _log, mut sm) = TempStoreBuilder.build().await.unwrap();
    sm.apply(entries(1, 0..=3)).await.unwrap();
    let mut built = sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    built.meta.last_log_id = Some(log_id(1, 9));
    let before = sm.state().read().unwrap().clone();
    assert!(sm.install_snapshot(&built.meta, built.snapshot).await.is_err());
    assert_eq!(*sm.state().read().unwrap(), before);
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
}

/// A `KvStore` over sled whose flushes a test can hold or fail.
#[derive(Clone)]
struct TestKv {
    inner: SledKv,
    fail_flush: Arc<AtomicBool>,
    hold: Arc<Mutex<Option<HeldFlush>>>,
}

struct HeldFlush {
    entered: std_mpsc::Sender<()>,
    release: std_mpsc::Receiver<()>,
}

impl TestKv {
    fn open(dir: &Path) -> Self {
        Self { inner: SledKv::open(dir, CACHE).unwrap(), fail_flush: Arc::default(), hold: Arc::default() }
    }

    /// The next flush signals on the first channel, then waits for the second.
    fn hold_next_flush(&self) -> (std_mpsc::Receiver<()>, std_mpsc::Sender<()>) {
        let (entered, entered_rx) = std_mpsc::channel();
        let (release_tx, release) = std_mpsc::channel();
        *self.hold.lock().unwrap() = Some(HeldFlush { entered, release });
        (entered_rx, release_tx)
    }
}

impl KvStore for TestKv {
    fn get_meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, KvError> {
        self.inner.get_meta(key)
    }
    fn put_meta(&self, key: MetaKey, value: Vec<u8>) -> Result<(), KvError> {
        self.inner.put_meta(key, value)
    }
    fn remove_meta(&self, key: MetaKey) -> Result<(), KvError> {
        self.inner.remove_meta(key)
    }
    fn append_log(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), KvError> {
        self.inner.append_log(entries)
    }
    fn read_log(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<(u64, Vec<u8>)>, KvError> {
        self.inner.read_log(range)
    }
    fn last_log(&self) -> Result<Option<(u64, Vec<u8>)>, KvError> {
        self.inner.last_log()
    }
    fn remove_log(&self, from: u64, to: u64) -> Result<(), KvError> {
        self.inner.remove_log(from, to)
    }
    fn flush(&self) -> Result<(), KvError> {
        let held = self.hold.lock().unwrap().take();
        if let Some(held) = held {
            held.entered.send(()).unwrap();
            held.release.recv().unwrap();
        }
        if self.fail_flush.load(Ordering::SeqCst) {
            return Err(KvError::new("flush to disk", io::Error::other("injected fsync failure")));
        }
        self.inner.flush()
    }
}

#[tokio::test]
async fn pipelined_appends_share_fsyncs_and_survive_reopen() {
    const APPENDS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let kv = TestKv::open(dir.path());
    let (entered, release) = kv.hold_next_flush();
    let (mut log, _sm) = open_with(kv).unwrap();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let append = |log: &mut LogStore<TestKv>, index: u64| {
        let done_tx = done_tx.clone();
        log.append_then(entries(1, index..=index), move |result| done_tx.send((index, result)).unwrap()).unwrap();
    };

    // The first append's fsync is held open, so every later append queues behind it, as they do when openraft
    // pipelines appends without waiting for their callbacks.
    append(&mut log, 1);
    entered.recv_timeout(Duration::from_secs(10)).unwrap();
    for index in 2..=APPENDS {
        append(&mut log, index);
    }
    assert!(done_rx.try_recv().is_err(), "no append is acknowledged before its fsync");
    assert_eq!(log.try_get_log_entries(1..=APPENDS).await.unwrap().len() as u64, APPENDS, "visible at once");
    release.send(()).unwrap();

    for expected in 1..=APPENDS {
        let (index, result) = done_rx.recv().await.unwrap();
        assert_eq!(index, expected, "callbacks complete in append order");
        result.unwrap();
    }
    let stats = log.flush_stats();
    assert_eq!(stats.fsyncs, 2, "one fsync for the first append, one for the {} queued behind it", APPENDS - 1);
    assert_eq!(stats.completions, APPENDS);
    drop(log);
    drop(_sm);

    let (mut log, _sm) = open_storage(dir.path(), CACHE).unwrap();
    assert_eq!(log.try_get_log_entries(1..=APPENDS).await.unwrap(), entries(1, 1..=APPENDS));
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(log_id(1, APPENDS)));
}

#[tokio::test]
async fn fsync_errors_reach_callbacks_and_fail_durable_writes() {
    let dir = tempfile::tempdir().unwrap();
    let kv = TestKv::open(dir.path());
    let fail = kv.fail_flush.clone();
    let (mut log, mut sm) = open_with(kv).unwrap();
    log.blocking_append(entries(1, 0..=2)).await.unwrap();

    fail.store(true, Ordering::SeqCst);
    let (tx, rx) = tokio::sync::oneshot::channel();
    log.append_then(entries(1, 3..=3), move |result| tx.send(result).unwrap()).unwrap();
    let error = rx.await.unwrap().expect_err("the callback sees the fsync failure");
    assert!(error.to_string().contains("injected fsync failure"), "{error}");
    assert!(log.blocking_append(entries(1, 4..=4)).await.is_err());
    assert!(log.save_vote(&Vote::new(1, 1)).await.is_err());
    assert!(log.truncate(log_id(1, 2)).await.is_err());
    sm.apply(entries(1, 0..=2)).await.unwrap();
    assert!(sm.get_snapshot_builder().await.build_snapshot().await.is_err());
    assert_eq!(log.flush_stats().failures, 5);

    fail.store(false, Ordering::SeqCst);
    log.blocking_append(entries(1, 5..=5)).await.unwrap();
    log.save_vote(&Vote::new(1, 1)).await.unwrap();
}

#[tokio::test]
async fn truncate_and_purge_keep_the_log_without_holes() {
    let (_dir, mut log, _sm) = TempStoreBuilder.build().await.unwrap();
    log.blocking_append(entries(1, 0..=10)).await.unwrap();
    log.truncate(log_id(1, 7)).await.unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (None, Some(log_id(1, 6))));

    log.purge(log_id(1, 6)).await.unwrap();
    let state = log.get_log_state().await.unwrap();
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(log_id(1, 6)), Some(log_id(1, 6))));
    assert!(log.try_get_log_entries(..).await.unwrap().is_empty());

    log.blocking_append(entries(2, 7..=8)).await.unwrap();
    assert_eq!(log.try_get_log_entries(..).await.unwrap(), entries(2, 7..=8));
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(log_id(2, 8)));
    let inverted = (Bound::Included(9), Bound::Excluded(3));
    assert!(log.try_get_log_entries(inverted).await.unwrap().is_empty(), "an inverted range is empty");
}

const EXIT_CHILD_DIR: &str = "BERTH_STORAGE_EXIT_CHILD_DIR";
const EXIT_CHILD_ACKED: &str = "exit-child: all writes acknowledged";

/// The child half of `acknowledged_writes_survive_process_exit`: writes, then exits without destructors.
async fn write_then_exit(dir: &str) -> ! {
    let (mut log, mut sm) = open_storage(Path::new(dir), CACHE).unwrap();
    log.save_vote(&Vote::new(7, 1)).await.unwrap();
    for index in 0..=50 {
        log.blocking_append(entries(7, index..=index)).await.unwrap();
    }
    sm.apply(entries(7, 0..=20)).await.unwrap();
    sm.get_snapshot_builder().await.build_snapshot().await.unwrap();
    println!("{EXIT_CHILD_ACKED}");
    // No destructor runs: whatever was acknowledged must already be on disk, not in sled's buffers.
    std::process::exit(0);
}

/// Re-runs this very test in a child process (marked by an environment variable) that exits abruptly.
#[tokio::test]
async fn acknowledged_writes_survive_process_exit() {
    if let Ok(dir) = std::env::var(EXIT_CHILD_DIR) {
        write_then_exit(&dir).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "storage::tests::acknowledged_writes_survive_process_exit",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(EXIT_CHILD_DIR, dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(EXIT_CHILD_ACKED),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    let (mut log, mut sm) = open_storage(dir.path(), CACHE).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(7, 1)));
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(log_id(7, 50)));
    assert_eq!(log.try_get_log_entries(0..=50).await.unwrap(), entries(7, 0..=50));
    let snapshot = sm.get_current_snapshot().await.unwrap().expect("the snapshot was flushed");
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(7, 20)));
    let mut expected = ClusterState::default();
    for entry in entries(7, 1..=20) {
        if let EntryPayload::Normal(command) = &entry.payload {
            expected.apply(command);
        }
    }
    assert_eq!(*sm.state().read().unwrap(), expected);
    let payload: (ClusterState, Option<LogId>, openraft::StoredMembership<u64, BerthNode>) =
        decode(snapshot.snapshot.get_ref()).unwrap();
    assert_eq!(payload.0, expected, "the snapshot bytes are (state, last applied, membership)");
}
