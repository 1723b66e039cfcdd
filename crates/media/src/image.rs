//! Artwork uploaded in the studio, through ffmpeg: an image is probed (its format and size
//! read from its header, before a pixel is decoded), checked, then decoded once and written as
//! a JPEG at most the size the pages show ([`monsoon_catalog::ArtKind::max_size`]).
//!
//! ffmpeg reads a temporary file, with only its image demuxers allowed, so an upload can be
//! nothing but a still JPEG, PNG or WebP: no playlist, no remote URL, no video.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use monsoon_catalog::artwork::{MAX_SIDE, MIN_SIDE};
use monsoon_catalog::rules::Refusal;
use monsoon_catalog::{ImageTool, Rule};

use crate::ffmpeg::{command, file_arg};

/// The demuxers an upload may be read with, and the codecs it may hold.
const IMAGE_FORMATS: &[&str] = &["jpeg_pipe", "png_pipe", "webp_pipe"];
const IMAGE_CODECS: &[&str] = &["mjpeg", "png", "webp"];

/// How long ffprobe or ffmpeg may take on one image.
const IMAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// [`ImageTool`] with ffmpeg.
#[derive(Debug, Clone, Copy, Default)]
pub struct FfmpegImages;

#[async_trait]
impl ImageTool for FfmpegImages {
    async fn artwork(&self, bytes: bytes::Bytes, max: (u32, u32)) -> Result<Vec<u8>, Refusal> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let input = dir.path().join("upload");
        let output = dir.path().join("art.jpg");
        tokio::fs::write(&input, &bytes)
            .await
            .map_err(|e| format!("writing the upload: {e}"))?;
        let (format, width, height) = probe(&input).await?;
        check_size(width, height)?;
        let (max_w, max_h) = max;
        let mut cmd = command("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
            .args(["-protocol_whitelist", "file", "-f", &format, "-i"])
            .arg(file_arg(&input))
            .args([
                "-frames:v",
                "1",
                "-vf",
                &format!(
                    "scale=w='min({max_w},iw)':h='min({max_h},ih)':force_original_aspect_ratio=decrease,format=yuvj420p"
                ),
                "-q:v",
                "3",
            ])
            .arg(file_arg(&output));
        let done = tokio::time::timeout(IMAGE_TIMEOUT, cmd.output())
            .await
            .map_err(|_| {
                format!(
                    "decoding the image took longer than {} s",
                    IMAGE_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| {
                format!(
                    "ffmpeg could not be started ({e}); install it with `apt-get install ffmpeg`"
                )
            })?;
        if !done.status.success() {
            let message = format!(
                "the image does not decode: {}",
                String::from_utf8_lossy(&done.stderr).trim()
            );
            return Err(Refusal::new(message, Rule::NotImage));
        }
        tokio::fs::read(&output)
            .await
            .map_err(|e| format!("reading the resized image: {e}").into())
    }
}

/// The image's demuxer and size, from ffprobe.
async fn probe(input: &Path) -> Result<(String, u32, u32), Refusal> {
    let mut cmd = command("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
    ])
    .arg(IMAGE_FORMATS.join(","))
    .args(["-print_format", "json", "-show_format", "-show_streams"])
    .arg(file_arg(input));
    let out = tokio::time::timeout(IMAGE_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            format!(
                "reading the image took longer than {} s",
                IMAGE_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| {
            format!("ffprobe could not be started ({e}); install it with `apt-get install ffmpeg`")
        })?;
    let not_image = || {
        let message = "not an image Monsoon takes: give a JPEG, PNG or WebP file";
        Refusal::new(message, Rule::NotImage)
    };
    if !out.status.success() {
        return Err(not_image());
    }
    let probed = crate::probe::parse_probe(&String::from_utf8_lossy(&out.stdout))
        .map_err(|_| not_image())?;
    let format = probed.format.map(|f| f.format_name).unwrap_or_default();
    let [stream] = probed.streams.as_slice() else {
        return Err(not_image());
    };
    let codec = stream.codec_name.as_deref().unwrap_or("");
    if !IMAGE_FORMATS.contains(&format.as_str()) || !IMAGE_CODECS.contains(&codec) {
        return Err(not_image());
    }
    Ok((
        format,
        stream.width.unwrap_or(0),
        stream.height.unwrap_or(0),
    ))
}

/// The size rule of an upload: [`MIN_SIDE`] to [`MAX_SIDE`] pixels a side.
pub fn check_size(width: u32, height: u32) -> Result<(), Refusal> {
    if width.max(height) > MAX_SIDE {
        return Err(Refusal::new(
            format!("the image is {width}×{height} pixels; the limit is {MAX_SIDE} pixels a side"),
            Rule::ImageTooBig {
                width,
                height,
                max: MAX_SIDE,
            },
        ));
    }
    if width.min(height) < MIN_SIDE {
        return Err(Refusal::new(
            format!(
                "the image is {width}×{height} pixels; it needs at least {MIN_SIDE} pixels a side"
            ),
            Rule::ImageTooSmall {
                width,
                height,
                min: MIN_SIDE,
            },
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded_both_ways() {
        assert!(check_size(1920, 1080).is_ok());
        assert!(check_size(160, 240).is_ok());
        let err = check_size(9000, 100).unwrap_err();
        assert!(
            err.message.contains("9000×100 pixels; the limit is 8192"),
            "{err:?}"
        );
        let err = check_size(100, 100).unwrap_err();
        assert!(err.message.contains("at least 160 pixels"), "{err:?}");
        assert_eq!(
            err.rule,
            Some(Rule::ImageTooSmall {
                width: 100,
                height: 100,
                min: 160
            })
        );
    }
}
