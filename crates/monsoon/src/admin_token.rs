//! `monsoon admin-token`: a new admin token and its argon2 hash for `monsoon.toml`.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct AdminTokenArgs {
    /// Hash this token instead of making a random one (at least 16 characters).
    #[arg(long, env = "MONSOON_ADMIN_TOKEN")]
    pub token: Option<String>,
}

/// Shortest token accepted: guessing must be hopeless even without the argon2 cost.
const MIN_LEN: usize = 16;

/// 24 random bytes, hex: 192 bits.
pub fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex::encode(bytes))
}

pub fn run(args: &AdminTokenArgs) -> anyhow::Result<ExitCode> {
    let token = match &args.token {
        Some(t) if t.chars().count() < MIN_LEN => anyhow::bail!(
            "--token has {} characters; an admin token needs at least {MIN_LEN}",
            t.chars().count()
        ),
        Some(t) => t.clone(),
        None => random_token()?,
    };
    let hash = monsoon_server::hash_token(&token).map_err(|e| anyhow::anyhow!(e))?;
    eprintln!("Admin token (give it to operators; it is not stored anywhere):\n  {token}\n");
    eprintln!("Add this to monsoon.toml and restart `monsoon serve`:");
    println!("[admin]\ntoken_hash = \"{hash}\"");
    Ok(ExitCode::SUCCESS)
}
