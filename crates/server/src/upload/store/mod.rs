//! The uploads on disk and in memory: each is `<dir>/<id>.bin` (the bytes received) and
//! `<dir>/<id>.json` (what the client said of it, and its state), where `<id>` is 128 random
//! bits in hex made here — no path is ever built from client input.
//!
//! - **Offset.** The file's length is the offset: bytes are appended in order and nothing
//!   else writes the file, so at start the length read from disk is what the server has. A
//!   PATCH is answered 204 only after `fsync`, so an acknowledged offset survives `kill -9`
//!   (and a power cut). Bytes of a PATCH cut by the network are kept (fsynced too), so the
//!   client resumes after them; a PATCH with `Upload-Checksum` that does not match, or that
//!   is cut, is truncated back to where it began.
//! - **One writer.** An upload has at most one PATCH at a time ([`Uploads::begin`] refuses a
//!   second with 423 Locked, as tusd does): two writers would interleave bytes at one offset.
//!   A PATCH whose client vanished keeps the lock until its connection is closed by the
//!   transport's silence rule (`[serve] header_timeout_s` without a byte), then gives it back.
//! - **Whole-file SHA-256.** Kept as a running hash of `[0, offset)` beside the offset, so the
//!   check at the end reads nothing back; after a restart (the hash is not persisted) the file
//!   is hashed once from disk.
//! - **Bounds.** [`UploadConfig`]: the size of one upload, the bytes all uploads may hold, the
//!   free space to leave on the disk, unfinished uploads at once, and their expiry.
//!
//! Here: the records, their paths, the listing and the claims; `config.rs` the bounds,
//! `bounds.rs` creation and expiry, `patch.rs` the one writer, `verify.rs` the checks at the end.

mod bounds;
mod config;
mod patch;
mod verify;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::tus::Metadata;

pub use config::UploadConfig;
pub use monsoon_catalog::uploads::{ClaimedMaster, MasterProbe, MasterSummary, UploadKind};
pub use patch::Patch;

/// Where an upload is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UploadState {
    /// Bytes are still expected.
    Uploading,
    /// Every byte is here; size, checksum and probe are being checked.
    Verifying,
    /// Passed: may become an ingest job ([`Uploads::claim`]).
    Ready {
        probe: MasterSummary,
        /// SHA-256 of the whole file, hex.
        sha256: String,
    },
    /// Refused, and its bytes deleted; the record stays until it expires. `rule`: the rule
    /// the file breaks, for the studio's translation of `reason` (`monsoon_catalog::Rule`;
    /// none for the machine's failures, and in records from before rules were kept).
    Failed {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<monsoon_catalog::Rule>,
    },
}

/// The sidecar `<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    filename: String,
    filetype: String,
    #[serde(default)]
    kind: UploadKind,
    length: u64,
    /// SHA-256 the client announced, hex.
    expected_sha256: Option<String>,
    created_at: DateTime<Utc>,
    #[serde(flatten)]
    state: UploadState,
}

/// An upload in memory.
#[derive(Debug)]
struct Entry {
    record: Record,
    offset: u64,
    /// Last creation or PATCH: the expiry counts from it.
    touched: SystemTime,
    /// SHA-256 of `[0, offset)`, when known (not after a restart).
    hasher: Option<Sha256>,
    /// A PATCH holds the upload.
    busy: bool,
    /// `(when, offset)` over the last [`SPEED_WINDOW`], for the speed shown.
    samples: VecDeque<(Instant, u64)>,
}

/// How far back the speed shown looks.
const SPEED_WINDOW: Duration = Duration::from_secs(5);
/// Uploads of every state listed, at most (failed ones expire; ready ones wait for a job).
pub const MAX_RECORDS: usize = 1000;

/// Why a request on an upload was refused; the HTTP edge maps each to its status.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// 409: `Upload-Offset` is not the server's, or the upload takes no more bytes.
    #[error("{0}")]
    Conflict(String),
    /// 423: another PATCH is writing this upload.
    #[error("{0}")]
    Locked(String),
    /// 413: larger than an upload may be, or a body past `Upload-Length`.
    #[error("{0}")]
    TooLarge(String),
    /// 507: the uploads' cap or the disk's free space.
    #[error("{0}")]
    Storage(String),
    /// 429: too many unfinished uploads.
    #[error("{0}")]
    TooMany(String),
    /// 460 (checksum extension): the PATCH body does not have its `Upload-Checksum`.
    #[error("{0}")]
    Checksum(String),
    /// 408: the PATCH body did not arrive whole within `patch_timeout_s`.
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Internal(String),
}

type Result<T, E = UploadError> = std::result::Result<T, E>;

fn internal(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> UploadError {
    let text = format!("{what} {}", path.display());
    move |e| {
        if e.raw_os_error() == Some(28) {
            UploadError::Storage(format!("{text}: the disk is full"))
        } else {
            UploadError::Internal(format!("{text}: {e}"))
        }
    }
}

/// An upload as the studio lists it (`GET /admin/api/uploads`).
#[derive(Debug, Clone, Serialize)]
pub struct UploadView {
    pub id: String,
    /// The tus URL of the upload.
    pub url: String,
    pub filename: String,
    pub filetype: String,
    pub kind: UploadKind,
    /// `Upload-Length`.
    pub length: u64,
    /// Bytes the server has.
    pub offset: u64,
    /// Bytes per second over the last 5 s (0 when nothing moved).
    pub bytes_per_s: f64,
    /// Whether a PATCH is writing it now.
    pub receiving: bool,
    #[serde(flatten)]
    pub state: UploadState,
    pub created_at: DateTime<Utc>,
    /// When it is deleted if no byte arrives (unfinished and failed uploads).
    pub expires_at: Option<DateTime<Utc>>,
}

/// The uploads of one server.
#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    config: UploadConfig,
    probe: Arc<dyn MasterProbe>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Uploads {
    /// Opens (creating) `dir` and loads the uploads in it: offsets from the files' lengths,
    /// leftovers of a creation cut short removed, and checks interrupted by a stop run again
    /// (call [`Uploads::resume_checks`] once a runtime runs).
    pub fn open(
        dir: &Path,
        config: UploadConfig,
        probe: Arc<dyn MasterProbe>,
    ) -> Result<Arc<Self>, String> {
        config.check()?;
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut entries = HashMap::new();
        let listing =
            std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        let now = SystemTime::now();
        for item in listing.flatten() {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            let Some((id, ext)) = name.split_once('.') else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            let sidecar = dir.join(format!("{id}.json"));
            if ext != "json" && !sidecar.exists() {
                // A creation cut between the file and its sidecar: nothing was acknowledged.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if ext != "json" {
                continue;
            }
            let record: Record = match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable upload record skipped");
                    continue;
                }
            };
            if record.id != id {
                continue;
            }
            let data = dir.join(format!("{id}.{}", extension(&record.filename)));
            let offset = std::fs::metadata(&data).map_or(0, |m| m.len());
            // The expiry counts from the last write of either file.
            let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let touched = modified(&path).max(modified(&data)).unwrap_or(now);
            entries.insert(
                id.to_owned(),
                Entry {
                    record,
                    offset,
                    touched,
                    hasher: None,
                    busy: false,
                    samples: VecDeque::new(),
                },
            );
        }
        Ok(Arc::new(Self {
            dir: dir.to_owned(),
            config,
            probe,
            entries: Mutex::new(entries),
        }))
    }

    pub fn config(&self) -> &UploadConfig {
        &self.config
    }

    /// The directory the uploads are received in (a destination for [`Uploads::claim`] on the
    /// same disk is a directory beside it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file of upload `id`, named `filename` by the client: `<id>.<ext>`, with `filename`'s
    /// extension when it is one of [`EXTENSIONS`] (ffprobe guesses a container from it, so the
    /// probe sees what `monsoon ingest` would), else `bin`. Never text from the client.
    fn data_path(&self, id: &str, filename: &str) -> PathBuf {
        self.dir.join(format!("{id}.{}", extension(filename)))
    }

    fn sidecar_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn remove_files(&self, record: &Record) {
        let _ = std::fs::remove_file(self.data_path(&record.id, &record.filename));
        let _ = std::fs::remove_file(self.sidecar_path(&record.id));
        let _ = sync_dir(&self.dir);
    }

    /// When `entry` is deleted if nothing happens: unfinished and failed uploads only.
    fn write_record(&self, record: &Record) -> Result<()> {
        let path = self.sidecar_path(&record.id);
        let bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| UploadError::Internal(format!("encoding the upload record: {e}")))?;
        monsoon_catalog::publish::write_durable(&path, &bytes)
            .map_err(|e| UploadError::Internal(e.to_string()))
    }

    /// `(offset, length, metadata, expiry, state)` of upload `id` (tus HEAD).
    pub fn head(&self, id: &str) -> Result<(u64, u64, Metadata, Option<SystemTime>, UploadState)> {
        let entries = self.entries();
        let entry = entries.get(id).ok_or_else(|| not_found(id))?;
        let r = &entry.record;
        let meta = Metadata {
            filename: r.filename.clone(),
            filetype: r.filetype.clone(),
            kind: r.kind,
            sha256: r.expected_sha256.clone(),
        };
        Ok((
            entry.offset,
            r.length,
            meta,
            self.expires(entry),
            r.state.clone(),
        ))
    }

    /// Takes upload `id` for one PATCH starting at `offset`: 404, 423 if another PATCH holds
    /// it, 409 if `offset` is not the server's or the upload takes no more bytes.
    pub fn terminate(&self, id: &str) -> Result<()> {
        let entry = {
            let mut entries = self.entries();
            let entry = entries.get(id).ok_or_else(|| not_found(id))?;
            if entry.busy || entry.record.state == UploadState::Verifying {
                return Err(UploadError::Locked(format!(
                    "upload {id} is being written or checked; retry in a moment"
                )));
            }
            entries.remove(id)
        };
        if let Some(entry) = entry {
            self.remove_files(&entry.record);
        }
        Ok(())
    }

    /// Every upload, newest first, as the studio shows them.
    pub fn list(&self) -> Vec<UploadView> {
        let now = Instant::now();
        let mut views: Vec<UploadView> = self
            .entries()
            .values_mut()
            .map(|e| {
                prune(&mut e.samples, now);
                self.view(e, now)
            })
            .collect();
        views.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        views
    }

    /// Upload `id` as the studio shows it.
    pub fn get(&self, id: &str) -> Result<UploadView> {
        let now = Instant::now();
        let mut entries = self.entries();
        let entry = entries.get_mut(id).ok_or_else(|| not_found(id))?;
        prune(&mut entry.samples, now);
        Ok(self.view(entry, now))
    }

    fn view(&self, e: &Entry, now: Instant) -> UploadView {
        let bytes_per_s = match (e.samples.front(), e.samples.back()) {
            (Some(&(t0, o0)), Some(&(t1, o1)))
                if e.record.state == UploadState::Uploading
                    && now.duration_since(t1) < SPEED_WINDOW =>
            {
                let secs = now.duration_since(t0).as_secs_f64().max(0.25);
                (o1 - o0) as f64 / secs
            }
            _ => 0.0,
        };
        UploadView {
            id: e.record.id.clone(),
            url: format!("{}/{}", super::PREFIX, e.record.id),
            filename: e.record.filename.clone(),
            filetype: e.record.filetype.clone(),
            kind: e.record.kind,
            length: e.record.length,
            offset: e.offset,
            bytes_per_s,
            receiving: e.busy,
            state: e.record.state.clone(),
            created_at: e.record.created_at,
            expires_at: self.expires(e).map(DateTime::<Utc>::from),
        }
    }

    /// Takes a ready master out of the uploads: moves its file to `to` (a path on the same
    /// file system, e.g. under the data directory; its parent must exist) and forgets the
    /// upload. The ingest job then owns the file.
    pub fn claim(&self, id: &str, to: &Path) -> Result<ClaimedMaster> {
        let mut entries = self.entries();
        let entry = entries.get(id).ok_or_else(|| not_found(id))?;
        let UploadState::Ready { probe, sha256 } = &entry.record.state else {
            return Err(UploadError::Conflict(format!(
                "upload {id} is not ready: only a checked master can become an ingest job"
            )));
        };
        let claimed = ClaimedMaster {
            path: to.to_owned(),
            filename: entry.record.filename.clone(),
            kind: entry.record.kind,
            probe: probe.clone(),
            sha256: sha256.clone(),
        };
        let data = self.data_path(id, &entry.record.filename);
        std::fs::rename(&data, to).map_err(internal("moving", &data))?;
        let entry = entries.remove(id);
        drop(entries);
        if let Some(entry) = entry {
            self.remove_files(&entry.record);
        }
        if let Some(parent) = to.parent() {
            let _ = sync_dir(parent);
        }
        Ok(claimed)
    }

    /// [`claim`](Self::claim) into directory `dir`, under the name the upload's file has here
    /// (`<id>.<ext>`, the extension from the fixed list: never a name from the client).
    pub fn claim_into(&self, id: &str, dir: &Path) -> Result<ClaimedMaster> {
        let filename = self
            .entries()
            .get(id)
            .map(|e| e.record.filename.clone())
            .ok_or_else(|| not_found(id))?;
        let name = self.data_path(id, &filename);
        let name = name
            .file_name()
            .ok_or_else(|| UploadError::Internal(format!("upload {id} has no file name")))?;
        self.claim(id, &dir.join(name))
    }
}

/// Drops samples older than the speed window, keeping one before it as the baseline.
fn prune(samples: &mut VecDeque<(Instant, u64)>, now: Instant) {
    while samples.len() > 1
        && samples
            .get(1)
            .is_some_and(|&(t, _)| now.duration_since(t) >= SPEED_WINDOW)
    {
        samples.pop_front();
    }
}

fn not_found(id: &str) -> UploadError {
    UploadError::NotFound(format!(
        "no upload {id}: it never existed, was deleted, or expired"
    ))
}

/// Whether `id` has the form of the ids made here (32 lowercase hex digits): anything else is
/// not looked up at all.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Extensions of masters kept on the server's copy, so ffprobe guesses as it would for the
/// operator's file.
const EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "qt", "mkv", "webm", "mxf", "ts", "mts", "m2ts", "avi", "mpg", "mpeg",
    "y4m", "wav", "m4a", "mp3", "flac", "aac", "ogg", "opus", "srt", "vtt", "ass",
];

/// The extension of the server's copy of `filename` (see [`Uploads::data_path`]).
fn extension(filename: &str) -> &'static str {
    let ext = filename.rsplit_once('.').map_or("", |(_, e)| e);
    EXTENSIONS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(ext))
        .copied()
        .unwrap_or("bin")
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

    use super::*;

    #[derive(Debug)]
    struct Refuse;

    #[async_trait::async_trait]
    impl MasterProbe for Refuse {
        async fn probe(
            &self,
            _: &Path,
            filename: &str,
            _: UploadKind,
        ) -> Result<MasterSummary, monsoon_catalog::rules::Refusal> {
            Err(monsoon_catalog::rules::Refusal::new(
                format!("{filename}: not a media file"),
                monsoon_catalog::Rule::Unreadable {
                    said: "Invalid data".into(),
                },
            ))
        }
    }

    /// `config` with nothing kept free on the disk unless it says so: these tests must not
    /// depend on the machine's free space.
    fn open(dir: &Path, config: UploadConfig) -> Arc<Uploads> {
        Uploads::open(dir, config, Arc::new(Refuse)).unwrap()
    }

    fn roomy() -> UploadConfig {
        UploadConfig {
            min_free_bytes: 0,
            ..UploadConfig::default()
        }
    }

    fn meta(name: &str) -> Metadata {
        Metadata {
            filename: name.into(),
            ..Metadata::default()
        }
    }

    #[test]
    fn creation_is_bounded_by_size_count_and_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let uploads = open(
            tmp.path(),
            UploadConfig {
                max_upload_bytes: 100,
                max_total_bytes: 150,
                max_concurrent_uploads: 2,
                min_free_bytes: 0,
                ..UploadConfig::default()
            },
        );
        let err = uploads.create(101, meta("a")).unwrap_err();
        assert!(
            matches!(err, UploadError::TooLarge(ref m) if m.contains("max_upload_bytes")),
            "{err}"
        );
        assert!(matches!(
            uploads.create(0, meta("a")),
            Err(UploadError::BadRequest(_))
        ));
        uploads.create(100, meta("a")).unwrap();
        let err = uploads.create(60, meta("b")).unwrap_err();
        assert!(
            matches!(err, UploadError::Storage(ref m) if m.contains("max_total_bytes")),
            "{err}"
        );
        uploads.create(50, meta("b")).unwrap();
        let err = uploads.create(1, meta("c")).unwrap_err();
        assert!(
            matches!(err, UploadError::TooMany(ref m) if m.contains("max_concurrent_uploads")),
            "{err}"
        );
        let huge = open(
            &tmp.path().join("other"),
            UploadConfig {
                min_free_bytes: u64::MAX / 2,
                ..UploadConfig::default()
            },
        );
        let err = huge.create(1, meta("a")).unwrap_err();
        assert!(
            matches!(err, UploadError::Storage(ref m) if m.contains("min_free_bytes")),
            "{err}"
        );
    }

    #[test]
    fn ids_are_random_and_checked_before_use() {
        let tmp = tempfile::tempdir().unwrap();
        let uploads = open(tmp.path(), roomy());
        let (a, _) = uploads.create(10, meta("a")).unwrap();
        let (b, _) = uploads.create(10, meta("../../etc/b.MOV")).unwrap();
        assert!(valid_id(&a) && valid_id(&b) && a != b);
        assert!(tmp.path().join(format!("{a}.bin")).is_file());
        assert!(tmp.path().join(format!("{b}.mov")).is_file());
        assert_eq!(extension("x.mp4.sh"), "bin");
        for bad in [
            "",
            "../x",
            &a.to_uppercase(),
            &a[1..],
            "g".repeat(32).as_str(),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_dropped_patch_keeps_its_bytes_and_a_rolled_back_one_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let uploads = open(tmp.path(), roomy());
        let (id, _) = uploads.create(10, meta("a")).unwrap();
        let mut patch = uploads.begin(&id, 0).unwrap();
        assert!(matches!(uploads.begin(&id, 0), Err(UploadError::Locked(_))));
        std::fs::write(&patch.path, b"abc").unwrap();
        patch.wrote(b"abc");
        drop(patch);
        assert_eq!(uploads.head(&id).unwrap().0, 3);
        assert!(
            matches!(uploads.begin(&id, 0), Err(UploadError::Conflict(m)) if m.contains("resume from 3"))
        );
        let mut patch = uploads.begin(&id, 3).unwrap();
        patch.all_or_nothing();
        std::fs::write(&patch.path, b"abcdef").unwrap();
        patch.wrote(b"def");
        drop(patch);
        assert_eq!(uploads.head(&id).unwrap().0, 3);
        assert_eq!(std::fs::read(uploads.data_path(&id, "a")).unwrap(), b"abc");
        // The running hash was rolled back with the bytes.
        let mut patch = uploads.begin(&id, 3).unwrap();
        std::fs::write(&patch.path, b"abcdefghij").unwrap();
        patch.wrote(b"defghij");
        let state = patch.finish().await;
        assert!(
            matches!(state, UploadState::Failed { ref reason, rule: Some(_) } if reason == "a: not a media file"),
            "{state:?}"
        );
        // A restart finds the record, with the file's bytes deleted.
        let again = open(tmp.path(), roomy());
        assert!(matches!(
            again.get(&id).unwrap().state,
            UploadState::Failed { .. }
        ));
    }

    #[tokio::test]
    async fn the_offset_after_a_restart_is_the_files_length_and_the_hash_is_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        let digest = hex::encode(Sha256::digest(b"0123456789"));
        let uploads = open(tmp.path(), roomy());
        let (id, _) = uploads
            .create(
                10,
                Metadata {
                    sha256: Some("0".repeat(64)),
                    ..meta("x")
                },
            )
            .unwrap();
        std::fs::write(uploads.data_path(&id, "x"), b"01234").unwrap();
        // A creation cut before its sidecar leaves a file that is removed.
        std::fs::write(tmp.path().join(format!("{}.bin", "0".repeat(32))), b"x").unwrap();
        drop(uploads);
        let uploads = open(tmp.path(), roomy());
        assert_eq!(uploads.head(&id).unwrap().0, 5);
        assert!(!tmp.path().join(format!("{}.bin", "0".repeat(32))).exists());
        let mut patch = uploads.begin(&id, 5).unwrap();
        std::fs::write(&patch.path, b"0123456789").unwrap();
        patch.wrote(b"56789");
        let state = patch.finish().await;
        let UploadState::Failed { reason, .. } = state else {
            panic!("{state:?}")
        };
        assert!(
            reason.contains(&digest) && reason.contains(&"0".repeat(64)),
            "{reason}"
        );
    }

    #[derive(Debug)]
    struct Accept;

    #[async_trait::async_trait]
    impl MasterProbe for Accept {
        async fn probe(
            &self,
            _: &Path,
            _: &str,
            _: UploadKind,
        ) -> Result<MasterSummary, monsoon_catalog::rules::Refusal> {
            Ok(MasterSummary {
                container: "mov,mp4,m4a,3gp,3g2,mj2".into(),
                duration_s: 1.0,
                width: 320,
                height: 180,
                fps: 25.0,
                video_codec: "h264".into(),
                audio_codec: None,
            })
        }
    }

    #[tokio::test]
    async fn a_ready_master_is_claimed_once_and_moved_out() {
        let tmp = tempfile::tempdir().unwrap();
        let uploads =
            Uploads::open(&tmp.path().join("uploads"), roomy(), Arc::new(Accept)).unwrap();
        let (id, _) = uploads.create(4, meta("film.MOV")).unwrap();
        let to = tmp.path().join("master.mov");
        assert!(
            matches!(uploads.claim(&id, &to), Err(UploadError::Conflict(_))),
            "not ready yet"
        );
        let mut patch = uploads.begin(&id, 0).unwrap();
        std::fs::write(&patch.path, b"film").unwrap();
        patch.wrote(b"film");
        let state = patch.finish().await;
        let UploadState::Ready { sha256, .. } = &state else {
            panic!("{state:?}")
        };
        assert_eq!(*sha256, hex::encode(Sha256::digest(b"film")));
        // Ready masters do not expire.
        assert_eq!(
            uploads.sweep(SystemTime::now() + Duration::from_secs(400 * 24 * 3600)),
            0
        );
        let claimed = uploads.claim(&id, &to).unwrap();
        assert_eq!(
            (claimed.path.as_path(), claimed.filename.as_str()),
            (to.as_path(), "film.MOV")
        );
        assert_eq!(claimed.probe.width, 320);
        assert_eq!(std::fs::read(&to).unwrap(), b"film");
        assert!(
            std::fs::read_dir(uploads.dir()).unwrap().next().is_none(),
            "record and bytes gone"
        );
        assert!(matches!(
            uploads.claim(&id, &to),
            Err(UploadError::NotFound(_))
        ));
    }

    #[test]
    fn expired_uploads_are_swept_and_ready_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let uploads = open(
            tmp.path(),
            UploadConfig {
                expiry_s: 60,
                ..roomy()
            },
        );
        let (id, expires) = uploads.create(10, meta("a")).unwrap();
        assert_eq!(uploads.sweep(expires - Duration::from_secs(1)), 0);
        let patch = uploads.begin(&id, 0).unwrap();
        assert_eq!(uploads.sweep(expires + Duration::from_secs(1)), 0, "busy");
        drop(patch);
        assert_eq!(uploads.sweep(expires + Duration::from_secs(61)), 1);
        assert!(matches!(uploads.head(&id), Err(UploadError::NotFound(_))));
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
    }
}
