//! The check a file uploaded through `/admin/api/uploads` must pass, by its kind: a master the
//! probe and limits of `monsoon ingest` (`monsoon_media::ffmpeg::probe_file`), an audio track
//! those of `monsoon add-track` (`probe_audio_file`), subtitles their conversion to WebVTT
//! with cues; and the job it becomes. The server holds these as `monsoon_catalog::uploads`'
//! traits, never importing the media crate. Only ffprobe (and ffmpeg's subtitle conversion)
//! runs here; the transcode stays with the workers.

use std::path::Path;

use monsoon_catalog::rules::Refusal;
use monsoon_catalog::uploads::{ClaimedMaster, JobMaker, MasterProbe, MasterSummary, UploadKind};

/// [`MasterProbe`] through the ingest's own probe, with its default limits.
#[derive(Debug, Default)]
pub struct UploadProbe;

#[async_trait::async_trait]
impl MasterProbe for UploadProbe {
    async fn probe(
        &self,
        path: &Path,
        filename: &str,
        kind: UploadKind,
    ) -> Result<MasterSummary, Refusal> {
        let limits = monsoon_media::Limits::default();
        let refused = |e: monsoon_media::Error| naming_refusal(e.refusal(), path, filename);
        let summary = |container: &str, duration_s: f64, audio: Option<String>| MasterSummary {
            container: container.to_owned(),
            duration_s,
            width: 0,
            height: 0,
            fps: 0.0,
            video_codec: String::new(),
            audio_codec: audio,
        };
        match kind {
            UploadKind::Master => {}
            UploadKind::Audio => {
                return monsoon_media::ffmpeg::probe_audio_file(path, &limits)
                    .await
                    .map(|a| summary("audio", a.duration_s, Some(a.audio.codec)))
                    .map_err(refused);
            }
            UploadKind::Subtitles => {
                // Converted beside the upload, then removed: the job converts it again.
                let vtt = path.with_extension("probe.vtt");
                let converted = monsoon_media::tracks::convert_subtitles(path, &vtt).await;
                let _ = std::fs::remove_file(&vtt);
                return converted
                    .map(|()| summary("subtitles", 0.0, None))
                    .map_err(refused);
            }
        }
        match monsoon_media::ffmpeg::probe_file(path, &limits).await {
            Ok(source) => Ok(MasterSummary {
                container: source.format,
                duration_s: source.duration_s,
                width: source.video.display_width,
                height: source.video.display_height,
                fps: source.video.fps,
                video_codec: source.video.codec,
                audio_codec: source.audio.map(|a| a.codec),
            }),
            Err(e) => Err(refused(e)),
        }
    }
}

/// [`JobMaker`] through the ingest's own job format ([`crate::jobs`]): a master becomes
/// the ingest of its film, checked and probed as `monsoon ingest --submit` does; an audio track
/// or subtitles a track job, as `monsoon add-track --submit` makes.
#[derive(Debug, Default)]
pub struct UploadJobs;

#[async_trait::async_trait]
impl JobMaker for UploadJobs {
    async fn job(
        &self,
        slug: &str,
        upload: &ClaimedMaster,
        lang: Option<&str>,
        label: Option<&str>,
    ) -> Result<monsoon_catalog::NewJob, Refusal> {
        use crate::jobs::{DEFAULT_ATTEMPTS, submission, track_submission};
        use crate::tracks::Track;
        let named = |e: crate::Error| naming_refusal(e.refusal(), &upload.path, &upload.filename);
        let file = upload.path.clone();
        match (upload.kind, lang) {
            (UploadKind::Master, _) => {
                let request = crate::Request {
                    file,
                    slug: slug.to_owned(),
                    ..crate::Request::default()
                };
                submission(request, DEFAULT_ATTEMPTS)
                    .await
                    .map(|(_, job)| job)
                    .map_err(named)
            }
            (UploadKind::Audio, Some(lang)) => {
                let track = Track::audio(file, lang, label);
                track_submission(slug, &track, DEFAULT_ATTEMPTS)
                    .await
                    .map_err(named)
            }
            (UploadKind::Subtitles, Some(lang)) => {
                let track = Track::subtitles(file, lang, label);
                track_submission(slug, &track, DEFAULT_ATTEMPTS)
                    .await
                    .map_err(named)
            }
            (_, None) => Err(Refusal::from(
                "a track needs its language (\"lang\")".to_owned(),
            )),
        }
    }
}

/// `refusal` with its message [`naming`] the operator's file.
fn naming_refusal(refusal: Refusal, path: &Path, filename: &str) -> Refusal {
    Refusal {
        message: naming(&refusal.message, path, filename),
        rule: refusal.rule,
    }
}

/// The CLI's message, naming the file as the operator knows it wherever it names the server's
/// copy (ffprobe quotes its input as a `file:` URL).
fn naming(message: &str, path: &Path, filename: &str) -> String {
    let shown = path.display().to_string();
    if filename.is_empty() || shown.is_empty() {
        return message.to_owned();
    }
    message
        .replace(&format!("file:{shown}"), filename)
        .replace(&shown, filename)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_uploaded_file() {
        let path = Path::new("/srv/monsoon/uploads/0123.bin");
        assert_eq!(
            naming(
                "/srv/monsoon/uploads/0123.bin: file is empty (0 bytes)",
                path,
                "Mưa.mp4"
            ),
            "Mưa.mp4: file is empty (0 bytes)"
        );
        assert_eq!(
            naming(
                "/srv/monsoon/uploads/0123.bin: not a media file Monsoon accepts (ffprobe could not read it: file:/srv/monsoon/uploads/0123.bin: Invalid data)",
                path,
                "a.mp4"
            ),
            "a.mp4: not a media file Monsoon accepts (ffprobe could not read it: a.mp4: Invalid data)"
        );
        assert_eq!(
            naming("ffprobe could not be started", path, "a.mp4"),
            "ffprobe could not be started"
        );
    }
}
