//! `monsoon admin-token`: a new admin token and its argon2 hash for `monsoon.toml`.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct AdminTokenArgs {
    /// Hash this token instead of making a random one (at least 16 characters).
    #[arg(long, env = "MONSOON_ADMIN_TOKEN")]
    pub token: Option<String>,
}

pub fn run(args: &AdminTokenArgs) -> anyhow::Result<ExitCode> {
    let token = match &args.token {
        Some(token) => {
            monsoon_server::check_token(token).map_err(|e| anyhow::anyhow!("--token: {e}"))?;
            token.clone()
        }
        None => monsoon_server::new_token().map_err(anyhow::Error::msg)?,
    };
    let hash = monsoon_server::hash_token(&token).map_err(anyhow::Error::msg)?;
    eprintln!("Admin token (give it to operators; it is not stored anywhere):\n  {token}\n");
    eprintln!("Add this to monsoon.toml and restart `monsoon serve`:");
    println!("[admin]\ntoken_hash = \"{hash}\"");
    Ok(ExitCode::SUCCESS)
}
