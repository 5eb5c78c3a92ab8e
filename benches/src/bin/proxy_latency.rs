//! Keystroke round-trip latency (p50/p99 over 2,000 keystrokes, one byte each, echoed by
//! `cat` on a raw remote terminal): through gatehouse against the OpenSSH jump host, the
//! two taking turns key by key so both see the same machine. Three rounds:
//!
//! 1. idle;
//! 2. with 200 other active sessions (each printing a line every 200 ms) through
//!    gatehouse: the loaded case;
//! 3. the control: the same 200 sessions through the jump host instead, so gatehouse
//!    carries none of them. What rounds 2 and 3 share is this machine's own share of the
//!    load (the other sessions' clients, sshd processes and shells run on the same 2 cores
//!    as the proxy); what differs is the proxy's.
//!
//! `cargo run --release -p gatehouse-benches --bin proxy_latency`

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use gatehouse_benches::proxy_env::{Path3, ProxyEnv, quantile};

const KEYSTROKES: usize = 2000;
const BACKGROUND: usize = 200;

fn main() {
    gatehouse_benches::proxy_env::maybe_serve();
    let keystrokes: usize = std::env::var("GATEHOUSE_BENCH_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(KEYSTROKES);
    let background: usize = std::env::var("GATEHOUSE_BENCH_SESSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(BACKGROUND);
    let env = ProxyEnv::start();
    // The jump host and gatehouse take turns key by key, so both see the same machine:
    // on 2 shared cores, anything else running moves latencies more than any proxy does.
    let paths = [Path3::Jump, Path3::Gatehouse];
    let idle = measure(&env, &paths, keystrokes);
    let others = start_background(&env, Path3::Gatehouse, background);
    let loaded = measure(&env, &paths, keystrokes);
    drop(others);
    let others = start_background(&env, Path3::Jump, background);
    let control = measure(&env, &paths, keystrokes);
    drop(others);

    let (jump, gatehouse) = (&idle[0], &idle[1]);
    println!("proxy_latency: keystroke round trip, {keystrokes} keystrokes, microseconds");
    println!("{:<66} {:>8} {:>8}", "", "p50", "p99");
    let rounds = [
        ("idle", &idle),
        (&*format!("{background} active sessions through gatehouse"), &loaded),
        (&*format!("{background} active sessions through the jump host (control)"), &control),
    ];
    for (round, samples) in rounds {
        for (path, s) in paths.iter().zip(samples.iter()) {
            let name = format!("{}, {round}", path.name());
            println!("{:<66} {:>8.0} {:>8.0}", name, quantile(s, 0.5), quantile(s, 0.99));
        }
    }
    println!(
        "gatehouse idle / jump host idle: p50 {:.2}x, p99 {:.2}x (target <= 1.0x)",
        quantile(gatehouse, 0.5) / quantile(jump, 0.5),
        quantile(gatehouse, 0.99) / quantile(jump, 0.99)
    );
    println!(
        "gatehouse loaded p99 / jump host idle p99: {:.2}x (target <= 2.0x)",
        quantile(&loaded[1], 0.99) / quantile(jump, 0.99)
    );
    println!(
        "  same load, gatehouse / jump host p99: {:.2}x; the machine alone (control, jump host p99 / idle): {:.2}x",
        quantile(&loaded[1], 0.99) / quantile(&loaded[0], 0.99),
        quantile(&control[0], 0.99) / quantile(jump, 0.99)
    );
}

/// A session on a raw remote terminal echoing with `cat`, ready for keystrokes.
struct Echo {
    child: Child,
    input: std::process::ChildStdin,
    output: BufReader<std::process::ChildStdout>,
}

impl Echo {
    fn start(env: &ProxyEnv, path: Path3) -> Echo {
        let mut c = env.ssh(path, &["-tt"]);
        c.arg("stty raw -echo; echo ready; exec cat");
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = c.spawn().expect("ssh starts");
        let input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("ready") {
            line.clear();
            assert!(output.read_line(&mut line).unwrap() > 0, "session ended before ready");
        }
        Echo { child, input, output }
    }

    /// Round trip of one keystroke, in microseconds.
    fn key(&mut self, key: u8) -> f64 {
        let mut b = [0u8; 1];
        let t = Instant::now();
        self.input.write_all(&[key]).unwrap();
        self.input.flush().unwrap();
        loop {
            self.output.read_exact(&mut b).unwrap();
            if b[0] == key {
                break;
            }
        }
        t.elapsed().as_secs_f64() * 1e6
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sorted round-trip times in microseconds, one list per path; the paths take turns.
fn measure(env: &ProxyEnv, paths: &[Path3], n: usize) -> Vec<Vec<f64>> {
    let mut sessions: Vec<Echo> = paths.iter().map(|&p| Echo::start(env, p)).collect();
    let mut samples = vec![Vec::with_capacity(n); paths.len()];
    for i in 0..(n + 50) {
        let key = b'a' + (i % 26) as u8;
        for (s, out) in sessions.iter_mut().zip(&mut samples) {
            let rtt = s.key(key);
            // The first 50 warm up (connection, caches) and are not counted.
            if i >= 50 {
                out.push(rtt);
            }
            // Typing speed, not a flood: 10 ms between keys (a fast typist's burst).
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    drop(sessions);
    for s in &mut samples {
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    samples
}

struct Background(Vec<Child>);

impl Drop for Background {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// `n` sessions by `path`, each printing a line every 200 ms into a file (which nothing
/// here has to wake up to read); returns once all printed their first line.
fn start_background(env: &ProxyEnv, path: Path3, n: usize) -> Background {
    let mut bg = Background(Vec::new());
    let outputs: Vec<std::path::PathBuf> = (0..n).map(|i| env.dir.path().join(format!("background-{i}.out"))).collect();
    for (i, out) in outputs.iter().enumerate() {
        let mut c = env.ssh(path, &["-tt"]);
        // `read -t` times out in the shell itself (nothing is typed to these sessions):
        // an external `sleep` would fork and exec 1,000 times a second across 200
        // sessions, load on the target host, which shares this machine's 2 cores here but
        // is a machine of its own in real life. The proxy's load is the same either way.
        c.arg("while :; do echo tick; read -t 0.2; done");
        c.stdin(Stdio::piped()).stdout(std::fs::File::create(out).unwrap()).stderr(Stdio::null());
        bg.0.push(c.spawn().expect("background ssh"));
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while outputs.iter().any(|o| std::fs::metadata(o).map(|m| m.len()).unwrap_or(0) == 0) {
        assert!(Instant::now() < deadline, "background sessions did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    bg
}
