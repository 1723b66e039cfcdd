//! Measuring what ffmpeg wrote: each rendition's segments as its media playlist lists them
//! (RFC 8216 §4.3.2.1 `EXTINF`), their sizes on disk and the sample durations in their `trun`
//! boxes (ISO/IEC 14496-12), so that the manifests and the catalog state measured bit rates,
//! never the encoder's targets.

use std::path::Path;

use m3u8_rs::Playlist;

use crate::ladder::{AudioCodec, AudioRung, Codec, Ladder, Rung};
use crate::transcode::{INIT_SEGMENT, MEDIA_PLAYLIST};
use crate::{Error, Result};

/// A rendition as measured after encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredRendition {
    pub name: String,
    pub kind: Kind,
    pub codecs: String,
    pub segments: Vec<MeasuredSegment>,
    pub init_size: u64,
    /// Mean bit rate over the whole rendition, bit/s.
    pub average_bitrate: u64,
    /// Highest bit rate of any one segment, bit/s (RFC 8216 §4.3.4.2 `BANDWIDTH`).
    pub peak_bitrate: u64,
    pub budget: Budget,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Video {
        width: u32,
        height: u32,
        frame_rate: String,
        audio: Option<String>,
    },
    Audio,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredSegment {
    pub uri: String,
    /// `EXTINF` as ffmpeg wrote it.
    pub duration_s: f64,
    /// Sum of the sample durations in the segment's `trun` boxes.
    pub media_duration_s: f64,
    pub size: u64,
    /// Byte range (offset, length) from the `moof` to the end of the first frame, when that
    /// frame is a sync sample: the segment's entry in the I-frame playlist.
    pub first_frame: Option<(u64, u64)>,
}

/// What a rendition may spend, checked by [`crate::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Highest acceptable mean bit rate, bit/s.
    pub average: u64,
    /// Highest acceptable segment bit rate, bit/s.
    pub peak: u64,
}

impl MeasuredRendition {
    pub fn duration_s(&self) -> f64 {
        self.segments.iter().map(|s| s.duration_s).sum()
    }
}

/// Reads a rendition's media playlist and the sizes of the files it names. `codecs` is the
/// planned codec string; where the init segment's sample entry gives the full one (AV1's
/// `av1C`, Opus), that one is taken, and must start with the planned one.
pub fn measure(
    dir: &Path,
    name: &str,
    kind: Kind,
    codecs: String,
    budget: Budget,
) -> Result<MeasuredRendition> {
    let rendition_dir = dir.join(name);
    let playlist_path = rendition_dir.join(MEDIA_PLAYLIST);
    let bytes = std::fs::read(&playlist_path).map_err(Error::io(&playlist_path))?;
    let playlist = match m3u8_rs::parse_playlist_res(&bytes) {
        Ok(Playlist::MediaPlaylist(p)) => p,
        Ok(Playlist::MasterPlaylist(_)) => {
            return Err(Error::Verify(format!(
                "{} is a multivariant playlist, expected a media playlist",
                playlist_path.display()
            )));
        }
        Err(e) => {
            return Err(Error::Verify(format!(
                "{} does not parse: {e}",
                playlist_path.display()
            )));
        }
    };
    let read = |file: &str| -> Result<Vec<u8>> {
        let path = rendition_dir.join(file);
        std::fs::read(&path).map_err(Error::io(&path))
    };
    let init = read(INIT_SEGMENT)?;
    let track = crate::fmp4::read_init(&init)?;
    let codecs = match track.codecs.clone() {
        Some(read) if read.starts_with(&codecs) => read,
        Some(read) => {
            return Err(Error::Verify(format!(
                "{name}: planned as `{codecs}`, its init segment holds `{read}`"
            )));
        }
        None => codecs,
    };
    let mut segments = Vec::with_capacity(playlist.segments.len());
    for seg in &playlist.segments {
        let bytes = read(&seg.uri)?;
        let fragment = crate::fmp4::read_segment(&bytes, &track)
            .map_err(|e| Error::Verify(format!("{name}/{}: {e}", seg.uri)))?;
        segments.push(MeasuredSegment {
            uri: seg.uri.clone(),
            duration_s: f64::from(seg.duration),
            media_duration_s: fragment.duration_s,
            size: bytes.len() as u64,
            first_frame: fragment.starts_with_sync.then(|| {
                (
                    fragment.moof_offset,
                    fragment.first_sample_end - fragment.moof_offset,
                )
            }),
        });
    }
    let init_size = init.len() as u64;
    if segments.is_empty() {
        return Err(Error::Verify(format!(
            "{} lists no segments",
            playlist_path.display()
        )));
    }
    let total_bytes: u64 = segments.iter().map(|s| s.size).sum();
    let total_s: f64 = segments.iter().map(|s| s.duration_s).sum();
    let average_bitrate = (total_bytes as f64 * 8.0 / total_s).round() as u64;
    // The last segment is often short; RFC 8216 measures peak over segments of the target
    // duration, so a short tail is only counted when it is the only segment.
    let peak_bitrate = segments
        .iter()
        .filter(|s| s.duration_s >= 1.0 || segments.len() == 1)
        .map(|s| (s.size as f64 * 8.0 / s.duration_s.max(0.001)).ceil() as u64)
        .max()
        .unwrap_or(average_bitrate);
    Ok(MeasuredRendition {
        name: name.to_owned(),
        kind,
        codecs,
        segments,
        init_size,
        average_bitrate,
        peak_bitrate,
        budget,
    })
}

/// Measures every rendition of `ladder` written under `dir`.
pub fn measure_ladder(dir: &Path, ladder: &Ladder) -> Result<Vec<MeasuredRendition>> {
    let mut out = Vec::new();
    for rung in &ladder.rungs {
        // ABR with VBV lands within a few percent of its target; the peak is held to the VBV
        // bound over one segment, which stays under 200 % of the average (Apple's HLS Authoring
        // Specification §1.30).
        let budget = match rung.codec {
            Codec::H264 => Budget {
                average: rung.average_bitrate * 115 / 100,
                peak: (rung.max_bitrate + rung.buffer_bits / 6) * 110 / 100,
            },
            // SVT-AV1 1.4.1's VBR holds no VBV (BENCHMARKS.md, "Codecs": 2 s peaks up to 1.5×
            // the average, and a last GOP that overshoots), so the declared peak is the
            // measured one; the budget bounds the average at the rung's max rate (1.5× its
            // target) and the peak segment at twice that (the HLS authoring spec's §1.30
            // 200 % of the average).
            Codec::Av1 => Budget {
                average: rung.max_bitrate,
                peak: rung.max_bitrate * 2,
            },
        };
        out.push(measure(
            dir,
            &rung.name,
            video_kind(rung),
            rung.codecs(),
            budget,
        )?);
    }
    for audio in &ladder.audio {
        out.push(measure_audio(dir, audio, &audio.name)?);
    }
    Ok(out)
}

/// Measures the audio rendition `name` of `dir`, encoded as `audio`, against its budget.
pub fn measure_audio(dir: &Path, audio: &AudioRung, name: &str) -> Result<MeasuredRendition> {
    let budget = match audio.codec {
        // AAC is near constant bit rate; fMP4 adds a few percent of boxes.
        AudioCodec::Aac => Budget {
            average: audio.bitrate * 112 / 100,
            peak: audio.bitrate * 125 / 100,
        },
        // Opus's constrained VBR with 60 ms frames: 35.1 kbit/s in fMP4 for 32 asked
        // (BENCHMARKS.md, "Codecs"); its 6 s peaks vary more than AAC's.
        AudioCodec::Opus => Budget {
            average: audio.bitrate * 125 / 100,
            peak: audio.bitrate * 150 / 100,
        },
    };
    measure(dir, name, Kind::Audio, audio.codecs().to_owned(), budget)
}

fn video_kind(rung: &Rung) -> Kind {
    Kind::Video {
        width: rung.width,
        height: rung.height,
        frame_rate: rung.frame_rate.clone(),
        audio: rung.audio.clone(),
    }
}
