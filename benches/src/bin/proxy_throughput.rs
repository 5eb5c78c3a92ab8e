//! Bulk throughput through gatehouse (recording on) against the same transfer direct and
//! through an OpenSSH jump host, on the same sshd, in the same run: `ssh … cat BIG`
//! (exec), `scp` (SFTP mode, OpenSSH 9's default) and `cat` over an interactive PTY.
//! Also the recorded bytes per GiB transferred (what object storage holds).
//!
//! `cargo run --release -p gatehouse-benches --bin proxy_throughput`
//! (`GATEHOUSE_BENCH_MIB=256` for a quicker run, default 1024; `GATEHOUSE_BENCH_METHODS=exec,pty`
//! for a subset.)

use std::process::Stdio;
use std::time::{Duration, Instant};

use gatehouse_benches::proxy_env::{Path3, ProxyEnv, bench_tmp, random_file};

const PATHS: [Path3; 3] = [Path3::Direct, Path3::Jump, Path3::Gatehouse];
/// Runs per cell; the best one counts (the machine is shared, noise only slows down).
const REPS: usize = 2;

fn main() {
    gatehouse_benches::proxy_env::maybe_serve();
    let mib: u64 = std::env::var("GATEHOUSE_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let bytes = mib << 20;
    let env = ProxyEnv::start();
    let big = bench_tmp().join(format!("gatehouse-bench-{}.bin", std::process::id()));
    random_file(&big, bytes);
    let _cleanup = Cleanup(big.clone());
    println!("proxy_throughput: {mib} MiB of random data, best of {REPS}, MB/s (1 MB = 10^6 bytes)");
    println!("{:<8} {:>10} {:>10} {:>10}   {:>14} {:>14}", "method", "direct", "jump host", "gatehouse", "gh/jump", "gh/direct");
    let mut recorded = Vec::new();
    let methods = std::env::var("GATEHOUSE_BENCH_METHODS").unwrap_or_else(|_| "exec,scp,pty".into());
    for method in methods.split(',') {
        let mut rates = Vec::new();
        for path in PATHS {
            let mut best = f64::MAX;
            for rep in 0..REPS {
                let before = env.stored_bytes();
                let secs = run_one(&env, path, method, &big, bytes);
                best = best.min(secs);
                if path == Path3::Gatehouse && rep == 0 {
                    let stored = settle(&env) - before;
                    recorded.push((method, stored as f64 / bytes as f64));
                }
            }
            rates.push(bytes as f64 / best / 1e6);
        }
        println!(
            "{:<8} {:>10.1} {:>10.1} {:>10.1}   {:>13.2}x {:>13.2}x",
            method, rates[0], rates[1], rates[2], rates[2] / rates[1], rates[2] / rates[0]
        );
    }
    println!("targets: exec/scp gatehouse >= 1.0x jump host; pty gatehouse >= 0.9x direct");
    for (method, ratio) in recorded {
        println!("recorded bytes per GiB transferred ({method}): {:.3} GiB ({:+.1}%)", ratio, (ratio - 1.0) * 100.0);
    }
}

/// One transfer; returns its wall time in seconds.
fn run_one(env: &ProxyEnv, path: Path3, method: &str, big: &std::path::Path, bytes: u64) -> f64 {
    let big_s = big.display().to_string();
    let dest = big.with_extension(format!("copy-{}", path.name().replace(' ', "-")));
    let mut cmd = match method {
        "exec" => {
            let mut c = env.ssh(path, &[]);
            c.arg(format!("cat {big_s}"));
            c
        }
        "pty" => {
            let mut c = env.ssh(path, &["-tt"]);
            c.arg(format!("stty raw -echo; cat {big_s}"));
            c
        }
        _ => {
            let mut c = env.scp(path);
            c.arg(format!("{}:{big_s}", env.destination(path))).arg(&dest);
            c
        }
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("client starts");
    // Count what arrives, so a short transfer cannot look fast.
    let mut out = child.stdout.take().unwrap();
    let received = std::io::copy(&mut out, &mut std::io::sink()).unwrap();
    let status = child.wait().unwrap();
    let secs = start.elapsed().as_secs_f64();
    let got = if method == "scp" { std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0) } else { received };
    let _ = std::fs::remove_file(&dest);
    assert!(status.success() || method == "pty", "{method} via {} failed: {status}", path.name());
    assert!(got >= bytes, "{method} via {}: {got} of {bytes} bytes arrived", path.name());
    secs
}

/// Waits until the store stops growing (the recorder uploads in the background).
fn settle(env: &ProxyEnv) -> u64 {
    let mut last = env.stored_bytes();
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let now = env.stored_bytes();
        if now == last {
            return now;
        }
        last = now;
    }
}

struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
