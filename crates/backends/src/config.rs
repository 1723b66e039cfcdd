//! `[storage]`: the backends named by URL, and the parsing that refuses what Monsoon does not
//! have, naming the setting and the value (never a password in it).

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use monsoon_store::s3::S3Url;
use serde::Deserialize;

/// Where the catalog, the audience and the media live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Database of the catalog and the audience: `sqlite://<path>` or
    /// `postgres://[user[:password]@]host[:port]/database` [default:
    /// `sqlite://<data>/catalog.db`].
    #[arg(long, global = true, env = "MONSOON_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Media store: `file://<directory>`, or `s3://<bucket>?endpoint=<URL>&region=<region>`
    /// signed with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY [default: `file://<data>/media`].
    #[arg(long, global = true, env = "MONSOON_MEDIA", value_name = "URL")]
    pub media: Option<String>,
}

impl StorageConfig {
    /// `self`, with what it leaves unset taken from `fallback` (flags over the file).
    pub fn or(&self, fallback: &StorageConfig) -> StorageConfig {
        StorageConfig {
            database: self.database.clone().or_else(|| fallback.database.clone()),
            media: self.media.clone().or_else(|| fallback.media.clone()),
        }
    }
}

/// A backend named by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite(PathBuf),
    /// The whole URL, as sqlx reads it.
    Postgres(String),
    Files(PathBuf),
    S3(S3Url),
}

pub(crate) fn parse(setting: &str, url: &str) -> anyhow::Result<Backend> {
    // A database URL may hold a password: never repeat it.
    let shown = monsoon_db::redacted(url);
    let (scheme, rest) = url.split_once("://").with_context(|| {
        format!("[storage] {setting} = \"{shown}\" is not a URL: expected `scheme://…`")
    })?;
    if rest.is_empty() {
        bail!("[storage] {setting} = \"{shown}\" names no path");
    }
    let backend = match (scheme, setting) {
        ("sqlite", "database") => Backend::Sqlite(PathBuf::from(rest)),
        ("postgres" | "postgresql", "database") => Backend::Postgres(url.to_owned()),
        ("file", "media") => Backend::Files(PathBuf::from(rest)),
        ("s3", "media") => Backend::S3(
            S3Url::parse(url)
                .map_err(|rule| anyhow!("[storage] {setting} = \"{shown}\": {rule}"))?,
        ),
        ("sqlite" | "postgres" | "postgresql" | "file" | "s3", _) => bail!(
            "[storage] {setting} = \"{shown}\": a {setting} cannot be `{scheme}://` \
             (the database is sqlite:// or postgres://, the media file:// or s3://)"
        ),
        (other, _) => bail!(
            "[storage] {setting} = \"{shown}\": `{other}://` is not a backend Monsoon has; \
             use sqlite:// or postgres:// for the database and file:// or s3:// for the media"
        ),
    };
    Ok(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend_and_bad_ones_are_named() {
        assert_eq!(
            parse("database", "sqlite:///srv/monsoon/catalog.db").unwrap(),
            Backend::Sqlite("/srv/monsoon/catalog.db".into())
        );
        assert_eq!(
            parse("media", "file://media").unwrap(),
            Backend::Files("media".into())
        );
        assert_eq!(
            parse("database", "postgres://monsoon@db:5432/monsoon").unwrap(),
            Backend::Postgres("postgres://monsoon@db:5432/monsoon".into())
        );
        assert_eq!(
            parse(
                "media",
                "s3://monsoon-media?endpoint=http://127.0.0.1:3900&region=garage"
            )
            .unwrap(),
            Backend::S3(S3Url {
                bucket: "monsoon-media".into(),
                endpoint: Some("http://127.0.0.1:3900".into()),
                region: "garage".into(),
            })
        );
        for (setting, url, says) in [
            ("database", "mysql://db/monsoon", "not a backend"),
            ("media", "postgres://db/monsoon", "cannot be"),
            ("media", "gs://bucket", "file:// or s3://"),
            ("media", "s3://bucket", "region"),
            (
                "media",
                "s3://bucket?region=garage&secret=x",
                "never go in the URL",
            ),
            (
                "media",
                "s3://bucket?region=garage&endpoint=http://s3.example.org",
                "use https",
            ),
            ("database", "s3://bucket?region=garage", "cannot be"),
            ("database", "file:///x", "cannot be"),
            ("media", "/just/a/path", "not a URL"),
            ("media", "file://", "no path"),
            ("media", "postgres://u:s3cret@db/monsoon", "cannot be"),
        ] {
            let message = parse(setting, url).unwrap_err().to_string();
            let shown = monsoon_db::redacted(url);
            assert!(
                message.contains(&shown) && message.contains(says),
                "{message}"
            );
            assert!(!message.contains("s3cret"), "{message}");
        }
    }

    #[test]
    fn flags_win_over_the_file() {
        let flags = StorageConfig {
            database: Some("sqlite://a.db".into()),
            media: None,
        };
        let file = StorageConfig {
            database: Some("sqlite://b.db".into()),
            media: Some("file://m".into()),
        };
        assert_eq!(
            flags.or(&file),
            StorageConfig {
                database: Some("sqlite://a.db".into()),
                media: Some("file://m".into()),
            }
        );
    }
}
