//! `KvStore`, the narrow key-value interface the Raft log and snapshot stores need, and `SledKv`, its sled
//! implementation. Nothing outside this file touches sled.

use std::error::Error as StdError;
use std::fmt;
use std::ops::Bound;
use std::path::Path;

const LOG_TREE: &str = "log";
const META_TREE: &str = "meta";

/// The few named values kept beside the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaKey {
    Vote,
    Committed,
    LastPurged,
    /// The current snapshot: its meta and its bytes in one value, so that they are replaced together.
    Snapshot,
}

impl MetaKey {
    pub fn name(self) -> &'static str {
        match self {
            MetaKey::Vote => "vote",
            MetaKey::Committed => "committed",
            MetaKey::LastPurged => "last_purged",
            MetaKey::Snapshot => "snapshot",
        }
    }
}

/// A failed key-value operation; `op` says which, for the logs.
#[derive(Debug, thiserror::Error)]
#[error("key-value store could not {op}: {source}")]
pub struct KvError {
    op: &'static str,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl KvError {
    pub fn new(op: &'static str, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self { op, source: source.into() }
    }

    pub fn op(&self) -> &'static str {
        self.op
    }
}

/// What the log store and the snapshot store need from a database.
///
/// Writes become visible to readers at once and durable only after a later [`KvStore::flush`] returns.
/// Implementations must keep writes in order: a flush makes every write issued before it durable.
pub trait KvStore: Send + Sync + Clone + 'static {
    fn get_meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, KvError>;
    fn put_meta(&self, key: MetaKey, value: Vec<u8>) -> Result<(), KvError>;
    fn remove_meta(&self, key: MetaKey) -> Result<(), KvError>;

    /// Writes all of `(index, bytes)` or none of them.
    fn append_log(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), KvError>;
    /// The entries whose index lies in `range`, in index order.
    fn read_log(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<(u64, Vec<u8>)>, KvError>;
    /// The entry with the greatest index.
    fn last_log(&self) -> Result<Option<(u64, Vec<u8>)>, KvError>;
    /// Removes the entries in `[from, to]`, all or none.
    fn remove_log(&self, from: u64, to: u64) -> Result<(), KvError>;

    /// Blocks until every write issued before the call is on disk (fsync). Run it off the async runtime.
    fn flush(&self) -> Result<(), KvError>;
}

/// One sled database: tree "log" holds entries under big-endian indexes (so that byte order is index order),
/// tree "meta" the named values.
#[derive(Clone)]
pub struct SledKv {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl fmt::Debug for SledKv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledKv").finish_non_exhaustive()
    }
}

impl SledKv {
    /// Opens or creates the database in `dir`. sled's default page cache is 1 GiB, hence the explicit size.
    pub fn open(dir: &Path, cache_capacity_bytes: u64) -> Result<Self, KvError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_capacity_bytes)
            .open()
            .map_err(|e| KvError::new("open the database", e))?;
        let log = db.open_tree(LOG_TREE).map_err(|e| KvError::new("open the log tree", e))?;
        let meta = db.open_tree(META_TREE).map_err(|e| KvError::new("open the meta tree", e))?;
        Ok(Self { db, log, meta })
    }

    /// Bytes the database occupies on disk (sled's files are several times the live data).
    pub fn size_on_disk(&self) -> Result<u64, KvError> {
        self.db.size_on_disk().map_err(|e| KvError::new("measure the database", e))
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> Result<u64, KvError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| KvError::new("read a log key", format!("{} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn key_bound(bound: Bound<u64>) -> Bound<[u8; 8]> {
    match bound {
        Bound::Included(i) => Bound::Included(index_key(i)),
        Bound::Excluded(i) => Bound::Excluded(index_key(i)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// sled panics on a range whose start lies after its end; such a range holds nothing anyway.
fn is_empty_range(range: &(Bound<u64>, Bound<u64>)) -> bool {
    let start = match range.0 {
        Bound::Included(i) => i,
        Bound::Excluded(i) => match i.checked_add(1) {
            Some(i) => i,
            None => return true,
        },
        Bound::Unbounded => 0,
    };
    match range.1 {
        Bound::Included(end) => start > end,
        Bound::Excluded(end) => start >= end,
        Bound::Unbounded => false,
    }
}

impl KvStore for SledKv {
    fn get_meta(&self, key: MetaKey) -> Result<Option<Vec<u8>>, KvError> {
        let value = self.meta.get(key.name()).map_err(|e| KvError::new("read a meta value", e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    fn put_meta(&self, key: MetaKey, value: Vec<u8>) -> Result<(), KvError> {
        self.meta.insert(key.name(), value).map_err(|e| KvError::new("write a meta value", e))?;
        Ok(())
    }

    fn remove_meta(&self, key: MetaKey) -> Result<(), KvError> {
        self.meta.remove(key.name()).map_err(|e| KvError::new("remove a meta value", e))?;
        Ok(())
    }

    fn append_log(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), KvError> {
        let mut batch = sled::Batch::default();
        for (index, bytes) in entries {
            batch.insert(&index_key(index), bytes);
        }
        self.log.apply_batch(batch).map_err(|e| KvError::new("append log entries", e))
    }

    fn read_log(&self, range: (Bound<u64>, Bound<u64>)) -> Result<Vec<(u64, Vec<u8>)>, KvError> {
        if is_empty_range(&range) {
            return Ok(Vec::new());
        }
        self.log
            .range((key_bound(range.0), key_bound(range.1)))
            .map(|item| {
                let (key, value) = item.map_err(|e| KvError::new("read log entries", e))?;
                Ok((key_index(&key)?, value.to_vec()))
            })
            .collect()
    }

    fn last_log(&self) -> Result<Option<(u64, Vec<u8>)>, KvError> {
        match self.log.last().map_err(|e| KvError::new("read the last log entry", e))? {
            Some((key, value)) => Ok(Some((key_index(&key)?, value.to_vec()))),
            None => Ok(None),
        }
    }

    fn remove_log(&self, from: u64, to: u64) -> Result<(), KvError> {
        if from > to {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for key in self.log.range(index_key(from)..=index_key(to)).keys() {
            batch.remove(key.map_err(|e| KvError::new("scan log entries to remove", e))?);
        }
        self.log.apply_batch(batch).map_err(|e| KvError::new("remove log entries", e))
    }

    fn flush(&self) -> Result<(), KvError> {
        // One flush covers every tree: they share sled's single write-ahead log.
        self.db.flush().map_err(|e| KvError::new("flush to disk", e))?;
        Ok(())
    }
}
