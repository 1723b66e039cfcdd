//! Verification of a packaged film before it is published: read back what was written, with
//! the same parsers a player uses, and check it against the files on disk and the budgets.

use std::path::Path;

use m3u8_rs::Playlist;
use monsoon_catalog::{DASH_MANIFEST, MULTIVARIANT_PLAYLIST};

use crate::ladder::FLOOR_PEAK_BUDGET;
use crate::package::{Kind, MeasuredRendition, parse_media_playlist};
use crate::{Error, Result};

/// Checks the packaged directory `dir` whose manifests use URIs starting with `prefix`.
pub fn verify(
    dir: &Path,
    prefix: &str,
    renditions: &[MeasuredRendition],
    subtitles: usize,
    source_duration_s: f64,
) -> Result<()> {
    let fail = |msg: String| Err(Error::Verify(msg));
    let local = |uri: &str| -> Result<std::path::PathBuf> {
        uri.strip_prefix(prefix)
            .map(|rest| dir.join(rest))
            .ok_or_else(|| Error::Verify(format!("URI `{uri}` is outside the version `{prefix}`")))
    };

    // 1. The multivariant playlist parses and every variant and rendition it names exists;
    //    with more than one codec family, so does each family's own playlist, which names
    //    that family's video alone.
    let mut playlists = vec![(MULTIVARIANT_PLAYLIST, None)];
    playlists.extend(
        crate::package::family_files(renditions)
            .into_iter()
            .map(|(family, file)| (file, Some(family))),
    );
    for (file, family) in playlists {
        check_multivariant(dir, file, family, &local)?;
    }

    // 2. Every measured file is there with the size that was measured.
    for r in renditions {
        for seg in &r.segments {
            let path = dir.join(&r.name).join(&seg.uri);
            let size = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
            if size != seg.size {
                return fail(format!(
                    "{} is {size} bytes, measured {}",
                    path.display(),
                    seg.size
                ));
            }
        }
        // 3. Each EXTINF is the segment's real duration (23.976 fps gives 6.006 s, not 6.000),
        //    video segments open on an IDR, and durations add up to the source's.
        for (i, seg) in r.segments.iter().enumerate() {
            // The final segment may end on a trimmed last frame (an AAC frame cut short at the
            // end of the film), which the EXTINF rounds up: allow one frame there.
            let tolerance = if i + 1 == r.segments.len() {
                0.05
            } else {
                0.002
            };
            if (seg.duration_s - seg.media_duration_s).abs() > tolerance {
                return fail(format!(
                    "{}/{}: EXTINF says {:.6} s but its samples last {:.6} s",
                    r.name, seg.uri, seg.duration_s, seg.media_duration_s
                ));
            }
            if matches!(r.kind, Kind::Video { .. }) && seg.first_frame.is_none() {
                return fail(format!(
                    "{}/{} does not start with an IDR frame",
                    r.name, seg.uri
                ));
            }
        }
        let total = r.duration_s();
        if (total - source_duration_s).abs() > 0.5 {
            return fail(format!(
                "rendition {} lasts {total:.3} s but the source lasts {source_duration_s:.3} s",
                r.name
            ));
        }
    }

    // 3b. Every video rendition, of either codec, is cut at the same instants: segment
    //     alignment is what the MPD declares (`segmentAlignment`, ISO/IEC 23009-1 §5.3.3.2)
    //     and what a player switching variants on a segment boundary counts on (RFC 8216
    //     §6.2.4: renditions' segments should line up).
    let videos: Vec<&MeasuredRendition> = renditions
        .iter()
        .filter(|r| matches!(r.kind, Kind::Video { .. }))
        .collect();
    if let Some((first, rest)) = videos.split_first() {
        for r in rest {
            let aligned = r.segments.len() == first.segments.len()
                && r.segments
                    .iter()
                    .zip(&first.segments)
                    .all(|(a, b)| (a.media_duration_s - b.media_duration_s).abs() <= 0.002);
            if !aligned {
                let durations = |r: &MeasuredRendition| -> Vec<String> {
                    r.segments
                        .iter()
                        .map(|s| format!("{:.3}", s.media_duration_s))
                        .collect()
                };
                return fail(format!(
                    "rendition {} is cut at other instants than {}: segments of {:?} s against {:?} s",
                    r.name,
                    first.name,
                    durations(r),
                    durations(first)
                ));
            }
        }
    }

    // 4. Every rendition keeps to its bit-rate budget, and its codec string is one a player
    //    can parse (RFC 6381; AV1 per the AV1 ISO-BMFF binding §5).
    for r in renditions {
        if !codecs_parse(&r.codecs, &r.kind) {
            return fail(format!(
                "rendition {} has the codec string `{}`, which does not parse",
                r.name, r.codecs
            ));
        }
        if r.average_bitrate > r.budget.average || r.peak_bitrate > r.budget.peak {
            return fail(format!(
                "rendition {} averages {} bit/s and peaks at {} bit/s; its budget is {} average, {} peak",
                r.name, r.average_bitrate, r.peak_bitrate, r.budget.average, r.budget.peak
            ));
        }
    }

    // 5. The DASH manifest parses and lists every video rendition, the audio and the subtitles.
    let mpd_path = dir.join(DASH_MANIFEST);
    let text = std::fs::read_to_string(&mpd_path).map_err(Error::io(&mpd_path))?;
    let mpd = dash_mpd::parse(&text)
        .map_err(|e| Error::Verify(format!("{DASH_MANIFEST} does not parse: {e}")))?;
    let listed: usize = mpd
        .periods
        .iter()
        .flat_map(|p| &p.adaptations)
        .map(|a| a.representations.len())
        .sum();
    // Every video rendition, one audio (the MPD offers only the highest; package::mpd says
    // why) and every subtitle language.
    let videos = renditions
        .iter()
        .filter(|r| matches!(r.kind, Kind::Video { .. }))
        .count();
    let audios = usize::from(renditions.iter().any(|r| matches!(r.kind, Kind::Audio)));
    let expected = videos + audios + subtitles;
    if listed != expected {
        return fail(format!(
            "{DASH_MANIFEST} lists {listed} representations, expected {expected}"
        ));
    }

    // 6. Every seek-preview tile names a sprite sheet that exists.
    let thumbs = dir.join(crate::transcode::THUMBNAILS_DIR);
    let vtt_path = thumbs.join(crate::package::THUMBNAILS_VTT);
    let vtt = std::fs::read_to_string(&vtt_path).map_err(Error::io(&vtt_path))?;
    for sheet in vtt
        .lines()
        .filter_map(|l| l.split_once("#xywh=").map(|(f, _)| f))
    {
        if !thumbs.join(sheet).is_file() {
            return fail(format!(
                "{} names a missing sprite {sheet}",
                vtt_path.display()
            ));
        }
    }

    // 7. The weakest rung of each codec fits a 2G-class link with its audio (HLS authoring
    //    spec §9.21): a player that decodes only H.264 has its own floor.
    let family = |codecs: &str| codecs.split('.').next().unwrap_or_default().to_owned();
    let mut families: Vec<String> = renditions
        .iter()
        .filter(|r| matches!(r.kind, Kind::Video { .. }))
        .map(|r| family(&r.codecs))
        .collect();
    families.dedup();
    for fam in families {
        let floor = renditions
            .iter()
            .filter(|r| family(&r.codecs) == fam)
            .filter_map(|r| match &r.kind {
                Kind::Video { audio, .. } => Some((r, audio)),
                Kind::Audio => None,
            })
            .min_by_key(|(r, _)| r.peak_bitrate);
        if let Some((floor, audio)) = floor {
            let audio_peak = audio
                .as_deref()
                .and_then(|a| renditions.iter().find(|r| r.name == a))
                .map_or(0, |a| a.peak_bitrate);
            let peak = floor.peak_bitrate + audio_peak;
            if peak > FLOOR_PEAK_BUDGET {
                return fail(format!(
                    "the floor rung {} peaks at {peak} bit/s with its audio, over the {FLOOR_PEAK_BUDGET} bit/s 2G budget",
                    floor.name
                ));
            }
        }
    }
    Ok(())
}

/// Whether `codecs` is a codec string Monsoon writes for a rendition of `kind`: H.264 High
/// (`avc1.` and six hex digits, RFC 6381 §3.3) or AV1 (`av01.P.LLT.DD`) for video, AAC-LC
/// (`mp4a.40.2`) or `opus` for audio.
pub fn codecs_parse(codecs: &str, kind: &Kind) -> bool {
    match kind {
        Kind::Video { .. } => {
            codecs
                .strip_prefix("avc1.")
                .is_some_and(|hex| hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                || crate::fmp4::parse_av1_codecs(codecs).is_some()
        }
        Kind::Audio => codecs == "mp4a.40.2" || codecs == "opus",
    }
}

/// Step 1 of [`verify`] for one multivariant playlist, `file` in `dir`: it parses, every media
/// playlist it names exists and names existing bytes, and, when it is a `family`'s own, every
/// variant's video is of that family.
fn check_multivariant(
    dir: &Path,
    file: &str,
    family: Option<&str>,
    local: &dyn Fn(&str) -> Result<std::path::PathBuf>,
) -> Result<()> {
    let fail = |msg: String| Err(Error::Verify(msg));
    let master_path = dir.join(file);
    let bytes = std::fs::read(&master_path).map_err(Error::io(&master_path))?;
    let Ok(Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(&bytes) else {
        return fail(format!(
            "{} is not a multivariant playlist",
            master_path.display()
        ));
    };
    let mut uris: Vec<&str> = master.variants.iter().map(|v| v.uri.as_str()).collect();
    uris.extend(master.alternatives.iter().filter_map(|a| a.uri.as_deref()));
    for uri in uris {
        let path = local(uri)?;
        let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
        let playlist = parse_media_playlist(&bytes)?;
        let rendition_dir = path.parent().unwrap_or(dir);
        for seg in &playlist.segments {
            let seg_path = rendition_dir.join(&seg.uri);
            let Ok(meta) = std::fs::metadata(&seg_path) else {
                return fail(format!("{uri} names a missing segment {}", seg.uri));
            };
            if let Some(range) = &seg.byte_range {
                let end = range.offset.unwrap_or(0) + range.length;
                if end > meta.len() {
                    return fail(format!(
                        "{uri} names bytes up to {end} of {}, which has {}",
                        seg.uri,
                        meta.len()
                    ));
                }
            }
        }
    }
    if let Some(family) = family {
        for v in master.variants.iter().filter(|v| v.resolution.is_some()) {
            let codecs = v.codecs.as_deref().unwrap_or_default();
            if codecs.starts_with("av01") != (family == "av1") {
                return fail(format!(
                    "{file} is the {family} family's playlist but names {} ({codecs})",
                    v.uri
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_strings_are_checked_per_kind() {
        let video = Kind::Video {
            width: 416,
            height: 234,
            frame_rate: "25/1".into(),
            audio: None,
        };
        for good in [
            "avc1.64001e",
            "avc1.640033",
            "av01.0.00M.08",
            "av01.0.13H.10",
        ] {
            assert!(codecs_parse(good, &video), "{good}");
        }
        // `av01` alone is what an AV1 rung is planned as, before its av1C is read.
        for bad in [
            "av01",
            "avc1.64001",
            "avc1.64001g",
            "av01.0.4M.08",
            "mp4a.40.2",
            "",
        ] {
            assert!(!codecs_parse(bad, &video), "{bad}");
        }
        assert!(codecs_parse("mp4a.40.2", &Kind::Audio));
        assert!(codecs_parse("opus", &Kind::Audio));
        assert!(!codecs_parse("Opus", &Kind::Audio));
        assert!(!codecs_parse("av01.0.00M.08", &Kind::Audio));
    }
}
