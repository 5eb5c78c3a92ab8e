//! One session being written: [`SessionWriter`] (the caller's handle) over a [`Core`]
//! (the open segment, shared with the ticker that flushes and age-seals idle sessions).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::sealer::SealJob;
use super::spool;
use super::uploader::Upload;
use super::wal::{self, WalWriter};
use super::{Inner, SpoolPolicy};
use crate::columns::Columns;
use crate::error::{Error, Result};
use crate::frame::{Event, Frame, FrameData, Micros};
use crate::manifest::{Manifest, RecordingState, SessionMeta};
use super::spool::SegmentNote;
use crate::tap::TapSender;

/// Unflushed bytes that trigger a spool write on the hot path: large enough that a busy
/// session makes few syscalls, small enough that a spilled segment (see [`Core`]) keeps
/// little in memory.
const FLUSH_BYTES: usize = 64 << 10;

/// Room for a segment sealed at `seal_bytes`: it passes the size by up to one frame, and
/// the output column's buffer also takes the other columns when sealed.
pub(crate) fn segment_capacity(seal_bytes: usize) -> usize {
    seal_bytes + seal_bytes / 4 + FLUSH_BYTES
}

/// How long after its first frame a segment is sealed for its age: between half of
/// `seal_age` and all of it, drawn per segment from the session id and sequence number.
/// Sessions that start printing at the same moment (a command run on many hosts, a
/// proxy restarted under load) would otherwise seal together every `seal_age`, and each
/// wave of seals and uploads delays every session's keystrokes for milliseconds; spread
/// out, the same work goes unnoticed.
fn seal_due(seal_age: Duration, id: Uuid, seq: u64) -> Duration {
    // splitmix64 of the id and sequence: a cheap, well-mixed fraction in [0, 1).
    let mut x = (id.as_u128() as u64) ^ ((id.as_u128() >> 64) as u64) ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    let fraction = (x >> 11) as f64 / (1u64 << 53) as f64;
    seal_age.mul_f64(0.5 + 0.5 * fraction)
}

/// How a session ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionEnd {
    /// Why: `"exit"`, `"client-disconnect"`, `"terminated: ..."`.
    pub reason: String,
    /// The remote command's or shell's exit status, when known.
    pub exit_status: Option<i32>,
}

/// What the writer, sealer and uploader share about one session.
pub(crate) struct SessionShared {
    pub id: Uuid,
    /// The session's spool directory.
    pub dir: PathBuf,
    /// The manifest as known here: metadata, and the segments already in the store.
    pub manifest: Mutex<Manifest>,
    /// SHA-256 of the last sealed segment; only the session's sealer thread touches it.
    pub chain: Mutex<[u8; 32]>,
    /// Set while the store refuses this session's uploads: the sealer then writes sealed
    /// segments to the spool (compressed) instead of queueing them in memory.
    pub stalled: AtomicBool,
    /// The spool's segment log, open for appending (see [`spool::append_segment`]).
    log: Mutex<Option<File>>,
    /// Holds the spool directory's lock for the session's lifetime.
    _lock: File,
}

impl SessionShared {
    pub(crate) fn new(id: Uuid, dir: PathBuf, manifest: Manifest, chain: [u8; 32], lock: File) -> Self {
        SessionShared {
            id,
            dir,
            manifest: Mutex::new(manifest),
            chain: Mutex::new(chain),
            stalled: AtomicBool::new(false),
            log: Mutex::new(None),
            _lock: lock,
        }
    }

    pub(crate) fn snapshot(&self) -> Manifest {
        self.manifest.lock().expect("manifest lock").clone()
    }

    /// Applies `f` to the manifest and saves the local copy.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Manifest)) -> Manifest {
        let mut m = self.manifest.lock().expect("manifest lock");
        f(&mut m);
        if let Err(e) = spool::write_manifest(&self.dir, &m) {
            tracing::warn!(id = %self.id, "cannot save the local manifest: {e}");
        }
        m.clone()
    }

    /// Notes a segment the store acknowledged: in the manifest, and in the spool's
    /// segment log (one appended line, not a rewrite of the whole manifest per segment),
    /// so that recovery knows it is in the store once its spool file is gone.
    pub(crate) fn note_segment(&self, seg: &SegmentNote) -> Result<()> {
        seg.apply(&mut self.manifest.lock().expect("manifest lock"));
        spool::append_segment(&self.dir, &mut self.log.lock().expect("log lock"), seg)
    }
}

/// Frames dropped under `best-effort` while the spool was full.
#[derive(Debug, Clone, Copy)]
struct Loss {
    frames: u64,
    bytes: u64,
    from: Micros,
    to: Micros,
}

/// The open segment of one session. Its frames are built as a columnar body in memory
/// (so sealing compresses bytes that are still hot instead of reading the spool back) and
/// appended to the segment's spool file in chunks. The memory is accounted in the
/// recorder's memory budget; when the budget is used up, the segment *spills*: it keeps
/// only its unflushed bytes, and the sealer reads it back from the spool file.
pub(crate) struct Core {
    inner: Arc<Inner>,
    shared: Arc<SessionShared>,
    seq: u64,
    /// The open segment's frames.
    cols: Columns,
    wal: WalWriter,
    /// Raw bytes of the open segment (in memory or in the spool file).
    seg_bytes: usize,
    /// Memory budget taken by `cols`; 0 once spilled.
    held: u64,
    spilled: bool,
    /// When the open segment is due to be sealed for its age, counted from its first
    /// frame (see [`seal_due`]).
    seal_at: Option<Instant>,
    last_flush: Instant,
    loss: Option<Loss>,
    /// Set once a fail-closed spool refused a frame: the session records nothing more.
    failed: Option<String>,
    closed: bool,
    /// Spool bytes reserved for this session and not used yet (see [`Core::reserve`]).
    credit: u64,
}

impl Core {
    pub(crate) fn new(inner: Arc<Inner>, shared: Arc<SessionShared>) -> Self {
        Core {
            inner,
            shared,
            seq: 0,
            cols: Columns { external: true, ..Columns::default() },
            wal: WalWriter::default(),
            seg_bytes: 0,
            held: 0,
            spilled: false,
            seal_at: None,
            last_flush: Instant::now(),
            loss: None,
            failed: None,
            closed: false,
            credit: 0,
        }
    }

    /// Takes `n` bytes of spool budget. Sessions reserve in chunks of up to 64 KiB (at most
    /// 1/256 of the limit, so small spools stay exact enough) rather than per frame: one
    /// shared counter updated by every writer on every frame would bounce its cache line
    /// between cores.
    fn reserve(&mut self, n: u64) -> bool {
        if self.credit >= n {
            self.credit -= n;
            return true;
        }
        let spool = &self.inner.spool;
        let chunk = (spool.limit() / 256).min(64 << 10);
        let want = n.max(chunk) - self.credit;
        if spool.try_reserve(want) {
            self.credit = self.credit + want - n;
            return true;
        }
        let want = n - self.credit;
        if spool.try_reserve(want) {
            self.credit = 0;
            return true;
        }
        false
    }

    /// Appends one frame to the open segment (and, in batches, to the spool file).
    fn append(&mut self, t: Micros, data: &FrameData) -> Result<()> {
        if let Some(msg) = &self.failed {
            return Err(Error::Unavailable(msg.clone()));
        }
        if self.closed {
            return Err(Error::invalid("write", "session already finished"));
        }
        if let Some(loss) = self.loss {
            self.record_loss(loss, t)?;
        }
        if !self.push(t, data)? {
            let bytes = match data {
                FrameData::Output(b) | FrameData::Input(b) => b.len() as u64,
                _ => 0,
            };
            let loss = self.loss.get_or_insert(Loss { frames: 0, bytes: 0, from: t, to: t });
            loss.frames += 1;
            loss.bytes += bytes;
            loss.to = t;
        }
        Ok(())
    }

    /// Adds a frame if the spool has room. `Ok(false)`: dropped under best-effort.
    fn push(&mut self, t: Micros, data: &FrameData) -> Result<bool> {
        if let (true, FrameData::Output(b)) = (self.cols.external, data) {
            self.make_room_for_output(b.len())?;
        }
        let out_mark = self.wal.out_mark();
        if let (true, FrameData::Output(b)) = (self.cols.external, data) {
            self.write_out(b)?;
        }
        let mark = self.cols.mark();
        let n = self.cols.push(t, data);
        if !self.reserve(n as u64) {
            let spool = &self.inner.spool;
            self.cols.rollback(mark);
            self.wal.out_rollback(out_mark);
            if self.inner.config().policy == SpoolPolicy::BestEffort {
                return Ok(false);
            }
            let msg = format!(
                "spool {} is full ({} of {} bytes) and the policy is fail-closed: recording stopped",
                spool.dir().display(),
                spool.used(),
                spool.limit()
            );
            self.failed = Some(msg.clone());
            self.shared.update(|m| m.losses.push(format!("at {t} µs: {msg}")));
            return Err(Error::Unavailable(msg));
        }
        if self.seal_at.is_none() {
            self.seal_at = Some(Instant::now() + seal_due(self.inner.config().seal_age, self.shared.id, self.seq));
            self.inner.ticker.poke();
        }
        self.seg_bytes += n;
        if self.wal.unflushed(&self.cols) >= FLUSH_BYTES {
            self.flush()?;
        }
        if self.seg_bytes >= self.inner.config().seal_bytes {
            self.seal()?;
        }
        Ok(true)
    }

    /// Before an output payload goes straight into the segment's write-ahead file: one
    /// that would pass the file's output region seals the segment first, and one larger
    /// than the region keeps the new segment's output in its columns instead.
    fn make_room_for_output(&mut self, len: usize) -> Result<()> {
        let region = wal::log_at(segment_capacity(self.inner.config().seal_bytes)) - wal::OUT_AT;
        if self.wal.out_mark() + len > region {
            self.seal()?;
            if len > region {
                self.cols.external = false;
            }
        }
        Ok(())
    }

    /// Copies an output payload straight into the open segment's write-ahead file (the
    /// columns only count it); on a file system that cannot reserve space for the
    /// mapping, the segment keeps its output in its columns instead.
    fn write_out(&mut self, payload: &[u8]) -> Result<()> {
        let capacity = segment_capacity(self.inner.config().seal_bytes);
        let (dir, seq) = (&self.shared.dir, self.seq);
        match self.wal.write_out(&self.inner.spool, || spool::wal_path(dir, seq), capacity, payload)? {
            Some(header) => self.inner.spool.add(header),
            None => {
                debug_assert_eq!(self.cols.ext_out, 0, "a file takes direct output from its first output on, or never");
                self.cols.external = false;
            }
        }
        Ok(())
    }

    /// Writes the recorded loss as an event once there is room again.
    fn record_loss(&mut self, loss: Loss, now: Micros) -> Result<()> {
        let event = Event {
            kind: "recording.loss".into(),
            data: serde_json::json!({
                "frames": loss.frames, "bytes": loss.bytes, "from": loss.from, "to": loss.to,
                "reason": "spool full (best-effort policy)",
            }),
        };
        if self.push(now, &FrameData::Event(event))? {
            self.loss = None;
            self.shared.update(|m| {
                m.losses.push(format!(
                    "{} frames ({} bytes) between {} µs and {} µs dropped: spool full",
                    loss.frames, loss.bytes, loss.from, loss.to
                ))
            });
        }
        Ok(())
    }

    /// Appends the unflushed frames to the spool file, and takes memory budget for them
    /// (or spills the segment when there is none left).
    fn flush(&mut self) -> Result<()> {
        let new = self.wal.unflushed_in_memory(&self.cols) as u64;
        if self.wal.unflushed(&self.cols) > 0 {
            let path = spool::wal_path(&self.shared.dir, self.seq);
            let capacity = segment_capacity(self.inner.config().seal_bytes);
            let headers = self.wal.flush(&self.inner.spool, &path, capacity, &self.cols)?;
            self.inner.spool.add(headers);
            if !self.spilled {
                if self.inner.memory.try_take(new) {
                    self.held += new;
                } else {
                    self.inner.memory.release(std::mem::take(&mut self.held));
                    self.spilled = true;
                }
            }
            if self.spilled {
                self.cols.drop_bytes(FLUSH_BYTES);
                self.wal.dropped();
            }
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Hands the open segment to the sealer and starts the next one (its output goes
    /// straight to its write-ahead file, so it needs no buffer up front).
    fn seal(&mut self) -> Result<()> {
        if self.cols.frames() == 0 {
            return Ok(());
        }
        self.flush()?;
        self.wal.close(&self.inner.spool, &spool::wal_path(&self.shared.dir, self.seq));
        let next = Columns { external: true, ..Columns::default() };
        let cols = std::mem::replace(&mut self.cols, next);
        let cols = (!self.spilled).then_some(cols);
        self.inner.pending.add();
        self.inner.sealer.send(SealJob::Seal { shared: self.shared.clone(), seq: self.seq, cols, held: self.held });
        self.seq += 1;
        self.seg_bytes = 0;
        self.held = 0;
        self.spilled = false;
        self.seal_at = None;
        Ok(())
    }

    /// Called by the ticker: flush what waited too long, seal what is old enough.
    /// Returns when the session next needs the ticker (its segment's age seal, or the
    /// flush of frames waiting now), or `None` without an open segment with frames.
    pub(crate) fn tick(&mut self, now: Instant) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let interval = self.inner.config().flush_interval;
        let result = if self.seal_at.is_some_and(|due| now >= due) {
            self.seal()
        } else if self.wal.unflushed(&self.cols) > 0 && now >= self.last_flush + interval {
            // A flush for time, not size: the session is not streaming; it gives its
            // output staging buffer back until it is.
            self.flush().map(|()| self.wal.release_stage())
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::error!(id = %self.shared.id, "spool write failed: {e}");
        }
        let flush_due = (self.wal.unflushed(&self.cols) > 0).then(|| self.last_flush + interval);
        self.seal_at.into_iter().chain(flush_due).min()
    }

    /// Seals what is left and queues the end of the session behind it.
    fn close(&mut self, end: SessionEnd, state: RecordingState, done: Option<oneshot::Sender<Manifest>>) {
        if self.closed {
            return;
        }
        if let Err(e) = self.seal() {
            tracing::error!(id = %self.shared.id, "sealing the last segment failed: {e}");
        }
        self.closed = true;
        self.inner.spool.release(std::mem::take(&mut self.credit));
        self.inner.memory.release(std::mem::take(&mut self.held));
        let state = if self.failed.is_some() { RecordingState::Failed } else { state };
        let loss = self.loss.take();
        self.shared.update(|m| {
            m.ended_at = Some(OffsetDateTime::now_utc());
            m.end_reason = Some(end.reason);
            m.exit_status = end.exit_status;
            if let Some(l) = loss {
                m.losses.push(format!(
                    "{} frames ({} bytes) between {} µs and {} µs dropped: spool full until the end",
                    l.frames, l.bytes, l.from, l.to
                ));
            }
        });
        if let Err(e) = spool::write_end(&self.shared.dir, state) {
            tracing::warn!(id = %self.shared.id, "cannot record the session end in the spool: {e}");
        }
        let inner = &self.inner;
        inner.tap.remove(self.shared.id);
        inner.registry.lock().expect("registry lock").remove(&self.shared.id);
        inner.pending.add();
        inner.sealer.send(SealJob::Finish { shared: self.shared.clone(), state, done });
    }
}

/// Writes one session. `write` is synchronous and cheap: it appends to a buffer that
/// reaches the spool file within the flush interval; compression and upload happen on
/// other threads. Dropping a writer without [`finish`](SessionWriter::finish) ends the
/// session as `interrupted`.
pub struct SessionWriter {
    core: Arc<Mutex<Core>>,
    shared: Arc<SessionShared>,
    tap: TapSender,
    inner: Arc<Inner>,
    start: Instant,
    last_t: Micros,
    finished: bool,
}

impl SessionWriter {
    pub(crate) fn new(
        core: Arc<Mutex<Core>>,
        shared: Arc<SessionShared>,
        tap: TapSender,
        inner: Arc<Inner>,
        start: Instant,
    ) -> Self {
        SessionWriter { core, shared, tap, inner, start, last_t: 0, finished: false }
    }

    /// The session id (a UUIDv7).
    pub fn id(&self) -> Uuid {
        self.shared.id
    }

    /// Microseconds since the session started; never decreases.
    pub fn now(&self) -> Micros {
        (self.start.elapsed().as_micros() as Micros).max(self.last_t)
    }

    /// Records `data` at [`now`](SessionWriter::now). Errors (kind `Unavailable`) when a
    /// fail-closed spool is full: the caller should end the session.
    pub fn write(&mut self, data: FrameData) -> Result<()> {
        let t = self.now();
        self.write_at(t, data)
    }

    /// Records a frame with its own time (imports), which must not go backwards.
    pub fn write_frame(&mut self, frame: Frame) -> Result<()> {
        if frame.t < self.last_t {
            return Err(Error::invalid(
                "frame time",
                format!("{} µs is before the previous frame's {} µs", frame.t, self.last_t),
            ));
        }
        self.write_at(frame.t, frame.data)
    }

    fn write_at(&mut self, t: Micros, data: FrameData) -> Result<()> {
        self.core.lock().expect("session lock").append(t, &data)?;
        self.last_t = t;
        if self.tap.wanted() {
            self.tap.send(Frame { t, data });
        }
        Ok(())
    }

    /// Changes the session's metadata (the proxy learns the target account after auth,
    /// for instance); the store's manifest follows shortly.
    pub fn update_meta(&mut self, f: impl FnOnce(&mut SessionMeta)) {
        let m = self.shared.update(|m| f(&mut m.meta));
        self.inner.tap.update_meta(self.shared.id, &m.meta);
        self.inner.uploader.send(Upload::Manifest { shared: self.shared.clone() });
    }

    /// Ends the session: seals the last frames and waits (up to the drain timeout) until
    /// the store has every segment and the final manifest. If the store is unreachable
    /// that long, returns the manifest as known locally; the upload goes on in the
    /// background, and recovery finishes it after a restart.
    pub async fn finish(mut self, end: SessionEnd) -> Result<Manifest> {
        let (tx, rx) = oneshot::channel();
        let core = self.core.clone();
        super::off_runtime(move || core.lock().expect("session lock").close(end, RecordingState::Complete, Some(tx))).await;
        self.finished = true;
        match tokio::time::timeout(self.inner.config().drain_timeout, rx).await {
            Ok(Ok(manifest)) => Ok(manifest),
            _ => {
                tracing::warn!(id = %self.shared.id, "store not reachable yet; the session's end stays queued in the spool");
                Ok(self.shared.snapshot())
            }
        }
    }

    /// How long [`finish`](SessionWriter::finish) may wait.
    pub fn drain_timeout(&self) -> Duration {
        self.inner.config().drain_timeout
    }
}

impl Drop for SessionWriter {
    fn drop(&mut self) {
        if !self.finished {
            let end = SessionEnd { reason: "interrupted: the recording writer was dropped".into(), exit_status: None };
            if let Ok(mut core) = self.core.lock() {
                core.close(end, RecordingState::Interrupted, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_ages_spread_over_the_second_half_of_the_limit() {
        let age = Duration::from_secs(5);
        let dues: Vec<Duration> = (0..1000).map(|i| seal_due(age, Uuid::now_v7(), i % 7)).collect();
        assert!(dues.iter().all(|d| *d >= age / 2 && *d <= age), "within [age/2, age]");
        // Spread, not bunched: each tenth of the range gets a fair share of 1,000 draws.
        let mut tenths = [0usize; 10];
        for d in &dues {
            tenths[(((d.as_secs_f64() - 2.5) / 0.25) as usize).min(9)] += 1;
        }
        assert!(tenths.iter().all(|&n| (50..=150).contains(&n)), "{tenths:?}");
        // The same segment always gets the same age.
        let id = Uuid::now_v7();
        assert_eq!(seal_due(age, id, 3), seal_due(age, id, 3));
    }
}
