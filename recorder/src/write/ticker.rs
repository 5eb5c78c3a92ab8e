//! The spool ticker: a thread that flushes sessions whose frames waited the flush
//! interval and seals segments that reached their age. It wakes when the earliest of
//! those is due, but at most every `MIN_GAP` (many sessions share each pass) and at least
//! every flush interval while any session has an open segment with frames (frames that
//! arrived since the last pass have a flush due that the pass did not see yet). With no
//! such session it sleeps until a segment's first frame wakes it, so an idle proxy makes
//! no wake-ups for it.
//!
//! A fixed 50 ms period woke the thread 20 times a second for as long as anyone typed;
//! this wakes it 5 times a second then (the flush interval), and as often as before when
//! many sessions have something due. A frame waits at most about the flush interval plus
//! `MIN_GAP` to reach the spool file, as before.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::Inner;

/// Shortest time between two passes: sessions whose flushes and seals fall due within it
/// are served by one pass.
const MIN_GAP: Duration = Duration::from_millis(50);

/// How the ticker sleeps while no session has frames to flush or a segment to seal, and
/// how a session wakes it: an idle proxy then makes no wake-ups at all.
#[derive(Default)]
pub(crate) struct TickerWake {
    state: Mutex<WakeState>,
    cv: Condvar,
}

#[derive(Default)]
struct WakeState {
    /// Counts the segments that got their first frame: the ticker sleeps only if none
    /// did since it last looked at the sessions.
    epoch: u64,
    parked: bool,
    closed: bool,
}

impl TickerWake {
    /// A session's open segment got its first frame: the ticker has work again.
    pub(crate) fn poke(&self) {
        let mut s = self.state.lock().expect("ticker lock");
        s.epoch += 1;
        if s.parked {
            self.cv.notify_one();
        }
    }

    fn epoch(&self) -> u64 {
        self.state.lock().expect("ticker lock").epoch
    }

    /// Sleeps until a poke after `epoch` (at once if there was one); false once closed.
    fn park(&self, epoch: u64) -> bool {
        let mut s = self.state.lock().expect("ticker lock");
        s.parked = true;
        while s.epoch == epoch && !s.closed {
            s = self.cv.wait(s).expect("ticker lock");
        }
        s.parked = false;
        !s.closed
    }

    pub(super) fn close(&self) {
        self.state.lock().expect("ticker lock").closed = true;
        self.cv.notify_one();
    }
}

/// Flushes and age-seals idle sessions when due (see the module docs), and sleeps while
/// no session has an open segment with frames; ends when the recorder is dropped.
pub(super) fn spawn_ticker(inner: Weak<Inner>, wake: Arc<TickerWake>) {
    std::thread::Builder::new()
        .name("gatehouse-spool-ticker".into())
        .spawn(move || {
            let mut next = Instant::now() + MIN_GAP;
            loop {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                // Read before looking at the sessions: a segment started after this
                // keeps the ticker from sleeping.
                let epoch = wake.epoch();
                let Some(inner) = inner.upgrade() else { return };
                let max_gap = inner.config().flush_interval.max(MIN_GAP);
                let cores: Vec<_> = {
                    let mut reg = inner.registry.lock().expect("registry lock");
                    reg.retain(|_, w| w.strong_count() > 0);
                    reg.values().filter_map(Weak::upgrade).collect()
                };
                drop(inner);
                let now = Instant::now();
                let due = cores.into_iter().filter_map(|core| core.lock().expect("session lock").tick(now)).min();
                next = match due {
                    Some(due) => due.clamp(now + MIN_GAP, now + max_gap),
                    None if wake.park(epoch) => Instant::now() + MIN_GAP,
                    None => return,
                };
            }
        })
        .expect("spawn ticker thread");
}
