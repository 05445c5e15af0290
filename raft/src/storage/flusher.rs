//! The one thread that makes writes durable: it drains every queued request, runs one fsync for all of them,
//! then answers them in order, so N appends issued while a flush runs cost one more fsync, not N.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::kv::KvStore;

/// Called once with the outcome of the fsync that covered the writes issued before it was queued.
pub(crate) type FlushJob = Box<dyn FnOnce(io::Result<()>) + Send>;

/// Counters of the flusher thread, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// fsyncs run (successful or not).
    pub fsyncs: u64,
    /// Requests answered: appends, votes, truncations, snapshots.
    pub completions: u64,
    /// fsyncs that failed.
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    fsyncs: AtomicU64,
    completions: AtomicU64,
    failures: AtomicU64,
}

/// A handle on the flusher thread. The thread ends when the last handle is dropped; that drop waits for it,
/// so that once the stores are gone the database is closed and the same directory can be opened again.
#[derive(Clone)]
pub(crate) struct Flusher {
    // Declared before `_thread` so that every handle's sender is gone by the time the last guard joins.
    tx: mpsc::UnboundedSender<FlushJob>,
    _thread: Arc<ThreadGuard>,
    counters: Arc<Counters>,
}

struct ThreadGuard(Mutex<Option<JoinHandle<()>>>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        let handle = self.0.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            // A job that owned the last handle would otherwise join its own thread.
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Flusher {
    pub(crate) fn start<K: KvStore>(kv: K) -> io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let handle = std::thread::Builder::new()
            .name("berth-log-flush".to_owned())
            .spawn(move || run(kv, rx, &thread_counters))?;
        Ok(Self { tx, _thread: Arc::new(ThreadGuard(Mutex::new(Some(handle)))), counters })
    }

    /// Queues `job` to run after an fsync that starts after this call.
    pub(crate) fn submit(&self, job: FlushJob) {
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job) {
            job(Err(io::Error::other("the log flusher thread has stopped")));
        }
    }

    /// Waits until every write issued before the call is durable.
    pub(crate) async fn flush(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(Box::new(move |result| {
            let _ = tx.send(result);
        }));
        rx.await.map_err(|_| io::Error::other("the log flusher thread dropped a flush request"))?
    }

    pub(crate) fn stats(&self) -> FlushStats {
        FlushStats {
            fsyncs: self.counters.fsyncs.load(Ordering::Relaxed),
            completions: self.counters.completions.load(Ordering::Relaxed),
            failures: self.counters.failures.load(Ordering::Relaxed),
        }
    }
}

fn run<K: KvStore>(kv: K, mut rx: mpsc::UnboundedReceiver<FlushJob>, counters: &Counters) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while let Ok(job) = rx.try_recv() {
            batch.push(job);
        }
        let result = kv.flush();
        counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        let failure = result.err().map(|e| {
            tracing::error!(error = %e, waiting = batch.len(), "log fsync failed");
            counters.failures.fetch_add(1, Ordering::Relaxed);
            e.to_string()
        });
        let answered = batch.len() as u64;
        for job in batch.drain(..) {
            match &failure {
                None => job(Ok(())),
                // io::Error is not Clone: every waiter gets its own copy of the message.
                Some(message) => job(Err(io::Error::other(message.clone()))),
            }
        }
        counters.completions.fetch_add(answered, Ordering::Relaxed);
    }
}
