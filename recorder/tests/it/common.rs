//! Helpers the recorder's integration test binaries share (`it`, `ticker`).

use std::time::{Duration, Instant};

use futures::StreamExt;
use gatehouse_recorder::{Frame, SessionEnd, Storage};

pub fn end() -> SessionEnd {
    SessionEnd { reason: "exit".into(), exit_status: Some(0) }
}

pub async fn read_all(storage: &Storage, id: uuid::Uuid) -> Vec<Frame> {
    let m = storage.manifest(id).await.unwrap();
    storage.frames(&m, 0).map(|f| f.unwrap()).collect().await
}

/// Polls `check` every 50 ms until it holds or `secs` pass.
pub async fn eventually<F: AsyncFnMut() -> bool>(secs: u64, mut check: F) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
