//! The check a master uploaded through `/admin/api/uploads` must pass: the probe and limits of
//! `monsoon ingest` (`monsoon_media::ffmpeg::probe_file`), handed to the server, which never
//! imports the media crate. Only ffprobe runs here, with its whitelists and timeout; the
//! transcode stays with `monsoon ingest` and the workers.

use std::path::Path;

use monsoon_server::{MasterProbe, MasterSummary};

/// [`MasterProbe`] through the ingest's own probe, with its default limits.
#[derive(Debug, Default)]
pub struct IngestProbe;

#[async_trait::async_trait]
impl MasterProbe for IngestProbe {
    async fn probe(&self, path: &Path, filename: &str) -> Result<MasterSummary, String> {
        let limits = monsoon_media::Limits::default();
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
            Err(e) => Err(naming(&e.to_string(), path, filename)),
        }
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
