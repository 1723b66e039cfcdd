//! The checks once an upload's last byte is here: its size on disk, its whole-file SHA-256 and
//! the [`MasterProbe`](super::MasterProbe); run again at start for checks a stop cut.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use monsoon_catalog::rules::Refusal;
use sha2::{Digest as _, Sha256};

use super::{MasterSummary, Record, UploadState, Uploads};

impl Uploads {
    /// Runs the checks of uploads whose last byte arrived before a stop cut their checks.
    pub fn resume_checks(self: &Arc<Self>) {
        let due: Vec<String> = self
            .entries()
            .values()
            .filter(|e| {
                e.record.state == UploadState::Verifying
                    || (e.record.state == UploadState::Uploading && e.offset >= e.record.length)
            })
            .map(|e| e.record.id.clone())
            .collect();
        for id in due {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.verify(&id).await });
        }
    }

    /// Records `ready` or `failed` (deleting a failed file's bytes).
    pub(super) async fn verify(self: Arc<Self>, id: &str) {
        let (record, hasher) = {
            let mut entries = self.entries();
            let Some(entry) = entries.get_mut(id) else {
                return;
            };
            entry.record.state = UploadState::Verifying;
            (entry.record.clone(), entry.hasher.take())
        };
        if let Err(e) = self.write_record(&record) {
            tracing::error!(upload = %id, error = %e, "recording the check");
        }
        let path = self.data_path(id, &record.filename);
        let state = match self.check(&record, &path, hasher).await {
            Ok((probe, sha256)) => UploadState::Ready { probe, sha256 },
            Err(refusal) => {
                let _ = std::fs::remove_file(&path);
                UploadState::Failed {
                    reason: refusal.message,
                    rule: refusal.rule,
                }
            }
        };
        tracing::info!(upload = %id, filename = %record.filename, state = ?state, "upload checked");
        let record = {
            let mut entries = self.entries();
            let Some(entry) = entries.get_mut(id) else {
                return;
            };
            entry.record.state = state;
            entry.touched = SystemTime::now();
            entry.record.clone()
        };
        if let Err(e) = self.write_record(&record) {
            tracing::error!(upload = %id, error = %e, "recording the check");
        }
    }

    async fn check(
        &self,
        record: &Record,
        path: &Path,
        hasher: Option<Sha256>,
    ) -> std::result::Result<(MasterSummary, String), Refusal> {
        let name = &record.filename;
        let size = std::fs::metadata(path)
            .map_err(|e| format!("{name}: the uploaded file cannot be read ({e})"))?
            .len();
        if size != record.length {
            return Err(format!(
                "{name}: the server has {size} bytes, but Upload-Length said {}",
                record.length
            )
            .into());
        }
        let sha256 = match hasher {
            Some(h) => hex::encode(h.finalize()),
            None => {
                let path = path.to_owned();
                tokio::task::spawn_blocking(move || hash_file(&path))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("{name}: reading the uploaded file: {e}"))?
            }
        };
        if let Some(expected) = &record.expected_sha256
            && *expected != sha256
        {
            return Err(format!(
                "{name}: the uploaded file's SHA-256 is {sha256}, not {expected} as the upload said; the file changed or was damaged on the way, upload it again"
            )
            .into());
        }
        let probe = self.probe.probe(path, name, record.kind).await?;
        Ok((probe, sha256))
    }
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}
