//! The `[uploads]` table: the bounds on uploads (one upload's size, all uploads' bytes, the free
//! space kept on the disk, unfinished uploads at once) and their expiry.

use serde::Deserialize;

/// The `[uploads]` table of `monsoon.toml`: bounds on master uploads (`docs/INGEST.md`,
/// "Uploading a master"; `docs/SECURITY.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// Largest file one upload may be, bytes (`Tus-Max-Size`; the ingest's own limit is
    /// 500 GiB).
    pub max_upload_bytes: u64,
    /// Bytes all uploads together may hold (unfinished ones counted at their full length);
    /// a creation past it is refused with 507.
    pub max_total_bytes: u64,
    /// Free space an upload must leave on the data directory's disk, beyond what the
    /// unfinished uploads still need; a creation past it is refused with 507.
    pub min_free_bytes: u64,
    /// Unfinished uploads at once; one more is refused with 429 until one finishes, is
    /// deleted or expires.
    pub max_concurrent_uploads: u32,
    /// An unfinished upload without a PATCH for this long is deleted (`Upload-Expires`).
    pub expiry_s: u64,
    /// A PATCH body must arrive whole within this time of its head (the `[serve]
    /// body_timeout_s` of other requests is meant for small bodies). What arrived is kept.
    pub patch_timeout_s: u64,
    /// How often the server looks for claimed uploads (`<data>/uploads/claimed/`) whose jobs
    /// are over, and deletes them (`crates/server/src/jobs.rs` `sweep_claimed`).
    pub claimed_sweep_s: u64,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 500 << 30,
            max_total_bytes: 2 << 40,
            min_free_bytes: 10 << 30,
            max_concurrent_uploads: 8,
            expiry_s: 24 * 3600,
            patch_timeout_s: 3600,
            claimed_sweep_s: 60,
        }
    }
}

impl UploadConfig {
    /// Refuses settings that would refuse every upload or never end one.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("max_upload_bytes", self.max_upload_bytes),
            ("max_total_bytes", self.max_total_bytes),
            (
                "max_concurrent_uploads",
                u64::from(self.max_concurrent_uploads),
            ),
            ("expiry_s", self.expiry_s),
            ("patch_timeout_s", self.patch_timeout_s),
        ] {
            if value == 0 {
                return Err(format!(
                    "[uploads] {key} = 0 would refuse every upload; it must be 1 or more"
                ));
            }
        }
        if !(1..=86_400).contains(&self.claimed_sweep_s) {
            return Err(format!(
                "[uploads] claimed_sweep_s = {} must be from 1 to 86400 seconds between two \
                 looks for claimed uploads whose jobs are over",
                self.claimed_sweep_s
            ));
        }
        Ok(())
    }
}
