//! What is in a master file: ffprobe's JSON parsed into typed structs, then summarised into a
//! [`Source`] the ladder planner can work from.
//!
//! Running ffprobe lives in [`crate::ffmpeg`]; everything here is pure so it is tested against
//! recorded ffprobe outputs in `tests/fixtures/probe/` without ffmpeg installed.

use std::path::{Path, PathBuf};

use monsoon_catalog::Rule;
use monsoon_catalog::rules::Refusal;
use serde::Deserialize;

use crate::{Error, Limited, Result};

/// Demuxers a master file may be read with. Anything else (playlists, image sequences, network
/// protocols in disguise) is refused before a single frame is decoded.
pub const ALLOWED_FORMATS: &[&str] = &[
    "mov", "mp4", "m4a", "matroska", "webm", "avi", "mpegts", "mxf", "mpeg", "flv", "ogg", "mp3",
    "wav", "aac", "flac",
];

/// Bytes of a file's beginning [`unreadable_reason`] looks at.
pub const HEAD_BYTES: usize = 64;

/// ISO base media file format box types a real MP4 or MOV file begins with (ISO/IEC 14496-12
/// §4.2; `wide` and `pnot` are QuickTime's).
const FIRST_BOXES: &[&[u8; 4]] = &[
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"styp",
];

/// Why ffprobe could not read a file, for the operator, from its first bytes (`head`, up to
/// [`HEAD_BYTES`]) and ffprobe's last words (`said`). ffprobe picks the MP4 demuxer for any
/// file named `.mp4` and then misses its index; only a file that begins like an MP4 is
/// described as one cut short.
pub fn unreadable_reason(head: &[u8], said: &str) -> Refusal {
    if let Some(text) = text_start(head) {
        return Refusal::new(
            format!(
                "it is a text file, not a video: it begins with \"{text}\"; whatever its name, \
                 give the master film file"
            ),
            Rule::TextFile { begins: text },
        );
    }
    if said.contains("moov atom not found") {
        let is_mp4 = head
            .get(4..8)
            .is_some_and(|kind| FIRST_BOXES.iter().any(|b| b.as_slice() == kind));
        return if is_mp4 {
            Refusal::new(
                "incomplete file: the MP4 index (moov) is missing, the file was probably cut \
                 short; copy it again whole",
                Rule::CutShort,
            )
        } else {
            Refusal::new(
                "it is not an MP4 or MOV file, whatever its name: it does not begin with an MP4 \
                 box (ftyp); check that this is the master film file",
                Rule::NotMp4,
            )
        };
    }
    Refusal::new(
        format!("ffprobe could not read it: {said}"),
        Rule::Unreadable {
            said: said.to_owned(),
        },
    )
}

/// The refusal of a container `format_name` that is not one of [`ALLOWED_FORMATS`].
fn container_refused(path: &Path, format_name: &str) -> Error {
    let allowed = ALLOWED_FORMATS.join(", ");
    Error::NotMedia {
        path: path.to_owned(),
        reason: format!("container `{format_name}` is not one of {allowed}"),
        rule: Some(Box::new(Rule::Container {
            format: format_name.to_owned(),
            allowed,
        })),
    }
}

/// The beginning of `head` when it is text (UTF-8 without control characters other than line
/// breaks and tabs), shortened for a message.
fn text_start(head: &[u8]) -> Option<String> {
    // A cut in the middle of a character is not a reason to call text binary.
    let valid = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let is_text = !valid.trim().is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
    is_text.then(|| {
        let line = valid.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let short: String = line.trim().chars().take(32).collect();
        short.escape_debug().to_string()
    })
}

/// The subset of `ffprobe -print_format json -show_format -show_streams` that Monsoon reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ProbeOutput {
    #[serde(default)]
    pub streams: Vec<ProbeStream>,
    pub format: Option<ProbeFormat>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProbeFormat {
    pub format_name: String,
    pub duration: Option<String>,
    pub size: Option<String>,
    pub bit_rate: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProbeStream {
    pub index: u32,
    pub codec_type: Option<String>,
    pub codec_name: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pix_fmt: Option<String>,
    pub sample_aspect_ratio: Option<String>,
    pub r_frame_rate: Option<String>,
    pub avg_frame_rate: Option<String>,
    pub field_order: Option<String>,
    pub color_transfer: Option<String>,
    pub color_primaries: Option<String>,
    pub bits_per_raw_sample: Option<String>,
    pub sample_rate: Option<String>,
    pub channels: Option<u32>,
    pub nb_frames: Option<String>,
    pub duration: Option<String>,
    #[serde(default)]
    pub disposition: Disposition,
    #[serde(default)]
    pub side_data_list: Vec<SideData>,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Disposition {
    #[serde(default)]
    pub attached_pic: u8,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SideData {
    pub side_data_type: Option<String>,
    pub rotation: Option<i32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tags {
    pub rotate: Option<String>,
    pub language: Option<String>,
}

/// Parses ffprobe's JSON output.
pub fn parse_probe(json: &str) -> serde_json::Result<ProbeOutput> {
    serde_json::from_str(json)
}

/// A master file as the ladder planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub path: PathBuf,
    /// Demuxer name as ffprobe reports it, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format: String,
    pub duration_s: f64,
    pub size_bytes: u64,
    pub video: VideoInfo,
    pub audio: Option<AudioInfo>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Index of the stream in the file (`0:v` would pick cover art; we map by index).
    pub index: u32,
    pub codec: String,
    /// Coded size, before rotation and sample aspect ratio.
    pub coded_width: u32,
    pub coded_height: u32,
    /// Size as displayed: rotation and sample aspect ratio applied.
    pub display_width: u32,
    pub display_height: u32,
    pub fps: f64,
    /// `r_frame_rate` and `avg_frame_rate` disagree: the file has a variable frame rate.
    pub variable_frame_rate: bool,
    pub interlaced: bool,
    /// Clockwise rotation in degrees the player must apply (0, 90, 180, 270).
    pub rotation: i32,
    pub bit_depth: u32,
    /// PQ (`smpte2084`) or HLG (`arib-std-b67`) transfer: must be tone-mapped for H.264 SDR.
    pub hdr: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    pub index: u32,
    pub codec: String,
    pub channels: u32,
    pub sample_rate: u32,
}

/// Limits checked before any decoding. Each has a default a feature film never reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_fps: f64,
    pub max_duration_s: f64,
    pub max_size_bytes: u64,
}

impl Limits {
    /// Whether a `width`×`height` picture is within the limits, either way up (a portrait
    /// master is the landscape box turned upright).
    pub fn frame_fits(&self, width: u32, height: u32) -> bool {
        let (long, short) = (width.max(height), width.min(height));
        (width <= self.max_width && height <= self.max_height)
            || (long <= self.max_width && short <= self.max_height)
    }

    /// The limit on the frame size, as an operator writes it (`7680x4320`).
    pub fn frame_size(&self) -> String {
        format!("{}x{}", self.max_width, self.max_height)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_width: 7680,
            max_height: 4320,
            max_fps: 120.0,
            max_duration_s: 6.0 * 3600.0,
            max_size_bytes: 500 * 1024 * 1024 * 1024,
        }
    }
}

/// An audio file to add to a film as another language (`crate::tracks`).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSource {
    pub path: PathBuf,
    pub duration_s: f64,
    pub audio: AudioInfo,
}

/// Turns a parsed probe of an audio track into an [`AudioSource`]: an allowed container with
/// an audio stream and a duration within `limits`.
pub fn analyze_audio(path: &Path, probe: &ProbeOutput, limits: &Limits) -> Result<AudioSource> {
    let format = probe.format.as_ref().ok_or_else(|| Error::NotMedia {
        path: path.to_owned(),
        reason: "ffprobe found no container format".into(),
        rule: None,
    })?;
    if !format
        .format_name
        .split(',')
        .any(|name| ALLOWED_FORMATS.contains(&name))
    {
        return Err(container_refused(path, &format.format_name));
    }
    let stream = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .ok_or_else(|| Error::Unsupported {
            path: path.to_owned(),
            reason: "it has no audio stream; an audio track needs one".into(),
            rule: Some(Box::new(Rule::NoAudio)),
        })?;
    let duration_s = format
        .duration
        .as_deref()
        .or(stream.duration.as_deref())
        .and_then(|d| d.parse::<f64>().ok())
        .unwrap_or(0.0);
    if duration_s.is_nan() || duration_s <= 0.0 {
        return Err(Error::Unsupported {
            path: path.to_owned(),
            reason: "the audio has no duration; give the complete file".into(),
            rule: Some(Box::new(Rule::NoDuration)),
        });
    }
    if duration_s > limits.max_duration_s {
        return Err(Error::Limit {
            path: path.to_owned(),
            what: Limited::Duration,
            value: format!("{duration_s:.0} s"),
            limit: format!("{:.0} s", limits.max_duration_s),
        });
    }
    Ok(AudioSource {
        path: path.to_owned(),
        duration_s,
        audio: audio_info(stream),
    })
}

fn audio_info(s: &ProbeStream) -> AudioInfo {
    AudioInfo {
        index: s.index,
        codec: s.codec_name.clone().unwrap_or_default(),
        channels: s.channels.unwrap_or(2),
        sample_rate: s
            .sample_rate
            .as_deref()
            .and_then(|r| r.parse().ok())
            .unwrap_or(48_000),
    }
}

/// Turns a parsed probe into a [`Source`], refusing what cannot be made into a ladder.
pub fn analyze(path: &Path, probe: &ProbeOutput, limits: &Limits) -> Result<Source> {
    let unsupported = |reason: String, rule: Option<Rule>| Error::Unsupported {
        path: path.to_owned(),
        reason,
        rule: rule.map(Box::new),
    };
    let format = probe
        .format
        .as_ref()
        .ok_or_else(|| unsupported("ffprobe found no container format".into(), None))?;
    if !format
        .format_name
        .split(',')
        .any(|name| ALLOWED_FORMATS.contains(&name))
    {
        return Err(container_refused(path, &format.format_name));
    }

    let video = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0);
    let Some(video) = video else {
        let (what, rule) = if probe
            .streams
            .iter()
            .any(|s| s.codec_type.as_deref() == Some("audio"))
        {
            (
                "it has audio but no video stream (cover art does not count); \
                 Monsoon publishes films, so give a file with a picture",
                Rule::AudioOnly,
            )
        } else {
            ("it has no video stream", Rule::NoVideo)
        };
        return Err(unsupported(what.into(), Some(rule)));
    };
    let audio = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .map(audio_info);

    let (Some(coded_width), Some(coded_height)) = (video.width, video.height) else {
        return Err(unsupported(
            "the video stream has no frame size".into(),
            None,
        ));
    };
    if coded_width == 0 || coded_height == 0 {
        return Err(unsupported(
            format!("the video frame size {coded_width}x{coded_height} is empty"),
            None,
        ));
    }

    let duration_s = format
        .duration
        .as_deref()
        .or(video.duration.as_deref())
        .and_then(|d| d.parse::<f64>().ok())
        .unwrap_or(0.0);
    let frames = video
        .nb_frames
        .as_deref()
        .and_then(|n| n.parse::<u64>().ok());
    // `NaN` compares false with everything, so it would pass both this and the limit below.
    if duration_s.is_nan() || duration_s <= 0.0 || frames == Some(0) {
        return Err(unsupported(
            "the video has no duration (zero frames); give the complete master file".into(),
            Some(Rule::NoDuration),
        ));
    }

    let r_rate = video.r_frame_rate.as_deref().and_then(parse_rational);
    let avg_rate = video.avg_frame_rate.as_deref().and_then(parse_rational);
    let fps = avg_rate
        .filter(|r| *r > 0.0)
        .or(r_rate.filter(|r| *r > 0.0))
        .ok_or_else(|| unsupported("the video has no frame rate".into(), None))?;
    let variable_frame_rate = match (r_rate, avg_rate) {
        (Some(r), Some(a)) if r > 0.0 && a > 0.0 => (r - a).abs() / r > 0.01,
        _ => false,
    };

    let rotation = rotation_of(video);
    let sar = video
        .sample_aspect_ratio
        .as_deref()
        .and_then(parse_ratio_colon)
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    let square_width = (f64::from(coded_width) * sar).round() as u32;
    let (display_width, display_height) = if rotation % 180 == 0 {
        (square_width, coded_height)
    } else {
        (coded_height, square_width)
    };

    let size_bytes = format
        .size
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);

    let limit = |what, value: String, limit: String| Error::Limit {
        path: path.to_owned(),
        what,
        value,
        limit,
    };
    if !limits.frame_fits(coded_width, coded_height) {
        return Err(limit(
            Limited::Resolution,
            format!("{coded_width}x{coded_height}"),
            limits.frame_size(),
        ));
    }
    if fps > limits.max_fps {
        return Err(limit(
            Limited::FrameRate,
            format!("{fps:.3} fps"),
            format!("{} fps", limits.max_fps),
        ));
    }
    if duration_s > limits.max_duration_s {
        return Err(limit(
            Limited::Duration,
            format!("{duration_s:.0} s"),
            format!("{:.0} s", limits.max_duration_s),
        ));
    }
    if size_bytes > limits.max_size_bytes {
        return Err(limit(
            Limited::FileSize,
            format!("{size_bytes} bytes"),
            format!("{} bytes", limits.max_size_bytes),
        ));
    }

    let transfer = video.color_transfer.as_deref().unwrap_or("");
    let bit_depth = video
        .bits_per_raw_sample
        .as_deref()
        .and_then(|b| b.parse().ok())
        .or_else(|| video.pix_fmt.as_deref().map(bit_depth_of_pix_fmt))
        .unwrap_or(8);

    Ok(Source {
        path: path.to_owned(),
        format: format.format_name.clone(),
        duration_s,
        size_bytes,
        video: VideoInfo {
            index: video.index,
            codec: video.codec_name.clone().unwrap_or_default(),
            coded_width,
            coded_height,
            display_width,
            display_height,
            fps,
            variable_frame_rate,
            interlaced: matches!(
                video.field_order.as_deref(),
                Some("tt" | "bb" | "tb" | "bt")
            ),
            rotation,
            bit_depth,
            hdr: matches!(transfer, "smpte2084" | "arib-std-b67"),
        },
        audio,
    })
}

/// Rotation from the display matrix side data (ffmpeg ≥ 5) or the legacy `rotate` tag,
/// normalised to a clockwise angle in 0..360.
fn rotation_of(stream: &ProbeStream) -> i32 {
    let from_matrix = stream
        .side_data_list
        .iter()
        .find_map(|sd| sd.rotation)
        // The display matrix rotation is counter-clockwise. Reduced before it is negated, so
        // no value, not even `i32::MIN`, overflows (found by the `probe_values` fuzz target).
        .map(|r| -r.rem_euclid(360));
    let from_tag = stream.tags.rotate.as_deref().and_then(|r| r.parse().ok());
    from_matrix.or(from_tag).unwrap_or(0).rem_euclid(360)
}

fn bit_depth_of_pix_fmt(pix_fmt: &str) -> u32 {
    if pix_fmt.contains("p10") {
        10
    } else if pix_fmt.contains("p12") {
        12
    } else {
        8
    }
}

/// Parses `30000/1001` into 29.97.
pub fn parse_rational(s: &str) -> Option<f64> {
    let (n, d) = s.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d != 0.0).then(|| n / d)
}

fn parse_ratio_colon(s: &str) -> Option<f64> {
    let (n, d) = s.split_once(':')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d != 0.0 && n != 0.0).then(|| n / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> ProbeOutput {
        let path = format!(
            "{}/tests/fixtures/probe/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let json = std::fs::read_to_string(&path).expect(&path);
        parse_probe(&json).expect("fixture parses")
    }

    fn analyze_fixture(name: &str) -> Result<Source> {
        analyze(
            Path::new(&format!("{name}.mp4")),
            &fixture(name),
            &Limits::default(),
        )
    }

    #[test]
    fn rationals() {
        assert!((parse_rational("30000/1001").unwrap() - 29.97).abs() < 0.001);
        assert_eq!(parse_rational("0/0"), None);
        assert_eq!(parse_rational("25"), None);
    }

    #[test]
    fn plain_1080p_with_stereo() {
        let s = analyze_fixture("1080p25-aac").unwrap();
        assert_eq!(
            (s.video.display_width, s.video.display_height),
            (1920, 1080)
        );
        assert_eq!(s.video.fps, 25.0);
        assert!(!s.video.hdr && !s.video.interlaced && !s.video.variable_frame_rate);
        assert_eq!(s.audio.as_ref().map(|a| a.channels), Some(2));
        assert!((s.duration_s - 4.0).abs() < 0.1);
    }

    #[test]
    fn cover_art_is_not_the_picture() {
        let err = analyze_fixture("mp3-cover-art").unwrap_err();
        assert!(err.to_string().contains("no video stream"), "{err}");
    }

    #[test]
    fn rotated_phone_video_is_portrait() {
        let s = analyze_fixture("rotated-90").unwrap();
        // A quarter turn; which way only matters to ffmpeg's autorotate, which applies it.
        assert!(matches!(s.video.rotation, 90 | 270), "{}", s.video.rotation);
        assert!(s.video.display_height > s.video.display_width);
    }

    #[test]
    fn hdr_and_ten_bit_are_detected() {
        let s = analyze_fixture("hdr10-pq").unwrap();
        assert!(s.video.hdr);
        assert_eq!(s.video.bit_depth, 10);
    }

    #[test]
    fn interlaced_and_surround() {
        let s = analyze_fixture("interlaced-51").unwrap();
        assert!(s.video.interlaced);
        let audio = s.audio.unwrap();
        assert_eq!((audio.channels, audio.sample_rate), (6, 22_050));
    }

    #[test]
    fn limits_name_the_value_and_the_limit() {
        let refused = analyze_fixture("8192x8192").unwrap_err();
        assert_eq!(
            refused.refusal().rule,
            Some(Rule::ResolutionOverLimit {
                value: "8192x8192".into(),
                limit: "7680x4320".into()
            })
        );
        let err = refused.to_string();
        assert!(
            err.contains("8192x8192") && err.contains("7680x4320"),
            "{err}"
        );
        let err = analyze_fixture("240fps").unwrap_err().to_string();
        assert!(
            err.contains("240.000 fps") && err.contains("120 fps"),
            "{err}"
        );
    }

    #[test]
    fn a_duration_that_is_not_a_number_is_no_duration() {
        for duration in ["nan", "NaN", "-inf", "0"] {
            let json = format!(
                r#"{{"streams":[{{"index":0,"codec_type":"video","width":320,"height":240,
                    "avg_frame_rate":"25/1"}}],"format":{{"format_name":"mov","duration":"{duration}"}}}}"#
            );
            let probe = parse_probe(&json).unwrap();
            let err = analyze(Path::new("x.mp4"), &probe, &Limits::default()).unwrap_err();
            assert!(err.to_string().contains("no duration"), "{duration}: {err}");
        }
        let json = r#"{"streams":[{"index":0,"codec_type":"video","width":320,"height":240,
            "avg_frame_rate":"25/1"}],"format":{"format_name":"mov","duration":"inf"}}"#;
        let err = analyze(
            Path::new("x.mp4"),
            &parse_probe(json).unwrap(),
            &Limits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("duration inf s exceeds"), "{err}");
    }

    #[test]
    fn any_display_matrix_rotation_is_an_angle() {
        for (rotation, clockwise) in [
            (-90, 90),
            (90, 270),
            (0, 0),
            (450, 270),
            (i32::MIN, 128),
            (i32::MAX, 233),
        ] {
            let stream = ProbeStream {
                side_data_list: vec![SideData {
                    side_data_type: None,
                    rotation: Some(rotation),
                }],
                ..serde_json::from_str(r#"{"index":0}"#).unwrap()
            };
            assert_eq!(rotation_of(&stream), clockwise, "{rotation}");
        }
    }

    #[test]
    fn a_playlist_is_not_a_container() {
        let probe = parse_probe(r#"{"streams":[],"format":{"format_name":"hls"}}"#).unwrap();
        let err = analyze(Path::new("x.mp4"), &probe, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("container `hls`"), "{err}");
        assert!(
            matches!(err.refusal().rule, Some(Rule::Container { format, .. }) if format == "hls")
        );
    }

    #[test]
    fn a_text_file_named_mp4_is_not_called_a_cut_short_mp4() {
        let said = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5] moov atom not found\ntext.mp4: Invalid data found when processing input";
        let reason = unreadable_reason(b"hello\n", said);
        assert_eq!(
            reason.message,
            "it is a text file, not a video: it begins with \"hello\"; whatever its name, give the master film file"
        );
        assert_eq!(
            reason.rule,
            Some(Rule::TextFile {
                begins: "hello".into()
            })
        );
        // An MP4 that lost its end is one.
        let mut cut = vec![0, 0, 0, 0x20];
        cut.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2avc1mp41");
        cut.extend_from_slice(&[0, 0, 0, 8, b'f', b'r', b'e', b'e', 0xff, 0x00, 0x81]);
        let cut_short = unreadable_reason(&cut, said);
        assert!(cut_short.message.contains("cut short"));
        assert_eq!(cut_short.rule, Some(Rule::CutShort));
        // Binary that is no MP4 at all.
        let reason = unreadable_reason(
            &[
                0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
            ],
            said,
        );
        assert!(
            reason.message.contains("not an MP4 or MOV file"),
            "{reason:?}"
        );
        assert_eq!(reason.rule, Some(Rule::NotMp4));
        // Other words of ffprobe are passed on.
        assert_eq!(
            unreadable_reason(&[0, 0, 0, 0x20, 0xff, 0x00], "Invalid data"),
            Refusal::new(
                "ffprobe could not read it: Invalid data",
                Rule::Unreadable {
                    said: "Invalid data".into()
                }
            )
        );
    }
}
