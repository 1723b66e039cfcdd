//! Ladder planning: a pure function from a [`Source`] to the rungs Monsoon encodes.
//!
//! Follows Apple's HLS Authoring Specification for Apple Devices (H.264, 16:9 boxes; §1.13 IDR
//! every 2 s; §7.5 6 s segments; §1.30 peak ≤ 200 % of average; §9.21 a variant of peak
//! ≤ 192 kbit/s including audio), extended above 1080p with 1440p and 2160p for 4K masters.

use serde::{Deserialize, Serialize};

use crate::probe::Source;

/// Seconds between IDR frames (HLS authoring spec §1.13).
pub const GOP_SECONDS: f64 = 2.0;
/// Target segment duration (HLS authoring spec §7.5), part of the published layout.
pub use monsoon_catalog::SEGMENT_SECONDS;
/// Peak bit rate, video plus audio, of the rung meant for 2G-class links (spec §9.21).
pub const FLOOR_PEAK_BUDGET: u64 = 192_000;

/// Encoder speed versus quality, mapped onto x264 presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    /// x264 `veryfast`: previews, demos, tests.
    Fast,
    /// x264 `medium`.
    #[default]
    Balanced,
    /// x264 `slow`: the release master when there is time.
    Best,
}

/// `fast`, `balanced` or `best`, as `monsoon ingest --quality` takes it.
impl std::str::FromStr for Quality {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "fast" => Ok(Quality::Fast),
            "balanced" => Ok(Quality::Balanced),
            "best" => Ok(Quality::Best),
            _ => Err(format!(
                "unknown quality `{}`; the qualities are fast, balanced, best",
                name.escape_debug()
            )),
        }
    }
}

impl Quality {
    /// The names [`Quality::from_str`](std::str::FromStr) takes, fastest first.
    pub const NAMES: [&'static str; 3] = ["fast", "balanced", "best"];

    pub fn x264_preset(self) -> &'static str {
        match self {
            Quality::Fast => "veryfast",
            Quality::Balanced => "medium",
            Quality::Best => "slow",
        }
    }

    /// The SVT-AV1 preset of the AV1 rungs: 8 as `BENCHMARKS.md` ("Codecs") recommends and
    /// searched its bit rates at; 12 for previews and tests; 6 (2.5× preset 8's time) for the
    /// release master when there is time.
    pub fn svtav1_preset(self) -> u8 {
        match self {
            Quality::Fast => 12,
            Quality::Balanced => AV1_PRESET,
            Quality::Best => 6,
        }
    }
}

/// A video codec Monsoon can encode a ladder in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// H.264 High profile with x264: the ladder every player decodes.
    #[default]
    H264,
    /// AV1 Main profile with SVT-AV1: a second, smaller ladder beside the H.264 one.
    Av1,
}

impl Codec {
    /// Every codec, in the order a ladder lists them.
    pub const ALL: [Codec; 2] = [Codec::H264, Codec::Av1];

    /// The name operators use (`--codecs`, `film.toml`'s `codecs`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Av1 => "av1",
        }
    }

    pub fn is_h264(&self) -> bool {
        *self == Codec::H264
    }

    /// Parses a list of codec names: each known, none twice, H.264 among them (the AV1 ladder
    /// is offered beside the H.264 one, which every player decodes, never instead of it).
    /// The error names the value and the allowed set.
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Vec<Codec>, String> {
        let mut out = Vec::new();
        for name in names {
            let name = name.as_ref();
            let codec = name.parse::<Codec>()?;
            if out.contains(&codec) {
                return Err(format!("codec `{name}` is listed twice"));
            }
            out.push(codec);
        }
        if !out.contains(&Codec::H264) {
            return Err(format!(
                "the codecs must include h264 (every player decodes it; {} is offered beside it)",
                if out.is_empty() {
                    "AV1"
                } else {
                    "another codec"
                }
            ));
        }
        Ok(Codec::ALL.into_iter().filter(|c| out.contains(c)).collect())
    }
}

impl std::str::FromStr for Codec {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Codec::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown codec `{}`; the codecs are {}",
                    name.escape_debug(),
                    monsoon_catalog::VIDEO_CODECS.join(", ")
                )
            })
    }
}

/// Default SVT-AV1 preset of the AV1 ladder: the speed `BENCHMARKS.md` ("Codecs") searched
/// its bit rates at (2.4× x264 medium's CPU per 1080p rung).
pub const AV1_PRESET: u8 = 8;
/// SVT-AV1 presets: 0 slowest to 13 fastest.
pub const AV1_PRESETS: std::ops::RangeInclusive<u8> = 0..=13;

/// One video rung: a resolution, a frame rate, and a bit-rate budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// Directory and rendition name, e.g. `v720`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Output frame rate as an ffmpeg rational, e.g. `24000/1001`.
    pub frame_rate: String,
    /// Target average video bit rate, bit/s.
    pub average_bitrate: u64,
    /// VBV max rate, bit/s.
    pub max_bitrate: u64,
    /// VBV buffer size, bits.
    pub buffer_bits: u64,
    /// H.264 `level_idc` (e.g. 40 for level 4.0); 0 for AV1, whose level the encoder picks.
    pub level: u8,
    /// Name of the audio rendition this rung plays with.
    pub audio: Option<String>,
    /// The codec; H.264 when absent.
    #[serde(default, skip_serializing_if = "Codec::is_h264")]
    pub codec: Codec,
}

impl Rung {
    /// RFC 6381 codec string of the video: `avc1` + High profile + level. For AV1 only the
    /// sample entry, `av01`: its profile, level, tier and bit depth are read from the encoded
    /// stream's `av1C` box after encoding (`crate::fmp4::Track::codecs`).
    pub fn codecs(&self) -> String {
        match self.codec {
            Codec::H264 => format!("avc1.6400{:02x}", self.level),
            Codec::Av1 => "av01".to_owned(),
        }
    }

    pub fn frame_rate_f64(&self) -> f64 {
        crate::probe::parse_rational(&self.frame_rate).unwrap_or(0.0)
    }
}

/// An audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    /// AAC-LC.
    #[default]
    Aac,
    /// Opus in fMP4 ("Encapsulation of Opus in ISO Base Media File Format", §4), for the AV1
    /// floor.
    Opus,
}

impl AudioCodec {
    pub fn is_aac(&self) -> bool {
        *self == AudioCodec::Aac
    }
}

/// One stereo 48 kHz audio rendition, AAC-LC unless it says Opus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioRung {
    /// Directory and rendition name, e.g. `a128`.
    pub name: String,
    pub bitrate: u64,
    #[serde(default, skip_serializing_if = "AudioCodec::is_aac")]
    pub codec: AudioCodec,
}

impl AudioRung {
    /// RFC 6381 codec string of AAC-LC (MPEG-4 audio object type 2).
    pub const CODECS: &'static str = "mp4a.40.2";
    /// Codec string of Opus in ISO-BMFF (the Opus encapsulation spec, §4.1: `Opus` sample
    /// entry, `opus` in a `CODECS` attribute or MIME type).
    pub const OPUS_CODECS: &'static str = "opus";

    pub fn codecs(&self) -> &'static str {
        match self.codec {
            AudioCodec::Aac => Self::CODECS,
            AudioCodec::Opus => Self::OPUS_CODECS,
        }
    }
}

/// Seek-preview thumbnails: one every `interval_s`, tiled `columns × rows` per sprite sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnails {
    pub interval_s: u32,
    pub width: u32,
    pub height: u32,
    pub columns: u32,
    pub rows: u32,
}

impl Thumbnails {
    /// How many thumbnails a film of `duration_s` gets: one at 0 s and one per interval after.
    pub fn count(&self, duration_s: f64) -> u32 {
        ((duration_s / f64::from(self.interval_s)) - 1e-6)
            .ceil()
            .max(1.0) as u32
    }
}

/// Everything the transcoder needs to know about the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ladder {
    pub rungs: Vec<Rung>,
    pub audio: Vec<AudioRung>,
    /// The audio rendition also offered on its own, for the weakest links.
    pub audio_only: Option<String>,
    pub thumbnails: Thumbnails,
    pub quality: Quality,
    /// Language of the audio renditions (a language tag, `monsoon_catalog::is_language_tag`),
    /// declared by both manifests.
    #[serde(default = "default_audio_language")]
    pub audio_language: String,
    /// The SVT-AV1 preset of the AV1 rungs; `None` when the ladder has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub av1_preset: Option<u8>,
}

fn default_audio_language() -> String {
    monsoon_catalog::DEFAULT_LANGUAGE.to_owned()
}

/// A rung requested by an operator in the film's config, instead of the default table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungSpec {
    pub height: u32,
    /// Average video bit rate in kbit/s.
    pub kbps: u64,
}

/// Options the operator controls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LadderOptions {
    pub quality: Quality,
    /// Cap the top rung (e.g. 720 for a quick preview); `None` goes up to the source.
    pub max_height: Option<u32>,
    /// Replace the default table; the 2G floor is always kept.
    pub rungs: Option<Vec<RungSpec>>,
    /// The soundtrack's language, a language tag checked by the caller (`film.toml`'s
    /// `language`); `None` is `monsoon_catalog::DEFAULT_LANGUAGE`.
    pub audio_language: Option<String>,
    /// The codecs of the ladder ([`Codec::parse_list`]); empty is H.264 alone.
    pub codecs: Vec<Codec>,
    /// SVT-AV1 preset of the AV1 rungs; `None` is the quality's ([`Quality::svtav1_preset`]).
    pub av1_preset: Option<u8>,
}

/// The default table: 16:9 box, average kbit/s (Apple's H.264 table, one rung per height,
/// extended to 1440p and 2160p).
const DEFAULT_RUNGS: &[(u32, u32, u64)] = &[
    (640, 360, 365),
    (768, 432, 730),
    (960, 540, 2000),
    (1280, 720, 3000),
    (1920, 1080, 6000),
    (2560, 1440, 10_000),
    (3840, 2160, 16_800),
];

/// The AV1 ladder's average kbit/s per box height of [`DEFAULT_RUNGS`]: `BENCHMARKS.md`,
/// "Codecs", "Recommended AV1 ladder" (the lowest SVT-AV1 preset-8 target whose VMAF reached
/// the H.264 rung's, the highest over the clips measured, rounded up). Boxes not listed
/// (1440p and 2160p, which were not measured, and a `film.toml`'s own rungs) get
/// [`AV1_SHARE_PERCENT`] of their H.264 average: provisional until measured.
const AV1_KBPS: &[(u32, u64)] = &[
    (360, 270),
    (432, 380),
    (540, 1300),
    (720, 2700),
    (1080, 4500),
];
/// AV1 average as a share of the H.264 one where no measured figure exists (provisional).
const AV1_SHARE_PERCENT: u64 = 75;
/// The AV1 floor: 64 kbit/s average, 80 max, 128 buffer (the study's floor check: the lowest
/// target that reached the H.264 floor's VMAF on both clips; with Opus 32 kbit/s it peaked at
/// 117 kbit/s).
const AV1_FLOOR: (u64, u64, u64) = (64_000, 80_000, 128_000);
/// The AV1 floor's audio: Opus 32 kbit/s stereo.
const AUDIO_OPUS: (&str, u64) = ("o32", 32_000);
/// The narrowest side SVT-AV1 encodes ("Source Width must be at least 64"): a source whose
/// floor rung is narrower gets no AV1 ladder.
pub const AV1_MIN_SIDE: u32 = 64;
/// Suffix of the AV1 renditions' names: `v360-av1` beside H.264's `v360`.
pub const AV1_SUFFIX: &str = "-av1";

/// The floor rung: 416×234 whose peak plus the low audio stays under 192 kbit/s.
/// VBV over one 6 s segment allows `max_rate × 6 + buffer` bits, so the measured segment peak
/// is at most 128 × (1 + 64/768) ≈ 139 kbit/s; with 48 kbit/s audio that leaves margin for
/// container overhead.
const FLOOR: (u32, u32) = (416, 234);
const FLOOR_AVERAGE: u64 = 110_000;
const FLOOR_MAX: u64 = 128_000;
const FLOOR_BUFFER: u64 = 64_000;

const AUDIO_HIGH: (&str, u64) = ("a128", 128_000);
const AUDIO_LOW: (&str, u64) = ("a48", 48_000);

/// The audio rendition a ladder names `name` (`a48`, `a128`, `o32`), with its codec and bit
/// rate: what an added audio language is encoded as beside it (`crate::tracks`).
pub fn audio_rung(name: &str) -> Option<AudioRung> {
    [
        (AUDIO_LOW, AudioCodec::Aac),
        (AUDIO_HIGH, AudioCodec::Aac),
        (AUDIO_OPUS, AudioCodec::Opus),
    ]
    .into_iter()
    .find(|((n, _), _)| *n == name)
    .map(|((n, bitrate), codec)| AudioRung {
        name: n.into(),
        bitrate,
        codec,
    })
}

/// Plans the ladder for `source`.
pub fn plan(source: &Source, options: &LadderOptions) -> Ladder {
    let video = &source.video;
    let (src_w, src_h) = (video.display_width, video.display_height);
    let aspect = f64::from(src_w) / f64::from(src_h);
    let has_audio = source.audio.is_some();
    let high_audio = has_audio.then(|| AUDIO_HIGH.0.to_owned());
    let low_audio = has_audio.then(|| AUDIO_LOW.0.to_owned());

    let table: Vec<(u32, u32, u64)> = match &options.rungs {
        Some(specs) => specs
            .iter()
            .map(|s| (s.height * 16 / 9, s.height, s.kbps))
            .collect(),
        None => DEFAULT_RUNGS.to_vec(),
    };

    // Portrait masters (phones) use the same boxes turned upright: "360p" is 360×640.
    let portrait = src_h > src_w;
    let upright = |(w, h): (u32, u32)| if portrait { (h, w) } else { (w, h) };

    let mut rungs = Vec::new();
    // The table box each rung was planned from (none for the floor).
    let mut boxes: Vec<Option<u32>> = vec![None];
    let (fw, fh) = fit(upright(FLOOR), aspect, src_w, src_h);
    rungs.push(Rung {
        name: format!("v{fh}"),
        width: fw,
        height: fh,
        frame_rate: output_rate(video, fh),
        average_bitrate: FLOOR_AVERAGE,
        max_bitrate: FLOOR_MAX,
        buffer_bits: FLOOR_BUFFER,
        level: 0,
        audio: low_audio.clone(),
        codec: Codec::H264,
    });

    for &(box_w, box_h, kbps) in &table {
        if options.max_height.is_some_and(|max| box_h.min(box_w) > max) {
            continue;
        }
        let (w, h) = fit(upright((box_w, box_h)), aspect, u32::MAX, u32::MAX);
        // Never upscale: the rung must fit inside the source.
        if w > src_w || h > src_h {
            continue;
        }
        if rungs.iter().any(|r: &Rung| r.height >= h) {
            continue;
        }
        let average = kbps * 1000;
        boxes.push(Some(box_h));
        rungs.push(Rung {
            name: format!("v{h}"),
            width: w,
            height: h,
            frame_rate: output_rate(video, h),
            average_bitrate: average,
            max_bitrate: average * 3 / 2,
            buffer_bits: average * 2,
            level: 0,
            audio: high_audio.clone(),
            codec: Codec::H264,
        });
    }
    for rung in &mut rungs {
        rung.level = h264_level(rung.width, rung.height, rung.frame_rate_f64());
    }
    // The floor is the smallest rung on both sides: if it fits SVT-AV1, every rung does, and
    // an AV1 ladder without its floor would not cover the low bandwidths on its own.
    let av1 =
        options.codecs.contains(&Codec::Av1) && rungs[0].width.min(rungs[0].height) >= AV1_MIN_SIDE;
    if av1 {
        let twins: Vec<Rung> = rungs
            .iter()
            .enumerate()
            .map(|(i, h264)| {
                let (average, max, buffer) = if i == 0 {
                    AV1_FLOOR
                } else {
                    // The measured figure of the default table's box; a film.toml's own
                    // rungs were not measured.
                    let measured = AV1_KBPS
                        .iter()
                        .find(|(h, _)| options.rungs.is_none() && Some(*h) == boxes[i])
                        .map(|(_, kbps)| kbps * 1000);
                    let average =
                        measured.unwrap_or(h264.average_bitrate * AV1_SHARE_PERCENT / 100);
                    (average, average * 3 / 2, average * 2)
                };
                Rung {
                    name: format!("{}{AV1_SUFFIX}", h264.name),
                    average_bitrate: average,
                    max_bitrate: max,
                    buffer_bits: buffer,
                    level: 0,
                    audio: if i == 0 {
                        has_audio.then(|| AUDIO_OPUS.0.to_owned())
                    } else {
                        h264.audio.clone()
                    },
                    codec: Codec::Av1,
                    ..h264.clone()
                }
            })
            .collect();
        rungs.extend(twins);
    }

    let mut audio = if has_audio {
        vec![
            AudioRung {
                name: AUDIO_LOW.0.into(),
                bitrate: AUDIO_LOW.1,
                codec: AudioCodec::Aac,
            },
            AudioRung {
                name: AUDIO_HIGH.0.into(),
                bitrate: AUDIO_HIGH.1,
                codec: AudioCodec::Aac,
            },
        ]
    } else {
        Vec::new()
    };
    if has_audio && av1 {
        audio.insert(
            0,
            AudioRung {
                name: AUDIO_OPUS.0.into(),
                bitrate: AUDIO_OPUS.1,
                codec: AudioCodec::Opus,
            },
        );
    }
    // Every 10 s for a feature; shorter clips still get about 20 previews.
    let interval_s = if source.duration_s >= 200.0 {
        10
    } else {
        (source.duration_s / 20.0).ceil().max(1.0) as u32
    };
    let (thumb_w, thumb_h) = fit(upright((160, 90)), aspect, u32::MAX, u32::MAX);
    Ladder {
        rungs,
        audio,
        audio_only: low_audio,
        thumbnails: Thumbnails {
            interval_s,
            width: thumb_w,
            height: thumb_h,
            columns: 10,
            rows: 10,
        },
        quality: options.quality,
        audio_language: options
            .audio_language
            .clone()
            .unwrap_or_else(default_audio_language),
        av1_preset: av1.then(|| {
            options
                .av1_preset
                .unwrap_or(options.quality.svtav1_preset())
                .min(*AV1_PRESETS.end())
        }),
    }
}

/// Fits a 16:9 box to the source aspect ratio (the long side of the box is kept), capped at
/// the source size, rounded to even numbers as 4:2:0 chroma requires.
fn fit(box_size: (u32, u32), aspect: f64, max_w: u32, max_h: u32) -> (u32, u32) {
    let (bw, bh) = (f64::from(box_size.0), f64::from(box_size.1));
    let (w, h) = if aspect >= bw / bh {
        (bw, bw / aspect)
    } else {
        (bh * aspect, bh)
    };
    let (w, h) = if w > f64::from(max_w) || h > f64::from(max_h) {
        let scale = (f64::from(max_w) / w).min(f64::from(max_h) / h);
        (w * scale, h * scale)
    } else {
        (w, h)
    };
    (even(w), even(h))
}

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// Keeps the source frame rate, except that rungs below 960×540 are held to 30 fps or less
/// (spec §1.4: high frame rates only from 540p up) and nothing exceeds 60 fps.
fn output_rate(video: &crate::probe::VideoInfo, height: u32) -> String {
    let cap = if height < 540 { 30.0 } else { 60.0 };
    let (mut num, mut den) = rational_of(video.fps);
    while f64::from(num) / f64::from(den) > cap + 0.01 {
        den *= 2;
    }
    let g = gcd(num, den);
    num /= g;
    den /= g;
    format!("{num}/{den}")
}

/// Recognises the NTSC rates so 23.976 stays 24000/1001 rather than a float.
fn rational_of(fps: f64) -> (u32, u32) {
    for base in [24u32, 30, 48, 60, 120] {
        let ntsc = f64::from(base) * 1000.0 / 1001.0;
        if (fps - ntsc).abs() < 0.005 {
            return (base * 1000, 1001);
        }
    }
    let milli = (fps * 1000.0).round() as u32;
    let g = gcd(milli, 1000);
    (milli / g, 1000 / g)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The lowest H.264 level (ITU-T H.264 Table A-1) whose macroblock rate and frame size fit.
fn h264_level(width: u32, height: u32, fps: f64) -> u8 {
    let mbs = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    let rate = (mbs as f64 * fps).ceil() as u64;
    const LEVELS: &[(u8, u64, u64)] = &[
        (30, 1_620, 40_500),
        (31, 3_600, 108_000),
        (32, 5_120, 216_000),
        (40, 8_192, 245_760),
        (42, 8_704, 522_240),
        (50, 22_080, 589_824),
        (51, 36_864, 983_040),
        (52, 36_864, 2_073_600),
    ];
    LEVELS
        .iter()
        .find(|(_, max_fs, max_rate)| mbs <= *max_fs && rate <= *max_rate)
        .map_or(52, |(level, _, _)| *level)
}

/// A source for tests of other modules.
#[cfg(test)]
pub(crate) mod tests_support {
    pub fn source(w: u32, h: u32, fps: f64) -> crate::probe::Source {
        super::tests::source(w, h, fps, true)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::probe::{AudioInfo, VideoInfo};

    pub fn source(w: u32, h: u32, fps: f64, audio: bool) -> Source {
        Source {
            path: "master.mov".into(),
            format: "mov".into(),
            duration_s: 120.0,
            size_bytes: 1,
            video: VideoInfo {
                index: 0,
                codec: "h264".into(),
                coded_width: w,
                coded_height: h,
                display_width: w,
                display_height: h,
                fps,
                variable_frame_rate: false,
                interlaced: false,
                rotation: 0,
                bit_depth: 8,
                hdr: false,
            },
            audio: audio.then(|| AudioInfo {
                index: 1,
                codec: "aac".into(),
                channels: 2,
                sample_rate: 48_000,
            }),
        }
    }

    fn heights(ladder: &Ladder) -> Vec<u32> {
        ladder.rungs.iter().map(|r| r.height).collect()
    }

    #[test]
    fn uhd_master_gets_every_rung_up_to_2160p() {
        let ladder = plan(&source(3840, 2160, 24.0, true), &LadderOptions::default());
        assert_eq!(
            heights(&ladder),
            [234, 360, 432, 540, 720, 1080, 1440, 2160]
        );
        let top = ladder.rungs.last().unwrap();
        assert_eq!((top.width, top.height), (3840, 2160));
        assert_eq!(top.codecs(), "avc1.640033");
        assert_eq!(ladder.audio_only.as_deref(), Some("a48"));
        for rung in &ladder.rungs {
            assert!(rung.max_bitrate <= 2 * rung.average_bitrate, "{rung:?}");
        }
    }

    #[test]
    fn never_upscales() {
        let ladder = plan(&source(1280, 720, 25.0, true), &LadderOptions::default());
        assert_eq!(heights(&ladder), [234, 360, 432, 540, 720]);
        let tiny = plan(&source(320, 180, 25.0, true), &LadderOptions::default());
        assert_eq!(heights(&tiny), [180]);
        assert_eq!(tiny.rungs[0].width, 320);
    }

    #[test]
    fn floor_fits_the_2g_budget_with_its_audio() {
        let ladder = plan(&source(1920, 1080, 25.0, true), &LadderOptions::default());
        let floor = &ladder.rungs[0];
        assert_eq!((floor.width, floor.height), (416, 234));
        let audio = ladder
            .audio
            .iter()
            .find(|a| Some(&a.name) == floor.audio.as_ref())
            .unwrap();
        let vbv_peak = floor.max_bitrate + floor.buffer_bits / 6;
        assert!(vbv_peak + audio.bitrate <= FLOOR_PEAK_BUDGET);
    }

    #[test]
    fn odd_and_non_16_9_sources_get_even_sizes_that_keep_the_aspect() {
        let ladder = plan(&source(1165, 767, 25.0, true), &LadderOptions::default());
        for r in &ladder.rungs {
            assert!(r.width % 2 == 0 && r.height % 2 == 0, "{r:?}");
            let aspect = f64::from(r.width) / f64::from(r.height);
            assert!((aspect - 1165.0 / 767.0).abs() < 0.02, "{r:?}");
        }
        assert_eq!(heights(&ladder), [234, 360, 432, 540, 720]);
        // Scope: 2.39:1 at 4K width has every rung, limited by width.
        let scope = plan(&source(3840, 1606, 24.0, false), &LadderOptions::default());
        assert_eq!(scope.rungs.last().unwrap().width, 3840);
        assert!(scope.audio.is_empty() && scope.audio_only.is_none());
    }

    #[test]
    fn high_frame_rates_are_halved_below_540p() {
        let ladder = plan(&source(1920, 1080, 60.0, true), &LadderOptions::default());
        let rate = |h| {
            ladder
                .rungs
                .iter()
                .find(|r| r.height == h)
                .unwrap()
                .frame_rate
                .clone()
        };
        assert_eq!(rate(360), "30/1");
        assert_eq!(rate(540), "60/1");
        assert_eq!(rate(1080), "60/1");
        let film = plan(
            &source(1920, 1080, 24000.0 / 1001.0, true),
            &LadderOptions::default(),
        );
        assert!(film.rungs.iter().all(|r| r.frame_rate == "24000/1001"));
        let hfr = plan(&source(1920, 1080, 120.0, true), &LadderOptions::default());
        assert!(hfr.rungs.iter().all(|r| r.frame_rate_f64() <= 60.0));
    }

    #[test]
    fn options_cap_and_override() {
        let capped = plan(
            &source(3840, 2160, 24.0, true),
            &LadderOptions {
                max_height: Some(720),
                ..LadderOptions::default()
            },
        );
        assert_eq!(heights(&capped), [234, 360, 432, 540, 720]);
        let custom = plan(
            &source(1920, 1080, 24.0, true),
            &LadderOptions {
                rungs: Some(vec![
                    RungSpec {
                        height: 480,
                        kbps: 1200,
                    },
                    RungSpec {
                        height: 1080,
                        kbps: 5000,
                    },
                ]),
                ..LadderOptions::default()
            },
        );
        assert_eq!(heights(&custom), [234, 480, 1080]);
        assert_eq!(custom.rungs[1].average_bitrate, 1_200_000);
    }

    #[test]
    fn the_audio_language_is_the_film_s_or_vietnamese() {
        let film = source(1920, 1080, 24.0, true);
        assert_eq!(plan(&film, &LadderOptions::default()).audio_language, "vi");
        let options = LadderOptions {
            audio_language: Some("en".into()),
            ..LadderOptions::default()
        };
        assert_eq!(plan(&film, &options).audio_language, "en");
    }

    #[test]
    fn portrait_masters_get_upright_rungs() {
        let ladder = plan(&source(1080, 1920, 30.0, true), &LadderOptions::default());
        let sizes: Vec<(u32, u32)> = ladder.rungs.iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(
            sizes,
            [
                (234, 416),
                (360, 640),
                (432, 768),
                (540, 960),
                (720, 1280),
                (1080, 1920)
            ]
        );
    }

    #[test]
    fn thumbnails_cover_the_film() {
        let ladder = plan(&source(1920, 1080, 24.0, true), &LadderOptions::default());
        let t = ladder.thumbnails;
        assert_eq!((t.width, t.height, t.interval_s), (160, 90, 6));
        assert_eq!(t.count(120.0), 20);
        assert_eq!(t.count(121.0), 21);
        let mut feature = source(1920, 1080, 24.0, true);
        feature.duration_s = 7200.0;
        let t = plan(&feature, &LadderOptions::default()).thumbnails;
        assert_eq!((t.interval_s, t.count(7200.0)), (10, 720));
    }

    fn with_av1() -> LadderOptions {
        LadderOptions {
            codecs: vec![Codec::H264, Codec::Av1],
            ..LadderOptions::default()
        }
    }

    #[test]
    fn the_default_ladder_is_h264_alone() {
        let ladder = plan(&source(1920, 1080, 24.0, true), &LadderOptions::default());
        assert!(ladder.rungs.iter().all(|r| r.codec == Codec::H264));
        assert!(ladder.audio.iter().all(|a| a.codec == AudioCodec::Aac));
        assert_eq!(ladder.av1_preset, None);
        // What `monsoon ingest --json` shows of it is as before the AV1 ladder.
        let json = serde_json::to_string(&ladder).unwrap();
        assert!(!json.contains("codec") && !json.contains("av1"), "{json}");
    }

    #[test]
    fn av1_twins_every_h264_rung_at_the_measured_rates() {
        let ladder = plan(&source(3840, 2160, 24.0, true), &with_av1());
        let (h264, av1): (Vec<&Rung>, Vec<&Rung>) =
            ladder.rungs.iter().partition(|r| r.codec == Codec::H264);
        assert_eq!(h264.len(), av1.len());
        for (h, a) in h264.iter().zip(&av1) {
            assert_eq!(a.name, format!("{}-av1", h.name));
            assert_eq!(
                (a.width, a.height, &a.frame_rate),
                (h.width, h.height, &h.frame_rate)
            );
            assert!(a.codecs().starts_with("av01"));
        }
        let kbps: Vec<u64> = av1.iter().map(|r| r.average_bitrate / 1000).collect();
        assert_eq!(kbps, [64, 270, 380, 1300, 2700, 4500, 7500, 12_600]);
        assert_eq!((av1[0].max_bitrate, av1[0].buffer_bits), (80_000, 128_000));
        assert_eq!((av1[1].max_bitrate, av1[1].buffer_bits), (405_000, 540_000));
        // The AV1 floor plays with Opus, the others with the H.264 rungs' audio.
        assert_eq!(av1[0].audio.as_deref(), Some("o32"));
        assert_eq!(av1[1].audio, h264[1].audio);
        let opus = ladder.audio.iter().find(|a| a.name == "o32").unwrap();
        assert_eq!(
            (opus.codec, opus.bitrate, opus.codecs()),
            (AudioCodec::Opus, 32_000, "opus")
        );
        assert_eq!(ladder.av1_preset, Some(AV1_PRESET));
        assert_eq!(ladder.audio_only.as_deref(), Some("a48"));
        // A film.toml's own rung gets 0.75× its H.264 rate; no audio, no Opus.
        let custom = plan(
            &source(1920, 1080, 24.0, false),
            &LadderOptions {
                rungs: Some(vec![RungSpec {
                    height: 720,
                    kbps: 2000,
                }]),
                av1_preset: Some(12),
                ..with_av1()
            },
        );
        let top = custom.rungs.last().unwrap();
        assert_eq!(
            (top.name.as_str(), top.average_bitrate),
            ("v720-av1", 1_500_000)
        );
        assert!(custom.audio.is_empty() && top.audio.is_none());
        assert_eq!(custom.av1_preset, Some(12));
    }

    #[test]
    fn pictures_too_small_for_svt_av1_get_no_av1_ladder() {
        let tiny = plan(&source(96, 54, 25.0, true), &with_av1());
        assert!(tiny.rungs.iter().all(|r| r.codec == Codec::H264));
        assert!(tiny.audio.iter().all(|a| a.codec == AudioCodec::Aac));
        assert_eq!(tiny.av1_preset, None);
        let small = plan(&source(114, 64, 25.0, true), &with_av1());
        assert_eq!(small.rungs.len(), 2);
        assert_eq!(small.rungs[1].codec, Codec::Av1);
    }

    #[test]
    fn codec_lists_are_checked() {
        assert_eq!(Codec::parse_list(&["h264"]).unwrap(), [Codec::H264]);
        assert_eq!(
            Codec::parse_list(&["av1", "h264"]).unwrap(),
            [Codec::H264, Codec::Av1]
        );
        let err = Codec::parse_list(&["h264", "vp9"]).unwrap_err();
        assert_eq!(err, "unknown codec `vp9`; the codecs are h264, av1");
        assert!(
            Codec::parse_list(&["av1"])
                .unwrap_err()
                .contains("must include h264")
        );
        assert!(
            Codec::parse_list(&["h264", "h264"])
                .unwrap_err()
                .contains("twice")
        );
        let names: Vec<&str> = Codec::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names, monsoon_catalog::VIDEO_CODECS);
    }

    #[test]
    fn levels() {
        assert_eq!(h264_level(416, 234, 30.0), 30);
        assert_eq!(h264_level(1280, 720, 30.0), 31);
        assert_eq!(h264_level(1920, 1080, 30.0), 40);
        assert_eq!(h264_level(1920, 1080, 60.0), 42);
        assert_eq!(h264_level(3840, 2160, 30.0), 51);
        assert_eq!(h264_level(3840, 2160, 60.0), 52);
    }
}
