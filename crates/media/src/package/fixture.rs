//! The measured renditions the manifest tests are written against.

use super::measure::{Budget, Kind, MeasuredRendition, MeasuredSegment};

/// A fixed two-rung film with audio: 23.976 fps, so segments last 6.006 s.
pub(crate) fn fixture() -> Vec<MeasuredRendition> {
    let segments = |sizes: &[u64], iframe: bool| -> Vec<MeasuredSegment> {
        let durations = [6.006, 6.006, 2.002];
        sizes
            .iter()
            .zip(durations)
            .enumerate()
            .map(|(i, (&size, d))| MeasuredSegment {
                uri: format!("seg_{i:05}.m4s"),
                duration_s: d,
                media_duration_s: d,
                size,
                first_frame: iframe.then_some((76, size / 10)),
            })
            .collect()
    };
    let video = |name: &str, w, h, codecs: &str, audio: &str, sizes: &[u64]| MeasuredRendition {
        name: name.into(),
        kind: Kind::Video {
            width: w,
            height: h,
            frame_rate: "24000/1001".into(),
            audio: Some(audio.into()),
        },
        codecs: codecs.into(),
        segments: segments(sizes, true),
        init_size: 800,
        average_bitrate: sizes.iter().sum::<u64>() * 8 * 1000 / 14014,
        peak_bitrate: sizes.iter().map(|s| s * 8 * 1000 / 6006).max().unwrap(),
        budget: Budget {
            average: u64::MAX,
            peak: u64::MAX,
        },
    };
    let audio = |name: &str, sizes: &[u64]| MeasuredRendition {
        name: name.into(),
        kind: Kind::Audio,
        codecs: "mp4a.40.2".into(),
        segments: segments(sizes, false),
        init_size: 600,
        average_bitrate: sizes.iter().sum::<u64>() * 8 * 1000 / 14014,
        peak_bitrate: sizes.iter().map(|s| s * 8 * 1000 / 6006).max().unwrap(),
        budget: Budget {
            average: u64::MAX,
            peak: u64::MAX,
        },
    };
    vec![
        video(
            "v234",
            416,
            234,
            "avc1.64001e",
            "a48",
            &[90_000, 88_000, 30_000],
        ),
        video(
            "v1080",
            1920,
            1080,
            "avc1.640028",
            "a128",
            &[4_500_000, 4_400_000, 1_500_000],
        ),
        audio("a48", &[37_000, 37_000, 12_400]),
        audio("a128", &[98_000, 98_000, 32_800]),
    ]
}
