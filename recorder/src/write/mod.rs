//! The write path: [`Recorder`] starts sessions; a [`SessionWriter`] builds each open
//! segment in memory and appends it to the local spool; sealer threads compress full
//! segments; the uploader puts them in the store with retries and keeps each session's
//! manifest current.
//!
//! ```text
//! SessionWriter::write ─► open segment, as columns ─► NNNN.wal (chunks; flushed ≤ 200 ms,
//!        (sync, cheap)         │ 4 MiB or 5 s              or per 64 KiB)
//!                              ▼
//!                      sealer thread: zstd, header, hash chain
//!                              ▼ in memory (or NNNN.seg when memory is short / store down)
//!                      uploader task: PUT segment, note it, PUT manifest (≤ 1/s; retries)
//!                                     ─► delete NNNN.wal (or .seg)
//! ```

mod memory;
mod pool;
mod recovery;
mod sealer;
mod session;
mod spool;
mod ticker;
mod uploader;
mod wal;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::layout;
use crate::manifest::{Manifest, SessionMeta};
use crate::storage::Storage;
use crate::tap::LiveTap;

pub use session::{SessionEnd, SessionWriter};
pub use memory::tune_allocator;

use memory::Memory;
use sealer::Sealer;
use session::{Core, SessionShared};
use spool::Spool;
use ticker::{TickerWake, spawn_ticker};
use uploader::{Pending, SegData, Upload, Uploader};

/// What to do when the spool is full (the store has been unreachable for long enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpoolPolicy {
    /// Refuse new sessions and fail writes of running ones (the caller ends them with a
    /// message to the user). Nothing unrecorded ever happens.
    #[default]
    FailClosed,
    /// Keep sessions going; frames that do not fit are counted and the loss is recorded
    /// as a `recording.loss` event and in the manifest.
    BestEffort,
}

/// Recorder settings. `RecorderConfig::new(spool_dir)` gives the defaults; the `with_`
/// methods change one each.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// The local write-ahead spool directory.
    pub spool_dir: PathBuf,
    /// Most bytes the spool may hold (open segments plus sealed ones not yet uploaded).
    pub spool_limit_bytes: u64,
    /// What happens when the spool is full.
    pub policy: SpoolPolicy,
    /// Seal a segment once it holds this many raw bytes.
    pub seal_bytes: usize,
    /// Seal a segment once its first frame is this old, at the latest: each segment is
    /// sealed somewhere between half this age and all of it, so that sessions which
    /// started printing together do not seal together ever after.
    pub seal_age: Duration,
    /// Longest a frame stays in memory before reaching the spool file: bounds what a
    /// killed process loses.
    pub flush_interval: Duration,
    /// zstd level for segments. Default 1 (with a larger hash table than zstd's own, see
    /// `segment::compressor`): with 4 MiB segments and split frame headers it stores
    /// 1/6.1 of raw on the recorder_ingest workload, where level 3 would cost about a
    /// third more CPU, and CPU is what a busy proxy runs out of.
    pub zstd_level: i32,
    /// Most bytes of open and sealed segments held in memory, all sessions together.
    /// Beyond it, segments are read back from the spool to be sealed, and sealed ones
    /// wait for upload in the spool: slower, but memory stays bounded however many
    /// sessions stream at once and however long the store is away.
    pub memory_limit_bytes: u64,
    /// Threads compressing segments.
    pub sealer_threads: usize,
    /// How long `finish` and `shutdown` wait for uploads before leaving the rest to the
    /// background uploader (or to recovery at the next start).
    pub drain_timeout: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig::new("gatehouse-data/spool")
    }
}

impl RecorderConfig {
    /// Defaults: 1 GiB fail-closed spool, seal at 4 MiB or 5 s, flush every 200 ms, zstd 1.
    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        RecorderConfig {
            spool_dir: spool_dir.into(),
            spool_limit_bytes: 1 << 30,
            policy: SpoolPolicy::FailClosed,
            seal_bytes: 4 << 20,
            seal_age: Duration::from_secs(5),
            flush_interval: Duration::from_millis(200),
            zstd_level: 1,
            memory_limit_bytes: 64 << 20,
            sealer_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            drain_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the spool limit.
    pub fn with_spool_limit(mut self, bytes: u64) -> Self {
        self.spool_limit_bytes = bytes;
        self
    }

    /// Sets the full-spool policy.
    pub fn with_policy(mut self, policy: SpoolPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets when segments seal: raw size and age.
    pub fn with_seal(mut self, bytes: usize, age: Duration) -> Self {
        self.seal_bytes = bytes.max(1);
        self.seal_age = age;
        self
    }

    /// Sets the zstd level.
    pub fn with_zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }

    /// Sets the memory budget of open and sealed segments.
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit_bytes = bytes;
        self
    }

    /// Sets the drain timeout.
    pub fn with_drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }
}

/// Records sessions: the entry point of the write path. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    storage: Storage,
    config: RecorderConfig,
    spool: Arc<Spool>,
    sealer: Sealer,
    uploader: Uploader,
    pending: Arc<Pending>,
    memory: Arc<Memory>,
    tap: LiveTap,
    /// Open sessions, for the ticker (flush and age-based sealing of idle sessions).
    registry: Mutex<HashMap<Uuid, Weak<Mutex<Core>>>>,
    /// Wakes the ticker when it sleeps for want of work.
    ticker: Arc<TickerWake>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker.close();
    }
}

/// Runs spool file work (creating, appending, renaming, truncating, removing) on tokio's
/// blocking pool. On the runtime's own threads it would hold up whatever else they run,
/// the proxy's sessions included: truncating a file waits for its pages under writeback,
/// and ext4 makes metadata changes wait while it commits its journal, for milliseconds at
/// times.
pub(crate) async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("spool file task panicked")
}

impl Recorder {
    /// Opens the spool, starts the sealer threads and the uploader, and recovers what a
    /// previous process left in the spool: its segments are uploaded and its unfinished
    /// sessions marked `interrupted`. Must run inside a tokio runtime.
    pub async fn open(storage: Storage, config: RecorderConfig) -> Result<Recorder> {
        let spool = Arc::new(Spool::open(&config.spool_dir, config.spool_limit_bytes)?);
        let pending = Arc::new(Pending::default());
        let memory = Arc::new(Memory::new(config.memory_limit_bytes, session::segment_capacity(config.seal_bytes)));
        let uploader = Uploader::start(storage.clone(), spool.clone(), pending.clone(), memory.clone());
        let sealer = Sealer::start(config.sealer_threads.max(1), config.zstd_level, spool.clone(), memory.clone(), uploader.clone());
        let recovered = {
            let (spool, level) = (spool.clone(), config.zstd_level);
            tokio::task::spawn_blocking(move || recovery::recover(&spool, level))
                .await
                .map_err(|e| Error::Unavailable(format!("recovery task: {e}")))??
        };
        for session in recovered {
            tracing::warn!(id = %session.shared.id, segments = session.segments.len(), "recovering session from spool");
            for note in session.segments {
                uploader.send(Upload::Segment { shared: session.shared.clone(), note, data: SegData::Spooled });
            }
            uploader.send(Upload::Finish { shared: session.shared, state: session.state, done: None });
        }
        let inner = Arc::new(Inner {
            storage,
            config,
            spool,
            sealer,
            uploader,
            pending,
            memory,
            tap: LiveTap::default(),
            registry: Mutex::new(HashMap::new()),
            ticker: Arc::default(),
        });
        spawn_ticker(Arc::downgrade(&inner), inner.ticker.clone());
        Ok(Recorder { inner })
    }

    /// Starts recording a session that starts now.
    pub async fn start(&self, meta: SessionMeta) -> Result<SessionWriter> {
        self.start_at(meta, OffsetDateTime::now_utc()).await
    }

    /// Starts recording a session that started at `started_at` (an import): its id is a
    /// UUIDv7 of that time. Under `fail-closed`, refuses (kind `Unavailable`) when the
    /// spool has no room for a segment (at most an eighth of the limit).
    pub async fn start_at(&self, meta: SessionMeta, started_at: OffsetDateTime) -> Result<SessionWriter> {
        let inner = &self.inner;
        if inner.config.policy == SpoolPolicy::FailClosed && inner.spool.is_full(inner.config.seal_bytes as u64) {
            return Err(Error::Unavailable(format!(
                "spool {} is full ({} of {} bytes; the store at {} is not taking uploads): refusing to start an unrecorded session",
                inner.spool.dir().display(),
                inner.spool.used(),
                inner.spool.limit(),
                inner.storage.label()
            )));
        }
        let id = layout::new_id(started_at);
        let (dir, lock, manifest) = off_runtime({
            let (spool, meta) = (inner.spool.clone(), meta.clone());
            move || -> Result<_> {
                let dir = spool.session_dir(id);
                let lock = spool::create_session_dir(&dir)?;
                let manifest = Manifest::new(id, meta, started_at);
                spool::write_manifest(&dir, &manifest)?;
                Ok((dir, lock, manifest))
            }
        })
        .await?;
        let shared = Arc::new(SessionShared::new(id, dir, manifest, [0; 32], lock));
        inner.uploader.send(Upload::Manifest { shared: shared.clone() });
        let tap = inner.tap.register(id, meta);
        let core = Arc::new(Mutex::new(Core::new(inner.clone(), shared.clone())));
        inner.registry.lock().expect("registry lock").insert(id, Arc::downgrade(&core));
        Ok(SessionWriter::new(core, shared, tap, inner.clone(), Instant::now()))
    }

    /// The live tap: live sessions and their frames.
    pub fn tap(&self) -> &LiveTap {
        &self.inner.tap
    }

    /// The storage this recorder writes to.
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// Bytes currently held in the spool.
    pub fn spool_used(&self) -> u64 {
        self.inner.spool.used()
    }

    /// Waits (up to the drain timeout) until everything sealed so far is in the store.
    /// Returns false if the timeout hit: what is left stays in the spool and is uploaded
    /// in the background or by the next start's recovery.
    pub async fn shutdown(&self) -> bool {
        let drained = self.inner.pending.wait_idle(self.inner.config.drain_timeout).await;
        if !drained {
            tracing::warn!(
                "store {} still unreachable after {:?}: {} bytes stay in spool {} for the next start",
                self.inner.storage.label(),
                self.inner.config.drain_timeout,
                self.inner.spool.used(),
                self.inner.spool.dir().display()
            );
        }
        drained
    }
}

impl Inner {
    pub(crate) fn config(&self) -> &RecorderConfig {
        &self.config
    }
}
