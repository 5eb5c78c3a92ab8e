//! Shared set-up: a data directory with a `file://` store, and sessions recorded into it
//! by the real recorder.

use std::path::PathBuf;

use gatehouse_fixtures::terminal::Workload;
use gatehouse_recorder::{Frame, Manifest, Recorder, RecorderConfig, SessionEnd, SessionMeta, Storage};
use tempfile::TempDir;
use time::OffsetDateTime;

pub struct Env {
    pub dir: TempDir,
    pub storage: Storage,
    pub recorder: Recorder,
}

impl Env {
    pub async fn new() -> Env {
        Env::with_seal(1 << 20).await
    }

    /// A store whose segments seal every `seal_bytes` (several segments per session).
    pub async fn with_seal(seal_bytes: usize) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).unwrap();
        let storage = Storage::from_url(&format!("file://{}", store.display())).unwrap();
        let config = RecorderConfig::new(dir.path().join("spool"))
            .with_seal(seal_bytes, std::time::Duration::from_secs(5));
        let recorder = Recorder::open(storage.clone(), config).await.unwrap();
        Env { dir, storage, recorder }
    }

    pub fn index_dir(&self) -> PathBuf {
        self.dir.path().join("index")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Records `frames` as one finished session started at `started_at`.
    pub async fn record(&self, meta: SessionMeta, started_at: OffsetDateTime, frames: &[Frame]) -> Manifest {
        let mut w = self.recorder.start_at(meta, started_at).await.unwrap();
        for f in frames {
            w.write_frame(f.clone()).unwrap();
        }
        w.finish(SessionEnd { reason: "exit".into(), exit_status: Some(0) }).await.unwrap()
    }
}

pub fn meta(user: &str, target: &str, w: &Workload) -> SessionMeta {
    SessionMeta {
        user: Some(user.into()),
        account: Some("root".into()),
        target: Some(target.into()),
        target_addr: Some(format!("{target}:22")),
        source_addr: Some("192.0.2.10".into()),
        source_port: Some(50123),
        client: Some("SSH-2.0-OpenSSH_9.2p1".into()),
        protocol: Some("ssh".into()),
        auth_method: Some("publickey".into()),
        mfa: Some("totp".into()),
        channel: Some("shell".into()),
        term: Some("xterm-256color".into()),
        cols: Some(w.cols),
        rows: Some(w.rows),
        ..SessionMeta::default()
    }
}

/// Files under `dir`, relative, sorted.
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
