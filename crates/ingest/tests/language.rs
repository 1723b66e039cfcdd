//! The film's language reaches both manifests: `language` in `film.toml` is the audio's
//! `LANGUAGE` in the HLS multivariant playlist (RFC 8216 §4.3.4.1) and the `lang` of the audio
//! adaptation set in the DASH MPD (ISO/IEC 23009-1 §5.3.3.2); a value that is not a language
//! tag is refused before anything is written. The pipeline runs whole (real ffmpeg) into the
//! in-memory catalog and media store.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use monsoon_catalog::publish::Publisher;
use monsoon_catalog::{
    DASH_MANIFEST, FilmRepository, MULTIVARIANT_PLAYLIST, MediaStore, MemoryFilms, MemoryStore,
};
use monsoon_ingest::{Destination, Request};
use monsoon_media::Quality;

/// A 2 s, 320×180 clip with a tone.
fn make_clip(path: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x180:rate=25:duration=2")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=2"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
}

/// A request for `clip.mp4` in `dir`, described by a `film.toml` of `text`.
fn request(dir: &Path, text: &str) -> (Request, PathBuf) {
    let meta = dir.join("film.toml");
    std::fs::write(&meta, text).unwrap();
    let request = Request {
        file: dir.join("clip.mp4"),
        slug: "phim".into(),
        meta: Some(meta.clone()),
        quality: Quality::Fast,
        max_height: None,
        subtitles: Vec::new(),
        codecs: None,
    };
    (request, meta)
}

async fn text(media: &MemoryStore, key: &str) -> String {
    String::from_utf8(media.get(key, None).await.unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn the_film_s_language_is_the_audio_s_in_both_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    make_clip(&tmp.path().join("clip.mp4"));
    let (request, _) = request(
        tmp.path(),
        "title = { en = \"Spring\" }\nlanguage = \"ko\"\n",
    );
    let plan = monsoon_ingest::plan(request).await.unwrap();
    assert_eq!(plan.ladder.audio_language, "ko");
    let (films, media) = (MemoryFilms::new(), MemoryStore::new());
    let destination = Destination {
        publisher: Publisher {
            films: &films,
            media: &media,
        },
        staging: &tmp.path().join("staging"),
        locks: &tmp.path().join("locks"),
    };
    let published = plan.publish(destination, |_| {}, async {}).await.unwrap();
    let version = format!("phim/{}", published.version);

    let master = text(&media, &format!("{version}/{MULTIVARIANT_PLAYLIST}")).await;
    let audio: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .collect();
    assert!(!audio.is_empty(), "{master}");
    for line in audio {
        assert!(line.contains("LANGUAGE=\"ko\""), "{master}");
    }
    assert!(!master.contains("LANGUAGE=\"vi\""), "{master}");

    let mpd = text(&media, &format!("{version}/{DASH_MANIFEST}")).await;
    assert!(mpd.contains("contentType=\"audio\" lang=\"ko\""), "{mpd}");
    assert!(!mpd.contains("lang=\"vi\""), "{mpd}");

    let film = films.get("phim").await.unwrap().unwrap();
    assert_eq!(film.meta.language(), "ko");
}

#[tokio::test]
async fn a_language_that_is_not_a_tag_is_refused_naming_the_key_and_the_rule() {
    let tmp = tempfile::tempdir().unwrap();
    make_clip(&tmp.path().join("clip.mp4"));
    for bad in ["Vietnamese", "vi_VN", "en-us"] {
        let (request, meta) = request(
            tmp.path(),
            &format!("title = {{ en = \"Spring\" }}\nlanguage = \"{bad}\"\n"),
        );
        let err = monsoon_ingest::plan(request).await.unwrap_err().to_string();
        assert!(err.contains(&meta.display().to_string()), "{err}");
        assert!(
            err.contains(&format!(
                "`language` is \"{bad}\"; it must be a BCP 47 language tag: two or three \
                 lowercase letters, optionally a hyphen and a two-letter region in capitals, \
                 e.g. vi, en, pt-BR"
            )),
            "{err}"
        );
    }
    // Planning writes nothing: there is not even a staging directory to clean.
    assert!(!tmp.path().join("staging").exists());
}
