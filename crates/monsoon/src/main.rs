//! `monsoon`: the one binary. Each subcommand is a module; this file only parses arguments
//! and hands over.

/// mimalloc instead of glibc's allocator: heartbeats are allocated on the HTTP threads and
/// freed on the audience writer's, which glibc's arenas handle poorly (`bench/heartbeats.sh`:
/// 25.4 against 28.9 µs of CPU per beat, averaged over three alternating runs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin_token;
mod demo;
mod ingest;
mod jobs;
mod operator;
mod serve;
mod settings;
mod tracks;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use monsoon_backends::{DataDir, StorageConfig};
use settings::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "monsoon",
    version,
    about = "Release a film to a whole country, free."
)]
struct Cli {
    /// Directory holding the SQLite catalog (`catalog.db`) and the published media (`media/`).
    #[arg(
        long,
        global = true,
        env = "MONSOON_DATA",
        default_value = "./monsoon-data"
    )]
    data: PathBuf,

    /// Settings file (TOML): its [storage] for every command that opens the catalog, the rest
    /// for serve and worker; see monsoon.example.toml.
    #[arg(long, global = true, env = "MONSOON_CONFIG")]
    config: Option<PathBuf>,

    /// Where the catalog, the audience and the media live (`[storage]`), when not in `--data`.
    #[command(flatten)]
    storage: StorageConfig,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Probe a master file, transcode it into an ABR ladder, package HLS + DASH, publish it.
    Ingest(ingest::IngestArgs),
    /// Add an audio language or subtitles to a published film, without encoding its video again.
    AddTrack(tracks::AddTrackArgs),
    /// Serve the catalog, the player and the media over HTTP.
    Serve(serve::ServeArgs),
    /// Make a synthetic film with ffmpeg, ingest it with sample metadata, and serve it.
    Demo(demo::DemoArgs),
    /// Take ingest jobs (`monsoon ingest --submit`) from the queue and run them.
    Worker(worker::WorkerArgs),
    /// List the ingest jobs: state, progress, speed, ETA, message (or print one's log, or cancel one).
    Jobs(jobs::JobsArgs),
    /// Show a film's live audience figures from a running server (runs `monsoon-simulate
    /// stats`, a client of the API like the simulator; `monsoon stats --help` for its arguments).
    #[command(disable_help_flag = true)]
    Stats {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Make an admin token for scripts and the `[admin] token_hash` line to configure it.
    AdminToken(admin_token::AdminTokenArgs),
    /// Operator accounts of the studio (/admin): add, password, list, disable, enable.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Release day against a running server: simulated viewers, ground truth, comparison
    /// (runs `monsoon-simulate simulate`; `monsoon simulate --help` for its arguments).
    #[command(disable_help_flag = true)]
    Simulate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// An attacker's script against a running server, on one thread, to measure what
    /// cheating could add to a film's audience figures (runs `monsoon-simulate inflate`).
    #[command(disable_help_flag = true)]
    Inflate {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // mp4-atom warns of every box it does not model, such as the `fiel` and `sdtp`
            // of ffmpeg's AV1 init segments, which nothing here reads.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,mp4_atom=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // The simulator is a program of its own (a client: the origin's build never compiles
    // it), found beside this one. Neither it nor `admin-token` (which makes the settings
    // file's token line) reads the settings file.
    let command = match cli.command {
        Command::Simulate { args } => return simulator("simulate", args),
        Command::Inflate { args } => return simulator("inflate", args),
        Command::Stats { args } => return simulator("stats", args),
        Command::AdminToken(args) => return exit(admin_token::run(&args)),
        other => other,
    };
    let result = Settings::read(cli.config.as_deref()).and_then(|settings| {
        // The flags' backends over the file's.
        let data = DataDir::new(&cli.data, cli.storage.or(&settings.storage));
        tokio::runtime::Runtime::new()
            .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?
            .block_on(run(command, &data, settings))
    });
    exit(result)
}

async fn run(command: Command, data: &DataDir, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Ingest(args) => ingest::run(data, args).await,
        Command::AddTrack(args) => tracks::run(data, args).await,
        Command::Serve(args) => serve::run(data, settings, args).await,
        Command::Demo(args) => demo::run(data, settings, args).await,
        Command::Worker(args) => worker::run(data, settings.worker, args).await,
        Command::Jobs(args) => jobs::run(data, args).await,
        Command::Operator(args) => operator::run(data, args).await,
        // Run before the settings are read.
        Command::Simulate { .. }
        | Command::Inflate { .. }
        | Command::Stats { .. }
        | Command::AdminToken(_) => Ok(ExitCode::SUCCESS),
    }
}

/// Runs `monsoon-simulate COMMAND ARGS…` from this executable's directory in this process's
/// place (`execv`: its exit status and signals are the command's own).
fn simulator(command: &str, args: Vec<std::ffi::OsString>) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let program = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("monsoon-simulate")))
        .filter(|p| p.is_file());
    let Some(program) = program else {
        eprintln!(
            "error: `monsoon {command}` runs monsoon-simulate, which is not beside this binary: \
             build it with `cargo build -p monsoon-simulate` (the same profile as monsoon)"
        );
        return ExitCode::FAILURE;
    };
    let e = std::process::Command::new(&program)
        .arg(command)
        .args(args)
        .exec();
    eprintln!("error: running {}: {e}", program.display());
    ExitCode::FAILURE
}

fn exit(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", monsoon_catalog::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
