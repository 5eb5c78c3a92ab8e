//! Memory the write path holds: a byte budget shared by all sessions (open segments
//! built in memory, sealed segments waiting for upload), and recycled segment buffers.
//!
//! A streaming session fills a megabyte-sized buffer per segment, then the sealer fills
//! another with the compressed segment. Fresh allocations of that size come from `mmap`
//! and are page-faulted in and zeroed by the kernel on every use; recycling a few keeps
//! their pages, which cost the ingest benchmark about 8% of its CPU otherwise.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Recycled buffers kept at most: one per streaming session and sealer in flight is
/// plenty; more would only pin memory nobody uses.
const SPARE: usize = 8;

/// Tunes the C allocator (glibc's) for a recording process; call once, first thing in
/// `main`, before any thread starts.
///
/// glibc serves a block of 128 KiB or more (its threshold then rises to the largest
/// block freed) with its own `mmap` and returns it with `munmap` when freed, and gives
/// the free top of a heap back to the kernel. A recorder allocates and frees such blocks
/// all the time (a compressed segment, a segment read back from the spool), and from
/// several threads: each `munmap` shoots down the other threads' TLB entries, each new
/// mapping is page-faulted in and zeroed again (1.5–6 µs a page on a virtual machine).
/// Here blocks up to 32 MiB come from the heap, and a heap keeps up to 256 MiB free at
/// its top, so that memory is reused instead. On the ingest benchmark, in alternating
/// runs, this measured 8–15 % less CPU one hour and no difference beyond noise the next.
/// The cost: memory freed after a peak stays with the process, up to that bound, until
/// it is needed again.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's malloc parameters; called before threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[derive(Debug)]
pub(crate) struct Memory {
    used: AtomicU64,
    limit: u64,
    spare: Mutex<Vec<Vec<u8>>>,
    /// Capacity of a segment buffer.
    buffer: usize,
}

impl Memory {
    /// A budget of `limit` bytes; segment buffers of `buffer` bytes.
    pub(crate) fn new(limit: u64, buffer: usize) -> Memory {
        Memory { used: AtomicU64::new(0), limit, spare: Mutex::new(Vec::new()), buffer }
    }

    /// Takes `n` bytes, or refuses if that would pass the limit.
    pub(crate) fn try_take(&self, n: u64) -> bool {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before + n > self.limit {
            self.used.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub(crate) fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    /// An empty buffer with room for at least `at_least` bytes, recycled if possible.
    pub(crate) fn buffer(&self, at_least: usize) -> Vec<u8> {
        let spare = self.spare.lock().expect("spare lock").pop();
        match spare {
            Some(mut buf) => {
                buf.reserve(at_least);
                buf
            }
            None => Vec::with_capacity(at_least.max(self.buffer)),
        }
    }

    /// Capacity of a segment buffer.
    pub(crate) fn buffer_size(&self) -> usize {
        self.buffer
    }

    /// Keeps `buf` for reuse (unless enough are kept, or it grew far past the usual size).
    pub(crate) fn recycle(&self, mut buf: Vec<u8>) {
        if buf.capacity() < self.buffer / 2 || buf.capacity() > 2 * self.buffer {
            return;
        }
        buf.clear();
        let mut spare = self.spare.lock().expect("spare lock");
        if spare.len() < SPARE {
            spare.push(buf);
        }
    }
}
