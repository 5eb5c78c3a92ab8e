//! Memory of the gatehouse process: (a) 1,000 idle sessions (each a user connection, a
//! target connection, a recording), RSS per session against the process's own baseline;
//! (b) peak RSS during a multi-GiB transfer at full speed and with a slow reader, against
//! the same baseline (backpressure: no queue grows with the transfer).
//!
//! `cargo run --release -p gatehouse-benches --bin proxy_memory`
//! (`GATEHOUSE_BENCH_SESSIONS`, `GATEHOUSE_BENCH_MIB` to change the sizes.)

use std::io::Read;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use gatehouse_benches::proxy_env::{AnyKey, Path3, ProxyEnv, bench_tmp, random_file, rss_kib};
use russh::keys::PrivateKeyWithHashAlg;

fn main() {
    gatehouse_benches::proxy_env::maybe_serve();
    let sessions: usize = std::env::var("GATEHOUSE_BENCH_SESSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let mib: u64 = std::env::var("GATEHOUSE_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(3072);
    let env = ProxyEnv::start();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    // Warm up: one session opened and closed, so lazily built state is in the baseline.
    let warm = rt.block_on(open_idle(&env, 1));
    drop(warm);
    std::thread::sleep(Duration::from_secs(2));
    let baseline = env.gatehouse_rss_kib();

    let open = rt.block_on(open_idle(&env, sessions));
    std::thread::sleep(Duration::from_secs(3));
    let with_sessions = env.gatehouse_rss_kib();
    let per = (with_sessions.saturating_sub(baseline)) as f64 / sessions as f64;
    println!("proxy_memory: gatehouse process RSS");
    println!("  baseline (after one session):          {baseline:>8} KiB");
    println!("  with {sessions} idle sessions:            {with_sessions:>8} KiB");
    println!("  per idle session:                      {per:>8.1} KiB (target <= 256 KiB; {:.2}x the target)", per / 256.0);
    drop(open);
    std::thread::sleep(Duration::from_secs(3));
    let after = env.gatehouse_rss_kib();
    println!("  after closing them:                    {after:>8} KiB");

    let big = bench_tmp().join(format!("gatehouse-mem-{}.bin", std::process::id()));
    random_file(&big, mib << 20);
    let base2 = env.gatehouse_rss_kib();
    let fast = transfer_peak(&env, &big, None);
    let slow = transfer_peak(&env, &big, Some(64 << 20));
    let _ = std::fs::remove_file(&big);
    println!("  during a {mib} MiB exec transfer, peak: {:>8} KiB (+{} KiB over {base2} KiB)", fast, fast.saturating_sub(base2));
    println!("  slow reader (~20 MB/s), peak:          {:>8} KiB (+{} KiB)", slow, slow.saturating_sub(base2));
}

/// Opens `n` idle sessions through gatehouse (exec `sleep`), 16 handshakes at a time.
async fn open_idle(env: &ProxyEnv, n: usize) -> Vec<(russh::client::Handle<AnyKey>, russh::Channel<russh::client::Msg>)> {
    let key = Arc::new(russh::keys::load_secret_key(&env.alice_key, None).unwrap());
    let user = format!("alice:{}@web-01", env.target.account());
    let config = Arc::new(russh::client::Config { inactivity_timeout: None, ..Default::default() });
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (key, user, config, sem, addr) = (key.clone(), user.clone(), config.clone(), sem.clone(), env.addr);
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            let mut h = russh::client::connect(config, addr, AnyKey).await.expect("connect");
            let ok = h.authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, None)).await.expect("auth");
            assert!(ok.success(), "auth refused");
            let ch = h.channel_open_session().await.expect("channel");
            // Idle until its channel closes: `cat` ends at EOF, so nothing outlives the
            // bench (a `sleep` would be orphaned on the target when the session goes).
            ch.exec(true, "exec cat >/dev/null").await.expect("exec");
            (h, ch)
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        out.push(r.expect("session opens"));
    }
    out
}

/// Runs `ssh … cat BIG` through gatehouse, reading at full speed or `limit` bytes per
/// ~3 s (slow), sampling the gatehouse RSS every 50 ms; returns the peak (KiB).
fn transfer_peak(env: &ProxyEnv, big: &std::path::Path, slow: Option<u64>) -> u64 {
    let pid = env.gatehouse.id();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut c = env.ssh(Path3::Gatehouse, &[]);
    c.arg(format!("cat {}", big.display())).stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        if let Some(limit) = slow {
            // ~20 MB/s: 64 KiB every 3 ms; stop after `limit` bytes.
            std::thread::sleep(Duration::from_millis(3));
            if total >= limit {
                break;
            }
        }
    }
    drop(out);
    let _ = child.kill();
    let _ = child.wait();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    peak.load(Ordering::Relaxed)
}
