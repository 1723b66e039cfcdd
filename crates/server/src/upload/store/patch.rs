//! One PATCH at a time per upload: the hold on it, the offset and running SHA-256 of what was
//! written, and the rollback of a chunk that must not count.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest as _, Sha256};

use super::{Result, UploadError, UploadState, Uploads, not_found, prune};

/// How long the last PATCH waits for the checks before answering (`Monsoon-Upload-State`
/// then says `verifying`, and the listing tells the rest).
const VERIFY_WAIT: Duration = Duration::from_secs(5);

impl Uploads {
    pub fn begin(self: &Arc<Self>, id: &str, offset: u64) -> Result<Patch> {
        let mut entries = self.entries();
        let entry = entries.get_mut(id).ok_or_else(|| not_found(id))?;
        if entry.busy {
            return Err(UploadError::Locked(format!(
                "another PATCH is writing upload {id}; retry once it ends (HEAD gives the offset)"
            )));
        }
        if entry.record.state != UploadState::Uploading || entry.offset >= entry.record.length {
            return Err(UploadError::Conflict(format!(
                "upload {id} has all its {} bytes; it takes no more",
                entry.record.length
            )));
        }
        if offset != entry.offset {
            return Err(UploadError::Conflict(format!(
                "Upload-Offset {offset} is not the server's offset {}; resume from {} (HEAD gives it)",
                entry.offset, entry.offset
            )));
        }
        entry.busy = true;
        entry.touched = SystemTime::now();
        Ok(Patch {
            uploads: Arc::clone(self),
            id: id.to_owned(),
            path: self.data_path(id, &entry.record.filename),
            start: offset,
            offset,
            length: entry.record.length,
            hasher: entry.hasher.take(),
            hasher_at_start: None,
            rollback: false,
        })
    }
}

/// One PATCH's hold on an upload. Dropping it (the request ended, however) gives the upload
/// back with the offset and running hash of what was written — or, for a chunk that must be
/// rolled back, truncated to where the PATCH began.
#[derive(Debug)]
pub struct Patch {
    uploads: Arc<Uploads>,
    id: String,
    pub path: PathBuf,
    /// Where this PATCH began.
    pub start: u64,
    /// Bytes the file holds now.
    pub offset: u64,
    pub length: u64,
    hasher: Option<Sha256>,
    /// The running hash where the PATCH began, while its chunk may still be rolled back.
    hasher_at_start: Option<Option<Sha256>>,
    /// Truncate back to `start` when dropped.
    rollback: bool,
}

impl Patch {
    /// Marks the chunk as one that must be rolled back unless [`Patch::keep`] is called
    /// (a PATCH with `Upload-Checksum`: nothing of it counts until it is checked).
    pub fn all_or_nothing(&mut self) {
        self.hasher_at_start = Some(self.hasher.clone());
        self.rollback = true;
    }

    /// The chunk passed: keep it.
    pub fn keep(&mut self) {
        self.rollback = false;
        self.hasher_at_start = None;
    }

    /// Throw the chunk away when dropped.
    pub fn discard(&mut self) {
        if self.hasher_at_start.is_none() {
            self.hasher_at_start = Some(None);
        }
        self.rollback = true;
    }

    /// Notes `bytes`, just written at the old offset.
    pub fn wrote(&mut self, bytes: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(bytes);
        }
        self.offset += bytes.len() as u64;
        let now = Instant::now();
        let mut entries = self.uploads.entries();
        if let Some(entry) = entries.get_mut(&self.id) {
            entry.offset = self.offset;
            entry.touched = SystemTime::now();
            if entry
                .samples
                .back()
                .is_none_or(|&(t, _)| now.duration_since(t) >= Duration::from_millis(200))
            {
                entry.samples.push_back((now, self.offset));
                prune(&mut entry.samples, now);
            } else if let Some(last) = entry.samples.back_mut() {
                last.1 = self.offset;
            }
        }
    }

    /// Ends the PATCH; when the upload is whole, runs the checks, waiting a few seconds for
    /// them, and returns the state to report.
    pub async fn finish(self) -> UploadState {
        let whole = !self.rollback && self.offset == self.length;
        let uploads = Arc::clone(&self.uploads);
        let id = self.id.clone();
        if !whole {
            drop(self);
            return UploadState::Uploading;
        }
        {
            // Verifying from now on: no other PATCH, no expiry, no termination.
            let mut patch = self;
            let mut entries = uploads.entries();
            if let Some(entry) = entries.get_mut(&id) {
                entry.record.state = UploadState::Verifying;
                entry.hasher = patch.hasher.take();
                entry.busy = false;
            }
            drop(entries);
            patch.hasher_at_start = None;
            patch.id.clear();
        }
        let task = tokio::spawn({
            let uploads = Arc::clone(&uploads);
            let id = id.clone();
            async move { uploads.verify(&id).await }
        });
        let _ = tokio::time::timeout(VERIFY_WAIT, task).await;
        uploads
            .head(&id)
            .map_or(UploadState::Verifying, |(.., state)| state)
    }
}

impl Drop for Patch {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        if self.rollback {
            let truncated = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|f| {
                    f.set_len(self.start)?;
                    f.sync_all()
                });
            if let Err(e) = truncated {
                tracing::error!(upload = %self.id, error = %e, "rolling a chunk back");
            }
            self.offset = self.start;
            self.hasher = self.hasher_at_start.take().flatten();
        }
        let mut entries = self.uploads.entries();
        if let Some(entry) = entries.get_mut(&self.id) {
            entry.offset = self.offset;
            entry.hasher = self.hasher.take();
            entry.busy = false;
        }
    }
}
