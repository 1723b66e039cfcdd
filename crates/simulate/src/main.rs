//! `monsoon-simulate`: the release-day simulator, the attacker's script and the live figures in
//! the terminal, as a program of their own. `monsoon simulate …`, `monsoon inflate …` and
//! `monsoon stats …` run it (`crates/monsoon/src/main.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "monsoon-simulate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Release day against a running server: simulated viewers, ground truth, comparison.
    Simulate(monsoon_simulate::SimulateArgs),
    /// An attacker's script against a running server, on one thread, to measure what
    /// cheating could add to a film's audience figures (bench/inflate.sh).
    Inflate(monsoon_simulate::attack::InflateArgs),
    /// Show a film's live audience figures from a running server.
    Stats(monsoon_simulate::stats::StatsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        // One blocking request: no runtime.
        Command::Stats(args) => monsoon_simulate::stats::run(&args),
        // The attacker runs on a runtime of its own, on one thread.
        Command::Inflate(args) => monsoon_simulate::attack::run(args),
        Command::Simulate(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(monsoon_simulate::run(args))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
