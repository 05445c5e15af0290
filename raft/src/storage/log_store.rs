//! The Raft log store: entries, vote, committed id and purge point in a `KvStore`, made durable through the
//! batching flusher thread.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use broker_core::NodeId;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader, StorageIOError, Vote};
use serde::de::DeserializeOwned;

use super::codec::{decode, encode};
use super::flusher::{FlushStats, Flusher};
use super::kv::{KvStore, MetaKey, SledKv};
use super::StorageOpenError;
use crate::types::{Entry, LogId, StorageError, TypeConfig};

/// Reads log entries; cheap to clone, one per replication stream.
#[derive(Clone, Debug)]
pub struct LogReader<K: KvStore = SledKv> {
    kv: K,
}

impl<K: KvStore> LogReader<K> {
    fn read_entries(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<Entry>, StorageError> {
        let raw = self.kv.read_log(range).map_err(|e| StorageIOError::read_logs(&e))?;
        raw.iter()
            .map(|(index, bytes)| decode(bytes).map_err(|e| StorageIOError::read_log_at_index(*index, &e).into()))
            .collect()
    }
}

impl<K: KvStore> RaftLogReader<TypeConfig> for LogReader<K> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read_entries((range.start_bound().cloned(), range.end_bound().cloned()))
    }
}

/// The openraft log store. Appends are visible at once and acknowledged (through openraft's callback) only
/// after an fsync covers them.
pub struct LogStore<K: KvStore = SledKv> {
    reader: LogReader<K>,
    flusher: Flusher,
}

impl<K: KvStore> LogStore<K> {
    pub(super) fn open(kv: K, flusher: Flusher) -> Result<Self, StorageOpenError> {
        let store = Self { reader: LogReader { kv }, flusher };
        // purge records the purge point before it removes entries: finish one a crash interrupted.
        let last_purged: Option<LogId> = store
            .read_meta(MetaKey::LastPurged)
            .map_err(|e| StorageOpenError::Read { what: "the last purged log id", source: Box::new(e) })?;
        if let Some(purged) = last_purged {
            store
                .kv()
                .remove_log(0, purged.index)
                .map_err(|e| StorageOpenError::Read { what: "the purged log entries", source: Box::new(e) })?;
        }
        Ok(store)
    }

    /// fsync counts of the flusher shared by the log and the state machine.
    pub fn flush_stats(&self) -> FlushStats {
        self.flusher.stats()
    }

    fn kv(&self) -> &K {
        &self.reader.kv
    }

    fn read_meta<T: DeserializeOwned>(&self, key: MetaKey) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self.kv().get_meta(key).map_err(|e| StorageIOError::read(&e))? else {
            return Ok(None);
        };
        decode(&bytes).map(Some).map_err(|e| StorageIOError::read(&e).into())
    }

    async fn flush(&self) -> io::Result<()> {
        self.flusher.flush().await
    }

    /// Writes `entries` and runs `done` once an fsync covers them; openraft's `append` and the tests share it.
    pub(super) fn append_then<I>(
        &mut self,
        entries: I,
        done: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry>,
    {
        let mut batch = Vec::new();
        for entry in entries {
            let bytes = encode(&entry).map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
            batch.push((entry.log_id.index, bytes));
        }
        if !batch.is_empty() {
            self.kv().append_log(batch).map_err(|e| StorageIOError::write_logs(&e))?;
        }
        self.flusher.submit(Box::new(done));
        Ok(())
    }
}

impl<K: KvStore> RaftLogReader<TypeConfig> for LogStore<K> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.reader.try_get_log_entries(range).await
    }
}

impl<K: KvStore> RaftLogStorage<TypeConfig> for LogStore<K> {
    type LogReader = LogReader<K>;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(MetaKey::LastPurged)?;
        let last_entry = match self.kv().last_log().map_err(|e| StorageIOError::read_logs(&e))? {
            Some((index, bytes)) => {
                let entry: Entry = decode(&bytes).map_err(|e| StorageIOError::read_log_at_index(index, &e))?;
                Some(entry.log_id)
            }
            None => None,
        };
        let last_log_id = match (last_entry, last_purged_log_id) {
            (Some(entry), Some(purged)) if entry.index <= purged.index => Some(purged),
            (Some(entry), _) => Some(entry),
            (None, purged) => purged,
        };
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = encode(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.kv().put_meta(MetaKey::Vote, bytes).map_err(|e| StorageIOError::write_vote(&e))?;
        self.flush().await.map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(MetaKey::Vote)
    }

    /// Not flushed: losing the newest committed id in a crash only means re-applying less at startup, and the
    /// next append or vote flushes it anyway.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        match committed {
            Some(log_id) => {
                let bytes = encode(&log_id).map_err(|e| StorageIOError::write(&e))?;
                self.kv().put_meta(MetaKey::Committed, bytes)
            }
            None => self.kv().remove_meta(MetaKey::Committed),
        }
        .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_meta(MetaKey::Committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_then(entries, move |result| callback.log_io_completed(result))
    }

    /// Flushed before returning (truncation is rare: a follower's log conflicts with the leader's), so that
    /// the removed suffix cannot reappear after a crash under entries appended later.
    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.kv().remove_log(log_id.index, u64::MAX).map_err(|e| StorageIOError::write_logs(&e))?;
        self.flush().await.map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purge point is durable before any entry goes, so no restart sees a log that starts after a hole.
        let bytes = encode(&log_id).map_err(|e| StorageIOError::write(&e))?;
        self.kv().put_meta(MetaKey::LastPurged, bytes).map_err(|e| StorageIOError::write(&e))?;
        self.flush().await.map_err(|e| StorageIOError::write(&e))?;
        self.kv().remove_log(0, log_id.index).map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}
