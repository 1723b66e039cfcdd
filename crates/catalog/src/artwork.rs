//! Artwork uploaded in the studio: a film's poster and backdrop, replaced without re-ingesting.
//!
//! An uploaded image is decoded, checked and re-encoded by an [`ImageTool`] (ffmpeg, in
//! `monsoon-media`; the server holds it as a trait object, so the origin crate never runs
//! ffmpeg itself) at the size the pages show it ([`ArtKind::max_size`]), then stored in the
//! [`crate::MediaStore`] under `<slug>/art/<kind>.<hash>.jpg` and named in the film's metadata
//! ([`Artwork`]). The name carries a hash of the bytes, so the URL of an image never changes
//! its content and is cached for a year; a new upload is a new name.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// The directory of a film's uploaded artwork in the media store, beside its versions:
/// `<slug>/art/`. Not a version: sweeping a film's unreferenced versions keeps it.
pub const ART_DIR: &str = "art";

/// Bytes an uploaded image may have (a 4K JPEG or PNG key art fits).
pub const UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Pixels an uploaded image may have on a side (checked before it is decoded).
pub const MAX_SIDE: u32 = 8192;

/// Pixels an uploaded image must have at least on its shorter side.
pub const MIN_SIDE: u32 = 160;

/// The artwork the studio stores for a film, by file name under `<slug>/art/`; `None`: the
/// published version's (a frame of the film, or `film.toml`'s image).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Artwork {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backdrop: Option<String>,
}

impl Artwork {
    pub fn is_empty(&self) -> bool {
        self.poster.is_none() && self.backdrop.is_none()
    }
}

/// Which image of a film.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtKind {
    Poster,
    Backdrop,
}

impl ArtKind {
    pub fn name(self) -> &'static str {
        match self {
            ArtKind::Poster => "poster",
            ArtKind::Backdrop => "backdrop",
        }
    }

    /// The largest size stored, width × height, the aspect ratio kept: twice the CSS pixels
    /// the pages give it (`crates/server/templates`: cards and the film page show the poster
    /// 320 px wide; the film page and the home hero show the backdrop across the page, 1280 px
    /// in their markup, up to 1920 on a full-HD screen), for screens of 2 device pixels a CSS
    /// pixel. Smaller images are not enlarged.
    pub fn max_size(self) -> (u32, u32) {
        match self {
            ArtKind::Poster => (640, 960),
            ArtKind::Backdrop => (1920, 1080),
        }
    }

    /// The file name of an image of this kind with content hash `hash` (hex).
    pub fn file_name(self, hash: &str) -> String {
        format!("{}.{hash}.jpg", self.name())
    }

    /// Whether `file` is a name [`ArtKind::file_name`] makes for this kind: the only names
    /// the art route serves.
    pub fn is_file_name(self, file: &str) -> bool {
        file.strip_prefix(self.name())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.strip_suffix(".jpg"))
            .is_some_and(|hash| {
                hash.len() == 16
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
    }
}

/// Turns uploaded bytes into stored artwork.
#[async_trait]
pub trait ImageTool: Send + Sync + std::fmt::Debug {
    /// Decodes `bytes` (JPEG, PNG or WebP), checks it ([`MIN_SIDE`], [`MAX_SIDE`]) and returns
    /// it as a JPEG no larger than `max` (width, height), the aspect ratio kept. The error is
    /// for the operator: it says what the image is and the rule it broke.
    async fn artwork(
        &self,
        bytes: bytes::Bytes,
        max: (u32, u32),
    ) -> Result<Vec<u8>, crate::rules::Refusal>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn art_names_are_the_kind_a_hash_and_jpg() {
        let name = ArtKind::Poster.file_name("0123456789abcdef");
        assert_eq!(name, "poster.0123456789abcdef.jpg");
        assert!(ArtKind::Poster.is_file_name(&name));
        assert!(!ArtKind::Backdrop.is_file_name(&name));
        for bad in [
            "poster.jpg",
            "poster.0123456789ABCDEF.jpg",
            "poster.0123456789abcde.jpg",
            "poster.0123456789abcdef.png",
            "poster.../../x.jpg",
        ] {
            assert!(!ArtKind::Poster.is_file_name(bad), "{bad}");
        }
    }
}
