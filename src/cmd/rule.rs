//! `gatehouse rule …`: the allow rules joining users to targets and accounts.

use std::process::ExitCode;

use gatehouse_proxy::control::RuleSpec;

use super::Ctx;
use super::control_util::{open_control, print_json};

/// Manage allow rules: users/@groups → targets (by name or label) → accounts.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Allow users to reach targets as accounts. `*` matches anything in each list.
    Add {
        /// Users and @groups, comma separated (`alice,@ops`).
        #[arg(long, value_delimiter = ',', required = true)]
        users: Vec<String>,
        /// Target names and key=value labels, comma separated (`env=prod,web-01`).
        #[arg(long, value_delimiter = ',', required = true)]
        targets: Vec<String>,
        /// Accounts, comma separated (`root,deploy`).
        #[arg(long, value_delimiter = ',', required = true)]
        accounts: Vec<String>,
        /// An optional unique name (`rule remove NAME`).
        #[arg(long)]
        name: Option<String>,
    },
    /// List rules.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a rule by id or name.
    Remove {
        /// Rule id (from `rule list`) or name.
        rule: String,
    },
}

pub fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let cp = open_control(ctx)?;
    match args.action {
        Action::Add { users, targets, accounts, name } => {
            let id = cp.add_rule(&RuleSpec { name, users, targets, accounts })?;
            println!("rule {id} added");
        }
        Action::List { json } => {
            let rules = cp.list_rules()?;
            if json {
                return print_json(&rules).map(|()| ExitCode::SUCCESS);
            }
            println!("{:<4} {:<16} {:<24} {:<24} {:<16} MANAGED", "ID", "NAME", "USERS", "TARGETS", "ACCOUNTS");
            for r in rules {
                println!(
                    "{:<4} {:<16} {:<24} {:<24} {:<16} {}",
                    r.id,
                    r.spec.name.as_deref().unwrap_or("-"),
                    r.spec.users.join(","),
                    r.spec.targets.join(","),
                    r.spec.accounts.join(","),
                    r.managed,
                );
            }
        }
        Action::Remove { rule } => {
            cp.remove_rule(&rule)?;
            println!("rule {rule} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}
