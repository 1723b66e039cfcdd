//! Adding an audio language (a dub, an audio-described track) or subtitles to a published film
//! without encoding its video again (`docs/INGEST.md`, "Adding audio and subtitles").
//!
//! The result is a new version, published like any other: it carries every object of the
//! current version (copied inside the media store, `Publisher::publish_carrying`), adds the
//! new renditions or the subtitle file, and its manifests are the current ones with every URI
//! moved to the new version and the new track named. Viewers already playing keep the old
//! version for its grace period; new viewers get the new one, whose audio and subtitle menus
//! list the track.

use std::path::{Path, PathBuf};

use chrono::Utc;
use monsoon_catalog::publish::{SlugLock, Staging, sweep_staging, write_durable};
use monsoon_catalog::{
    DASH_MANIFEST, FAMILY_PLAYLISTS, MULTIVARIANT_PLAYLIST, OBJECT_INDEX, ObjectIndex,
    RenditionKind, is_language_tag,
};
use monsoon_media::ladder::audio_rung;
use monsoon_media::package::{self, edit};
use monsoon_media::{Limits, Progress, tracks};

use crate::{Destination, Error, Published, Result, rendition_record};

/// The longest label a track may have in a menu, characters.
pub const LABEL_CHARS: usize = 60;

/// What to add to a film.
#[derive(Debug, Clone)]
pub enum Track {
    /// An audio track (any file ffmpeg reads with an audio stream), as long as the film.
    Audio {
        file: PathBuf,
        lang: String,
        label: String,
    },
    /// Subtitles (SRT, WebVTT or ASS); a language the film has already is replaced.
    Subtitles {
        file: PathBuf,
        lang: String,
        label: String,
    },
}

/// A track's name in the players' menus: the operator's `label`, or by default the language's
/// own name ("English", "Tiếng Việt").
pub fn label_or_default(label: Option<&str>, lang: &str) -> String {
    label
        .map(str::to_owned)
        .unwrap_or_else(|| monsoon_media::package::language_name(lang).to_owned())
}

impl Track {
    /// An audio track read from `file`, in `lang`, called `label` in the menus (by default the
    /// language's own name, [`label_or_default`]).
    pub fn audio(file: PathBuf, lang: &str, label: Option<&str>) -> Self {
        let label = label_or_default(label, lang);
        Track::Audio {
            file,
            lang: lang.to_owned(),
            label,
        }
    }

    /// Subtitles read from `file`, as [`Track::audio`].
    pub fn subtitles(file: PathBuf, lang: &str, label: Option<&str>) -> Self {
        let label = label_or_default(label, lang);
        Track::Subtitles {
            file,
            lang: lang.to_owned(),
            label,
        }
    }

    /// The file the track is read from.
    pub fn file(&self) -> &Path {
        match self {
            Track::Audio { file, .. } | Track::Subtitles { file, .. } => file,
        }
    }

    pub fn lang(&self) -> &str {
        match self {
            Track::Audio { lang, .. } | Track::Subtitles { lang, .. } => lang,
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Track::Audio { label, .. } | Track::Subtitles { label, .. } => label,
        }
    }

    /// Holds the language and the label to their rules; the error names the value.
    pub fn check(&self) -> Result<()> {
        let lang = self.lang();
        if !is_language_tag(lang) {
            return Err(Error::Job(format!(
                "track language `{lang}` is not a language tag: use {}",
                monsoon_catalog::LANGUAGE_TAG_RULE
            )));
        }
        let label = self.label();
        let chars = label.chars().count();
        if chars == 0 || chars > LABEL_CHARS || label.chars().any(char::is_control) {
            return Err(Error::Job(format!(
                "track label {label:?} must be 1 to {LABEL_CHARS} characters, without control \
                 characters (it is what the player's menu shows, e.g. \"English\")"
            )));
        }
        Ok(())
    }
}

/// Adds `track` to film `slug` as a new version; `on_progress` sees the audio encode's
/// progress. Refused before anything is written when the film is missing, the track breaks a
/// rule or the file is not one (the error names it); a failure later leaves the film as it
/// was.
pub async fn add(
    to: Destination<'_>,
    slug: &str,
    track: &Track,
    on_progress: impl FnMut(Progress),
    before_commit: impl std::future::Future<Output = ()>,
) -> Result<Published> {
    track.check()?;
    let Destination {
        publisher,
        staging: staging_dir,
        locks,
    } = to;
    let film = publisher.films.get(slug).await?.ok_or_else(|| {
        Error::Job(format!(
            "there is no film `{slug}` to add a track to; ingest it first"
        ))
    })?;
    let current = film.current.clone();
    // Checked before the lock and the staging: a bad file changes nothing.
    let audio = match track {
        Track::Audio { file, .. } => {
            let source = monsoon_media::ffmpeg::probe_audio_file(file, &Limits::default()).await?;
            tracks::check_duration(&source, current.duration_s)?;
            Some(source)
        }
        Track::Subtitles { .. } => None,
    };
    let _lock = SlugLock::take(locks, slug)?;
    sweep_staging(staging_dir);
    let version = format!("v{}", Utc::now().format("%Y%m%dT%H%M%S%3fZ"));
    let staging = Staging::create(staging_dir, slug, &version)?;
    let (old_prefix, new_prefix) = (format!("{}/", current.version), format!("{version}/"));

    let media = publisher.media;
    let key = |file: &str| format!("{slug}/{}/{file}", current.version);
    let index = ObjectIndex::from_json(&media.get(&key(OBJECT_INDEX), None).await?)?;
    let mut playlists = vec![MULTIVARIANT_PLAYLIST];
    playlists.extend(
        FAMILY_PLAYLISTS
            .iter()
            .map(|(_, file)| *file)
            .filter(|file| index.get(file).is_some()),
    );
    let mut hls = Vec::new();
    for file in &playlists {
        let mut playlist = package::parse_multivariant(&media.get(&key(file), None).await?)?;
        edit::retarget(&mut playlist, &old_prefix, &new_prefix)?;
        hls.push((*file, playlist));
    }
    let mpd_text =
        String::from_utf8_lossy(&media.get(&key(DASH_MANIFEST), None).await?).into_owned();
    let mut mpd = dash_mpd::parse(&mpd_text).map_err(|e| {
        Error::Job(format!(
            "the published {DASH_MANIFEST} of `{slug}` does not parse: {e}"
        ))
    })?;
    edit::retarget_mpd(&mut mpd, &old_prefix, &new_prefix)?;

    let mut record = current.clone();
    record.version = version.clone();
    let mut replaced = Vec::new();
    match track {
        Track::Audio { lang, label, .. } => {
            let source =
                audio.ok_or_else(|| Error::Job("the audio track was not probed".into()))?;
            // Encoded as each of the film's own audio renditions (not the added ones).
            let rungs: Vec<_> = current
                .renditions
                .iter()
                .filter(|r| r.kind == RenditionKind::Audio)
                .filter_map(|r| audio_rung(&r.name))
                .collect();
            if rungs.is_empty() {
                return Err(Error::Job(format!(
                    "film `{slug}` has no audio renditions to add a language beside"
                )));
            }
            let suffix = unused_suffix(lang, &index);
            let measured =
                tracks::encode_audio(&source, &rungs, &suffix, staging.path(), on_progress).await?;
            let added: Vec<(String, String)> = rungs
                .iter()
                .zip(&measured)
                .map(|(rung, r)| (rung.name.clone(), r.name.clone()))
                .collect();
            for (_, playlist) in &mut hls {
                edit::add_audio_language(playlist, &added, lang, label, &new_prefix);
            }
            // The MPD offers the highest-rate AAC rendition of each language (as it does the
            // film's own: `package::dash`).
            if let Some(best) = rungs
                .iter()
                .zip(&measured)
                .filter(|(rung, _)| rung.codec.is_aac())
                .max_by_key(|(rung, _)| rung.bitrate)
                .map(|(_, r)| r)
            {
                edit::add_mpd_audio_language(&mut mpd, best, lang, &new_prefix);
            }
            record
                .renditions
                .extend(measured.iter().map(rendition_record));
        }
        Track::Subtitles { file, lang, label } => {
            let dir = staging.path().join(package::SUBTITLES_DIR);
            std::fs::create_dir_all(&dir).map_err(|source| Error::Path {
                path: dir.clone(),
                source,
            })?;
            tracks::convert_subtitles(file, &dir.join(format!("{lang}.vtt"))).await?;
            let playlist = package::subtitle_playlist(lang, current.duration_s);
            write_durable(
                &dir.join(format!("{lang}.m3u8")),
                &package::write_media_playlist(&playlist)?,
            )?;
            for (_, playlist) in &mut hls {
                edit::add_subtitles(playlist, lang, label, &new_prefix);
            }
            edit::add_mpd_subtitles(&mut mpd, lang, &new_prefix);
            for ext in ["vtt", "m3u8"] {
                replaced.push(format!("{}/{lang}.{ext}", package::SUBTITLES_DIR));
            }
            if !record.subtitles.contains(lang) {
                record.subtitles.push(lang.clone());
            }
        }
    }
    for (file, playlist) in &hls {
        write_durable(
            &staging.path().join(file),
            &package::write_multivariant(playlist)?,
        )?;
    }
    write_durable(
        &staging.path().join(DASH_MANIFEST),
        &package::write_mpd(&mpd),
    )?;

    // Everything else of the current version is carried over as it is.
    let mut carried = index.clone();
    carried.objects.retain(|key, _| {
        !playlists.contains(&key.as_str())
            && key != DASH_MANIFEST
            && key != OBJECT_INDEX
            && !replaced.contains(key)
    });
    check_references(staging.path(), &hls, &mpd, &carried, &new_prefix)?;
    record.published_at = Utc::now();
    publisher
        .publish_carrying(
            slug,
            &film.meta,
            staging,
            &record,
            Some((&current.version, &carried)),
            before_commit,
        )
        .await?;
    Ok(Published::new(slug, &record))
}

/// `-<lang>`, or `-<lang>-2`, `-<lang>-3`… when the film has a track in that language already
/// (an audio-described track beside the dub, say).
fn unused_suffix(lang: &str, index: &ObjectIndex) -> String {
    let taken = |suffix: &str| {
        index.objects.keys().any(|key| {
            key.split('/')
                .next()
                .is_some_and(|dir| dir.ends_with(suffix))
        })
    };
    let mut suffix = format!("-{lang}");
    let mut n = 2;
    while taken(&suffix) {
        suffix = format!("-{lang}-{n}");
        n += 1;
    }
    suffix
}

/// Every URI the new manifests name is a staged file or a carried object: the new version is
/// whole before it is published.
fn check_references(
    staged: &Path,
    hls: &[(&str, m3u8_rs::MasterPlaylist)],
    mpd: &dash_mpd::MPD,
    carried: &ObjectIndex,
    prefix: &str,
) -> Result<()> {
    let exists = |uri: &str| -> Result<()> {
        let key = uri
            .strip_prefix(prefix)
            .ok_or_else(|| Error::Job(format!("`{uri}` is outside the new version `{prefix}`")))?;
        if carried.get(key).is_some() || staged.join(key).is_file() {
            Ok(())
        } else {
            Err(Error::Job(format!(
                "the new version would name `{key}`, which it does not have"
            )))
        }
    };
    for (_, playlist) in hls {
        for v in &playlist.variants {
            exists(&v.uri)?;
        }
        for uri in playlist
            .alternatives
            .iter()
            .filter_map(|a| a.uri.as_deref())
        {
            exists(uri)?;
        }
    }
    for adaptation in mpd.periods.iter().flat_map(|p| &p.adaptations) {
        for r in &adaptation.representations {
            if let Some(init) = r
                .SegmentTemplate
                .as_ref()
                .and_then(|t| t.initialization.as_deref())
            {
                exists(init)?;
            }
            for base in &r.BaseURL {
                exists(&base.base)?;
            }
        }
    }
    Ok(())
}
