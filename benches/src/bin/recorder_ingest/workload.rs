//! An administrator's terminal session, generated deterministically: what a recorder
//! stores. It is built the way the real programs write to a terminal, so that it
//! compresses like real output, neither like noise nor like a repeated string:
//!
//! - the shell prompt (colours, bracketed paste), commands typed a key at a time (an input
//!   frame and its one-byte echo per key, 50–250 ms apart, sometimes a typo and backspace);
//! - `ls -la --color` and `find` over one synthetic file system (Debian-like package
//!   names, versions, man pages, docs, libraries), so paths share prefixes as real ones do;
//! - `dmesg --color` (kernel messages from templates, increasing timestamps) and an nginx
//!   access log (client addresses, paths, user agents from pools; sizes and times vary);
//! - compiler output (`Compiling crate vX.Y.Z`, warnings quoting source lines);
//! - `top`: full-screen refreshes every 1–3 s of one process table whose numbers drift and
//!   whose order changes, redrawn line by line with cursor addressing as top does;
//! - `vim`: a source file drawn with syntax colours, paged down (full redraws), scrolled
//!   line by line (insert/delete line), edited (typed characters echoed in place);
//! - UTF-8 prose in German, French, Japanese, Chinese and Korean, emoji included;
//! - resizes now and then.
//!
//! Output reaches the recorder in chunks of 1–4096 bytes, cut anywhere (as a PTY read
//! and an SSH channel deliver it), so escape sequences and characters straddle frames.

use gatehouse_recorder::{Frame, Micros};

/// SplitMix64: small, fast, and stable across library versions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const PACKAGES: &[&str] = &[
    "adduser", "apt", "base-files", "bash", "bsdutils", "ca-certificates", "coreutils", "curl", "dash",
    "debconf", "diffutils", "dpkg", "e2fsprogs", "findutils", "gcc-12", "git", "gnupg", "grep", "gzip",
    "hostname", "init-system-helpers", "iproute2", "iputils-ping", "less", "libc6", "libcurl4",
    "libgcc-s1", "libssl3", "libstdc++6", "libsystemd0", "libzstd1", "login", "logrotate", "lsb-base",
    "mawk", "mount", "nano", "ncurses-base", "netbase", "nginx", "openssh-client", "openssh-server",
    "openssl", "passwd", "perl-base", "postgresql-15", "procps", "python3", "python3.11", "readline-common",
    "rsync", "sed", "sudo", "systemd", "sysvinit-utils", "tar", "tzdata", "util-linux", "vim", "wget",
    "xz-utils", "zlib1g", "zsh",
];
const DOC_FILES: &[&str] = &["changelog.Debian.gz", "copyright", "README.md", "NEWS.gz", "changelog.gz", "TODO"];
const MONTHS: &[&str] = &["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const KERNEL: &[&str] = &[
    "usb 1-{n}: new high-speed USB device number {m} using xhci_hcd",
    "EXT4-fs (vda{n}): mounted filesystem with ordered data mode. Quota mode: none.",
    "audit: type=1400 audit({t}:{m}): apparmor=\"STATUS\" operation=\"profile_load\" profile=\"unconfined\" name=\"nginx\" pid={p} comm=\"apparmor_parser\"",
    "eth0: Link is Up - 10Gbps/Full - flow control off",
    "IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready",
    "systemd[1]: Started Session {m} of User deploy.",
    "TCP: request_sock_TCP: Possible SYN flooding on port {p}. Sending cookies.",
    "nf_conntrack: default automatic helper assignment has been turned off for security reasons",
    "perf: interrupt took too long ({p} > {m}), lowering kernel.perf_event_max_sample_rate to {p}",
    "virtio_net virtio{n} ens{n}: renamed from eth{n}",
];
const PATHS: &[&str] = &[
    "/", "/index.html", "/api/v1/status", "/api/v1/users", "/api/v1/orders?page=2", "/static/app.js",
    "/static/app.css", "/favicon.ico", "/login", "/health", "/metrics", "/images/logo.svg",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
    "curl/7.88.1",
    "Prometheus/2.45.0",
    "kube-probe/1.28",
];
const CRATES: &[&str] = &[
    "libc", "cfg-if", "proc-macro2", "quote", "syn", "serde", "serde_derive", "serde_json", "itoa", "ryu",
    "memchr", "bytes", "tokio", "mio", "futures-core", "futures-util", "tracing", "tracing-core", "regex",
    "aho-corasick", "zstd-sys", "zstd-safe", "zstd", "uuid", "time", "hyper", "http", "clap", "anstyle",
];
const PROSE: &[&str] = &[
    "Die Übersicht zeigt alle Wartungsfenster für die Datenbankserver im nächsten Quartal.",
    "Le déploiement de la version 2.4 est prévu pour jeudi ; vérifiez les sauvegardes avant.",
    "本番環境のデータベースは毎晩午前二時にバックアップされます。復元手順は下記を参照してください。",
    "服务器维护期间，所有用户的会话将被记录并保存九十天。",
    "데이터베이스 연결 풀의 최대 크기는 백 개로 설정되어 있습니다.",
    "Status: ✅ backups verified, ⚠️ disk usage at 81 %, 🚀 release train leaves Friday.",
    "Ελληνικά, Кириллица и English in one line: naïve façade, déjà vu, Straße.",
];
const PROCS: &[(&str, &str)] = &[
    ("root", "systemd"), ("root", "kthreadd"), ("root", "rcu_gp"), ("root", "kworker/0:1-events"),
    ("root", "systemd-journal"), ("root", "systemd-udevd"), ("systemd+", "systemd-resolve"),
    ("root", "cron"), ("message+", "dbus-daemon"), ("root", "sshd"), ("www-data", "nginx"),
    ("www-data", "nginx"), ("postgres", "postgres"), ("postgres", "postgres: checkpointer"),
    ("postgres", "postgres: walwriter"), ("deploy", "node"), ("deploy", "python3"), ("root", "containerd"),
    ("root", "dockerd"), ("redis", "redis-server"), ("root", "rsyslogd"), ("root", "agetty"),
    ("deploy", "bash"), ("deploy", "top"), ("root", "kworker/1:2-mm_percpu_wq"), ("root", "jbd2/vda1-8"),
];
const SOURCE: &[&str] = &[
    "use std::collections::HashMap;",
    "use std::sync::{Arc, Mutex};",
    "",
    "/// Keeps the last known state of every backend.",
    "pub struct Registry {",
    "    backends: Mutex<HashMap<String, Backend>>,",
    "    retries: u32,",
    "}",
    "",
    "impl Registry {",
    "    pub fn new(retries: u32) -> Self {",
    "        Registry { backends: Mutex::new(HashMap::new()), retries }",
    "    }",
    "",
    "    pub fn update(&self, name: &str, healthy: bool) -> Result<(), Error> {",
    "        let mut map = self.backends.lock().map_err(|_| Error::Poisoned)?;",
    "        let entry = map.entry(name.to_string()).or_insert_with(Backend::default);",
    "        if healthy { entry.failures = 0; } else { entry.failures += 1; }",
    "        if entry.failures > self.retries {",
    "            tracing::warn!(backend = name, \"marking backend down\");",
    "            entry.down = true;",
    "        }",
    "        Ok(())",
    "    }",
    "}",
];

/// A generated session: its frames, and its initial size.
pub struct Session {
    pub frames: Vec<Frame>,
}

struct Gen {
    rng: Rng,
    t: Micros,
    uptime: u64,
    cols: u16,
    rows: u16,
    frames: Vec<Frame>,
    out_bytes: usize,
    cwd: String,
}

/// A session with at least `output_bytes` of output.
pub fn admin_session(seed: u64, output_bytes: usize) -> Session {
    let mut g = Gen {
        rng: Rng(seed),
        t: 0,
        uptime: 1000,
        cols: 120,
        rows: 40,
        frames: Vec::new(),
        out_bytes: 0,
        cwd: "~".into(),
    };
    g.prompt();
    while g.out_bytes < output_bytes {
        match g.rng.below(100) {
            0..=14 => g.ls(),
            15..=24 => g.find(),
            25..=34 => g.dmesg(),
            35..=47 => g.access_log(),
            48..=57 => g.compile(),
            58..=69 => g.top(),
            70..=81 => g.vim(),
            82..=91 => g.prose(),
            92..=95 => g.resize(),
            _ => g.cd(),
        }
        g.prompt();
    }
    Session { frames: g.frames }
}

impl Gen {
    fn wait(&mut self, lo_ms: u64, hi_ms: u64) {
        self.t += self.rng.range(lo_ms * 1000, hi_ms * 1000);
    }

    /// Output in PTY-read-sized chunks, cut at arbitrary bytes.
    fn out(&mut self, text: &str) {
        let bytes = text.as_bytes();
        self.out_bytes += bytes.len();
        let mut at = 0;
        while at < bytes.len() {
            let n = (self.rng.range(1, 4096) as usize).min(bytes.len() - at);
            self.frames.push(Frame::output(self.t, bytes[at..at + n].to_vec()));
            at += n;
            self.t += self.rng.range(20, 400);
        }
    }

    fn prompt(&mut self) {
        let p = format!("\x1b[?2004h\x1b[01;32mdeploy@web-01\x1b[00m:\x1b[01;34m{}\x1b[00m$ ", self.cwd);
        self.out(&p);
    }

    fn type_line(&mut self, line: &str) {
        self.wait(400, 3000);
        for (i, c) in line.chars().enumerate() {
            self.wait(50, 250);
            if i > 3 && self.rng.below(25) == 0 {
                self.frames.push(Frame::input(self.t, "q"));
                self.out("q");
                self.wait(150, 400);
                self.frames.push(Frame::input(self.t, "\x7f"));
                self.out("\x08\x1b[K");
            }
            let s = c.to_string();
            self.frames.push(Frame::input(self.t, s.clone().into_bytes()));
            self.out(&s);
        }
        self.wait(100, 500);
        self.frames.push(Frame::input(self.t, "\r"));
        self.out("\r\n\x1b[?2004l\r");
    }

    fn file_name(&mut self, pkg: &str) -> (String, u64) {
        let version = format!("{}.{}.{}", self.rng.below(4), self.rng.below(20), self.rng.below(12));
        match self.rng.below(4) {
            0 => (format!("lib{pkg}.so.{version}"), self.rng.range(20_000, 4_000_000)),
            1 => (format!("{pkg}.{}.gz", self.rng.range(1, 8)), self.rng.range(800, 30_000)),
            2 => ((*self.rng.pick(DOC_FILES)).to_string(), self.rng.range(300, 90_000)),
            _ => (format!("{pkg}-{version}.conf"), self.rng.range(100, 8_000)),
        }
    }

    fn ls(&mut self) {
        let pkg = *self.rng.pick(PACKAGES);
        self.type_line(&format!("ls -la --color=auto /usr/share/doc/{pkg}"));
        let n = self.rng.range(10, 120);
        let mut s = format!("total {}\r\n", n * 8);
        for _ in 0..n {
            let (name, size) = self.file_name(pkg);
            let month = self.rng.pick(MONTHS);
            let (mode, colour) = match self.rng.below(6) {
                0 => ("drwxr-xr-x", "01;34"),
                1 => ("lrwxrwxrwx", "01;36"),
                2 => ("-rwxr-xr-x", "01;32"),
                _ => ("-rw-r--r--", "00"),
            };
            s += &format!(
                "{mode} 1 root root {size:>8} {month} {:>2} {:02}:{:02} \x1b[{colour}m{name}\x1b[0m\r\n",
                self.rng.range(1, 28),
                self.rng.below(24),
                self.rng.below(60)
            );
        }
        self.wait(5, 40);
        self.out(&s);
    }

    fn find(&mut self) {
        self.type_line("find /usr/share -name '*.gz' -newer /var/lib/dpkg/status");
        let mut s = String::new();
        for _ in 0..self.rng.range(50, 800) {
            let pkg = *self.rng.pick(PACKAGES);
            let (name, _) = self.file_name(pkg);
            let dir = *self.rng.pick(&["/usr/share/doc", "/usr/share/man/man1", "/usr/share/man/man8", "/usr/share/info"]);
            s += &format!("{dir}/{pkg}/{name}\r\n");
        }
        self.out(&s);
    }

    fn dmesg(&mut self) {
        self.type_line("dmesg --color=always | tail -n 200");
        let mut s = String::new();
        for _ in 0..self.rng.range(40, 200) {
            self.uptime += self.rng.range(1, 30_000_000);
            let line = self
                .rng
                .pick(KERNEL)
                .replace("{n}", &self.rng.range(0, 3).to_string())
                .replace("{m}", &self.rng.range(1, 400).to_string())
                .replace("{p}", &self.rng.range(100, 65000).to_string())
                .replace("{t}", &(1_700_000_000 + self.uptime / 1_000_000).to_string());
            s += &format!(
                "\x1b[32m[{:>5}.{:06}]\x1b[0m \x1b[33m{}\x1b[0m\r\n",
                self.uptime / 1_000_000,
                self.uptime % 1_000_000,
                line
            );
        }
        self.out(&s);
    }

    fn access_log(&mut self) {
        self.type_line("tail -n 300 /var/log/nginx/access.log");
        let mut s = String::new();
        let mut sec = self.rng.range(0, 3000);
        for _ in 0..self.rng.range(50, 300) {
            sec += self.rng.range(0, 3);
            let status = *self.rng.pick(&[200, 200, 200, 200, 200, 304, 301, 404, 200, 500]);
            s += &format!(
                "10.{}.{}.{} - - [02/Nov/2026:10:{:02}:{:02} +0000] \"GET {} HTTP/1.1\" {status} {} \"-\" \"{}\"\r\n",
                self.rng.below(4),
                self.rng.below(8),
                self.rng.range(2, 60),
                sec / 60 % 60,
                sec % 60,
                self.rng.pick(PATHS),
                self.rng.range(200, 48_000),
                self.rng.pick(AGENTS)
            );
        }
        self.out(&s);
    }

    fn compile(&mut self) {
        self.type_line("cargo build --release");
        for _ in 0..self.rng.range(10, 29) {
            let krate = *self.rng.pick(CRATES);
            self.wait(50, 900);
            let version = format!("{}.{}.{}", self.rng.below(3), self.rng.below(40), self.rng.below(30));
            self.out(&format!("\x1b[1m\x1b[32m   Compiling\x1b[0m {krate} v{version}\r\n"));
            if self.rng.below(6) == 0 {
                let line = self.rng.range(10, 400);
                let src = *self.rng.pick(SOURCE);
                self.out(&format!(
                    "\x1b[1m\x1b[33mwarning\x1b[0m\x1b[1m: unused variable: `entry`\x1b[0m\r\n\x1b[1m\x1b[94m  --> \x1b[0msrc/registry.rs:{line}:13\r\n\x1b[1m\x1b[94m    |\x1b[0m\r\n\x1b[1m\x1b[94m{line:<4}|\x1b[0m {src}\r\n\x1b[1m\x1b[94m    |\x1b[0m\r\n"
                ));
            }
        }
        let (secs, frac) = (self.rng.range(20, 200), self.rng.below(100));
        self.out(&format!("\x1b[1m\x1b[32m    Finished\x1b[0m `release` profile [optimized] target(s) in {secs}.{frac}s\r\n"));
    }

    fn top(&mut self) {
        self.type_line("top");
        self.out("\x1b[?1049h\x1b[22;0;0t\x1b[1;1r\x1b[?1h\x1b=\x1b[?25l\x1b[H\x1b[2J");
        let mut procs: Vec<(u64, usize, f64, f64)> =
            (0..PROCS.len()).map(|i| (300 + i as u64 * 97 + self.rng.below(50), i, 0.0, 0.1 * i as f64)).collect();
        for _ in 0..self.rng.range(3, 25) {
            for p in procs.iter_mut() {
                let jitter = (self.rng.below(60) as f64 - 20.0) / 10.0;
                p.2 = (p.2 * 0.6 + jitter.max(0.0)).min(99.9);
            }
            procs.sort_by(|a, b| b.2.total_cmp(&a.2));
            let load = self.rng.below(300);
            let mut s = format!(
                "\x1b[H\x1b(B\x1b[mtop - 10:{:02}:{:02} up 12 days,  4:{:02},  2 users,  load average: {}.{:02}, 0.{:02}, 0.{:02}\x1b(B\x1b[m\x1b[39;49m\x1b[K\r\n",
                self.t / 60_000_000 % 60,
                self.t / 1_000_000 % 60,
                self.t / 60_000_000 % 60,
                load / 100,
                load % 100,
                self.rng.below(99),
                self.rng.below(99)
            );
            s += "Tasks:\x1b(B\x1b[m\x1b[39;49m\x1b[1m 131 \x1b(B\x1b[m\x1b[39;49mtotal,\x1b(B\x1b[m\x1b[39;49m\x1b[1m   1 \x1b(B\x1b[m\x1b[39;49mrunning,\x1b(B\x1b[m\x1b[39;49m\x1b[1m 130 \x1b(B\x1b[m\x1b[39;49msleeping\x1b(B\x1b[m\x1b[39;49m\x1b[K\r\n";
            s += &format!(
                "MiB Mem :\x1b(B\x1b[m\x1b[39;49m\x1b[1m  15990.{} \x1b(B\x1b[m\x1b[39;49mtotal,\x1b(B\x1b[m\x1b[39;49m\x1b[1m   {}.{} \x1b(B\x1b[m\x1b[39;49mfree\x1b(B\x1b[m\x1b[39;49m\x1b[K\r\n\x1b[K\r\n",
                self.rng.below(10),
                self.rng.range(2000, 2400),
                self.rng.below(10)
            );
            s += "\x1b[7m    PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND                  \x1b(B\x1b[m\x1b[39;49m\x1b[K\r\n";
            for (row, &(pid, i, cpu, mem)) in procs.iter().enumerate().take(self.rows as usize - 7) {
                let (user, cmd) = PROCS[i];
                s += &format!(
                    "\x1b[{};1H{}{pid:>7} {user:<9} 20   0 {:>7} {:>6} {:>6} {} {cpu:>5.1} {mem:>5.1} {:>6}:{:02}.{:02} {cmd}\x1b(B\x1b[m\x1b[39;49m\x1b[K",
                    row + 8,
                    if cpu > 5.0 { "\x1b[1m" } else { "" },
                    (i as u64 + 3) * 45_113,
                    (i as u64 + 1) * 9_871,
                    (i as u64 + 1) * 4_409,
                    if row == 0 { "R" } else { "S" },
                    i * 3,
                    i * 7 % 60,
                    (pid + self.t / 10_000) % 100
                );
            }
            s += "\x1b[J";
            self.out(&s);
            self.wait(1000, 3000);
        }
        self.frames.push(Frame::input(self.t, "q"));
        self.out(&format!("\x1b[{};1H\x1b[K\x1b[?1l\x1b>\x1b[?25h\x1b[?1049l\x1b[23;0;0t", self.rows));
    }

    fn vim_line(&self, n: usize) -> String {
        let line = SOURCE[n % SOURCE.len()];
        let coloured = if line.trim_start().starts_with("///") {
            format!("\x1b[34m{line}\x1b[m")
        } else {
            line.replace("pub ", "\x1b[33mpub\x1b[m ")
                .replace("fn ", "\x1b[32mfn\x1b[m ")
                .replace("let ", "\x1b[33mlet\x1b[m ")
                .replace("impl ", "\x1b[33mimpl\x1b[m ")
        };
        format!("\x1b[33m{:>4} \x1b[m{coloured}", n + 1)
    }

    fn vim(&mut self) {
        self.type_line("vim src/registry.rs");
        let body = self.rows as usize - 1;
        self.out("\x1b[?1049h\x1b[22;0;0t\x1b[>4;2m\x1b[?1h\x1b=\x1b[H\x1b[2J\x1b[?25l");
        let mut top = 0usize;
        for _ in 0..self.rng.range(2, 12) {
            let mut s = format!("\x1b[1;{body}r\x1b[H");
            for row in 0..body {
                s += &format!("\x1b[{};1H{}\x1b[K", row + 1, self.vim_line(top + row));
            }
            s += &format!("\x1b[{};1H\"src/registry.rs\" {}L, {}B\x1b[{};{}H\x1b[?25h", self.rows, SOURCE.len() * 8, SOURCE.len() * 310, 1, 6);
            self.out(&s);
            // scroll a few lines one at a time: insert line at the bottom, as vim does
            for _ in 0..self.rng.range(0, 10) {
                self.wait(60, 300);
                self.frames.push(Frame::input(self.t, "j"));
                top += 1;
                let line = self.vim_line(top + body - 1);
                self.out(&format!("\x1b[?25l\x1b[1;{body}r\x1b[{body};1H\n\x1b[{body};1H{line}\x1b[K\x1b[r\x1b[{};1H\x1b[?25h", body - 1));
            }
            // edit: open a line and type a comment
            if self.rng.below(3) == 0 {
                self.frames.push(Frame::input(self.t, "o"));
                self.out(&format!("\x1b[{};1H\x1b[1m-- INSERT --\x1b[m\x1b[5;1H\x1b[L", self.rows));
                for c in "        // retry with backoff".chars() {
                    self.wait(60, 220);
                    let s = c.to_string();
                    self.frames.push(Frame::input(self.t, s.clone().into_bytes()));
                    self.out(&s);
                }
                self.frames.push(Frame::input(self.t, "\x1b"));
                self.out(&format!("\x1b[{};1H\x1b[K", self.rows));
            }
            self.wait(300, 2000);
            self.frames.push(Frame::input(self.t, "\x06")); // Ctrl-F: page down
            top += body - 2;
        }
        self.frames.push(Frame::input(self.t, ":wq\r"));
        self.out(&format!("\x1b[{};1H:wq\r\x1b[?1l\x1b>\x1b[?1049l\x1b[23;0;0t\"src/registry.rs\" written\r\n", self.rows));
    }

    fn prose(&mut self) {
        self.type_line("cat docs/betrieb-運用-运维.md");
        let mut s = String::new();
        for _ in 0..self.rng.range(10, 80) {
            s += *self.rng.pick(PROSE);
            s += "\r\n";
            if self.rng.below(5) == 0 {
                s += "\r\n";
            }
        }
        self.out(&s);
    }

    fn resize(&mut self) {
        let (cols, rows) = *self.rng.pick(&[(80, 24), (120, 40), (160, 48), (100, 30), (132, 43)]);
        self.cols = cols;
        self.rows = rows;
        self.wait(500, 3000);
        self.frames.push(Frame::resize(self.t, cols, rows));
        self.out("\r\x1b[K");
    }

    fn cd(&mut self) {
        let dir = *self.rng.pick(&["~", "/etc/nginx", "/var/log", "/srv/app", "~/src/registry"]);
        self.type_line(&format!("cd {dir}"));
        self.cwd = dir.to_string();
    }
}
