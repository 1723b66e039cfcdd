//! What the server asks of the outside world about an uploaded file: the check it must pass
//! ([`MasterProbe`]) and the job it becomes ([`JobMaker`]). The server never runs ffmpeg and
//! never links the media crate; `monsoon_ingest::uploads` implements both with the ingest's
//! own probe, limits and job format (as `ImageTool` is implemented beside ffmpeg).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::NewJob;

/// What the probe found in a master that passed it, for the studio and the ingest job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterSummary {
    /// The container, as ffprobe names its demuxer (`mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
    pub duration_s: f64,
    /// Picture size as displayed.
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub video_codec: String,
    pub audio_codec: Option<String>,
}

/// What an upload is for, from its `Upload-Metadata` `kind`: the check it must pass and the job
/// it may become.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadKind {
    /// A film's master: probed as `monsoon ingest` probes one; becomes an ingest job.
    #[default]
    Master,
    /// An audio track to add to a film: probed for an audio stream.
    Audio,
    /// Subtitles to add to a film: converted to WebVTT, which must have cues.
    Subtitles,
}

/// The check a finished upload must pass before it may become a job: the same probe and
/// limits as `monsoon ingest` and `monsoon add-track` (`monsoon_ingest::uploads::UploadProbe`).
#[async_trait::async_trait]
pub trait MasterProbe: Send + Sync + std::fmt::Debug {
    /// Probes the file at `path`, uploaded as `filename` for `kind`; `Err` is the operator's
    /// message, the CLI's words naming `filename`, with the rule the file breaks (for the
    /// studio's translation) when a person can mend it.
    async fn probe(
        &self,
        path: &Path,
        filename: &str,
        kind: UploadKind,
    ) -> Result<MasterSummary, crate::rules::Refusal>;
}

/// A master that passed the checks, taken out of the server's uploads
/// (`monsoon_server::Uploads::claim`).
#[derive(Debug, Clone)]
pub struct ClaimedMaster {
    /// Where the file is now (the path given to `claim`).
    pub path: PathBuf,
    /// The name it had on the operator's machine.
    pub filename: String,
    pub kind: UploadKind,
    pub probe: MasterSummary,
    pub sha256: String,
}

/// What turns a claimed upload into a job: the ingest's own checks and job format, which the
/// server does not link (`monsoon_ingest::uploads::UploadJobs`).
#[async_trait::async_trait]
pub trait JobMaker: Send + Sync + std::fmt::Debug {
    /// The job for `upload` (claimed, at its path): the ingest of film `slug` for a master, a
    /// track added to it (in `lang`, called `label`) for audio or subtitles. `Err` is the
    /// operator's message, naming the value and the rule (and the rule as data when a person
    /// can mend the file, for the studio's translation).
    async fn job(
        &self,
        slug: &str,
        upload: &ClaimedMaster,
        lang: Option<&str>,
        label: Option<&str>,
    ) -> Result<NewJob, crate::rules::Refusal>;
}
