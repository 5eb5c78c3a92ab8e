//! Remote forwarding (`ssh -R`) for one user connection whose target allows port
//! forwarding: one extra connection to the target, opened on the first `-R`, on which
//! gatehouse asks the target's sshd to listen. Each connection the target accepts comes
//! back as a `forwarded-tcpip` channel and becomes an audited tunnel to the user
//! (`bridge::run_reverse`). The link ends with the user's connection.

use std::time::Duration;

use russh::client;

use crate::control::Route;
use crate::target::{self, ConnectError, Reverse, TargetHandler};
use crate::{Proxy, UserIdentity};

/// The connection-wide link to the target for `-R` listeners.
pub(crate) struct RemoteForwards {
    handle: client::Handle<TargetHandler>,
    timeout: Duration,
}

impl RemoteForwards {
    /// Connects to the route's target for `who`, whose connection is `user`.
    pub(crate) async fn open(
        proxy: &Proxy,
        who: UserIdentity,
        route: Route,
        user: russh::server::Handle,
    ) -> Result<RemoteForwards, ConnectError> {
        let timeout = proxy.config().connect_timeout;
        let reverse = Reverse::from_parts(proxy.clone(), who, route.clone(), user, false, false, true);
        let (handle, _) = target::login(proxy.gate(), proxy.client_config(), &route, None, timeout, reverse).await?;
        Ok(RemoteForwards { handle, timeout })
    }

    /// Asks the target to listen on `address:port`; the port it listens on (the one it
    /// picked when `port` is 0).
    pub(crate) async fn listen(&self, address: &str, port: u32) -> Result<u32, String> {
        match tokio::time::timeout(self.timeout, self.handle.tcpip_forward(address, port)).await {
            Ok(Ok(0)) => Ok(port),
            Ok(Ok(p)) => Ok(p),
            Ok(Err(russh::Error::RequestDenied)) => Err("the target refused to listen there".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer from the target within {:?}", self.timeout)),
        }
    }

    /// Stops a listener.
    pub(crate) async fn cancel(&self, address: &str, port: u32) -> bool {
        matches!(tokio::time::timeout(self.timeout, self.handle.cancel_tcpip_forward(address, port)).await, Ok(Ok(())))
    }

    /// Ends the link (its tunnels close with it).
    pub(crate) fn close(self) {
        tokio::spawn(async move {
            let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        });
    }
}
