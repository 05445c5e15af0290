//! Durable Raft storage: the log store and the snapshotting state machine over one sled database, reached only
//! through the narrow `KvStore` trait.

// openraft's StorageError is over 200 bytes and every storage trait method must return it; helpers that feed
// those methods return it too rather than box it only to unbox it one call later.
#![allow(clippy::result_large_err)]

mod codec;
mod flusher;
mod kv;
mod log_store;
mod state_machine;
#[cfg(test)]
mod tests;

use std::error::Error as StdError;
use std::io;
use std::path::{Path, PathBuf};

pub use codec::CodecError;
pub use flusher::FlushStats;
pub use kv::{KvError, KvStore, MetaKey, SledKv};
pub use log_store::{LogReader, LogStore};
pub use state_machine::{SnapshotBuilder, SnapshotStats, StateMachineStore, StateReader};

/// A sensible sled page cache for a broker node; sled's own default is 1 GiB.
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StorageOpenError {
    #[error("cannot open the database in {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: KvError,
    },
    #[error("cannot read {what}: {source}")]
    Read {
        what: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("cannot start the log flusher thread: {0}")]
    FlusherThread(#[source] io::Error),
}

/// Opens (or creates) the node's storage in `dir`: the log store and the state machine share one sled database
/// and one flusher thread. The state machine starts from the persisted snapshot; openraft re-applies the log
/// after it up to the saved committed id. Both stores and every `LogReader` handed out must be dropped before `dir`
/// can be opened again (sled holds a lock on it).
pub fn open_storage(dir: &Path, cache_capacity_bytes: u64) -> Result<(LogStore, StateMachineStore), StorageOpenError> {
    let kv = SledKv::open(dir, cache_capacity_bytes)
        .map_err(|source| StorageOpenError::Database { path: dir.to_owned(), source })?;
    open_with(kv)
}

/// [`open_storage`] over any `KvStore`.
pub fn open_with<K: KvStore>(kv: K) -> Result<(LogStore<K>, StateMachineStore<K>), StorageOpenError> {
    let flusher = flusher::Flusher::start(kv.clone()).map_err(StorageOpenError::FlusherThread)?;
    let log = LogStore::open(kv.clone(), flusher.clone())?;
    let state_machine = StateMachineStore::open(kv, flusher)?;
    Ok((log, state_machine))
}
