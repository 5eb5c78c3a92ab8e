//! Recycled spool files. Every segment passes through two files (its WAL and its sealed
//! `.seg`); creating and deleting them costs an inode allocation and free each time, and
//! on a busy ext4 an allocation can scan for recently deleted inodes for a good fraction
//! of a millisecond — on the writer's path, for the WAL. Instead, a used file is
//! renamed into `<spool>/.free/`, and the next file is renamed out of it: renames, no
//! inode churn.
//!
//! WAL files are written through a shared mapping (see `wal`). A few of them are kept
//! whole and mapped ([`MappedFile`]): the next segment overwrites pages that are already
//! in the page cache, allocated on disk and mapped, so writing it costs a copy and
//! nothing else (a fresh file costs a page fault, a zeroed page and a block reservation
//! per 4 KiB; truncating or deleting it costs as much again). Other free files are
//! truncated.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::MmapMut;

/// Free files kept at most: enough for every sealer and busy writer to find one, small
/// enough that the pool's inodes do not matter.
const KEEP: usize = 64;

/// WAL files kept mapped at most, waiting for their segment's upload or free: about as
/// many as segments are sealed and uploaded at once on a busy proxy (the ingest
/// benchmark's four streaming sessions have up to 25 waiting). Their pages count in the
/// process's resident memory (page cache the WAL needs anyway, which the kernel can
/// write back and reclaim), up to this many segments' worth: 32 × 5.1 MiB at most with
/// the default 4 MiB segments.
const KEEP_MAPPED: usize = 32;

/// Disk space is reserved for a WAL file in steps of this size before its mapping is
/// written there: writing a page of a mapping that has no disk block behind it, on a
/// full disk, would kill the process (SIGBUS) instead of failing the write.
const RESERVE_STEP: u64 = 64 << 10;
/// The most a growing region reserves ahead at once (see [`MappedFile::reserve`]).
const RESERVE_MAX: u64 = 1 << 20;

/// A WAL file and its shared mapping.
#[derive(Debug)]
pub(crate) struct MappedFile {
    pub(crate) file: File,
    pub(crate) map: MmapMut,
    /// Bytes from the start that have disk space reserved.
    reserved: u64,
    /// Where a second region of the file starts (format 4's chunk log, behind its output
    /// region), and its bytes from there that have disk space reserved: each region is
    /// reserved as it fills, so that an idle segment holds two steps, not the gap.
    second: u64,
    second_reserved: u64,
    /// The file system has no `fallocate`.
    unreservable: bool,
}

impl MappedFile {
    /// Makes sure bytes up to `end` have disk space (reserving in steps), so that writing
    /// them through the mapping cannot fault for want of space. `Ok(false)`: the file
    /// system cannot reserve space, and the caller writes with plain writes instead.
    pub(crate) fn reserve(&mut self, end: u64) -> std::io::Result<bool> {
        let (base, reserved) = if end > self.second {
            (self.second, &mut self.second_reserved)
        } else {
            (0, &mut self.reserved)
        };
        if end - base <= *reserved {
            return Ok(true);
        }
        if self.unreservable {
            return Ok(false);
        }
        // A region that keeps growing (a streaming session) reserves further ahead each
        // time, doubling up to `RESERVE_MAX`: fewer calls for the same bytes. The end of
        // the region (or the file) bounds it.
        let limit = if base == 0 && self.second != u64::MAX { self.second } else { self.map.len() as u64 } - base;
        let ahead = (*reserved * 2).min(*reserved + RESERVE_MAX).min(limit.max(end - base));
        let to = ((end - base).max(ahead)).div_ceil(RESERVE_STEP) * RESERVE_STEP;
        let (from, len) = (base + *reserved, to - *reserved);
        match allocate(&self.file, from, len) {
            Ok(()) => {
                *reserved = to;
                // The mapping reads nothing ahead (see `FilePool::open_mapped`): the step
                // just reserved is faulted in with one call instead of a fault per page.
                let end = (from + len).min(self.map.len() as u64);
                if from < end
                    && let Err(e) = self.map.advise_range(memmap2::Advice::PopulateWrite, from as usize, (end - from) as usize)
                {
                    tracing::debug!("madvise(MADV_POPULATE_WRITE): {e}");
                }
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                self.unreservable = true;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

impl MappedFile {
    /// Makes bytes from `start` on a region of their own for [`MappedFile::reserve`]
    /// (`u64::MAX`: one region, the whole file).
    pub(crate) fn set_second_region(&mut self, start: u64) {
        if start != self.second {
            self.second = start;
            self.second_reserved = 0;
        }
    }
}

/// `fallocate` that keeps the file's size: the range gets disk blocks (read as zeros).
fn allocate(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: a plain system call on a file descriptor we own.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, offset as libc::off_t, len as libc::off_t) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[derive(Debug, Default)]
struct Mapped {
    /// Free mapped files, under their names in `.free`.
    free: Vec<(PathBuf, MappedFile)>,
    /// WAL files of sealed segments, until the spool discards them: their mapping (if
    /// kept) and the bytes they hold.
    retired: HashMap<PathBuf, (Option<MappedFile>, u64)>,
    /// Mappings in `retired`.
    retired_mapped: usize,
}

#[derive(Debug)]
pub(crate) struct FilePool {
    dir: PathBuf,
    free: Mutex<Vec<PathBuf>>,
    next: AtomicU64,
    mapped: Mutex<Mapped>,
}

impl FilePool {
    /// The pool in `<spool>/.free`, taking over files a previous process left there.
    pub(crate) fn open(spool: &Path) -> FilePool {
        let dir = spool.join(".free");
        let _ = fs::create_dir_all(&dir);
        let mut free = Vec::new();
        let mut next = 0;
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let n = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok());
            match n {
                Some(n) if free.len() < KEEP && fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(0)).is_ok() => {
                    next = next.max(n + 1);
                    free.push(path);
                }
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        FilePool { dir, free: Mutex::new(free), next: AtomicU64::new(next), mapped: Mutex::default() }
    }

    /// Opens `path` as a WAL file mapped for writing, at least `capacity` bytes long:
    /// a kept mapped file renamed there, or a recycled (emptied) or new one. A kept file
    /// still holds its last segment's bytes; the caller made sure (see `wal::forget`)
    /// that they do not read as frames.
    pub(crate) fn open_mapped(&self, path: &Path, capacity: u64) -> std::io::Result<MappedFile> {
        let kept = self.mapped.lock().expect("pool lock").free.pop();
        if let Some((free, m)) = kept {
            if m.map.len() as u64 >= capacity && fs::rename(&free, path).is_ok() {
                return Ok(m);
            }
            drop(m);
            let _ = fs::remove_file(&free);
        }
        self.claim(path);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        if file.metadata()?.len() < capacity {
            file.set_len(capacity)?;
        }
        // SAFETY: the file is the spool's own; nothing truncates it while it is mapped
        // (the pool truncates files only once their mapping is gone).
        let map = unsafe { MmapMut::map_mut(&file)? };
        // Each page is written once, in order, and the first touch of one not yet in the
        // page cache faults: without this the kernel reads ahead around it, allocating
        // and zeroing up to megabytes of large folios the segment may never reach (on
        // the thread that opens the segment, it was most of the spool's CPU time).
        if let Err(e) = map.advise(memmap2::Advice::Random) {
            tracing::debug!("madvise(MADV_RANDOM) on {}: {e}", path.display());
        }
        Ok(MappedFile { file, map, reserved: 0, second: u64::MAX, second_reserved: 0, unreservable: false })
    }

    /// A sealed segment's WAL file: kept mapped (while fewer than [`KEEP_MAPPED`] are)
    /// until it is discarded, with the bytes it holds.
    pub(crate) fn retire(&self, path: PathBuf, m: MappedFile, bytes: u64) {
        let mut mapped = self.mapped.lock().expect("pool lock");
        let keep = mapped.free.len() + mapped.retired_mapped < KEEP_MAPPED;
        mapped.retired_mapped += usize::from(keep);
        let old = mapped.retired.insert(path, (keep.then_some(m), bytes));
        if let Some((Some(_), _)) = old {
            mapped.retired_mapped -= 1;
        }
    }

    /// Runs `f` on the whole mapping of a retired WAL file, writable (the sealer patches
    /// a body header into it), if the pool keeps it mapped; `None` otherwise (the caller
    /// maps the file itself). The pool's lock is not held while `f` runs: the mapping is
    /// taken out and put back (only the segment's sealer uses it, before anything
    /// discards it).
    pub(crate) fn with_retired_mut<R>(&self, path: &Path, f: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        let mut m = {
            let mut mapped = self.mapped.lock().expect("pool lock");
            let (m, _) = mapped.retired.get_mut(path)?;
            m.take()?
        };
        let r = f(&mut m.map[..]);
        let mut mapped = self.mapped.lock().expect("pool lock");
        match mapped.retired.get_mut(path) {
            Some((slot, _)) => *slot = Some(m),
            None => mapped.retired_mapped -= 1,
        }
        Some(r)
    }

    /// Opens `path` truncated for writing: a recycled (empty) file renamed there, or a
    /// new one.
    pub(crate) fn create(&self, path: &Path) -> std::io::Result<File> {
        self.claim(path);
        OpenOptions::new().create(true).write(true).truncate(true).open(path)
    }

    /// Moves a free file to `path` if there is one (the caller opens it either way).
    fn claim(&self, path: &Path) {
        let Some(free) = self.free.lock().expect("pool lock").pop() else { return };
        if fs::rename(&free, path).is_err() {
            let _ = fs::remove_file(&free);
        }
    }

    /// Keeps a used file for reuse (or deletes it when the pool is full). A retired WAL
    /// file that is still mapped stays whole and mapped, once `forget` has made its
    /// contents unreadable as frames; others are emptied. Returns the bytes it held
    /// (see [`file_bytes`]); 0 if it was gone.
    pub(crate) fn recycle(&self, path: &Path, forget: impl FnOnce(&mut MmapMut)) -> u64 {
        let retired = {
            let mut mapped = self.mapped.lock().expect("pool lock");
            let r = mapped.retired.remove(path);
            if let Some((Some(_), _)) = r {
                mapped.retired_mapped -= 1;
            }
            r
        };
        if let Some((m, bytes)) = retired {
            if let Some(mut m) = m {
                forget(&mut m.map);
                let spare = self.dir.join(self.next.fetch_add(1, Ordering::Relaxed).to_string());
                let mut mapped = self.mapped.lock().expect("pool lock");
                if mapped.free.len() + mapped.retired_mapped < KEEP_MAPPED && fs::rename(path, &spare).is_ok() {
                    mapped.free.push((spare, m));
                    return bytes;
                }
            }
            self.recycle_file(path);
            return bytes;
        }
        self.recycle_file(path)
    }

    /// Empties a used file and keeps it for reuse (or deletes it when the pool is full).
    /// Returns the bytes it held; 0 if it was gone.
    fn recycle_file(&self, path: &Path) -> u64 {
        let Ok(meta) = fs::metadata(path) else { return 0 };
        let size = file_bytes(path, &meta);
        let mut free = self.free.lock().expect("pool lock");
        if free.len() < KEEP {
            let spare = self.dir.join(self.next.fetch_add(1, Ordering::Relaxed).to_string());
            let emptied = OpenOptions::new().write(true).open(path).and_then(|f| f.set_len(0));
            if emptied.is_ok() && fs::rename(path, &spare).is_ok() {
                free.push(spare);
                return size;
            }
        }
        drop(free);
        match fs::remove_file(path) {
            Ok(()) => size,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                tracing::warn!("cannot remove {}: {e}", path.display());
                0
            }
        }
    }
}

/// What a spool file counts for in the spool's budget: its length, but for a WAL file
/// its disk blocks when fewer (it is as long as a segment can grow, with holes where
/// nothing was written).
pub(crate) fn file_bytes(path: &Path, meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    if path.extension().is_some_and(|e| e == "wal") { meta.len().min(meta.blocks() * 512) } else { meta.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_reused_empty() {
        let dir = tempfile::tempdir().unwrap();
        let pool = FilePool::open(dir.path());
        let a = dir.path().join("a.wal");
        std::io::Write::write_all(&mut pool.create(&a).unwrap(), b"hello").unwrap();
        use std::os::unix::fs::MetadataExt;
        let inode = fs::metadata(&a).unwrap().ino();
        assert_eq!(pool.recycle(&a, |_| {}), 5);
        assert!(!a.exists());
        let b = dir.path().join("b.seg");
        std::io::Write::write_all(&mut pool.create(&b).unwrap(), b"x").unwrap();
        assert_eq!(fs::metadata(&b).unwrap().ino(), inode, "the same file, renamed");
        assert_eq!(fs::read(&b).unwrap(), b"x", "and emptied first");
        // A restart finds the pool again.
        assert_eq!(pool.recycle(&b, |_| {}), 1);
        let again = FilePool::open(dir.path());
        assert_eq!(again.free.lock().unwrap().len(), 1);
        assert_eq!(pool.recycle(&dir.path().join("missing"), |_| {}), 0);
    }

    #[test]
    fn two_regions_reserve_disk_space_apart() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let pool = FilePool::open(dir.path());
        let path = dir.path().join("0.wal");
        let mut m = pool.open_mapped(&path, 8 << 20).unwrap();
        m.set_second_region(6 << 20);
        assert!(m.reserve(100).unwrap());
        assert!(m.reserve((6 << 20) + 100).unwrap());
        let disk = fs::metadata(&path).unwrap().blocks() * 512;
        // Two 64 KiB steps, not the 6 MiB between them.
        assert!((2 * RESERVE_STEP..1 << 20).contains(&disk), "{disk} bytes on disk");
        // Within a reserved step: no more space.
        assert!(m.reserve(RESERVE_STEP).unwrap());
        assert!(m.reserve((6 << 20) + RESERVE_STEP).unwrap());
        assert_eq!(fs::metadata(&path).unwrap().blocks() * 512, disk);
    }

    #[test]
    fn retired_files_read_through_their_mapping_while_kept() {
        let dir = tempfile::tempdir().unwrap();
        let pool = FilePool::open(dir.path());
        let mut paths = Vec::new();
        for i in 0..=KEEP_MAPPED {
            let path = dir.path().join(format!("{i}.wal"));
            let mut m = pool.open_mapped(&path, 4096).unwrap();
            m.map[..6].copy_from_slice(format!("file{i:02}").as_bytes());
            pool.retire(path.clone(), m, 6);
            paths.push(path);
        }
        // The first KEEP_MAPPED stay mapped: read there, as often as asked (the mapping
        // goes back to the pool after each read).
        let head = |b: &mut [u8]| b[..6].to_vec();
        for _ in 0..2 {
            assert_eq!(pool.with_retired_mut(&paths[3], head), Some(b"file03".to_vec()));
        }
        // The one past the limit lost its mapping: the caller maps the file instead.
        assert_eq!(pool.with_retired_mut(&paths[KEEP_MAPPED], head), None);
        assert_eq!(pool.with_retired_mut(&dir.path().join("unknown.wal"), head), None);
        // Read or not, a retired file is recycled whole and mapped, its bytes counted.
        assert_eq!(pool.recycle(&paths[3], |map| map[..6].fill(0)), 6);
        assert_eq!(pool.mapped.lock().unwrap().free.len(), 1);
        assert_eq!(pool.with_retired_mut(&paths[3], head), None, "no longer retired");
    }
}
