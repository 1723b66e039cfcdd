//! Creating an upload within the bounds of [`UploadConfig`](super::UploadConfig), and deleting
//! the unfinished and failed ones that expire.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use sha2::{Digest as _, Sha256};

use super::{Entry, MAX_RECORDS, Record, Result, UploadError, UploadState, Uploads, internal};
use crate::upload::tus::Metadata;

impl Uploads {
    /// Deletes the unfinished and failed uploads not touched within `expiry_s`, every
    /// `expiry_s / 4` (at most a minute, at least 100 ms).
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let every = Duration::from_millis((self.config.expiry_s * 250).clamp(100, 60_000));
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(uploads) = this.upgrade() else {
                    return;
                };
                uploads.sweep(SystemTime::now());
            }
        });
    }

    /// Deletes what has expired at `now`; returns how many.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let expired: Vec<Entry> = {
            let mut entries = self.entries();
            let ids: Vec<String> = entries
                .values()
                .filter(|e| !e.busy && self.expires(e).is_some_and(|at| at <= now))
                .map(|e| e.record.id.clone())
                .collect();
            ids.iter().filter_map(|id| entries.remove(id)).collect()
        };
        for entry in &expired {
            tracing::info!(upload = %entry.record.id, filename = %entry.record.filename, "expired upload deleted");
            self.remove_files(&entry.record);
        }
        expired.len()
    }

    pub(super) fn expires(&self, entry: &Entry) -> Option<SystemTime> {
        match entry.record.state {
            UploadState::Uploading | UploadState::Failed { .. } => {
                Some(entry.touched + Duration::from_secs(self.config.expiry_s))
            }
            UploadState::Verifying | UploadState::Ready { .. } => None,
        }
    }

    /// Creates an upload of `length` bytes (tus creation extension), after the bounds of
    /// [`UploadConfig`](super::UploadConfig); returns its id and expiry.
    pub fn create(&self, length: u64, meta: Metadata) -> Result<(String, SystemTime)> {
        let c = &self.config;
        if length > c.max_upload_bytes {
            return Err(UploadError::TooLarge(format!(
                "Upload-Length {length} exceeds the largest upload, {} bytes ([uploads] max_upload_bytes)",
                c.max_upload_bytes
            )));
        }
        if length == 0 {
            return Err(UploadError::BadRequest(
                "Upload-Length 0: a master cannot be empty".into(),
            ));
        }
        let free =
            free_bytes(&self.dir).map_err(internal("reading the free space of", &self.dir))?;
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| UploadError::Internal(format!("no randomness: {e}")))?;
        let id = hex::encode(id);
        let record = Record {
            id: id.clone(),
            filename: meta.filename,
            filetype: meta.filetype,
            kind: meta.kind,
            length,
            expected_sha256: meta.sha256,
            created_at: Utc::now(),
            state: UploadState::Uploading,
        };
        // Checked and reserved under the lock, so two creations cannot both take the last room.
        {
            let mut entries = self.entries();
            let unfinished = entries
                .values()
                .filter(|e| {
                    matches!(
                        e.record.state,
                        UploadState::Uploading | UploadState::Verifying
                    )
                })
                .count();
            if unfinished >= c.max_concurrent_uploads as usize {
                return Err(UploadError::TooMany(format!(
                    "{unfinished} uploads are unfinished ([uploads] max_concurrent_uploads = {}); finish or delete one, or wait for an abandoned one to expire",
                    c.max_concurrent_uploads
                )));
            }
            if entries.len() >= MAX_RECORDS {
                return Err(UploadError::TooMany(format!(
                    "{MAX_RECORDS} uploads are kept; delete finished ones first"
                )));
            }
            let held: u64 = entries.values().map(|e| self.held(e)).sum();
            if held.saturating_add(length) > c.max_total_bytes {
                return Err(UploadError::Storage(format!(
                    "an upload of {length} bytes would bring the uploads to {} bytes, over [uploads] max_total_bytes = {}; delete finished uploads first",
                    held.saturating_add(length),
                    c.max_total_bytes
                )));
            }
            let owed: u64 = entries
                .values()
                .map(|e| e.record.length.saturating_sub(e.offset))
                .sum();
            let room = free.saturating_sub(owed).saturating_sub(c.min_free_bytes);
            if length > room {
                return Err(UploadError::Storage(format!(
                    "an upload of {length} bytes does not fit: the disk has {free} bytes free, unfinished uploads still need {owed}, and [uploads] min_free_bytes = {} must stay free",
                    c.min_free_bytes
                )));
            }
            entries.insert(
                id.clone(),
                Entry {
                    record: record.clone(),
                    offset: 0,
                    touched: SystemTime::now(),
                    hasher: Some(Sha256::new()),
                    busy: true,
                    samples: VecDeque::new(),
                },
            );
        }
        let made = (|| {
            let data = self.data_path(&id, &record.filename);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&data)
                .map_err(internal("creating", &data))?;
            file.sync_all().map_err(internal("syncing", &data))?;
            self.write_record(&record)
        })();
        let mut entries = self.entries();
        match made {
            Ok(()) => {
                let entry = entries.get_mut(&id).ok_or_else(|| {
                    UploadError::Internal("the upload vanished while being created".into())
                })?;
                entry.busy = false;
                Ok((id, entry.touched + Duration::from_secs(c.expiry_s)))
            }
            Err(e) => {
                entries.remove(&id);
                drop(entries);
                self.remove_files(&record);
                Err(e)
            }
        }
    }

    /// Bytes `entry` holds or will hold on disk.
    fn held(&self, entry: &Entry) -> u64 {
        match entry.record.state {
            UploadState::Failed { .. } => 0,
            _ => entry.record.length,
        }
    }
}

/// Bytes an unprivileged writer may still use on the file system of `dir` (statvfs(3)).
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}
