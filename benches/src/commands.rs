//! Deterministic realistic shell commands for the search benchmarks: what operators type on
//! servers (systemctl, journalctl, docker, kubectl, git, file viewing and editing, grep,
//! find, ssh/scp/rsync, package managers, database clients, curl...), over a large
//! vocabulary of paths, hosts, services, users, IPs, ports, dates and ids, with a skewed
//! (Zipf-like) choice of each part, like real histories. The same seed gives the same
//! commands on every machine.

use gatehouse_fixtures::terminal::Rng;

const SERVICES: &[&str] = &[
    "nginx", "postgresql", "redis-server", "docker", "kubelet", "sshd", "cron", "rsyslog", "haproxy", "mysql",
    "elasticsearch", "kafka", "zookeeper", "prometheus", "grafana-server", "node-exporter", "containerd", "etcd",
    "memcached", "rabbitmq-server", "php8.2-fpm", "apache2", "fail2ban", "chronyd", "systemd-resolved",
];
const DIRS: &[&str] = &[
    "/etc", "/var/log", "/opt/app", "/srv/www", "/usr/local/bin", "/var/lib", "/home/deploy", "/tmp", "/root",
    "/etc/nginx/sites-enabled", "/etc/systemd/system", "/var/lib/postgresql/15/main", "/opt/app/releases",
    "/etc/ssl/private", "/var/www/html", "/etc/kubernetes/manifests", "/var/log/nginx", "/etc/ssh",
];
const FILES: &[&str] = &[
    "shadow", "passwd", "hosts", "fstab", "sudoers", "crontab", "resolv.conf", "nginx.conf", "default",
    "config.yml", "settings.py", "app.env", "docker-compose.yml", "syslog", "auth.log", "access.log", "error.log",
    "kern.log", "postgresql.conf", "pg_hba.conf", "my.cnf", "id_rsa.pub", "authorized_keys", "sshd_config",
    "api.service", "backup.sh", "deploy.sh", "Makefile", "values.yaml", "kubeconfig", "server.crt", "server.key",
];
const WORDS: &[&str] = &[
    "error", "timeout", "failed", "refused", "denied", "upstream", "connection", "ERROR", "WARN", "panic",
    "OutOfMemory", "segfault", "restart", "token", "password", "session", "deadlock", "slow", "query", "backup",
];
const USERS: &[&str] = &["root", "deploy", "postgres", "ubuntu", "admin", "www-data", "jenkins", "alice", "bob", "carol"];
const NAMESPACES: &[&str] = &["default", "kube-system", "prod", "staging", "monitoring", "payments", "ingress-nginx"];
const PACKAGES: &[&str] = &[
    "nginx", "htop", "jq", "curl", "vim", "git", "postgresql-client", "python3-pip", "tcpdump", "strace", "ncdu",
    "openssl", "rsync", "unzip", "net-tools", "dnsutils", "iotop", "sysstat",
];

/// Generates commands (and the pieces queries are made of).
pub struct CommandGen {
    rng: Rng,
}

impl CommandGen {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> CommandGen {
        CommandGen { rng: Rng::new(seed) }
    }

    /// Index in `0..n`, skewed towards small values (roughly Zipf with s≈1).
    fn zipf(&mut self, n: usize) -> usize {
        // Inverse of a log-uniform distribution over 1..=n.
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let x = ((n as f64 + 1.0).ln() * u).exp() - 1.0;
        (x as usize).min(n - 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.zipf(items.len())]
    }

    fn num(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.range(lo, hi)
    }

    /// A host name: `web-07`, `db-primary-2`, `api-03.prod.eu-west.example.net`...
    pub fn host(&mut self) -> String {
        let role = self.pick(&["web", "db", "api", "cache", "worker", "lb", "k8s-node", "bastion", "mq", "es"]);
        let n = self.zipf(120) + 1;
        match self.rng.below(3) {
            0 => format!("{role}-{n:02}"),
            1 => format!("{role}-{n:02}.{}.example.net", self.pick(&["prod", "staging", "eu-west", "us-east", "dev"])),
            _ => format!("{role}{n}"),
        }
    }

    fn ip(&mut self) -> String {
        format!("10.{}.{}.{}", self.zipf(40), self.zipf(250), self.num(1, 254))
    }

    /// A file path; some are shared by many commands, many are nearly unique.
    pub fn path(&mut self) -> String {
        let dir = self.pick(DIRS);
        match self.rng.below(5) {
            0 => format!("{dir}/{}", self.pick(FILES)),
            1 => format!("{dir}/{}-{}.log", self.pick(SERVICES), self.num(1, 31)),
            2 => format!("{dir}/2026-{:02}-{:02}/{}", self.num(1, 12), self.num(1, 28), self.pick(FILES)),
            3 => format!("{dir}/{}/{}", self.pick(SERVICES), self.pick(FILES)),
            _ => format!("{dir}/data_{}.{}", self.num(1, 99_999), self.pick(&["csv", "json", "gz", "bak", "sql"])),
        }
    }

    /// One command line.
    pub fn command(&mut self) -> String {
        let svc = self.pick(SERVICES);
        match self.zipf(30) {
            0 => format!("systemctl {} {svc}", self.pick(&["status", "restart", "reload", "stop", "start", "enable"])),
            1 => format!("ls -la {}", self.pick(DIRS)),
            2 => format!("tail -n {} {}", self.num(10, 500), self.path()),
            3 => format!("journalctl -u {svc} --since \"{} min ago\" | grep -i {}", self.num(1, 120), self.pick(WORDS)),
            4 => format!("cd {}", self.pick(DIRS)),
            5 => format!("sudo vim {}", self.path()),
            6 => format!("grep -rn \"{}\" {}", self.pick(WORDS), self.path()),
            7 => format!("docker logs --tail {} {svc}-{}", self.num(10, 1000), self.num(1, 9)),
            8 => format!("kubectl get pods -n {} -o wide", self.pick(NAMESPACES)),
            9 => format!("cat {}", self.path()),
            10 => format!("ssh {}@{}", self.pick(USERS), self.host()),
            11 => format!("curl -s http://{}:{}/health | jq .", self.host(), self.pick(&["8080", "9090", "3000", "443", "80"])),
            12 => format!("ps aux | grep {svc}"),
            13 => format!("df -h {}", self.pick(DIRS)),
            14 => format!("git -C /opt/app log --oneline -n {}", self.num(5, 50)),
            15 => format!("kubectl logs -n {} {svc}-{:x} --since=1h", self.pick(NAMESPACES), self.rng.next_u64() & 0xfffff),
            16 => format!("scp {} {}@{}:{}", self.path(), self.pick(USERS), self.host(), self.pick(DIRS)),
            17 => format!("rsync -avz {}/ {}:{}/", self.pick(DIRS), self.host(), self.pick(DIRS)),
            18 => format!("apt-get install -y {}", self.pick(PACKAGES)),
            19 => format!("psql -h {} -U {} -c \"select count(*) from {}\"", self.host(), self.pick(USERS), self.pick(&["orders", "users", "sessions", "events", "payments"])),
            20 => format!("find {} -name \"*.{}\" -mtime -{}", self.pick(DIRS), self.pick(&["log", "conf", "gz", "tmp"]), self.num(1, 30)),
            21 => format!("chmod {} {}", self.pick(&["644", "600", "755", "+x"]), self.path()),
            22 => format!("chown {}:{} {}", self.pick(USERS), self.pick(USERS), self.path()),
            23 => format!("ping -c 4 {}", self.ip()),
            24 => format!("docker exec -it {svc}-{} /bin/sh", self.num(1, 9)),
            25 => format!("tar czf /tmp/backup-{}.tgz {}", self.num(1, 9999), self.pick(DIRS)),
            26 => format!("openssl x509 -in {} -noout -dates", self.path()),
            27 => format!("iptables -A INPUT -s {} -j DROP", self.ip()),
            28 => format!("export API_URL=http://{}:{}", self.host(), self.num(1024, 65535)),
            _ => format!("{} {}", self.pick(&["htop", "free -m", "uptime", "whoami", "id", "history", "exit"]), ""),
        }
        .trim_end()
        .to_string()
    }

    /// Uniform draw in `0..n` (for choosing query pieces).
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }
}
