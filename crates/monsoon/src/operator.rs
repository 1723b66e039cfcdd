//! `monsoon operator`: the studio's operator accounts, in the catalog's database
//! (`monsoon_catalog::Operators`). Passwords are read from standard input (the first line) or,
//! on a terminal, from a prompt that does not echo them — never from the command line, where
//! `ps` and the shell's history would show them. Every change is written to the audit log as
//! done by `cli` (`monsoon_catalog::operators::record`).

use std::io::{BufRead, IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use monsoon_backends::DataDir;
use monsoon_catalog::operators::{self, Action, limits, record};

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Make an account; its password is read from stdin (the first line) or a prompt.
    Add { name: String },
    /// Set an account's password (read as for `add`); its sessions end.
    Password { name: String },
    /// List the accounts.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: it signs in no more, and its sessions end at once.
    Disable { name: String },
    /// Enable a disabled account again, with the password it had.
    Enable { name: String },
}

pub async fn run(data: &DataDir, command: OperatorCommand) -> anyhow::Result<ExitCode> {
    // Refuse a bad name before asking for a password or opening anything.
    if let OperatorCommand::Add { name }
    | OperatorCommand::Password { name }
    | OperatorCommand::Disable { name }
    | OperatorCommand::Enable { name } = &command
    {
        operators::validate_name(name)?;
    }
    match command {
        OperatorCommand::Add { name } => {
            let hash = new_password_hash(&name)?;
            let backends = data.open().await?;
            backends.operators.create(&name, &hash).await?;
            record(backends.audit.as_ref(), Action::OperatorCreated, &name).await;
            eprintln!("operator `{name}` created: sign in at /admin/login");
        }
        OperatorCommand::Password { name } => {
            let backends = data.open().await?;
            if backends.operators.find(&name).await?.is_none() {
                bail!("there is no operator named `{name}` (`monsoon operator list`)");
            }
            let hash = new_password_hash(&name)?;
            if !backends.operators.set_password(&name, &hash).await? {
                bail!("there is no operator named `{name}` (`monsoon operator list`)");
            }
            record(backends.audit.as_ref(), Action::OperatorPasswordSet, &name).await;
            eprintln!("the password of `{name}` is changed; its sessions have ended");
        }
        OperatorCommand::List { json } => {
            let backends = data.open().await?;
            let accounts = backends.operators.list().await?;
            if json {
                println!("{}", serde_json::to_string(&accounts)?);
            } else if accounts.is_empty() {
                eprintln!("no operator yet: `monsoon operator add <name>` makes one");
            } else {
                print!("{}", operators::table(&accounts));
            }
        }
        OperatorCommand::Disable { name } => {
            let backends = data.open().await?;
            if !backends.operators.disable(&name).await? {
                match backends.operators.find(&name).await? {
                    Some(_) => bail!("operator `{name}` is disabled already"),
                    None => bail!("there is no operator named `{name}` (`monsoon operator list`)"),
                }
            }
            record(backends.audit.as_ref(), Action::OperatorDisabled, &name).await;
            eprintln!("operator `{name}` disabled; its sessions have ended");
        }
        OperatorCommand::Enable { name } => {
            let backends = data.open().await?;
            if !backends.operators.enable(&name).await? {
                match backends.operators.find(&name).await? {
                    Some(_) => bail!("operator `{name}` is active already"),
                    None => bail!("there is no operator named `{name}` (`monsoon operator list`)"),
                }
            }
            record(backends.audit.as_ref(), Action::OperatorEnabled, &name).await;
            eprintln!("operator `{name}` enabled: it signs in with the password it had");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a new password for `name` (stdin, or a prompt asking twice), checks its length and
/// hashes it.
fn new_password_hash(name: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for `{name}`: "))
            .context("reading the password")?;
        operators::check_password(&first)?;
        let second =
            rpassword::prompt_password("the same again: ").context("reading the password")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take((limits::PASSWORD.end() * 4 + 2) as u64)
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_owned()
    };
    operators::check_password(&password)?;
    Ok(operators::hash_password(&password)?)
}
