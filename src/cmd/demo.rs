//! `gatehouse demo`: everything with embedded defaults, a demo user and a demo target
//! (the built-in, loopback-only, demo-only SSH target, so no sshd is needed).

use std::process::ExitCode;

use anyhow::Context;
use gatehouse_proxy::control::{Allowances, Credential, NewTarget, NewUser, RuleSpec};

use super::Ctx;
use super::serve::run_services;
use crate::config::{Overrides, Settings};

/// The demo user's name and password (demo only: printed on start).
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo";
/// The demo target's name and account.
const DEMO_TARGET: &str = "demo-target";
const DEMO_ACCOUNT: &str = "demo";

/// Run gatehouse with a demo user and a built-in demo target, and print how to connect.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where users connect with ssh [default: 127.0.0.1:2222, or GATEHOUSE_SSH_LISTEN].
    #[arg(long)]
    pub ssh_listen: Option<std::net::SocketAddr>,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let flags = Overrides { ssh_listen: args.ssh_listen, ..Default::default() };
    let settings = Settings::load(&ctx.data_dir, None, &flags)?;
    // Its password is in the README and its target runs a shell on this machine: only an
    // address asked for on the command line may be reachable from elsewhere.
    let listen = settings.proxy.listen;
    if args.ssh_listen.is_none() && !listen.ip().is_loopback() {
        anyhow::bail!(
            "the demo listens on loopback only (its login demo/demo is public), but {listen} came from \
             GATEHOUSE_SSH_LISTEN or ./gatehouse.toml; pass --ssh-listen {listen} to mean it"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let served = rt.block_on(async {
        let control = gatehouse_proxy::ControlPlane::open_data_dir(&settings.data_dir)?;
        // A fresh random password for the target account each run: the user never sees it.
        let target_password = format!("{:032x}", rand::random::<u128>());
        let target = gatehouse_proxy::DemoTarget::start(DEMO_ACCOUNT, &target_password).await?;
        seed(&control, &target, &target_password).context("creating the demo user and target")?;
        run_services(&settings, control, |addr| {
            let (port, ip) = (addr.port(), addr.ip());
            format!(
                "gatehouse demo is running (data in {}).\n\n  \
                 ssh -p {port} {DEMO_USER}:{DEMO_ACCOUNT}@{DEMO_TARGET}@{ip}\n  \
                 password: {DEMO_PASSWORD}\n\n\
                 or `ssh -p {port} {DEMO_USER}@{ip}` for the menu of targets.\n\
                 The demo target is a built-in shell on {} (demo only). Ctrl-C stops.\n",
                settings.data_dir.display(),
                target.addr()
            )
        })
        .await
    });
    // The recordings are drained by now. A shell still connected at the stop has its
    // terminal read on a blocking thread that would keep the runtime's drop waiting; the
    // process's exit closes that terminal and hangs the shell up.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Creates (or refreshes) the demo user, target, account and rule.
fn seed(control: &gatehouse_proxy::ControlPlane, target: &gatehouse_proxy::DemoTarget, password: &str) -> anyhow::Result<()> {
    let _ = control.remove_target(DEMO_TARGET);
    control.add_target(&NewTarget {
        name: DEMO_TARGET.into(),
        host: target.addr().ip().to_string(),
        port: target.addr().port(),
        labels: [("env".to_string(), "demo".to_string())].into_iter().collect(),
        default_account: Some(DEMO_ACCOUNT.into()),
        allow: Allowances::default(),
        host_key: Some(target.host_key().clone()),
        accounts: vec![(DEMO_ACCOUNT.into(), Credential::Password(password.to_string().into()))],
    })?;
    if control.list_users()?.iter().all(|u| u.name != DEMO_USER) {
        control.add_user(&NewUser {
            name: DEMO_USER.into(),
            password: Some(DEMO_PASSWORD.to_string().into()),
            keys: vec![],
            groups: vec![],
            totp: false,
        })?;
    }
    if control.list_rules()?.iter().all(|r| r.spec.name.as_deref() != Some("demo")) {
        control.add_rule(&RuleSpec {
            name: Some("demo".into()),
            users: vec![DEMO_USER.into()],
            targets: vec![DEMO_TARGET.into()],
            accounts: vec!["*".into()],
        })?;
    }
    Ok(())
}
