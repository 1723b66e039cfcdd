//! `monsoon demo`: a synthetic film made with ffmpeg, ingested with sample metadata, served.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use monsoon_backends::DataDir;
use monsoon_ingest::Request;
use monsoon_media::ffmpeg::{make_master, require_ffmpeg};
use monsoon_server::default_web_dir;

use crate::ingest::ingest;
use crate::serve::serve;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Length of the synthetic film, seconds.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// Height of the synthetic master (1080 or more shows the whole ladder).
    #[arg(long, default_value_t = 1080)]
    pub height: u32,
    /// Directory of the built player assets.
    #[arg(long, env = "MONSOON_WEB_DIR", default_value_os_t = default_web_dir())]
    pub web_dir: PathBuf,
}

const SLUG: &str = "monsoon-demo";

/// The film's metadata, as an operator would write it.
const META: &str = include_str!("demo.film.toml");

pub async fn run(
    data: &DataDir,
    mut settings: Settings,
    args: DemoArgs,
) -> anyhow::Result<ExitCode> {
    require_ffmpeg()?;
    let workdir = data.root().join("demo");
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;
    let master = workdir.join(format!("master-{}p-{}s.mp4", args.height, args.seconds));
    if !master.exists() {
        eprintln!(
            "making a {} s {}p synthetic master with ffmpeg…",
            args.seconds, args.height
        );
        make_master(&master, args.seconds, args.height).await?;
    }
    let meta = workdir.join("film.toml");
    std::fs::write(&meta, META).with_context(|| format!("writing {}", meta.display()))?;
    let request = Request {
        file: master,
        slug: SLUG.into(),
        meta: Some(meta),
        quality: monsoon_media::Quality::Fast,
        ..Request::default()
    };
    ingest(data, request, false).await?;
    // A first operator, `demo`, with a fresh password each run (its old sessions end), so the
    // studio can be opened at once; and a fresh admin token for scripts.
    let password = monsoon_catalog::operators::generate_password()?;
    let operator = demo_operator(data, &password).await?;
    let token = monsoon_server::new_token().map_err(anyhow::Error::msg)?;
    settings.serve.listen = args.listen;
    settings.serve.web_dir = args.web_dir;
    settings.admin.token_hash = monsoon_server::hash_token(&token).map_err(anyhow::Error::msg)?;
    serve(data, &settings, |url| {
        eprintln!("\nMonsoon demo is up:\n  catalog    {url}/\n  watch      {url}/watch/{SLUG}\n  studio     {url}/admin  (operator: {operator}, password: {password})\n  scripts    Authorization: Bearer {token}\n  HLS        {url}/media/{SLUG}/master.m3u8\n  DASH       {url}/media/{SLUG}/manifest.mpd\nPress Ctrl-C to stop.");
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The demo's operator, [`DEMO_OPERATOR`], made or given `password`.
async fn demo_operator(data: &DataDir, password: &str) -> anyhow::Result<&'static str> {
    use monsoon_catalog::operators::{Action, hash_password};
    let backends = data.open().await?;
    let hash = hash_password(password)?;
    let action = if backends.operators.find(DEMO_OPERATOR).await?.is_some() {
        backends
            .operators
            .set_password(DEMO_OPERATOR, &hash)
            .await?;
        Action::OperatorPasswordSet
    } else {
        backends.operators.create(DEMO_OPERATOR, &hash).await?;
        Action::OperatorCreated
    };
    monsoon_catalog::operators::record(backends.audit.as_ref(), action, DEMO_OPERATOR).await;
    Ok(DEMO_OPERATOR)
}

/// The operator `monsoon demo` signs in as.
const DEMO_OPERATOR: &str = "demo";

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_film_toml_is_a_valid_film_toml() {
        let meta = monsoon_catalog::FilmMeta::from_toml_in(
            super::META,
            std::path::Path::new("/"),
            "demo.film.toml",
        );
        assert!(meta.is_ok(), "{meta:?}");
    }
}
