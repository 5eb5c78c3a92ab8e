//! Keystroke round-trip latency (p50/p99 over 2,000 keystrokes, one byte each, echoed by
//! `cat` on a raw remote terminal): through gatehouse against the OpenSSH jump host, the
//! two taking turns key by key so both see the same machine.
//!
//! 1. **Idle**: nothing else runs.
//! 2. **200 other active sessions through gatehouse**, each printing a line every 200 ms:
//!    the loaded case. Their clients and their target are in this benchmark
//!    process (see `loadgen`), so what loads the machine is gatehouse carrying 200
//!    sessions (both SSH layers, crypto, recording), not 600 client, sshd and shell
//!    processes that in real life run on the users' and the targets' own machines. The
//!    200 sessions print during every other block of 100 keys and are silent (connected,
//!    nothing sent) during the rest, 2,000 keys each: this machine's latency drifts over
//!    minutes (a virtual machine on a shared host: its p50 moves by a third between runs,
//!    its p99 by more), and taking the loaded samples and their silent reference in turns
//!    puts both under the same conditions. The figure: gatehouse's p99 while they print,
//!    against the jump host's idle p99 of round 1 (and, printed too, against the jump
//!    host's p99 in the silent turns, which are not quite idle: gatehouse seals and
//!    uploads there what was printed in the turn before).
//! 3. The control: the same, with the 200 sessions through the jump host.
//! 4. 200 sessions of real OpenSSH `ssh` clients to the real target sshd, each running a
//!    shell loop that prints a line every 200 ms, through gatehouse: the machine also
//!    carries 200 `ssh` clients, 200 sshd sessions and 200 shells on its 2 cores. The
//!    sessions run throughout (a shell loop cannot be paused), so this round is compared
//!    with round 1.
//! 5. Its control: the same through the jump host.
//!
//! Round 1 is the measurement, 2,000 keystrokes, run ten times over (new sessions
//! each run). One run's p99 is its 20 slowest keys, so on this machine it lands anywhere
//! from 0.7× to 1.25× the jump host's between runs of the same binaries: each run is
//! printed, then all of them pooled (20,000 keys each way), whose ratios come with their
//! 95 % bootstrap interval. That interval treats the keys as independent: it says what
//! chance within a set moves the ratio by, not how this machine drifts between runs (the
//! count of single runs at or under the jump host tells that). With 10 ms between keys,
//! round 1 takes about 7 minutes.
//!
//! `cargo run --release -p gatehouse-benches --bin proxy_latency`
//! (`GATEHOUSE_BENCH_KEYS`, `GATEHOUSE_BENCH_SESSIONS`, `GATEHOUSE_BENCH_IDLE_RUNS` change
//! the sizes;
//! `GATEHOUSE_BENCH_HEAVY=0` skips rounds 4 and 5; `GATEHOUSE_BENCH_IDLE_ONLY=1` runs round 1
//! alone; `GATEHOUSE_BENCH_SAMPLES=FILE` writes
//! every sample with its time, path and state.)

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use gatehouse_benches::loadgen::{Load, Ticker};
use gatehouse_benches::proxy_env::{Path3, ProxyEnv, quantile, ratio_interval};

const KEYSTROKES: usize = 2000;
/// Runs of [`KEYSTROKES`] keys in round 1.
const IDLE_RUNS: usize = 10;
const BACKGROUND: usize = 200;
/// Keys per block when the background sessions take turns printing and being silent.
const BLOCK: usize = 100;

static SAMPLE_LOG: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);
static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

fn main() {
    gatehouse_benches::proxy_env::maybe_serve();
    let keystrokes: usize = std::env::var("GATEHOUSE_BENCH_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(KEYSTROKES);
    let background: usize = std::env::var("GATEHOUSE_BENCH_SESSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(BACKGROUND);
    let idle_runs: usize = std::env::var("GATEHOUSE_BENCH_IDLE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(IDLE_RUNS).max(1);
    if let Some(f) = std::env::var_os("GATEHOUSE_BENCH_SAMPLES") {
        std::sync::LazyLock::force(&START);
        *SAMPLE_LOG.lock().unwrap() = Some(std::fs::File::create(f).unwrap());
    }
    let env = ProxyEnv::start();
    let ticker = Ticker::start(&env);
    // The jump host and gatehouse take turns key by key, so both see the same machine:
    // on 2 shared cores, anything else running moves latencies more than any proxy does.
    let paths = [Path3::Jump, Path3::Gatehouse];
    let runs: Vec<Vec<Vec<f64>>> = (0..idle_runs)
        .map(|_| {
            let [run, _] = measure(&env, &paths, keystrokes, None);
            run
        })
        .collect();
    let idle = pooled(&runs);
    if std::env::var("GATEHOUSE_BENCH_IDLE_ONLY").as_deref() == Ok("1") {
        drop(ticker);
        report_idle(&paths, &runs, &idle, keystrokes);
        return;
    }
    let others = ticker.load(&env, false, background);
    let [silent, loaded] = measure(&env, &paths, keystrokes, Some(&others));
    drop(others);
    let others = ticker.load(&env, true, background);
    let [control_silent, control] = measure(&env, &paths, keystrokes, Some(&others));
    drop(others);
    let skip = vec![vec![f64::NAN]; 2];
    let (heavy, heavy_control) = if std::env::var("GATEHOUSE_BENCH_HEAVY").as_deref() == Ok("0") {
        (skip.clone(), skip)
    } else {
        let others = start_background(&env, Path3::Gatehouse, background);
        let [heavy, _] = measure(&env, &paths, keystrokes, None);
        drop(others);
        let others = start_background(&env, Path3::Jump, background);
        let [heavy_control, _] = measure(&env, &paths, keystrokes, None);
        drop(others);
        (heavy, heavy_control)
    };

    let p99 = |s: &Vec<f64>| quantile(s, 0.99);
    report_idle(&paths, &runs, &idle, keystrokes);
    let rounds = [
        (format!("2. {background} sessions through gatehouse, silent"), &silent),
        (format!("2. {background} sessions through gatehouse, printing"), &loaded),
        (format!("3. {background} sessions through the jump host, silent"), &control_silent),
        (format!("3. {background} sessions through the jump host, printing"), &control),
        (format!("4. {background} OpenSSH client+sshd+shell sessions through gatehouse"), &heavy),
        (format!("5. {background} OpenSSH client+sshd+shell sessions through the jump host"), &heavy_control),
    ];
    for (round, samples) in &rounds {
        for (path, s) in paths.iter().zip(samples.iter()) {
            println!("{:<84} {:>8.0} {:>8.0}", format!("{round}: {}", path.name()), quantile(s, 0.5), p99(s));
        }
    }
    let jump = &idle[0];
    println!(
        "loaded, gatehouse p99 with {background} sessions printing through it / jump host idle p99 (round 1, pooled): {:.2}x (target <= 2.0x)",
        p99(&loaded[1]) / p99(jump)
    );
    println!(
        "  the same against the jump host's p99 in the silent turns of round 2: {:.2}x (those turns also carry gatehouse sealing and uploading what was printed before)",
        p99(&loaded[1]) / p99(&silent[0])
    );
    println!(
        "  same load, gatehouse / jump host p99: {:.2}x; control, jump host p99 with the sessions printing through it / idle: {:.2}x",
        p99(&loaded[1]) / p99(&loaded[0]),
        p99(&control[0]) / p99(jump)
    );
    println!(
        "rounds 4 and 5 against round 1's jump host p99: gatehouse {:.2}x; control, jump host {:.2}x",
        p99(&heavy[1]) / p99(jump),
        p99(&heavy_control[0]) / p99(jump)
    );
}

/// A session on a raw remote terminal echoing with `cat`, ready for keystrokes.
struct Echo {
    path: Path3,
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
        Echo { path, child, input, output }
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

/// Round-trip times in microseconds, sorted, one list per path; the paths take turns key
/// by key. With `load`, its sessions print during every other block of [`BLOCK`] keys and
/// are silent during the rest: `n` keys of each, returned as `[silent, active]`. Without,
/// `n` keys, all in the first list.
fn measure(env: &ProxyEnv, paths: &[Path3], n: usize, load: Option<&Load>) -> [Vec<Vec<f64>>; 2] {
    let mut sessions: Vec<Echo> = paths.iter().map(|&p| Echo::start(env, p)).collect();
    let mut samples: [Vec<Vec<f64>>; 2] = [vec![Vec::with_capacity(n); paths.len()], vec![Vec::with_capacity(n); paths.len()]];
    let states: &[bool] = if load.is_some() { &[false, true] } else { &[false] };
    // The first 50 keys warm up (connection, caches) and are not counted.
    for i in 0..50 {
        for s in &mut sessions {
            s.key(b'a' + (i % 26) as u8);
        }
    }
    for block in 0..n.div_ceil(BLOCK) * states.len() {
        let active = states[block % states.len()];
        if let Some(load) = load {
            load.active(active);
        }
        let keys = BLOCK.min(n - samples[active as usize][0].len());
        for i in 0..keys {
            let key = b'a' + (i % 26) as u8;
            for (s, out) in sessions.iter_mut().zip(&mut samples[active as usize]) {
                let rtt = s.key(key);
                out.push(rtt);
                if let Some(log) = &mut *SAMPLE_LOG.lock().unwrap() {
                    writeln!(log, "{:.6} {} {} {rtt:.0}", START.elapsed().as_secs_f64(), s.path.name(), if active { "active" } else { "silent" }).unwrap();
                }
                // Typing speed, not a flood: 10 ms between keys (a fast typist's burst).
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    drop(sessions);
    for s in samples.iter_mut().flatten() {
        s.sort_by(f64::total_cmp);
    }
    samples
}

/// The runs' samples of each path together, sorted.
fn pooled(runs: &[Vec<Vec<f64>>]) -> Vec<Vec<f64>> {
    (0..runs[0].len())
        .map(|p| {
            let mut all: Vec<f64> = runs.iter().flat_map(|r| r[p].iter().copied()).collect();
            all.sort_by(f64::total_cmp);
            all
        })
        .collect()
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

/// Round 1: each run's lines and ratios, how many runs met the target, then the pooled
/// figures and their bootstrap interval.
fn report_idle(paths: &[Path3], runs: &[Vec<Vec<f64>>], pooled: &[Vec<f64>], keystrokes: usize) {
    let p99 = |s: &[f64]| quantile(s, 0.99);
    let ratio = |r: &[Vec<f64>], q: f64| quantile(&r[1], q) / quantile(&r[0], q);
    println!("proxy_latency: keystroke round trip, microseconds");
    println!("1. idle, {} runs of {keystrokes} keystrokes, new sessions each run:", runs.len());
    println!("{:>6} {:>14} {:>14} {:>14} {:>14} {:>10} {:>10}", "run", "jump p50", "jump p99", "gatehouse p50", "gatehouse p99", "p50 ratio", "p99 ratio");
    for (i, r) in runs.iter().enumerate() {
        println!(
            "{:>6} {:>14.0} {:>14.0} {:>14.0} {:>14.0} {:>9.3}x {:>9.2}x",
            i + 1,
            quantile(&r[0], 0.5),
            p99(&r[0]),
            quantile(&r[1], 0.5),
            p99(&r[1]),
            ratio(r, 0.5),
            ratio(r, 0.99)
        );
    }
    let met = |q: f64| runs.iter().filter(|r| ratio(r, q) <= 1.0).count();
    println!("  single runs at or under the jump host: p50 {} of {n}, p99 {} of {n}", met(0.5), met(0.99), n = runs.len());
    println!("{:<84} {:>8} {:>8}", format!("1. idle, all {} keys of each path pooled", keystrokes * runs.len()), "p50", "p99");
    for (path, s) in paths.iter().zip(pooled) {
        println!("{:<84} {:>8.0} {:>8.0}", format!("1. idle: {}", path.name()), quantile(s, 0.5), p99(s));
    }
    let (jump, gatehouse) = (&pooled[0], &pooled[1]);
    println!(
        "idle, gatehouse / jump host: p50 {:.3}x, p99 {:.2}x (target <= 1.0x)",
        quantile(gatehouse, 0.5) / quantile(jump, 0.5),
        p99(gatehouse) / p99(jump)
    );
    let ((p50_lo, p50_hi), (p99_lo, p99_hi)) = (ratio_interval(jump, gatehouse, 0.5), ratio_interval(jump, gatehouse, 0.99));
    println!(
        "  95% bootstrap interval of those ratios (what chance alone moves them by): p50 {p50_lo:.3}x..{p50_hi:.3}x, p99 {p99_lo:.2}x..{p99_hi:.2}x"
    );
}
