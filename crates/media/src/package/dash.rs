//! The DASH side (ISO/IEC 23009-1): one MPD over the same CMAF segments the HLS playlists
//! name, so a film is stored once and played by either kind of player.

use std::time::Duration;

use super::SUBTITLES_DIR;
use super::measure::{Kind, MeasuredRendition};
use crate::transcode::INIT_SEGMENT;

/// Milliseconds: the MPD's timescale. Segment start times are rounded from the exact running
/// sum, so rounding never accumulates drift.
const MPD_TIMESCALE: u64 = 1000;

/// The DASH manifest over the same segments (ISO/IEC 23009-1, `isoff-live` profile with
/// `SegmentTemplate` + `SegmentTimeline`). The audio adaptation set is in `audio_language`
/// (its `lang`, §5.3.3.2), each subtitle's in its own.
///
/// The audio adaptation set holds one representation, the highest-bit-rate audio rendition
/// (see [`dash_audio`]); the HLS side keeps both, each paired with its rungs.
pub fn mpd(
    renditions: &[MeasuredRendition],
    audio_language: &str,
    subtitles: &[String],
    prefix: &str,
) -> dash_mpd::MPD {
    use dash_mpd::{AdaptationSet, MPD, Period, Representation};

    let duration = renditions
        .iter()
        .map(MeasuredRendition::duration_s)
        .fold(0.0, f64::max);
    let template = |r: &MeasuredRendition| segment_template(r, prefix);

    let mut video = Vec::new();
    let mut av1 = Vec::new();
    let mut audio = Vec::new();
    for r in renditions {
        match &r.kind {
            Kind::Video {
                width,
                height,
                frame_rate,
                ..
            } => (if r.codecs.starts_with("av01") {
                &mut av1
            } else {
                &mut video
            })
            .push(Representation {
                id: Some(r.name.clone()),
                codecs: Some(r.codecs.clone()),
                width: Some(u64::from(*width)),
                height: Some(u64::from(*height)),
                frameRate: Some(frame_rate.clone()),
                bandwidth: Some(r.peak_bitrate),
                SegmentTemplate: Some(template(r)),
                ..Representation::default()
            }),
            Kind::Audio => audio.push(audio_representation(r, prefix)),
        }
    }
    video.sort_by_key(|r| r.bandwidth);
    av1.sort_by_key(|r| r.bandwidth);
    audio.sort_by_key(|r| r.bandwidth);
    let audio = dash_audio(audio);

    let mut adaptations = vec![AdaptationSet {
        id: Some("video".into()),
        contentType: Some("video".into()),
        mimeType: Some("video/mp4".into()),
        segmentAlignment: Some(true),
        startWithSAP: Some(1),
        representations: video,
        ..AdaptationSet::default()
    }];
    // AV1 in an adaptation set of its own: a player switches among the representations of
    // one set seamlessly (ISO/IEC 23009-1 §5.3.3.1), which one decoder cannot do across
    // codecs; a player that decodes AV1 picks this set, any other the H.264 one.
    if !av1.is_empty() {
        adaptations.push(AdaptationSet {
            id: Some("video-av1".into()),
            contentType: Some("video".into()),
            mimeType: Some("video/mp4".into()),
            segmentAlignment: Some(true),
            startWithSAP: Some(1),
            representations: av1,
            ..AdaptationSet::default()
        });
    }
    if !audio.is_empty() {
        adaptations.push(audio_adaptation("audio", audio_language, audio));
    }
    adaptations.extend(subtitles.iter().map(|lang| text_adaptation(lang, prefix)));
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

/// The `SegmentTemplate` of a measured rendition: its init segment and numbered segments under
/// `prefix`, with their exact durations as a `SegmentTimeline`.
fn segment_template(r: &MeasuredRendition, prefix: &str) -> dash_mpd::SegmentTemplate {
    use dash_mpd::{S, SegmentTemplate, SegmentTimeline};
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
}

fn audio_representation(r: &MeasuredRendition, prefix: &str) -> dash_mpd::Representation {
    dash_mpd::Representation {
        id: Some(r.name.clone()),
        codecs: Some(r.codecs.clone()),
        audioSamplingRate: Some("48000".into()),
        bandwidth: Some(r.peak_bitrate),
        SegmentTemplate: Some(segment_template(r, prefix)),
        ..dash_mpd::Representation::default()
    }
}

/// An audio Adaptation Set in `lang` (ISO/IEC 23009-1 §5.3.3: one per language).
fn audio_adaptation(
    id: &str,
    lang: &str,
    representations: Vec<dash_mpd::Representation>,
) -> dash_mpd::AdaptationSet {
    dash_mpd::AdaptationSet {
        id: Some(id.into()),
        contentType: Some("audio".into()),
        mimeType: Some("audio/mp4".into()),
        lang: Some(lang.to_owned()),
        segmentAlignment: Some(true),
        startWithSAP: Some(1),
        representations,
        ..dash_mpd::AdaptationSet::default()
    }
}

/// The WebVTT subtitles of `lang`, one file for the whole film.
fn text_adaptation(lang: &str, prefix: &str) -> dash_mpd::AdaptationSet {
    dash_mpd::AdaptationSet {
        id: Some(format!("text-{lang}")),
        contentType: Some("text".into()),
        mimeType: Some("text/vtt".into()),
        lang: Some(lang.to_owned()),
        representations: vec![dash_mpd::Representation {
            id: Some(format!("subs-{lang}")),
            bandwidth: Some(256),
            BaseURL: vec![dash_mpd::BaseURL {
                base: format!("{prefix}{SUBTITLES_DIR}/{lang}.vtt"),
                ..dash_mpd::BaseURL::default()
            }],
            ..dash_mpd::Representation::default()
        }],
        ..dash_mpd::AdaptationSet::default()
    }
}

/// Moves every URL of `mpd` from the version prefix `from` (`v…/`) to `to`: a new version
/// that carries the old one's media names it under its own directory. A URL outside `from`
/// is an error (the MPD is not one this packager wrote).
pub fn retarget_mpd(mpd: &mut dash_mpd::MPD, from: &str, to: &str) -> crate::Result<()> {
    let move_url = |url: &mut String| -> crate::Result<()> {
        let rest = url.strip_prefix(from).ok_or_else(|| {
            crate::Error::Verify(format!("MPD URL `{url}` is outside the version `{from}`"))
        })?;
        *url = format!("{to}{rest}");
        Ok(())
    };
    for period in &mut mpd.periods {
        // dash-mpd reads the XLink default (`onRequest`) into elements that had none; without
        // an `xlink:href` it means nothing, and the MPD stays as this packager writes it.
        period.actuate = None;
        for adaptation in &mut period.adaptations {
            adaptation.actuate = None;
            for r in &mut adaptation.representations {
                if let Some(t) = &mut r.SegmentTemplate {
                    for url in [&mut t.initialization, &mut t.media].into_iter().flatten() {
                        move_url(url)?;
                    }
                }
                for base in &mut r.BaseURL {
                    move_url(&mut base.base)?;
                }
            }
        }
    }
    Ok(())
}

/// Adds an audio language to `mpd`: an Adaptation Set of its own in `lang` with `rendition`
/// (its highest-rate AAC rendition, as the film's own language has), under `prefix`.
pub fn add_audio_language(
    mpd: &mut dash_mpd::MPD,
    rendition: &MeasuredRendition,
    lang: &str,
    prefix: &str,
) {
    if let Some(period) = mpd.periods.first_mut() {
        let id = format!("audio-{}", rendition.name);
        period.adaptations.push(audio_adaptation(
            &id,
            lang,
            vec![audio_representation(rendition, prefix)],
        ));
    }
}

/// Adds the WebVTT subtitles of `lang` to `mpd`, unless it has them already (then the file
/// they name is the one replaced).
pub fn add_subtitles(mpd: &mut dash_mpd::MPD, lang: &str, prefix: &str) {
    if let Some(period) = mpd.periods.first_mut() {
        let id = format!("text-{lang}");
        if !period
            .adaptations
            .iter()
            .any(|a| a.id.as_deref() == Some(id.as_str()))
        {
            period.adaptations.push(text_adaptation(lang, prefix));
        }
    }
}

/// The audio representations the MPD offers: only the last (highest bit rate) of `audio`,
/// sorted by bandwidth. The AV1 floor's Opus rendition (HLS pairs it with that rung) is
/// thereby left out of the MPD too, whose AV1 representations play with the AAC one.
///
/// An MPD states no pairing of audio with video: a DASH player makes its variants as every
/// video representation times every audio one (ISO/IEC 23009-1 §5.3.3.1: the representations
/// of an adaptation set are alternatives of one content, each chosen apart), so with two audio
/// representations a quality switch can change the audio and the video at once. shaka-player
/// 5.2 then stalls for good: with `clearBuffer` it clears and flushes both source buffers, each
/// flush nudges the playhead (a seek), and the second seek aborts the new video
/// representation's init-segment request, whose failed promise its segment prefetcher keeps
/// and hands back on every retry (the failure of shaka-player issue #10569). The MPD is valid
/// either way; one audio representation makes every DASH quality switch a video-only switch,
/// which no player has to get right. The 48 kbit/s rendition exists for the HLS 2G floor (HLS
/// authoring spec §9.21), which pairs it with the floor rung; DASH players on such links are
/// served the floor rung with the 128 kbit/s audio.
fn dash_audio(mut audio: Vec<dash_mpd::Representation>) -> Vec<dash_mpd::Representation> {
    let keep = audio.len().saturating_sub(1);
    audio.drain(..keep);
    audio
}

/// Serialises an MPD.
pub fn write_mpd(mpd: &dash_mpd::MPD) -> Vec<u8> {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{mpd}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::fixture::fixture;

    #[test]
    fn mpd_snapshot() {
        let mpd = mpd(&fixture(), "vi", &["vi".to_owned()], "v1/");
        let text = String::from_utf8(write_mpd(&mpd)).unwrap();
        insta::assert_snapshot!("mpd", text);
        let parsed = dash_mpd::parse(&text).unwrap();
        assert_eq!(parsed.periods[0].adaptations.len(), 3);
    }

    #[test]
    fn the_audio_is_in_the_film_s_language() {
        let text = String::from_utf8(write_mpd(&mpd(&fixture(), "ko", &[], "v1/"))).unwrap();
        let parsed = dash_mpd::parse(&text).unwrap();
        let langs: Vec<(Option<&str>, Option<&str>)> = parsed.periods[0]
            .adaptations
            .iter()
            .map(|a| (a.contentType.as_deref(), a.lang.as_deref()))
            .collect();
        assert_eq!(langs, [(Some("video"), None), (Some("audio"), Some("ko"))]);
    }

    #[test]
    fn one_audio_representation_the_highest() {
        let parsed = dash_mpd::parse(
            &String::from_utf8(write_mpd(&mpd(&fixture(), "vi", &[], "v1/"))).unwrap(),
        )
        .unwrap();
        let audio: Vec<Option<&str>> = parsed.periods[0]
            .adaptations
            .iter()
            .filter(|a| a.contentType.as_deref() == Some("audio"))
            .flat_map(|a| &a.representations)
            .map(|r| r.id.as_deref())
            .collect();
        assert_eq!(audio, [Some("a128")]);
        let video = parsed.periods[0].adaptations[0].representations.len();
        assert_eq!(video, 2, "every video rung stays");
    }
}
