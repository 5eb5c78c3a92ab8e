//! `gatehouse target …`: manage the servers gatehouse connects to, their accounts and
//! credentials (stored encrypted with the master key), and their pinned host keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_proxy::control::{self, Allowances, ControlPlane, Credential, NewTarget};

use super::Ctx;
use super::control_util::{open_control, print_json, read_secret_stdin};

/// Manage targets: address, labels, accounts and credentials, host-key pins.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

/// Where an account's credential comes from.
#[derive(Debug, clap::Args)]
#[group(multiple = false)]
struct Secret {
    /// Read the account's password from standard input (one line).
    #[arg(long)]
    password_stdin: bool,
    /// The account's private key (unencrypted OpenSSH format).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create a target, optionally with its first account.
    Add {
        /// Unique name users connect to (`user:account@NAME`).
        name: String,
        /// Host name or address.
        #[arg(long)]
        host: String,
        /// SSH port.
        #[arg(long, default_value_t = 22)]
        port: u16,
        /// A label `key=value` (rules select targets by label); repeatable.
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// An account to create now (needs --password-stdin or --key-file).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        secret: Secret,
        /// The account used when the user names none [default: --account].
        #[arg(long)]
        default_account: Option<String>,
        /// Pin this host key (`ssh-ed25519 AAAA...`) instead of trusting it on first use.
        #[arg(long, value_name = "KEY")]
        host_key: Option<String>,
        /// What besides sessions is allowed: port-forward, agent, x11 (comma separated).
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
    },
    /// List targets.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a target with its accounts and host-key pin.
    Remove {
        /// Target name.
        name: String,
    },
    /// Add an account to a target, or replace its credential.
    AddAccount {
        /// Target name.
        target: String,
        /// Account (remote user) name.
        account: String,
        #[command(flatten)]
        secret: Secret,
        /// Make it the target's default account.
        #[arg(long)]
        default: bool,
    },
    /// Remove an account from a target.
    RemoveAccount {
        /// Target name.
        target: String,
        /// Account name.
        account: String,
    },
    /// Re-pin a target's host key (after a legitimate change), or forget the pin.
    Pin {
        /// Target name.
        target: String,
        /// The new host key (`ssh-ed25519 AAAA...`), or a file holding it.
        #[arg(long, value_name = "KEY|FILE", required_unless_present = "forget", conflicts_with = "forget")]
        host_key: Option<String>,
        /// Forget the pin: the next connection pins whatever key the target presents.
        #[arg(long)]
        forget: bool,
    },
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let cp = open_control(ctx)?;
    match args.action {
        Action::Add { name, host, port, labels, account, secret, default_account, host_key, allow } => {
            let accounts = match (&account, credential(&secret)?) {
                (Some(a), Some(c)) => vec![(a.clone(), c)],
                (None, None) => vec![],
                (Some(a), None) => bail!("account {a} needs --password-stdin or --key-file"),
                (None, Some(_)) => bail!("--password-stdin/--key-file need --account NAME"),
            };
            let target = NewTarget {
                labels: parse_labels(&labels)?,
                default_account: default_account.or(account),
                allow: Allowances::parse_list(&allow)?,
                host_key: host_key.as_deref().map(host_key_arg).transpose()?,
                name: name.clone(),
                host,
                port,
                accounts,
            };
            cp.add_target(&target)?;
            println!("target {name} created");
            if let Some(k) = &target.host_key {
                println!("host key pinned: {}", ControlPlane::fingerprint(k));
            }
        }
        Action::List { json } => list(&cp, json)?,
        Action::Remove { name } => {
            cp.remove_target(&name)?;
            println!("target {name} removed");
        }
        Action::AddAccount { target, account, secret, default } => {
            let Some(cred) = credential(&secret)? else { bail!("give --password-stdin or --key-file") };
            cp.set_account(&target, &account, &cred)?;
            if default {
                cp.set_default_account(&target, Some(&account))?;
            }
            println!("account {account} set on {target}");
        }
        Action::RemoveAccount { target, account } => {
            cp.remove_account(&target, &account)?;
            println!("account {account} removed from {target}");
        }
        Action::Pin { target, forget: true, .. } => {
            let had = cp.forget_host_key(&target)?;
            println!("{target}: {}", if had { "pin forgotten; the next connection pins the presented key" } else { "no key was pinned" });
        }
        Action::Pin { target, host_key, forget: false } => {
            let key = host_key_arg(host_key.as_deref().expect("clap requires --host-key without --forget"))?;
            cp.pin_host_key(&target, &key)?;
            println!("{target}: host key pinned: {}", ControlPlane::fingerprint(&key));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn credential(secret: &Secret) -> anyhow::Result<Option<Credential>> {
    if secret.password_stdin {
        return Ok(Some(Credential::Password(read_secret_stdin("password")?.into())));
    }
    let Some(file) = &secret.key_file else { return Ok(None) };
    let pem = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(Some(Credential::private_key_from_openssh(&pem, &file.display().to_string())?))
}

/// A host key given inline (`ssh-ed25519 AAAA...`) or as a file (e.g. `ssh_host_ed25519_key.pub`).
fn host_key_arg(arg: &str) -> anyhow::Result<control::PublicKey> {
    let path = Path::new(arg);
    if !arg.starts_with("ssh-") && !arg.starts_with("ecdsa-") && path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {arg}"))?;
        return Ok(control::parse_public_key(&text, arg)?);
    }
    Ok(control::parse_public_key(arg, "--host-key")?)
}

fn parse_labels(labels: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => bail!("label `{l}`: expected KEY=VALUE"),
        })
        .collect()
}

fn list(cp: &ControlPlane, json: bool) -> anyhow::Result<()> {
    let targets = cp.list_targets()?;
    if json {
        return print_json(&targets);
    }
    println!("{:<16} {:<24} {:<24} {:<24} HOST KEY", "NAME", "ADDRESS", "LABELS", "ACCOUNTS");
    for t in targets {
        let labels: Vec<String> = t.info.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let accounts: Vec<String> = t
            .accounts
            .iter()
            .map(|a| {
                let star = if t.default_account.as_deref() == Some(a.name.as_str()) { "*" } else { "" };
                format!("{}{star}({})", a.name, a.kind)
            })
            .collect();
        println!(
            "{:<16} {:<24} {:<24} {:<24} {}",
            t.info.name,
            format!("{}:{}", t.info.host, t.info.port),
            labels.join(","),
            accounts.join(","),
            t.host_key.as_deref().unwrap_or("(pinned on first use)"),
        );
    }
    Ok(())
}
