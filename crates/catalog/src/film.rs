use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::artwork::{ArtKind, Artwork};
use crate::rules::FieldError;
use crate::{Error, Result};

/// Text in Vietnamese (the default audience) and English.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Localized {
    #[serde(default)]
    pub vi: String,
    #[serde(default)]
    pub en: String,
}

impl Localized {
    /// The text in `lang` (`vi` or `en`), falling back to the other language when empty.
    pub fn get(&self, lang: &str) -> &str {
        let (first, second) = if lang == "en" {
            (&self.en, &self.vi)
        } else {
            (&self.vi, &self.en)
        };
        if first.is_empty() { second } else { first }
    }
}

/// What an operator says about a film, read from `film.toml` (see `docs/film.example.toml`).
///
/// Unknown keys in `film.toml` are refused, with the nearest known key, by
/// [`FilmMeta::parse_toml`] (`crate::rules`: the shape of every key is checked there, against
/// [`crate::rules::FIELDS`]), not by `deny_unknown_fields`, which would also forbid the API's
/// fields beside these ([`FilmMeta::artwork`]). Every rule is [`FilmMeta::validate`]'s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilmMeta {
    /// Required ([`FilmMeta::validate`] says so by its key rather than serde by its type).
    #[serde(default)]
    pub title: Localized,
    #[serde(default)]
    pub original_title: Option<String>,
    #[serde(default)]
    pub synopsis: Localized,
    #[serde(default)]
    pub director: Vec<String>,
    #[serde(default)]
    pub writer: Vec<String>,
    #[serde(default)]
    pub cast: Vec<String>,
    #[serde(default)]
    pub genres: Vec<String>,
    /// Running time in minutes; measured from the master file when absent.
    #[serde(default)]
    pub runtime_min: Option<u32>,
    /// ISO 3166-1 alpha-2, e.g. `VN`.
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub production_company: Option<String>,
    #[serde(default)]
    pub cinema_release: Option<NaiveDate>,
    /// When the film becomes free to watch (the premiere). Manifests are refused before it.
    #[serde(default)]
    pub free_release: Option<DateTime<FixedOffset>>,
    /// Vietnamese film class ([`crate::rules::AGE_RATINGS`]: `P`, `K`, `T13`, `T16`, `T18`).
    #[serde(default)]
    pub age_rating: Option<String>,
    /// Slug of another published film that is this film's trailer (checked by
    /// [`FilmMeta::check_trailer`]). The pages link to it and keep it out of the catalog.
    #[serde(default)]
    pub trailer: Option<String>,
    /// Poster image (portrait key art), relative to `film.toml`; copied into the published
    /// version. Without it, a frame of the film is the poster.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub poster: Option<PathBuf>,
    /// Wide backdrop image for the film page, relative to `film.toml`.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub backdrop: Option<PathBuf>,
    /// Replaces the default ladder: the rungs to encode (the 2G floor is always added).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ladder: Vec<LadderRung>,
    /// Language of the soundtrack, a language tag ([`is_language_tag`]): what the manifests
    /// declare for the audio (`LANGUAGE` in HLS, `lang` in DASH) and what players label the
    /// track with. [`DEFAULT_LANGUAGE`] when absent; see [`FilmMeta::language`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The video codecs of the ladder, from [`VIDEO_CODECS`]; H.264 alone when absent.
    /// `monsoon ingest --codecs` overrides it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codecs: Vec<String>,
    /// Poster and backdrop uploaded in the studio, which the pages show instead of the
    /// version's. Not a `film.toml` key (a file there names its images by path, above): set
    /// only by an upload (`crate::artwork`), kept by metadata edits and by re-ingests without
    /// a `film.toml`.
    #[serde(default, skip_serializing_if = "Artwork::is_empty")]
    pub artwork: Artwork,
}

/// The codecs a ladder may be encoded in (`film.toml`'s `codecs`, `monsoon ingest --codecs`):
/// H.264 always, AV1 beside it on request.
pub const VIDEO_CODECS: &[&str] = &["h264", "av1"];

/// The soundtrack's language when `film.toml` names none: Monsoon's audience is Vietnamese.
pub const DEFAULT_LANGUAGE: &str = "vi";

/// A rung an operator asks for in `film.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LadderRung {
    /// Picture height in pixels (the width follows the film's aspect ratio).
    pub height: u32,
    /// Average video bit rate in kbit/s.
    pub kbps: u64,
}

impl FilmMeta {
    /// Reads and checks a `film.toml`.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        Self::read_toml_file(path).map(|(meta, _)| meta)
    }

    /// Reads and checks a `film.toml`, and returns its text too (a queued job keeps it).
    pub fn read_toml_file(path: &Path) -> Result<(Self, String)> {
        use std::io::Read as _;
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let meta_error = |message| Error::Meta {
            path: path.display().to_string(),
            message,
        };
        // One byte past the limit is enough to refuse the file, whatever it is (a FIFO, a
        // device, a file still growing): never more is read.
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(meta_error("file not found".into()));
            }
            Err(e) => return Err(io(e)),
        };
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let mut bytes = Vec::new();
        file.take(limits::FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > limits::FILE_BYTES {
            let limit = limits::FILE_BYTES;
            return Err(meta_error(match size {
                Some(n) => format!("the file is {n} bytes long; the limit is {limit} bytes"),
                None => format!("the file is longer than the limit of {limit} bytes"),
            }));
        }
        let text =
            String::from_utf8(bytes).map_err(|e| meta_error(format!("not UTF-8 text ({e})")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let meta = Self::from_toml_in(&text, base, &path.display().to_string())?;
        Ok((meta, text))
    }

    /// Parses and checks `film.toml` text whose image paths are relative to `base`; errors
    /// name the file as `shown`.
    pub fn from_toml_in(text: &str, base: &Path, shown: &str) -> Result<Self> {
        let fields_error = |errors| Error::Fields {
            path: shown.to_owned(),
            errors,
        };
        let mut meta = Self::parse_toml(text).map_err(fields_error)?;
        // Image paths are relative to the file that names them.
        let mut missing = Vec::new();
        for (key, image) in [
            ("poster", &mut meta.poster),
            ("backdrop", &mut meta.backdrop),
        ] {
            let Some(image) = image else { continue };
            *image = base.join(&*image);
            if !image.is_file() {
                missing.push(FieldError::new(
                    key,
                    format!(
                        "`{key}` names {}, which is not a file (paths are relative to film.toml)",
                        image.display()
                    ),
                ));
            }
        }
        if !missing.is_empty() {
            return Err(fields_error(missing));
        }
        Ok(meta)
    }

    /// Parses `film.toml` text; the error lists every broken rule, each naming its key and
    /// the expected form ([`FilmMeta::parse_toml`] gives them one by one).
    pub fn from_toml(text: &str) -> std::result::Result<Self, String> {
        Self::parse_toml(text).map_err(|errors| crate::rules::describe(&errors))
    }

    /// The soundtrack's language: `language`, or [`DEFAULT_LANGUAGE`].
    pub fn language(&self) -> &str {
        self.language.as_deref().unwrap_or(DEFAULT_LANGUAGE)
    }

    /// Metadata for a film ingested without a `film.toml`: the slug is the title.
    pub fn untitled(slug: &str) -> Self {
        Self {
            title: Localized {
                vi: slug.to_owned(),
                en: slug.to_owned(),
            },
            ..Self::default()
        }
    }
}

/// A film as the catalog knows it: metadata plus the version being served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Film {
    pub slug: String,
    pub meta: FilmMeta,
    pub current: PublishedVersion,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Film {
    /// Path of the HLS multivariant playlist, relative to the site root.
    pub fn hls_url(&self) -> String {
        format!("/media/{}/{}", self.slug, crate::MULTIVARIANT_PLAYLIST)
    }

    /// Path of the DASH manifest, relative to the site root.
    pub fn dash_url(&self) -> String {
        format!("/media/{}/{}", self.slug, crate::DASH_MANIFEST)
    }

    /// Path of the poster image, when the version has one: a stable URL, not under the
    /// version, so that the premiere page can show it without naming a version that is not
    /// released yet (the server maps it to the current version's file).
    ///
    /// A poster uploaded in the studio comes first ([`art_url`]).
    pub fn poster_url(&self) -> Option<String> {
        if let Some(url) = art_url(&self.slug, &self.meta, ArtKind::Poster) {
            return Some(url);
        }
        self.current
            .poster
            .as_ref()
            .map(|p| format!("/media/{}/{p}", self.slug))
    }

    /// Path of the backdrop image, when the version has one (stable, as the poster's), or one
    /// was uploaded in the studio.
    pub fn backdrop_url(&self) -> Option<String> {
        if let Some(url) = art_url(&self.slug, &self.meta, ArtKind::Backdrop) {
            return Some(url);
        }
        self.current
            .backdrop
            .as_ref()
            .map(|p| format!("/media/{}/{p}", self.slug))
    }

    /// Whether `file` is the poster's or the backdrop's name: what is public before the
    /// premiere, at its stable URL.
    pub fn is_artwork(&self, file: &str) -> bool {
        [&self.current.poster, &self.current.backdrop]
            .into_iter()
            .any(|name| name.as_deref() == Some(file))
    }

    /// Path of the seek-preview thumbnails index, when the version has one.
    pub fn thumbnails_url(&self) -> Option<String> {
        self.current
            .thumbnails
            .as_ref()
            .map(|p| format!("/media/{}/{}/{p}", self.slug, self.current.version))
    }

    /// The directories (`/media/<slug>/<version>/<rendition>/`) of the lowest video rung and
    /// the lowest audio rendition: the pair every player starts on (packaging pairs the floor
    /// with the smallest sound, HLS authoring spec §9.21), whose first segments the watch page
    /// fetches before the player has loaded.
    pub fn start_renditions(&self) -> Vec<String> {
        // The H.264 floor and its AAC sound (RFC 6381 `avc1`/`avc3`, `mp4a`), where a film has
        // them: with an AV1 ladder beside, the lowest rates are AV1's and Opus's, which native
        // HLS does not play and hls.js plays only where the browser decodes them
        // (docs/ARCHITECTURE.md, "The player").
        let lowest = |kind, prefixes: &[&str]| {
            let of_kind = || {
                self.current
                    .renditions
                    .iter()
                    .filter(move |r| r.kind == kind)
            };
            of_kind()
                .filter(|r| prefixes.iter().any(|p| r.codecs.starts_with(p)))
                .min_by_key(|r| r.average_bitrate)
                .or_else(|| of_kind().min_by_key(|r| r.average_bitrate))
        };
        [
            lowest(RenditionKind::Video, &["avc1.", "avc3."]),
            lowest(RenditionKind::Audio, &["mp4a."]),
        ]
        .into_iter()
        .flatten()
        .map(|r| format!("/media/{}/{}/{}/", self.slug, self.current.version, r.name))
        .collect()
    }

    /// True while the free release (premiere) is still ahead.
    pub fn is_before_premiere(&self, now: DateTime<Utc>) -> bool {
        self.meta.free_release.is_some_and(|at| now < at)
    }
}

/// The URL of the artwork of `kind` uploaded in the studio for `slug`, if there is one:
/// `/art/<slug>/<file>`, served from the media store by its content-addressed name.
pub fn art_url(slug: &str, meta: &FilmMeta, kind: ArtKind) -> Option<String> {
    let file = match kind {
        ArtKind::Poster => meta.artwork.poster.as_ref(),
        ArtKind::Backdrop => meta.artwork.backdrop.as_ref(),
    }?;
    kind.is_file_name(file)
        .then(|| format!("/art/{slug}/{file}"))
}

/// A film created with its metadata and no media yet: the studio's first step, before a
/// master is uploaded and ingested into it ([`crate::FilmRepository::create_draft`]). Not
/// listed publicly; nothing is served for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilmDraft {
    pub slug: String,
    pub meta: FilmMeta,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One immutable packaging of a film, stored under `media/<slug>/<version>/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedVersion {
    /// Directory name, unique per ingest, e.g. `v20261122T072000123Z`.
    pub version: String,
    pub published_at: DateTime<Utc>,
    pub duration_s: f64,
    /// Poster file name inside the version directory.
    #[serde(default)]
    pub poster: Option<String>,
    /// Backdrop file name inside the version directory.
    #[serde(default)]
    pub backdrop: Option<String>,
    /// WebVTT index of the seek-preview sprites, inside the version directory.
    #[serde(default)]
    pub thumbnails: Option<String>,
    /// Languages with subtitles.
    #[serde(default)]
    pub subtitles: Vec<String>,
    pub renditions: Vec<Rendition>,
}

/// A rung of the ladder, or an audio rendition, as measured after packaging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rendition {
    pub name: String,
    pub kind: RenditionKind,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    pub codecs: String,
    pub average_bitrate: u64,
    pub peak_bitrate: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RenditionKind {
    Video,
    Audio,
}

/// The bounds of `film.toml` (documented in `docs/film.example.toml`). Text is counted in
/// characters (Unicode scalar values, at most 4 bytes each in UTF-8), so a Vietnamese title
/// has the room an English one has. Every page, API answer and calendar event built from a
/// film is then bounded too: a 5 MB title once made a 28 MB film page.
pub mod limits {
    use std::ops::RangeInclusive;

    /// Bytes of `film.toml` read at most. A file with every field at its limit, written
    /// plainly in UTF-8, fits.
    pub const FILE_BYTES: usize = 256 * 1024;
    /// `title.vi`, `title.en`, `original_title`.
    pub const TITLE_CHARS: usize = 200;
    /// `synopsis.vi`, `synopsis.en`.
    pub const SYNOPSIS_CHARS: usize = 5_000;
    /// One name of `director`, `writer` or `cast`; `production_company`.
    pub const NAME_CHARS: usize = 100;
    /// One entry of `genres`; `country`; `age_rating`; `language` (whose rule is stricter).
    pub const LABEL_CHARS: usize = 40;
    /// Entries of `director` and of `writer`.
    pub const CREW_NAMES: usize = 20;
    /// Entries of `cast`.
    pub const CAST_NAMES: usize = 100;
    /// Entries of `genres`.
    pub const GENRES: usize = 10;
    /// `trailer`, a slug.
    pub const SLUG_CHARS: usize = 64;
    /// `poster` and `backdrop` paths (Linux's `PATH_MAX`).
    pub const IMAGE_PATH_BYTES: usize = 4096;
    /// `[[ladder]]` entries.
    pub const RUNGS: usize = 16;
    /// `ladder[].height`, pixels: up to the tallest picture a master may have.
    pub const RUNG_HEIGHT: RangeInclusive<u32> = 2..=4320;
    /// `ladder[].kbps`: up to 200 Mbit/s, beyond any H.264 level a player decodes.
    pub const RUNG_KBPS: RangeInclusive<u64> = 1..=200_000;
}

/// Slugs appear in URLs and directory names, so they are kept to a safe alphabet.
pub fn validate_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= limits::SLUG_CHARS
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Slug(slug.to_owned()))
    }
}

/// What [`is_language_tag`] accepts, in words, for error messages.
pub const LANGUAGE_TAG_RULE: &str = "two or three lowercase letters, optionally a hyphen and a \
     two-letter region in capitals, e.g. vi, en, pt-BR";

/// A language tag as Monsoon takes them: a BCP 47 (RFC 5646) primary language subtag of two or
/// three lowercase letters (ISO 639), optionally a hyphen and a region subtag of two capitals
/// (ISO 3166-1), e.g. `vi`, `en`, `pt-BR`. A subset of BCP 47 on purpose: these tags name files
/// (`subs/<lang>.vtt`) and go into manifest attributes as they are, so they hold nothing but
/// letters and one hyphen.
pub fn is_language_tag(tag: &str) -> bool {
    let primary_ok =
        |p: &str| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase());
    match tag.split_once('-') {
        Some((primary, region)) => {
            primary_ok(primary)
                && region.len() == 2
                && region.bytes().all(|b| b.is_ascii_uppercase())
        }
        None => primary_ok(tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["a", "mua-do", "film-2025", "x1"] {
            assert!(validate_slug(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a/b",
            "..",
            "a b",
            "phim-đỏ",
            &"a".repeat(65),
        ] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn language_tags() {
        for good in ["vi", "en", "fil", "pt-BR", "zh-TW"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "", "v", "viet", "VI", "vi-", "vi-vn", "vi-VNM", "vi_VN", "-VN", "vi-VN-x", "../x",
            "en\"",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn example_film_toml_parses() {
        let text = include_str!("../../../docs/film.example.toml");
        let meta = FilmMeta::from_toml(text).unwrap();
        assert!(!meta.title.vi.is_empty());
        assert!(meta.free_release.is_some());
        assert!(!meta.cast.is_empty());
        assert_eq!(meta.codecs, ["h264", "av1"]);
    }

    #[test]
    fn the_language_is_a_tag_and_vietnamese_by_default() {
        let meta = FilmMeta::from_toml("title = { vi = \"A\" }").unwrap();
        assert_eq!((meta.language.as_deref(), meta.language()), (None, "vi"));
        let meta = FilmMeta::from_toml("title = { vi = \"A\" }\nlanguage = \"pt-BR\"").unwrap();
        assert_eq!(meta.language(), "pt-BR");
        for bad in ["Vietnamese", "vi_VN", "", "vi\\\"x"] {
            let text = format!("title = {{ vi = \"A\" }}\nlanguage = \"{bad}\"");
            let err = FilmMeta::from_toml(&text).unwrap_err();
            assert!(
                err.contains("`language` is \"")
                    && err.contains(
                        "it must be a BCP 47 language tag: two or three lowercase letters"
                    ),
                "{err}"
            );
        }
        let err = FilmMeta::from_toml(&format!(
            "title = {{ vi = \"A\" }}\nlanguage = \"{}\"",
            "x".repeat(41)
        ))
        .unwrap_err();
        assert!(
            err.contains("`language` is 41 characters long; the limit is 40"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = FilmMeta::from_toml("title = { vi = \"A\" }\ndirectr = [\"B\"]").unwrap_err();
        assert!(err.contains("directr"), "{err}");
    }

    #[test]
    fn a_title_is_required() {
        let err = FilmMeta::from_toml("genres = [\"War\"]").unwrap_err();
        assert!(err.contains("title"), "{err}");
    }

    #[test]
    fn every_field_is_bounded_and_the_error_names_key_length_and_limit() {
        let long = |n: usize| "đ".repeat(n);
        let cases = [
            (
                format!("title = {{ vi = \"{}\" }}", long(201)),
                "`title.vi` is 201 characters long; the limit is 200",
            ),
            (
                format!(
                    "title = {{ en = \"A\" }}\nsynopsis = {{ en = \"{}\" }}",
                    long(5001)
                ),
                "`synopsis.en` is 5001 characters long; the limit is 5000",
            ),
            (
                format!(
                    "title = {{ vi = \"A\" }}\ncast = [{}]",
                    vec!["\"X\""; 101].join(",")
                ),
                "`cast` lists 101 entries; the limit is 100",
            ),
            (
                format!(
                    "title = {{ vi = \"A\" }}\ndirector = [\"B\", \"{}\"]",
                    long(101)
                ),
                "`director[1]` is 101 characters long; the limit is 100",
            ),
            (
                format!("title = {{ vi = \"A\" }}\ngenres = [\"{}\"]", long(41)),
                "`genres[0]` is 41 characters long; the limit is 40",
            ),
            (
                "title = { vi = \"A\" }\ntrailer = \"../x\"".to_owned(),
                "`trailer`: slug `../x` is not valid",
            ),
            (
                "title = { vi = \"A\" }\ncodecs = [\"h264\", \"vp9\"]".to_owned(),
                "`codecs[1]` is `vp9`; the codecs are h264, av1",
            ),
            (
                "title = { vi = \"A\" }\ncodecs = [\"av1\"]".to_owned(),
                "`codecs` must include h264",
            ),
            (
                "title = { vi = \"A\" }\ncodecs = [\"h264\", \"h264\"]".to_owned(),
                "`codecs[1]`: `h264` is listed twice",
            ),
            (
                "title = { vi = \"A\" }\n[[ladder]]\nheight = 4000000000\nkbps = 1".to_owned(),
                "`ladder[0].height` is 4000000000; it must be between 2 and 4320",
            ),
            (
                "title = { vi = \"A\" }\n[[ladder]]\nheight = 360\nkbps = 9223372036854775807"
                    .to_owned(),
                "`ladder[0].kbps` is 9223372036854775807; it must be between 1 and 200000",
            ),
        ];
        for (text, said) in cases {
            let err = FilmMeta::from_toml(&text).unwrap_err();
            assert!(err.contains(said), "{err}");
        }
        // At the limits, everything is accepted.
        let text = format!(
            "title = {{ vi = \"{}\", en = \"{}\" }}\nsynopsis = {{ vi = \"{}\" }}\ncast = [{}]",
            long(200),
            long(200),
            long(5000),
            vec![format!("\"{}\"", long(100)); 100].join(",")
        );
        assert!(text.len() < limits::FILE_BYTES);
        FilmMeta::from_toml(&text).unwrap();
    }

    #[test]
    fn one_line_fields_refuse_control_characters() {
        let err = FilmMeta::from_toml("title = { en = \"Red\\rDTSTART:1970\" }").unwrap_err();
        assert!(
            err.contains("`title.en` has a control character (U+000D) at character 4"),
            "{err}"
        );
        let err = FilmMeta::from_toml("title = { en = \"A\" }\ncast = [\"B\\u0000\"]").unwrap_err();
        assert!(err.contains("`cast[0]`"), "{err}");
        // A synopsis has paragraphs.
        let meta = FilmMeta::from_toml(
            "title = { en = \"A\" }\nsynopsis = { en = \"One.\\r\\n\\tTwo.\" }",
        )
        .unwrap();
        assert_eq!(meta.synopsis.en, "One.\r\n\tTwo.");
        let err = FilmMeta::from_toml("title = { en = \"A\" }\nsynopsis = { en = \"\\u001b[2J\" }")
            .unwrap_err();
        assert!(
            err.contains("`synopsis.en` has a control character (U+001B)"),
            "{err}"
        );
    }

    #[test]
    fn the_file_read_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("film.toml");
        let mut text = "title = { vi = \"A\" }\n".to_owned();
        text.push_str(&"# padding\n".repeat(30_000));
        std::fs::write(&path, &text).unwrap();
        let err = FilmMeta::from_toml_file(&path).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "the file is {} bytes long; the limit is 262144 bytes",
                text.len()
            )),
            "{err}"
        );
        assert!(FilmMeta::from_toml(&text).is_err());
    }

    #[test]
    fn localized_falls_back() {
        let t = Localized {
            vi: "Mưa đỏ".into(),
            en: String::new(),
        };
        assert_eq!(t.get("en"), "Mưa đỏ");
        assert_eq!(t.get("vi"), "Mưa đỏ");
    }
}
