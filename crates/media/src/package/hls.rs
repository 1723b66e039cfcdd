//! The HLS side (RFC 8216): the multivariant playlist over the measured renditions, the
//! I-frame playlists for trick play and the subtitle playlists. The media playlists of the
//! renditions are ffmpeg's own, with their `EXTINF`s made exact ([`exact_extinf_us`]).

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, ByteRange, Map, MasterPlaylist, MediaPlaylist,
    MediaPlaylistType, MediaSegment, Resolution, VariantStream,
};

use super::measure::{Kind, MeasuredRendition, MeasuredSegment};
use super::{SUBTITLES_DIR, language_name};
use crate::transcode::{INIT_SEGMENT, MEDIA_PLAYLIST};
use crate::{Error, Result};

/// File name of a video rendition's I-frame playlist (RFC 8216 §4.3.3.6).
pub const IFRAME_PLAYLIST: &str = "iframes.m3u8";
/// `GROUP-ID` of the subtitle renditions (RFC 8216 §4.3.4.1).
const SUBTITLES_GROUP: &str = "subs";

fn find<'a>(renditions: &'a [MeasuredRendition], name: &str) -> Option<&'a MeasuredRendition> {
    renditions.iter().find(|r| r.name == name)
}

/// The HLS multivariant playlist (RFC 8216 §4.3.4). `prefix` is prepended to every URI, so the
/// playlist can be served from the film's stable URL while the files sit in a versioned
/// directory. The audio renditions are in `audio_language` (`LANGUAGE`, RFC 8216 §4.3.4.1,
/// named in that language for menus), the subtitles in theirs.
pub fn multivariant_playlist(
    renditions: &[MeasuredRendition],
    audio_only: Option<&str>,
    audio_language: &str,
    subtitles: &[String],
    prefix: &str,
) -> MasterPlaylist {
    let uri = |name: &str| format!("{prefix}{name}/{MEDIA_PLAYLIST}");
    let mut alternatives: Vec<AlternativeMedia> = renditions
        .iter()
        .filter(|r| r.kind == Kind::Audio)
        .map(|r| {
            audio_alternative(
                &r.name,
                uri(&r.name),
                audio_language,
                language_name(audio_language),
                true,
            )
        })
        .collect();
    alternatives.extend(
        subtitles
            .iter()
            .map(|lang| subtitle_alternative(lang, language_name(lang), prefix)),
    );
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
    // H.264 before AV1: the AV1 variants cover every bandwidth on their own (HLS authoring
    // spec §1.23), and a player that takes the first variant without weighing `CODECS` gets
    // the H.264 floor, which it decodes, as it did before there was an AV1 ladder.
    variants.sort_by_key(|v| (is_av1(v), v.bandwidth));
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
    iframe_variants.sort_by_key(|v| (is_av1(v), v.bandwidth));
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

/// The video codec family of a rendition, as [`monsoon_catalog::FAMILY_PLAYLISTS`] names it
/// (`None` for audio): from the sample entry its `CODECS` starts with.
pub fn family(r: &MeasuredRendition) -> Option<&'static str> {
    match r.kind {
        Kind::Video { .. } if r.codecs.starts_with("av01") => Some("av1"),
        Kind::Video { .. } => Some("h264"),
        Kind::Audio => None,
    }
}

/// The families of `renditions` with their playlists' file names
/// ([`monsoon_catalog::FAMILY_PLAYLISTS`]) when there are two or more, else none.
pub fn family_files(renditions: &[MeasuredRendition]) -> Vec<(&'static str, &'static str)> {
    let present: Vec<(&'static str, &'static str)> = monsoon_catalog::FAMILY_PLAYLISTS
        .iter()
        .copied()
        .filter(|(f, _)| renditions.iter().any(|r| family(r) == Some(*f)))
        .collect();
    if present.len() < 2 {
        Vec::new()
    } else {
        present
    }
}

/// One multivariant playlist per video codec family, named by
/// [`monsoon_catalog::FAMILY_PLAYLISTS`], when the ladder has more than one family (none
/// otherwise): each is [`multivariant_playlist`] over that family's video renditions, the audio
/// renditions they pair with, and the audio-only rendition.
pub fn family_playlists(
    renditions: &[MeasuredRendition],
    audio_only: Option<&str>,
    audio_language: &str,
    subtitles: &[String],
    prefix: &str,
) -> Vec<(&'static str, MasterPlaylist)> {
    family_files(renditions)
        .into_iter()
        .map(|(f, file)| {
            let video: Vec<&MeasuredRendition> =
                renditions.iter().filter(|r| family(r) == Some(f)).collect();
            let paired = |a: &MeasuredRendition| {
                audio_only == Some(a.name.as_str())
                    || video.iter().any(|v| {
                        matches!(&v.kind, Kind::Video { audio: Some(name), .. } if *name == a.name)
                    })
            };
            let own: Vec<MeasuredRendition> = renditions
                .iter()
                .filter(|r| family(r) == Some(f) || (r.kind == Kind::Audio && paired(r)))
                .cloned()
                .collect();
            let playlist =
                multivariant_playlist(&own, audio_only, audio_language, subtitles, prefix);
            (file, playlist)
        })
        .collect()
}

/// An audio rendition of `group` in `lang`, called `name` in menus (RFC 8216 §4.3.4.1): the
/// film's own language is the group's default.
fn audio_alternative(
    group: &str,
    uri: String,
    lang: &str,
    name: &str,
    default: bool,
) -> AlternativeMedia {
    AlternativeMedia {
        media_type: AlternativeMediaType::Audio,
        uri: Some(uri),
        group_id: group.to_owned(),
        language: Some(lang.to_owned()),
        name: name.to_owned(),
        default,
        autoselect: true,
        channels: Some("2".into()),
        ..AlternativeMedia::default()
    }
}

/// The subtitles of `lang`, called `name` in menus.
fn subtitle_alternative(lang: &str, name: &str, prefix: &str) -> AlternativeMedia {
    AlternativeMedia {
        media_type: AlternativeMediaType::Subtitles,
        uri: Some(format!("{prefix}{SUBTITLES_DIR}/{lang}.m3u8")),
        group_id: SUBTITLES_GROUP.into(),
        language: Some(lang.to_owned()),
        name: name.to_owned(),
        default: false,
        autoselect: true,
        ..AlternativeMedia::default()
    }
}

/// Moves every URI of `playlist` from the version prefix `from` (`v…/`) to `to`: a new version
/// that carries the old one's renditions names them under its own directory. A URI outside
/// `from` is an error (the playlist is not one this packager wrote).
pub fn retarget(playlist: &mut MasterPlaylist, from: &str, to: &str) -> Result<()> {
    let move_uri = |uri: &mut String| -> Result<()> {
        let rest = uri.strip_prefix(from).ok_or_else(|| {
            Error::Verify(format!(
                "playlist URI `{uri}` is outside the version `{from}`"
            ))
        })?;
        *uri = format!("{to}{rest}");
        Ok(())
    };
    for v in &mut playlist.variants {
        move_uri(&mut v.uri)?;
    }
    for a in &mut playlist.alternatives {
        if let Some(uri) = &mut a.uri {
            move_uri(uri)?;
        }
    }
    Ok(())
}

/// Adds an audio language to `playlist`: for each `(group, rendition)` of `added` whose group
/// the playlist has (the family playlists have some of the groups), the rendition under
/// `prefix` joins the group in `lang`, called `name` in menus, beside the film's own language
/// (which stays the default).
pub fn add_audio_language(
    playlist: &mut MasterPlaylist,
    added: &[(String, String)],
    lang: &str,
    name: &str,
    prefix: &str,
) {
    for (group, rendition) in added {
        let has_group = playlist
            .alternatives
            .iter()
            .any(|a| a.media_type == AlternativeMediaType::Audio && a.group_id == *group);
        if has_group {
            playlist.alternatives.push(audio_alternative(
                group,
                format!("{prefix}{rendition}/{MEDIA_PLAYLIST}"),
                lang,
                name,
                false,
            ));
        }
    }
}

/// Adds the subtitles of `lang`, called `name` in menus, to `playlist`, its video variants
/// naming the subtitle group; nothing when it has them already (the file they name is then the
/// one replaced).
pub fn add_subtitles(playlist: &mut MasterPlaylist, lang: &str, name: &str, prefix: &str) {
    let has = playlist.alternatives.iter().any(|a| {
        a.media_type == AlternativeMediaType::Subtitles && a.language.as_deref() == Some(lang)
    });
    if has {
        return;
    }
    playlist
        .alternatives
        .push(subtitle_alternative(lang, name, prefix));
    for v in playlist
        .variants
        .iter_mut()
        .filter(|v| !v.is_i_frame && v.resolution.is_some())
    {
        v.subtitles = Some(SUBTITLES_GROUP.into());
    }
}

/// Reads a multivariant playlist back (one this packager wrote).
pub fn parse_multivariant(bytes: &[u8]) -> Result<MasterPlaylist> {
    match m3u8_rs::parse_playlist_res(bytes) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => Ok(p),
        _ => Err(Error::Verify("not a multivariant playlist".into())),
    }
}

/// Whether a variant's video is AV1 (its `CODECS` starts with the `av01` sample entry).
fn is_av1(v: &VariantStream) -> bool {
    v.codecs.as_deref().is_some_and(|c| c.starts_with("av01"))
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

/// `EXTINF` values, in microseconds, whose running sums fall on the segments' true boundaries.
///
/// ffmpeg rounds each `EXTINF` to the microsecond on its own, so their running sum drifts from
/// the media's timeline: three 48 kHz AAC segments of 281 frames (5.994666… s each) written as
/// 5.994667 put the fourth boundary at 24.000001 s where the media has it at 24.000000 s.
/// RFC 8216 §4.3.2.1 asks for durations accurate enough that their accumulation shows no
/// error; a player that maps a seek to a segment through the playlist (Chromium's own HLS
/// playback) then takes a seek to 24 s into the segment that ends just before it, and stalls.
/// Here the running sums are rounded, not each duration, so every boundary is the media's own
/// to the microsecond. The last segment keeps ffmpeg's `EXTINF` (which rounds a trimmed last
/// frame up): no boundary follows it.
pub fn exact_extinf_us(segments: &[MeasuredSegment]) -> Vec<u64> {
    let micros = |s: f64| (s * 1e6).round() as u64;
    let mut out = Vec::with_capacity(segments.len());
    let mut start = 0.0;
    for (i, seg) in segments.iter().enumerate() {
        if i + 1 == segments.len() {
            out.push(micros(seg.duration_s));
        } else {
            let end = start + seg.media_duration_s;
            out.push(micros(end) - micros(start));
            start = end;
        }
    }
    out
}

/// `playlist` (a media playlist's text) with its `EXTINF` durations replaced, in order, by
/// `durations_us`; every other line as it was.
pub fn rewrite_extinf(playlist: &str, durations_us: &[u64]) -> Result<String> {
    let mut next = durations_us.iter();
    let mut out = String::with_capacity(playlist.len());
    for line in playlist.split_inclusive('\n') {
        match line.strip_prefix("#EXTINF:") {
            Some(rest) => {
                let us = next.next().ok_or_else(|| {
                    Error::Verify("the media playlist has more segments than measured".into())
                })?;
                // The title after the comma, if any, is kept (RFC 8216 §4.3.2.1).
                let title = rest.find(',').map_or("\n", |at| &rest[at..]);
                out.push_str(&format!(
                    "#EXTINF:{}.{:06}{title}",
                    us / 1_000_000,
                    us % 1_000_000
                ));
            }
            None => out.push_str(line),
        }
    }
    if next.next().is_some() {
        return Err(Error::Verify(
            "the media playlist has fewer segments than measured".into(),
        ));
    }
    Ok(out)
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

/// Parses a media playlist, for verification and tests.
pub fn parse_media_playlist(bytes: &[u8]) -> Result<MediaPlaylist> {
    m3u8_rs::parse_media_playlist_res(bytes)
        .map_err(|e| Error::Verify(format!("media playlist does not parse: {e}")))
}

#[cfg(test)]
mod tests {
    use m3u8_rs::Playlist;

    use super::*;
    use crate::package::fixture::fixture;

    #[test]
    fn extinf_running_sums_land_on_the_media_s_boundaries() {
        // 48 kHz AAC: 282 then 281 frames of 1024 samples a segment, as ffmpeg cuts 6 s.
        let frames: [f64; 6] = [282.0, 281.0, 281.0, 281.0, 282.0, 1.0];
        let segments: Vec<MeasuredSegment> = frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let media = f * 1024.0 / 48_000.0;
                MeasuredSegment {
                    uri: format!("seg_{i:05}.m4s"),
                    // What ffmpeg writes: each rounded on its own (the last rounded up).
                    duration_s: (media * 1e6).round() / 1e6 + if i == 5 { 0.003 } else { 0.0 },
                    media_duration_s: media,
                    size: 1,
                    first_frame: None,
                }
            })
            .collect();
        let ffmpeg_sum: f64 = segments[..4].iter().map(|s| s.duration_s).sum();
        assert!(
            ffmpeg_sum > 24.0 + 5e-7,
            "the drift this undoes: {ffmpeg_sum}"
        );
        let exact = exact_extinf_us(&segments);
        let boundaries: Vec<u64> = exact
            .iter()
            .scan(0, |sum, d| {
                *sum += d;
                Some(*sum)
            })
            .collect();
        assert_eq!(
            boundaries[..5],
            [6_016_000, 12_010_667, 18_005_333, 24_000_000, 30_016_000]
        );
        assert_eq!(exact[5], 24_333, "the last keeps ffmpeg's EXTINF");

        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6.016000,\nseg_00000.m4s\n\
                    #EXTINF:5.994667,title\nseg_00001.m4s\n#EXT-X-ENDLIST\n";
        let rewritten = rewrite_extinf(text, &[6_016_000, 5_994_666]).unwrap();
        assert_eq!(
            rewritten,
            "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6.016000,\nseg_00000.m4s\n\
             #EXTINF:5.994666,title\nseg_00001.m4s\n#EXT-X-ENDLIST\n"
        );
        assert!(rewrite_extinf(text, &[1]).is_err());
        assert!(rewrite_extinf(text, &[1, 2, 3]).is_err());
    }

    #[test]
    fn multivariant_playlist_snapshot() {
        let langs = vec!["vi".to_owned(), "en".to_owned()];
        let playlist = multivariant_playlist(&fixture(), Some("a48"), "vi", &langs, "v1/");
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
    fn each_codec_family_has_its_own_playlist_beside_the_whole_one() {
        let h264_only = fixture();
        assert!(family_playlists(&h264_only, Some("a48"), "vi", &[], "v1/").is_empty());

        // An AV1 floor paired with its own audio, beside the H.264 ladder.
        let mut both = fixture();
        let mut av1 = both[0].clone();
        av1.name = "v234-av1".into();
        av1.codecs = "av01.0.00M.08".into();
        if let Kind::Video { audio, .. } = &mut av1.kind {
            *audio = Some("o32".into());
        }
        let mut opus = both[2].clone();
        opus.name = "o32".into();
        opus.codecs = "opus".into();
        both.extend([av1, opus]);

        let families = family_playlists(&both, Some("a48"), "vi", &[], "v1/");
        let files: Vec<&str> = families.iter().map(|(f, _)| *f).collect();
        assert_eq!(files, ["master-h264.m3u8", "master-av1.m3u8"]);
        let uris = |p: &MasterPlaylist| -> Vec<String> {
            p.variants
                .iter()
                .filter(|v| !v.is_i_frame)
                .map(|v| v.uri.clone())
                .collect()
        };
        assert_eq!(
            uris(&families[0].1),
            [
                "v1/v234/index.m3u8",
                "v1/v1080/index.m3u8",
                "v1/a48/index.m3u8"
            ]
        );
        assert_eq!(
            uris(&families[1].1),
            ["v1/v234-av1/index.m3u8", "v1/a48/index.m3u8"]
        );
        // Each names the audio its variants pair with, and no other family's.
        let groups = |p: &MasterPlaylist| -> Vec<String> {
            p.alternatives.iter().map(|a| a.group_id.clone()).collect()
        };
        assert_eq!(groups(&families[0].1), ["a48", "a128"]);
        assert_eq!(groups(&families[1].1), ["a48", "o32"]);
    }

    #[test]
    fn the_audio_is_in_the_film_s_language() {
        let playlist = multivariant_playlist(&fixture(), Some("a48"), "ko", &[], "v1/");
        let text = String::from_utf8(write_multivariant(&playlist).unwrap()).unwrap();
        let audio: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
            .collect();
        assert_eq!(audio.len(), 2, "{text}");
        for line in audio {
            assert!(line.contains("LANGUAGE=\"ko\",NAME=\"한국어\""), "{line}");
        }
    }
}
