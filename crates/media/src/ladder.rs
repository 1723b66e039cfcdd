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

impl Quality {
    pub fn x264_preset(self) -> &'static str {
        match self {
            Quality::Fast => "veryfast",
            Quality::Balanced => "medium",
            Quality::Best => "slow",
        }
    }
}

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
    /// H.264 `level_idc` (e.g. 40 for level 4.0).
    pub level: u8,
    /// Name of the audio rendition this rung plays with.
    pub audio: Option<String>,
}

impl Rung {
    /// RFC 6381 codec string of the video: `avc1` + High profile + level.
    pub fn codecs(&self) -> String {
        format!("avc1.6400{:02x}", self.level)
    }

    pub fn frame_rate_f64(&self) -> f64 {
        crate::probe::parse_rational(&self.frame_rate).unwrap_or(0.0)
    }
}

/// One stereo AAC-LC 48 kHz audio rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioRung {
    /// Directory and rendition name, e.g. `a128`.
    pub name: String,
    pub bitrate: u64,
}

impl AudioRung {
    pub const CODECS: &'static str = "mp4a.40.2";
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
        });
    }
    for rung in &mut rungs {
        rung.level = h264_level(rung.width, rung.height, rung.frame_rate_f64());
    }

    let audio = if has_audio {
        vec![
            AudioRung {
                name: AUDIO_LOW.0.into(),
                bitrate: AUDIO_LOW.1,
            },
            AudioRung {
                name: AUDIO_HIGH.0.into(),
                bitrate: AUDIO_HIGH.1,
            },
        ]
    } else {
        Vec::new()
    };
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
