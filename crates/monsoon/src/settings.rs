//! `monsoon.toml`: one settings file for every command (`--config`, `MONSOON_CONFIG`; see
//! `monsoon.example.toml`). Each table belongs to the crate that knows what it means; this file
//! only names them. Settings are layered, later wins: built-in defaults → the file →
//! `MONSOON_*` environment variables → flags.

use std::path::Path;

use anyhow::Context;
use monsoon_backends::StorageConfig;
use monsoon_server::{AdminConfig, ServeConfig};
use serde::Deserialize;

/// The file layout of `monsoon.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `monsoon serve`: the listener, its bounds, the cache, the viewer pages.
    pub serve: ServeConfig,
    pub audience: monsoon_audience::Config,
    pub admin: AdminConfig,
    /// Where the catalog, the audience and the media live (`monsoon_backends`), for every
    /// command; `--database` / `--media` win over it.
    pub storage: StorageConfig,
    /// `monsoon worker`'s settings, and those of the worker inside `monsoon serve`.
    pub worker: monsoon_ingest::worker::Config,
    /// Master uploads through `/admin/api/uploads` (`<data>/uploads`).
    pub uploads: monsoon_server::UploadConfig,
}

impl Settings {
    /// The file at `path`, or the defaults without one.
    pub fn read(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use monsoon_server::MetricsAccess;

    use super::*;

    #[test]
    fn the_example_config_is_complete_and_valid() {
        let text = include_str!("../../../monsoon.example.toml");
        let file: Settings = toml::from_str(text).expect("monsoon.example.toml parses");
        let defaults = ServeConfig::default();
        // The example documents the defaults (web_dir aside, which depends on the install).
        assert_eq!(file.serve.cache_bytes, defaults.cache_bytes);
        assert_eq!(file.serve.header_timeout_s, defaults.header_timeout_s);
        assert_eq!(file.serve.write_timeout_s, defaults.write_timeout_s);
        assert_eq!(file.serve.drain_deadline_s, defaults.drain_deadline_s);
        assert_eq!(file.serve.body_timeout_s, defaults.body_timeout_s);
        assert_eq!(
            file.serve.max_connections_per_addr,
            defaults.max_connections_per_addr
        );
        assert_eq!(file.serve.trusted_proxies, defaults.trusted_proxies);
        assert_eq!(file.serve.metrics, defaults.metrics);
        assert_eq!(
            file.admin.sign_in_attempts_per_minute,
            AdminConfig::default().sign_in_attempts_per_minute
        );
        assert_eq!(
            file.admin.session_times(),
            AdminConfig::default().session_times()
        );
        assert_eq!(file.audience, monsoon_audience::Config::default());
        assert_eq!(file.storage, StorageConfig::default());
        assert_eq!(file.worker, monsoon_ingest::worker::Config::default());
        assert_eq!(file.uploads, monsoon_server::UploadConfig::default());
        for key in ["database", "media", "in_serve"] {
            assert!(
                text.contains(&format!("\n# {key} = ")),
                "{key} is not documented"
            );
        }
        // Every key of the struct appears in the example.
        for key in [
            "listen",
            "web_dir",
            "cache_bytes",
            "cache_max_object_bytes",
            "header_timeout_s",
            "body_timeout_s",
            "write_timeout_s",
            "max_header_bytes",
            "readiness_grace_s",
            "drain_deadline_s",
            "max_connections_per_addr",
            "access_log",
            "catalog_refresh_ms",
            "replaced_version_grace_s",
            "http_threads",
            "public_url",
            "fast_path",
            "trusted_proxies",
            "metrics",
            "token_hash",
            "sign_in_attempts_per_minute",
            "session_absolute_s",
            "session_idle_s",
            "lease_s",
            "poll_s",
            "max_upload_bytes",
            "max_total_bytes",
            "min_free_bytes",
            "max_concurrent_uploads",
            "expiry_s",
            "patch_timeout_s",
            "claimed_sweep_s",
        ] {
            assert!(
                text.contains(&format!("\n{key} = ")),
                "{key} is not documented"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Settings>("[serve]\ncache_byte = 1\n").is_err());
    }

    #[test]
    fn metrics_exposure_is_one_of_three_words() {
        for (text, access) in [
            ("public", MetricsAccess::Public),
            ("admin", MetricsAccess::Admin),
            ("off", MetricsAccess::Off),
        ] {
            let file: Settings =
                toml::from_str(&format!("[serve]\nmetrics = \"{text}\"\n")).unwrap();
            assert_eq!(file.serve.metrics, access);
            assert_eq!(text.parse::<MetricsAccess>(), Ok(access));
        }
        assert!(toml::from_str::<Settings>("[serve]\nmetrics = \"yes\"\n").is_err());
        let err = "yes".parse::<MetricsAccess>().unwrap_err();
        assert!(err.contains("\"yes\""), "{err}");
        assert_eq!(ServeConfig::default().metrics, MetricsAccess::Admin);
    }
}
