//! Another audio language, or subtitles, for a packaged film without its video encoded again
//! (`docs/INGEST.md`, "Adding audio and subtitles"): the new audio is encoded as each of the
//! film's own audio renditions (same codec, bit rate and 6 s CMAF segments, so its segments
//! start where theirs do), subtitles are converted to WebVTT, and the published manifests are
//! edited to name them (`package::edit`). The caller builds the new version around them
//! (`monsoon_ingest::tracks`).

use std::path::Path;

use crate::ladder::AudioRung;
use crate::package::{self, MeasuredRendition};
use crate::probe::AudioSource;
use crate::{Error, Progress, Result, ffmpeg, make_extinf_exact, transcode};

/// How far an added audio track's duration may be from the film's: a second, or 0.5 % of a
/// long film (a dub mixed to the same picture lasts what the picture lasts).
pub fn duration_tolerance_s(film_s: f64) -> f64 {
    (film_s * 0.005).max(1.0)
}

/// Refuses an audio track whose duration is not the film's, naming both.
pub fn check_duration(source: &AudioSource, film_s: f64) -> Result<()> {
    let tolerance = duration_tolerance_s(film_s);
    if (source.duration_s - film_s).abs() > tolerance {
        return Err(Error::Unsupported {
            path: source.path.clone(),
            reason: format!(
                "the audio lasts {:.1} s and the film {film_s:.1} s; an audio track must last as \
                 long as the film (within {tolerance:.1} s): give the track mixed for this cut",
                source.duration_s
            ),
            rule: Some(Box::new(monsoon_catalog::Rule::TrackDuration {
                audio_s: format!("{:.1}", source.duration_s),
                film_s: format!("{film_s:.1}"),
                tolerance_s: format!("{tolerance:.1}"),
            })),
        });
    }
    Ok(())
}

/// Encodes `source` as each of `rungs` into `out_dir/<rung's name><suffix>/`, measures every
/// rendition against its budget and makes its EXTINFs exact. Dropping the future stops ffmpeg.
pub async fn encode_audio(
    source: &AudioSource,
    rungs: &[AudioRung],
    suffix: &str,
    out_dir: &Path,
    on_progress: impl FnMut(Progress),
) -> Result<Vec<MeasuredRendition>> {
    // ffmpeg's HLS muxer writes into the rendition directories; it does not make them.
    for rung in rungs {
        let dir = out_dir.join(format!("{}{suffix}", rung.name));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(Error::io(&dir))?;
    }
    ffmpeg::run_ffmpeg(
        transcode::audio_track_args(source, rungs, suffix, out_dir),
        on_progress,
    )
    .await?;
    let (rungs, out) = (rungs.to_vec(), out_dir.to_owned());
    let suffix = suffix.to_owned();
    tokio::task::spawn_blocking(move || -> Result<Vec<MeasuredRendition>> {
        let mut measured = Vec::with_capacity(rungs.len());
        for rung in &rungs {
            let mut r = package::measure_audio(&out, rung, &format!("{}{suffix}", rung.name))?;
            make_extinf_exact(&out, &mut r)?;
            measured.push(r);
        }
        Ok(measured)
    })
    .await
    .map_err(|_| Error::Interrupted)?
}

/// Converts a subtitle file (SRT, WebVTT or ASS) to WebVTT at `out` and checks it has cues.
pub async fn convert_subtitles(input: &Path, out: &Path) -> Result<()> {
    ffmpeg::convert_subtitle(input, out).await?;
    let text = tokio::fs::read_to_string(out)
        .await
        .map_err(Error::io(out))?;
    if !text.lines().any(|l| l.contains("-->")) {
        return Err(Error::NotMedia {
            path: input.to_owned(),
            reason: "it has no subtitle cues".into(),
            rule: Some(Box::new(monsoon_catalog::Rule::NoSubtitleCues)),
        });
    }
    Ok(())
}
