//! `gatehouse user …`: manage the people who log in through gatehouse.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use gatehouse_proxy::control::{self, ControlPlane, NewUser, TotpEnrollment};

use super::Ctx;
use super::control_util::{open_control, print_json, read_secret_stdin};

/// Manage users: passwords, public keys, groups, TOTP, lockouts.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create a user (with a password from stdin and/or public keys).
    Add {
        /// Login name.
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// A public key file (authorized_keys format, several keys allowed); repeatable.
        #[arg(long = "key", value_name = "FILE.pub")]
        keys: Vec<PathBuf>,
        /// A group (rules name groups as @group); repeatable.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Enrol TOTP as a second factor and print the provisioning URI.
        #[arg(long)]
        totp: bool,
    },
    /// List users.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user.
    Remove {
        /// Login name.
        name: String,
    },
    /// Set a user's password from stdin, or remove it with --clear.
    Passwd {
        /// Login name.
        name: String,
        /// Read the new password from standard input (one line).
        #[arg(long, conflicts_with = "clear", required_unless_present = "clear")]
        password_stdin: bool,
        /// Remove the password (keys only from now on).
        #[arg(long)]
        clear: bool,
    },
    /// Add public keys to a user.
    AddKey {
        /// Login name.
        name: String,
        /// Public key file (authorized_keys format); repeatable.
        #[arg(long = "key", value_name = "FILE.pub", required = true)]
        keys: Vec<PathBuf>,
    },
    /// Remove a user's public key by fingerprint (as `user list` shows it).
    RemoveKey {
        /// Login name.
        name: String,
        /// `SHA256:...`.
        fingerprint: String,
    },
    /// Replace a user's groups (none given: no groups).
    Groups {
        /// Login name.
        name: String,
        /// Groups, comma separated.
        #[arg(value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Enrol (again) or disable TOTP for a user.
    Totp {
        /// Login name.
        name: String,
        /// Remove the enrolment instead.
        #[arg(long)]
        disable: bool,
    },
    /// List current lockouts (users and source addresses).
    Lockouts {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Lift a lockout of a user name or a source IP address.
    Unlock {
        /// User name or IP address.
        subject: String,
    },
    /// Print the argon2id hash of a password read from stdin (for `password_hash` in gatehouse.toml).
    HashPassword,
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    if let Action::HashPassword = args.action {
        let password = read_secret_stdin("password")?;
        println!("{}", control::hash_password(&password)?);
        return Ok(ExitCode::SUCCESS);
    }
    let cp = open_control(ctx)?;
    match args.action {
        Action::Add { name, password_stdin, keys, groups, totp } => {
            let password = password_stdin.then(|| read_secret_stdin("password")).transpose()?;
            let keys = read_key_files(&keys)?;
            if password.is_none() && keys.is_empty() {
                bail!("user {name} needs --password-stdin or --key FILE.pub (or both) to be able to log in");
            }
            let new = NewUser { name: name.clone(), password: password.map(Into::into), keys, groups, totp };
            let enrollment = cp.add_user(&new)?;
            println!("user {name} created");
            if let Some(e) = enrollment {
                print_enrollment(&name, &e);
            }
        }
        Action::List { json } => list(&cp, json)?,
        Action::Remove { name } => {
            cp.remove_user(&name)?;
            println!("user {name} removed");
        }
        Action::Passwd { name, password_stdin, clear } => {
            let password = password_stdin.then(|| read_secret_stdin("password")).transpose()?;
            cp.set_password(&name, password.as_deref())?;
            println!("password of {name} {}", if clear { "removed" } else { "set" });
        }
        Action::AddKey { name, keys } => {
            let keys = read_key_files(&keys)?;
            cp.add_user_keys(&name, &keys)?;
            println!("{} key(s) added to {name}", keys.len());
        }
        Action::RemoveKey { name, fingerprint } => {
            cp.remove_user_key(&name, &fingerprint)?;
            println!("key {fingerprint} removed from {name}");
        }
        Action::Groups { name, groups } => {
            cp.set_user_groups(&name, &groups)?;
            println!("groups of {name}: {}", groups.join(","));
        }
        Action::Totp { name, disable: true } => {
            cp.disable_totp(&name)?;
            println!("TOTP disabled for {name}");
        }
        Action::Totp { name, disable: false } => print_enrollment(&name, &cp.enroll_totp(&name)?),
        Action::Lockouts { json } => {
            let locks = cp.lockouts()?;
            if json {
                print_json(&locks)?;
            } else {
                for l in locks {
                    println!("{:<7} {:<30} until {}", l.scope, l.subject, l.until);
                }
            }
        }
        Action::Unlock { subject } => {
            if cp.unlock(&subject)? {
                println!("{subject} unlocked");
            } else {
                println!("{subject} was not locked");
            }
        }
        Action::HashPassword => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

fn read_key_files(files: &[PathBuf]) -> anyhow::Result<Vec<control::PublicKey>> {
    let mut keys = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let parsed = control::parse_authorized_keys(&text, &f.display().to_string())?;
        if parsed.is_empty() {
            bail!("{}: no public key in it", f.display());
        }
        keys.extend(parsed);
    }
    Ok(keys)
}

fn print_enrollment(name: &str, e: &TotpEnrollment) {
    println!("TOTP enrolled for {name}; add it to an authenticator app (QR code of the URI, or the secret):");
    println!("  {}", e.uri);
    println!("  secret: {}", e.secret_base32);
}

fn list(cp: &ControlPlane, json: bool) -> anyhow::Result<()> {
    let users = cp.list_users()?;
    if json {
        return print_json(&users);
    }
    println!("{:<20} {:<8} {:<5} {:<5} {:<20} MANAGED", "NAME", "PASSWORD", "KEYS", "TOTP", "GROUPS");
    for u in users {
        println!(
            "{:<20} {:<8} {:<5} {:<5} {:<20} {}",
            u.name,
            if u.has_password { "yes" } else { "no" },
            u.keys.len(),
            if u.totp { "yes" } else { "no" },
            u.groups.join(","),
            u.managed,
        );
    }
    Ok(())
}
