//! Recycled spool files. Every segment passes through two files (its WAL and its sealed
//! `.seg`); creating and deleting them costs an inode allocation and free each time, and
//! on a busy ext4 an allocation can scan for recently deleted inodes for a good fraction
//! of a millisecond — on the writer's path, for the WAL. Instead, a used file is
//! truncated and renamed into `<spool>/.free/`, and the next file is renamed out of it:
//! renames and truncation, no inode churn.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Free files kept at most: enough for every sealer and busy writer to find one, small
/// enough that the pool's inodes do not matter.
const KEEP: usize = 64;

#[derive(Debug)]
pub(crate) struct FilePool {
    dir: PathBuf,
    free: Mutex<Vec<PathBuf>>,
    next: AtomicU64,
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
        FilePool { dir, free: Mutex::new(free), next: AtomicU64::new(next) }
    }

    /// Opens `path` for appending: a recycled (empty) file renamed there, or a new one.
    pub(crate) fn open_append(&self, path: &Path) -> std::io::Result<File> {
        self.claim(path);
        OpenOptions::new().create(true).append(true).open(path)
    }

    /// Opens `path` truncated for writing, recycled like [`FilePool::open_append`].
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

    /// Empties a used file and keeps it for reuse (or deletes it when the pool is full).
    /// Returns the bytes it held; 0 if it was gone.
    pub(crate) fn recycle(&self, path: &Path) -> u64 {
        let Ok(meta) = fs::metadata(path) else { return 0 };
        let size = meta.len();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_reused_empty() {
        let dir = tempfile::tempdir().unwrap();
        let pool = FilePool::open(dir.path());
        let a = dir.path().join("a.wal");
        std::io::Write::write_all(&mut pool.open_append(&a).unwrap(), b"hello").unwrap();
        use std::os::unix::fs::MetadataExt;
        let inode = fs::metadata(&a).unwrap().ino();
        assert_eq!(pool.recycle(&a), 5);
        assert!(!a.exists());
        let b = dir.path().join("b.seg");
        std::io::Write::write_all(&mut pool.create(&b).unwrap(), b"x").unwrap();
        assert_eq!(fs::metadata(&b).unwrap().ino(), inode, "the same file, renamed");
        assert_eq!(fs::read(&b).unwrap(), b"x", "and emptied first");
        // A restart finds the pool again.
        assert_eq!(pool.recycle(&b), 1);
        let again = FilePool::open(dir.path());
        assert_eq!(again.free.lock().unwrap().len(), 1);
        assert_eq!(pool.recycle(&dir.path().join("missing")), 0);
    }
}
