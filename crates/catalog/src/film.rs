use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

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
/// Unknown keys in `film.toml` are refused by [`FilmMeta::from_toml`] (not by
/// `deny_unknown_fields`, which would also forbid the API from adding fields beside these).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilmMeta {
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
    /// Vietnamese classification (`P`, `K`, `T13`, `T16`, `T18`) or any local label.
    #[serde(default)]
    pub age_rating: Option<String>,
    /// Slug of another ingested asset that is this film's trailer.
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
}

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
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut meta = Self::from_toml(&text).map_err(|message| Error::Meta {
            path: path.display().to_string(),
            message,
        })?;
        // Image paths are relative to the file that names them.
        let base = path.parent().unwrap_or(Path::new("."));
        for image in [&mut meta.poster, &mut meta.backdrop].into_iter().flatten() {
            *image = base.join(&*image);
            if !image.is_file() {
                return Err(Error::Meta {
                    path: path.display().to_string(),
                    message: format!("image {} does not exist", image.display()),
                });
            }
        }
        Ok(meta)
    }

    /// Parses `film.toml` text; the error names the bad key.
    pub fn from_toml(text: &str) -> std::result::Result<Self, String> {
        let mut unknown = Vec::new();
        let meta: FilmMeta = serde_ignored::deserialize(toml::Deserializer::new(text), |path| {
            unknown.push(path.to_string());
        })
        .map_err(|e| e.to_string())?;
        if let Some(key) = unknown.first() {
            return Err(format!(
                "unknown key `{key}`; the keys are documented in docs/film.example.toml"
            ));
        }
        if meta.title.vi.is_empty() && meta.title.en.is_empty() {
            return Err("`title.vi` or `title.en` is required".into());
        }
        Ok(meta)
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
    pub fn poster_url(&self) -> Option<String> {
        self.current
            .poster
            .as_ref()
            .map(|p| format!("/media/{}/{p}", self.slug))
    }

    /// Path of the backdrop image, when the version has one (stable, as the poster's).
    pub fn backdrop_url(&self) -> Option<String> {
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

    /// True while the free release (premiere) is still ahead.
    pub fn is_before_premiere(&self, now: DateTime<Utc>) -> bool {
        self.meta.free_release.is_some_and(|at| now < at)
    }
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

/// Slugs appear in URLs and directory names, so they are kept to a safe alphabet.
pub fn validate_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
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
    fn example_film_toml_parses() {
        let text = include_str!("../../../docs/film.example.toml");
        let meta = FilmMeta::from_toml(text).unwrap();
        assert!(!meta.title.vi.is_empty());
        assert!(meta.free_release.is_some());
        assert!(!meta.cast.is_empty());
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
    fn localized_falls_back() {
        let t = Localized {
            vi: "Mưa đỏ".into(),
            en: String::new(),
        };
        assert_eq!(t.get("en"), "Mưa đỏ");
        assert_eq!(t.get("vi"), "Mưa đỏ");
    }
}
