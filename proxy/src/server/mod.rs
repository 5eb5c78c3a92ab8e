//! The proxy: its services (control plane, recorder, registry, SSH configs) and the accept
//! loop. Each connection gets a thin russh handler (`handler.rs`); each session channel a
//! bridge task (`bridge/`).

mod handler;
mod remote;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use gatehouse_recorder::Recorder;
use russh::keys::ssh_key::{LineEnding, PrivateKey};
use russh::keys::Algorithm;
use russh::{MethodKind, MethodSet, Preferred, cipher};
use tokio::net::TcpListener;

use crate::config::ProxyConfig;
use crate::control::ControlPlane;
use crate::error::{Error, Result};
use crate::gate::Gate;
use crate::login::Login;
use crate::registry::Registry;

/// Who is on a connection, once authenticated.
#[derive(Debug, Clone)]
pub(crate) struct UserIdentity {
    pub(crate) login: Login,
    pub(crate) auth_method: String,
    pub(crate) mfa: Option<String>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) client: String,
}

/// The SSH proxy. Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProxyConfig,
    gate: Gate,
    recorder: Recorder,
    registry: Registry,
    server: Arc<russh::server::Config>,
    client: Arc<russh::client::Config>,
}

/// What users are offered: only AES-GCM. OpenSSH clients take the first cipher of *their*
/// list the server offers (chacha20, then aes-ctr, then aes-gcm), so offering chacha20 or
/// aes-ctr at all means not getting AES-GCM, which with AES-NI through aws-lc is several
/// times faster than either (and a bridge does two layers of it). Every OpenSSH since 6.2
/// speaks it.
const FAST_CIPHERS: &[cipher::Name] = &[cipher::AES_128_GCM, cipher::AES_256_GCM];
const ALL_CIPHERS: &[cipher::Name] = &[
    cipher::AES_128_GCM,
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_128_CTR,
    cipher::AES_256_CTR,
];

impl Proxy {
    /// A proxy over `control` and `recorder` with `config` (loads or creates the host key).
    pub fn new(config: ProxyConfig, control: ControlPlane, recorder: Recorder) -> Result<Proxy> {
        let key = load_or_create_host_key(&config.host_key)?;
        let server = russh::server::Config {
            server_id: russh::SshId::Standard(Cow::Borrowed("SSH-2.0-gatehouse")),
            methods: MethodSet::from(
                &[MethodKind::PublicKey, MethodKind::Password, MethodKind::KeyboardInteractive][..],
            ),
            // The "none" probe every OpenSSH client sends first needs no delay.
            auth_rejection_time_initial: Some(std::time::Duration::ZERO),
            keys: vec![key],
            window_size: config.window_size,
            maximum_packet_size: config.max_packet,
            preferred: Preferred {
                cipher: Cow::Borrowed(if config.offer_chacha20 { ALL_CIPHERS } else { FAST_CIPHERS }),
                ..Preferred::default()
            },
            inactivity_timeout: None,
            keepalive_interval: config.keepalive,
            keepalive_max: config.keepalive_max,
            nodelay: true,
            ..Default::default()
        };
        let client = russh::client::Config {
            window_size: config.window_size,
            maximum_packet_size: config.max_packet,
            preferred: Preferred { cipher: Cow::Borrowed(ALL_CIPHERS), ..Preferred::default() },
            inactivity_timeout: None,
            keepalive_interval: config.keepalive,
            keepalive_max: config.keepalive_max,
            nodelay: true,
            ..Default::default()
        };
        Ok(Proxy {
            inner: Arc::new(Inner {
                registry: Registry::new(recorder.clone()),
                gate: Gate::new(control),
                recorder,
                config,
                server: Arc::new(server),
                client: Arc::new(client),
            }),
        })
    }

    /// The live-session registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The settings.
    pub fn config(&self) -> &ProxyConfig {
        &self.inner.config
    }

    pub(crate) fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    pub(crate) fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    pub(crate) fn client_config(&self) -> Arc<russh::client::Config> {
        self.inner.client.clone()
    }

    /// Binds the listening socket (`config.listen`; port 0 picks a free one).
    pub async fn bind(&self) -> Result<Listener> {
        let addr = self.inner.config.listen;
        let tcp = TcpListener::bind(addr).await.map_err(|e| Error::io(format!("listening on {addr}"), e))?;
        Ok(Listener { tcp, proxy: self.clone() })
    }
}

/// A bound proxy, ready to accept users.
pub struct Listener {
    tcp: TcpListener,
    proxy: Proxy,
}

impl Listener {
    /// The address users connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr().expect("bound socket has an address")
    }

    /// Accepts connections until the task is dropped.
    pub async fn run(self) -> Result<()> {
        loop {
            let (stream, peer) = match self.tcp.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let stream = crate::target::ssh_stream(stream);
            let handler = handler::Conn::new(self.proxy.clone(), Some(peer));
            let config = self.proxy.inner.server.clone();
            tokio::spawn(async move {
                match russh::server::run_stream(config, stream, handler).await {
                    Ok(session) => {
                        if let Err(e) = session.await {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                    }
                    Err(e) => tracing::debug!(%peer, "handshake failed: {e}"),
                }
            });
        }
    }
}

/// Reads the host key, or creates an ed25519 one (mode 0600) when the file is missing.
fn load_or_create_host_key(path: &Path) -> Result<PrivateKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => PrivateKey::from_openssh(text.trim())
            .map_err(|e| Error::HostKey { path: path.into(), why: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
                .map_err(|e| Error::HostKey { path: path.into(), why: e.to_string() })?;
            let text = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| Error::HostKey { path: path.into(), why: e.to_string() })?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            }
            write_private(path, text.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    f.write_all(bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}
