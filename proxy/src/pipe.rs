//! Flow-controlled pipes between a russh session loop (the producer, inside a `Handler`
//! callback) and the bridge task that writes into the other SSH connection (the consumer).
//!
//! Why not russh's own per-channel queues: russh grants SSH window eagerly, as soon as its
//! loop *reads* a packet, so the only backpressure is the loop blocking while it delivers.
//! A bridge has two loops (user side `S`, target side `C`) and two writers (`U` writes into
//! the target, waiting on the target's window, which `C` reads; `D` writes to the user,
//! waiting on the user's window, which `S` reads). If both loops block on full queues while
//! both writers wait for a window adjustment that sits *behind* data in the blocked loop's
//! TCP stream, nothing moves again: the stall seen in other bastions on bulk data both ways.
//!
//! The rule here: a producer waits on a full pipe only while the writer of the *opposite*
//! direction is not stuck. That writer needs this very loop (to read a window adjustment,
//! or to drain the loop's outgoing queue), so if it has been mid-write for longer than
//! [`STUCK_AFTER`], the producer pushes past the soft limit and returns to its loop. The
//! overshoot is what the peer had in flight ahead of its window adjustment; a hard limit
//! still bounds the pipe in every case.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A writer mid-write for this long is waiting on the loop that feeds us (a window
/// adjustment or the loop's outgoing queue), not on its own peer being slow to read.
const STUCK_AFTER: Duration = Duration::from_millis(2);

/// How long a waiting producer sleeps before re-checking, so a missed wake-up can only
/// delay, never stall.
const RECHECK: Duration = Duration::from_millis(50);

/// Something with a size in bytes, for the pipe's accounting.
pub(crate) trait Weight {
    /// Bytes this item holds (control messages count a small constant).
    fn weight(&self) -> usize;
}

/// Marks when a pipe's consumer is in the middle of a write into the other connection.
#[derive(Debug, Default)]
pub(crate) struct WriterMark {
    /// Microseconds since `base` at which the current write began, plus one; 0 when idle.
    since: AtomicU64,
}

fn base() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_us() -> u64 {
    base().elapsed().as_micros() as u64 + 1
}

impl WriterMark {
    fn begin(&self) {
        self.since.store(now_us(), Ordering::Relaxed);
    }

    fn end(&self) {
        self.since.store(0, Ordering::Relaxed);
    }

    fn busy(&self) -> bool {
        self.since.load(Ordering::Relaxed) != 0
    }

    fn stuck(&self) -> bool {
        let s = self.since.load(Ordering::Relaxed);
        s != 0 && now_us().saturating_sub(s) >= STUCK_AFTER.as_micros() as u64
    }
}

struct State<T> {
    items: VecDeque<T>,
    bytes: usize,
    /// The consumer went away: pushes are dropped.
    closed: bool,
}

/// A bounded queue of `T` with the producer rule described in the module docs.
pub(crate) struct Pipe<T> {
    state: Mutex<State<T>>,
    readable: Notify,
    writable: Notify,
    soft: usize,
    hard: usize,
    /// This pipe's consumer, while it writes into the other connection.
    pub(crate) writer: WriterMark,
}

impl<T: Weight> Pipe<T> {
    /// A pipe that blocks its producer at `soft` bytes (unless the opposite writer is
    /// stuck) and always at `hard` bytes.
    pub(crate) fn new(soft: usize, hard: usize) -> Pipe<T> {
        Pipe {
            state: Mutex::new(State { items: VecDeque::new(), bytes: 0, closed: false }),
            readable: Notify::new(),
            writable: Notify::new(),
            soft,
            hard: hard.max(soft),
            writer: WriterMark::default(),
        }
    }

    /// Queues `item`, waiting per the module rule; `opposite` is the writer of the other
    /// direction of the same bridge. Returns false (dropping the item) once the consumer
    /// has gone.
    pub(crate) async fn push(&self, item: T, opposite: &WriterMark) -> bool {
        let w = item.weight();
        let mut item = Some(item);
        loop {
            let notified = self.writable.notified();
            {
                let mut st = self.state.lock().expect("pipe lock");
                if st.closed {
                    return false;
                }
                let room = st.bytes < self.soft || (st.bytes < self.hard && opposite.stuck());
                if room || st.items.is_empty() {
                    st.bytes += w;
                    st.items.push_back(item.take().expect("pushed once"));
                    drop(st);
                    self.readable.notify_one();
                    return true;
                }
            }
            let wait = if opposite.busy() { STUCK_AFTER } else { RECHECK };
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    /// Queues `item` without waiting (control messages from outside the loops: registry
    /// injections count against the hard limit only). Returns false when full or closed.
    pub(crate) fn try_push(&self, item: T) -> bool {
        let w = item.weight();
        let mut st = self.state.lock().expect("pipe lock");
        if st.closed || st.bytes + w > self.hard {
            return false;
        }
        st.bytes += w;
        st.items.push_back(item);
        drop(st);
        self.readable.notify_one();
        true
    }

    /// Queues `item` past every limit (a terminate order: one item, and it ends the pipe's
    /// use). Dropped only when the consumer is gone.
    pub(crate) fn force_push(&self, item: T) {
        let mut st = self.state.lock().expect("pipe lock");
        if st.closed {
            return;
        }
        st.bytes += item.weight();
        st.items.push_back(item);
        drop(st);
        self.readable.notify_one();
    }

    /// Takes the next item, waiting for one.
    pub(crate) async fn pop(&self) -> T {
        loop {
            let notified = self.readable.notified();
            {
                let mut st = self.state.lock().expect("pipe lock");
                if let Some(it) = st.items.pop_front() {
                    st.bytes -= it.weight();
                    drop(st);
                    self.writable.notify_one();
                    return it;
                }
            }
            notified.await;
        }
    }

    /// Takes the next item and, while it and the following ones are data that `joinable`
    /// accepts (returning their size), the run of them up to `max` bytes: small packets
    /// that queued up (a PTY emits ~4 KiB reads) leave as one write and one recorded frame
    /// instead of many.
    pub(crate) async fn pop_run(&self, joinable: impl Fn(&T) -> Option<usize>, max: usize) -> Vec<T> {
        let first = self.pop().await;
        let Some(mut total) = joinable(&first) else { return vec![first] };
        let mut run = vec![first];
        let mut st = self.state.lock().expect("pipe lock");
        while let Some(n) = st.items.front().and_then(&joinable) {
            if total + n > max {
                break;
            }
            total += n;
            let next = st.items.pop_front().expect("front exists");
            st.bytes -= next.weight();
            run.push(next);
        }
        drop(st);
        self.writable.notify_one();
        run
    }

    /// Runs `write` (a write into the other connection) with this pipe's writer marked
    /// busy, waking the opposite producer so it can apply the stuck rule.
    pub(crate) async fn writing<F: Future>(&self, opposite: &Pipe<impl Weight>, write: F) -> F::Output {
        self.writer.begin();
        opposite.writable.notify_one();
        let out = write.await;
        self.writer.end();
        out
    }

    /// The consumer is gone: drop what is queued and refuse further pushes.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock().expect("pipe lock");
        st.closed = true;
        st.items.clear();
        st.bytes = 0;
        drop(st);
        self.writable.notify_waiters();
    }

    /// Bytes queued now.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.state.lock().expect("pipe lock").bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct B(usize);
    impl Weight for B {
        fn weight(&self) -> usize {
            self.0
        }
    }

    #[tokio::test]
    async fn producer_waits_at_soft_limit_while_opposite_idle() {
        let p = Arc::new(Pipe::<B>::new(10, 100));
        let idle = WriterMark::default();
        assert!(p.push(B(10), &idle).await);
        let p2 = p.clone();
        let blocked = tokio::spawn(async move {
            let idle = WriterMark::default();
            p2.push(B(5), &idle).await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!blocked.is_finished(), "must wait while full and the opposite writer is idle");
        assert_eq!(p.pop().await.0, 10);
        assert!(blocked.await.unwrap());
        assert_eq!(p.queued(), 5);
    }

    #[tokio::test]
    async fn producer_overflows_when_opposite_writer_is_stuck_but_not_past_hard() {
        let p = Pipe::<B>::new(10, 30);
        let stuck = WriterMark::default();
        stuck.begin();
        tokio::time::sleep(STUCK_AFTER * 2).await;
        assert!(p.push(B(10), &stuck).await);
        assert!(p.push(B(10), &stuck).await, "stuck opposite writer lets the loop go on");
        assert!(p.push(B(10), &stuck).await);
        let r = tokio::time::timeout(Duration::from_millis(30), p.push(B(1), &stuck)).await;
        assert!(r.is_err(), "hard limit holds even then");
    }

    #[tokio::test]
    async fn closed_pipe_drops_pushes() {
        let p = Pipe::<B>::new(10, 30);
        p.close();
        assert!(!p.push(B(1), &WriterMark::default()).await);
        assert!(!p.try_push(B(1)));
    }
}
