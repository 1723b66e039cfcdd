//! Packaging: one set of CMAF fMP4 segments, referenced by both an HLS multivariant playlist
//! (RFC 8216) and a DASH MPD (ISO/IEC 23009-1).
//!
//! ffmpeg writes each rendition's init segment, media segments and media playlist. This module
//! measures what was written (durations from the media playlists, sizes from the files) and
//! writes the two top-level manifests from those measurements, never from the targets.

use std::path::Path;
use std::time::Duration;

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, ByteRange, Map, MasterPlaylist, MediaPlaylist,
    MediaPlaylistType, MediaSegment, Playlist, Resolution, VariantStream,
};

use crate::ladder::{AudioRung, Ladder, Rung};
use crate::transcode::{INIT_SEGMENT, MEDIA_PLAYLIST};
use crate::{Error, Result};

/// File name of a video rendition's I-frame playlist (RFC 8216 §4.3.3.6).
pub const IFRAME_PLAYLIST: &str = "iframes.m3u8";

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

/// Reads a rendition's media playlist and the sizes of the files it names.
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
        // bound over one segment, which stays under 200 % of the average (spec §1.30).
        let budget = Budget {
            average: rung.average_bitrate * 115 / 100,
            peak: (rung.max_bitrate + rung.buffer_bits / 6) * 110 / 100,
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
        // AAC is near constant bit rate; fMP4 adds a few percent of boxes.
        let budget = Budget {
            average: audio.bitrate * 112 / 100,
            peak: audio.bitrate * 125 / 100,
        };
        out.push(measure(
            dir,
            &audio.name,
            Kind::Audio,
            AudioRung::CODECS.to_owned(),
            budget,
        )?);
    }
    Ok(out)
}

fn video_kind(rung: &Rung) -> Kind {
    Kind::Video {
        width: rung.width,
        height: rung.height,
        frame_rate: rung.frame_rate.clone(),
        audio: rung.audio.clone(),
    }
}

fn find<'a>(renditions: &'a [MeasuredRendition], name: &str) -> Option<&'a MeasuredRendition> {
    renditions.iter().find(|r| r.name == name)
}

/// The HLS multivariant playlist (RFC 8216 §4.3.4). `prefix` is prepended to every URI, so the
/// playlist can be served from the film's stable URL while the files sit in a versioned
/// directory.
pub fn multivariant_playlist(
    renditions: &[MeasuredRendition],
    audio_only: Option<&str>,
    subtitles: &[String],
    prefix: &str,
) -> MasterPlaylist {
    let uri = |name: &str| format!("{prefix}{name}/{MEDIA_PLAYLIST}");
    let mut alternatives: Vec<AlternativeMedia> = renditions
        .iter()
        .filter(|r| r.kind == Kind::Audio)
        .map(|r| AlternativeMedia {
            media_type: AlternativeMediaType::Audio,
            uri: Some(uri(&r.name)),
            group_id: r.name.clone(),
            language: Some("vi".into()),
            name: "Tiếng Việt".into(),
            default: true,
            autoselect: true,
            channels: Some("2".into()),
            ..AlternativeMedia::default()
        })
        .collect();
    alternatives.extend(subtitles.iter().map(|lang| AlternativeMedia {
        media_type: AlternativeMediaType::Subtitles,
        uri: Some(format!("{prefix}{SUBTITLES_DIR}/{lang}.m3u8")),
        group_id: SUBTITLES_GROUP.into(),
        language: Some(lang.clone()),
        name: language_name(lang).into(),
        default: false,
        autoselect: true,
        ..AlternativeMedia::default()
    }));
    let subtitles_group = (!subtitles.is_empty()).then(|| SUBTITLES_GROUP.to_owned());

    let mut variants = Vec::new();
    for r in renditions {
        let Kind::Video {
            width,
            height,
            frame_rate,
            audio,
        } = &r.kind
        else {
            continue;
        };
        let audio_rendition = audio.as_deref().and_then(|a| find(renditions, a));
        let (audio_peak, audio_average, codecs) = match audio_rendition {
            Some(a) => (
                a.peak_bitrate,
                a.average_bitrate,
                format!("{},{}", r.codecs, a.codecs),
            ),
            None => (0, 0, r.codecs.clone()),
        };
        variants.push(VariantStream {
            uri: uri(&r.name),
            bandwidth: r.peak_bitrate + audio_peak,
            average_bandwidth: Some(r.average_bitrate + audio_average),
            codecs: Some(codecs),
            resolution: Some(Resolution {
                width: u64::from(*width),
                height: u64::from(*height),
            }),
            frame_rate: crate::probe::parse_rational(frame_rate)
                .map(|f| (f * 1000.0).round() / 1000.0),
            audio: audio_rendition.map(|a| a.name.clone()),
            subtitles: subtitles_group.clone(),
            ..VariantStream::default()
        });
    }
    // Lowest first: players that take the first variant start on the weakest link's rung.
    variants.sort_by_key(|v| v.bandwidth);
    let mut iframe_variants: Vec<VariantStream> = renditions
        .iter()
        .filter_map(|r| {
            let Kind::Video { width, height, .. } = &r.kind else {
                return None;
            };
            let (peak, average) = iframe_bitrates(r)?;
            Some(VariantStream {
                is_i_frame: true,
                uri: format!("{prefix}{}/{IFRAME_PLAYLIST}", r.name),
                bandwidth: peak,
                average_bandwidth: Some(average),
                codecs: Some(r.codecs.clone()),
                resolution: Some(Resolution {
                    width: u64::from(*width),
                    height: u64::from(*height),
                }),
                ..VariantStream::default()
            })
        })
        .collect();
    iframe_variants.sort_by_key(|v| v.bandwidth);
    if let Some(a) = audio_only.and_then(|name| find(renditions, name)) {
        variants.push(VariantStream {
            uri: uri(&a.name),
            bandwidth: a.peak_bitrate,
            average_bandwidth: Some(a.average_bitrate),
            codecs: Some(a.codecs.clone()),
            ..VariantStream::default()
        });
    }
    variants.extend(iframe_variants);
    MasterPlaylist {
        version: Some(7),
        independent_segments: true,
        alternatives,
        variants,
        ..MasterPlaylist::default()
    }
}

/// Directory of the WebVTT subtitles and their playlists.
pub const SUBTITLES_DIR: &str = "subs";
const SUBTITLES_GROUP: &str = "subs";

/// The name of a language in that language, for menus.
pub fn language_name(code: &str) -> &str {
    match code {
        "vi" => "Tiếng Việt",
        "en" => "English",
        "fr" => "Français",
        "zh" => "中文",
        "ko" => "한국어",
        "ja" => "日本語",
        other => other,
    }
}

/// The media playlist of one WebVTT file lasting the whole film (RFC 8216 §3.5).
pub fn subtitle_playlist(lang: &str, duration_s: f64) -> MediaPlaylist {
    MediaPlaylist {
        version: Some(7),
        target_duration: duration_s.ceil().max(1.0) as u64,
        segments: vec![MediaSegment {
            uri: format!("{lang}.vtt"),
            duration: duration_s as f32,
            ..MediaSegment::empty()
        }],
        end_list: true,
        playlist_type: Some(MediaPlaylistType::Vod),
        ..MediaPlaylist::default()
    }
}

/// Peak and average bit rate of a rendition's I-frame playlist, if it has one.
fn iframe_bitrates(r: &MeasuredRendition) -> Option<(u64, u64)> {
    let frames: Vec<(u64, f64)> = r
        .segments
        .iter()
        .filter_map(|s| s.first_frame.map(|(_, len)| (len, s.duration_s)))
        .collect();
    if frames.is_empty() {
        return None;
    }
    let peak = frames
        .iter()
        .map(|(len, d)| (*len as f64 * 8.0 / d.max(0.001)).ceil() as u64)
        .max()?;
    let bytes: u64 = frames.iter().map(|(len, _)| len).sum();
    let seconds: f64 = frames.iter().map(|(_, d)| d).sum();
    Some((
        peak,
        (bytes as f64 * 8.0 / seconds.max(0.001)).round() as u64,
    ))
}

/// The I-frame playlist of a video rendition: one entry per segment, the byte range of its
/// opening IDR frame (with its `moof`), lasting until the next one. Segments start on an IDR,
/// so trick play steps segment by segment.
pub fn iframe_playlist(r: &MeasuredRendition) -> Option<MediaPlaylist> {
    let mut segments = Vec::new();
    for (i, seg) in r.segments.iter().enumerate() {
        let (offset, length) = seg.first_frame?;
        segments.push(MediaSegment {
            uri: seg.uri.clone(),
            duration: seg.duration_s as f32,
            byte_range: Some(ByteRange {
                length,
                offset: Some(offset),
            }),
            map: (i == 0).then(|| Map {
                uri: INIT_SEGMENT.to_owned(),
                ..Map::default()
            }),
            ..MediaSegment::empty()
        });
    }
    let target = r
        .segments
        .iter()
        .map(|s| s.duration_s.round() as u64)
        .max()
        .unwrap_or(1);
    Some(MediaPlaylist {
        version: Some(7),
        target_duration: target.max(1),
        segments,
        end_list: true,
        playlist_type: Some(MediaPlaylistType::Vod),
        i_frames_only: true,
        independent_segments: true,
        ..MediaPlaylist::default()
    })
}

/// File name of the WebVTT index of the seek-preview sprites, inside [`crate::transcode::THUMBNAILS_DIR`].
pub const THUMBNAILS_VTT: &str = "thumbs.vtt";

/// The WebVTT file mapping each stretch of the film to its tile in a sprite sheet
/// (`sprite_001.jpg#xywh=x,y,w,h`, the convention players use for seek previews).
pub fn thumbnails_vtt(t: &crate::ladder::Thumbnails, duration_s: f64) -> String {
    let per_sheet = t.columns * t.rows;
    let mut vtt = String::from("WEBVTT\n");
    for i in 0..t.count(duration_s) {
        let start = f64::from(i * t.interval_s);
        let end = (f64::from((i + 1) * t.interval_s)).min(duration_s);
        let sheet = i / per_sheet + 1;
        let slot = i % per_sheet;
        let (x, y) = ((slot % t.columns) * t.width, (slot / t.columns) * t.height);
        vtt.push_str(&format!(
            "\n{} --> {}\nsprite_{sheet:03}.jpg#xywh={x},{y},{},{}\n",
            vtt_time(start),
            vtt_time(end),
            t.width,
            t.height
        ));
    }
    vtt
}

/// `hh:mm:ss.mmm`, as WebVTT cue timings are written.
pub fn vtt_time(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Serialises a media playlist.
pub fn write_media_playlist(playlist: &MediaPlaylist) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    playlist
        .write_to(&mut out)
        .map_err(|e| Error::Verify(format!("writing a media playlist: {e}")))?;
    Ok(out)
}

/// Serialises a multivariant playlist.
pub fn write_multivariant(playlist: &MasterPlaylist) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    playlist
        .write_to(&mut out)
        .map_err(|e| Error::Verify(format!("writing the multivariant playlist: {e}")))?;
    Ok(out)
}

/// Milliseconds: the MPD's timescale. Segment start times are rounded from the exact running
/// sum, so rounding never accumulates drift.
const MPD_TIMESCALE: u64 = 1000;

/// The DASH manifest over the same segments (ISO/IEC 23009-1, `isoff-live` profile with
/// `SegmentTemplate` + `SegmentTimeline`).
pub fn mpd(renditions: &[MeasuredRendition], subtitles: &[String], prefix: &str) -> dash_mpd::MPD {
    use dash_mpd::{
        AdaptationSet, BaseURL, MPD, Period, Representation, S, SegmentTemplate, SegmentTimeline,
    };

    let duration = renditions
        .iter()
        .map(MeasuredRendition::duration_s)
        .fold(0.0, f64::max);
    let template = |r: &MeasuredRendition| {
        let mut timeline = Vec::new();
        let mut start = 0.0;
        for seg in &r.segments {
            let t = (start * MPD_TIMESCALE as f64).round() as u64;
            let end = ((start + seg.duration_s) * MPD_TIMESCALE as f64).round() as u64;
            timeline.push(S {
                t: Some(t),
                d: end - t,
                ..S::default()
            });
            start += seg.duration_s;
        }
        SegmentTemplate {
            initialization: Some(format!("{prefix}{}/{INIT_SEGMENT}", r.name)),
            media: Some(format!("{prefix}{}/seg_$Number%05d$.m4s", r.name)),
            startNumber: Some(0),
            timescale: Some(MPD_TIMESCALE),
            SegmentTimeline: Some(SegmentTimeline { segments: timeline }),
            ..SegmentTemplate::default()
        }
    };

    let mut video = Vec::new();
    let mut audio = Vec::new();
    for r in renditions {
        match &r.kind {
            Kind::Video {
                width,
                height,
                frame_rate,
                ..
            } => video.push(Representation {
                id: Some(r.name.clone()),
                codecs: Some(r.codecs.clone()),
                width: Some(u64::from(*width)),
                height: Some(u64::from(*height)),
                frameRate: Some(frame_rate.clone()),
                bandwidth: Some(r.peak_bitrate),
                SegmentTemplate: Some(template(r)),
                ..Representation::default()
            }),
            Kind::Audio => audio.push(Representation {
                id: Some(r.name.clone()),
                codecs: Some(r.codecs.clone()),
                audioSamplingRate: Some("48000".into()),
                bandwidth: Some(r.peak_bitrate),
                SegmentTemplate: Some(template(r)),
                ..Representation::default()
            }),
        }
    }
    video.sort_by_key(|r| r.bandwidth);
    audio.sort_by_key(|r| r.bandwidth);

    let mut adaptations = vec![AdaptationSet {
        id: Some("video".into()),
        contentType: Some("video".into()),
        mimeType: Some("video/mp4".into()),
        segmentAlignment: Some(true),
        startWithSAP: Some(1),
        representations: video,
        ..AdaptationSet::default()
    }];
    if !audio.is_empty() {
        adaptations.push(AdaptationSet {
            id: Some("audio".into()),
            contentType: Some("audio".into()),
            mimeType: Some("audio/mp4".into()),
            lang: Some("vi".into()),
            segmentAlignment: Some(true),
            startWithSAP: Some(1),
            representations: audio,
            ..AdaptationSet::default()
        });
    }
    for lang in subtitles {
        adaptations.push(AdaptationSet {
            id: Some(format!("text-{lang}")),
            contentType: Some("text".into()),
            mimeType: Some("text/vtt".into()),
            lang: Some(lang.clone()),
            representations: vec![Representation {
                id: Some(format!("subs-{lang}")),
                bandwidth: Some(256),
                BaseURL: vec![BaseURL {
                    base: format!("{prefix}{SUBTITLES_DIR}/{lang}.vtt"),
                    ..BaseURL::default()
                }],
                ..Representation::default()
            }],
            ..AdaptationSet::default()
        });
    }
    let total = Duration::from_secs_f64(duration);
    MPD {
        xmlns: Some("urn:mpeg:dash:schema:mpd:2011".into()),
        mpdtype: Some("static".into()),
        profiles: Some("urn:mpeg:dash:profile:isoff-live:2011".into()),
        minBufferTime: Some(Duration::from_secs(4)),
        mediaPresentationDuration: Some(total),
        periods: vec![Period {
            id: Some("0".into()),
            start: Some(Duration::ZERO),
            adaptations,
            ..Period::default()
        }],
        ..MPD::default()
    }
}

/// Serialises an MPD.
pub fn write_mpd(mpd: &dash_mpd::MPD) -> Vec<u8> {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{mpd}\n").into_bytes()
}

/// Parses a media playlist, for verification and tests.
pub fn parse_media_playlist(bytes: &[u8]) -> Result<MediaPlaylist> {
    m3u8_rs::parse_media_playlist_res(bytes)
        .map_err(|e| Error::Verify(format!("media playlist does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed two-rung film with audio: 23.976 fps, so segments last 6.006 s.
    fn fixture() -> Vec<MeasuredRendition> {
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
        let video =
            |name: &str, w, h, codecs: &str, audio: &str, sizes: &[u64]| MeasuredRendition {
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

    #[test]
    fn multivariant_playlist_snapshot() {
        let langs = vec!["vi".to_owned(), "en".to_owned()];
        let playlist = multivariant_playlist(&fixture(), Some("a48"), &langs, "v1/");
        let text = String::from_utf8(write_multivariant(&playlist).unwrap()).unwrap();
        insta::assert_snapshot!("multivariant", text);
        // What we write, a player's parser reads back.
        let Ok(Playlist::MasterPlaylist(parsed)) = m3u8_rs::parse_playlist_res(text.as_bytes())
        else {
            panic!("does not parse");
        };
        assert_eq!(parsed.variants.len(), 5);
    }

    #[test]
    fn iframe_and_subtitle_playlists_snapshot() {
        let renditions = fixture();
        let iframes = iframe_playlist(&renditions[1]).unwrap();
        let text = String::from_utf8(write_media_playlist(&iframes).unwrap()).unwrap();
        insta::assert_snapshot!("iframes", text);
        let subs = subtitle_playlist("vi", 14.014);
        let text = String::from_utf8(write_media_playlist(&subs).unwrap()).unwrap();
        insta::assert_snapshot!("subtitles", text);
        assert!(parse_media_playlist(text.as_bytes()).is_ok());
    }

    #[test]
    fn mpd_snapshot() {
        let mpd = mpd(&fixture(), &["vi".to_owned()], "v1/");
        let text = String::from_utf8(write_mpd(&mpd)).unwrap();
        insta::assert_snapshot!("mpd", text);
        let parsed = dash_mpd::parse(&text).unwrap();
        assert_eq!(parsed.periods[0].adaptations.len(), 3);
    }

    #[test]
    fn vtt_times() {
        assert_eq!(vtt_time(0.0), "00:00:00.000");
        assert_eq!(vtt_time(3723.456), "01:02:03.456");
    }
}
