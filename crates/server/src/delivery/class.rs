//! The kinds of object under `/media` and what each kind means for HTTP: media type,
//! caching (`docs/ORIGIN.md`) and compression.

use monsoon_catalog::is_multivariant;

/// What kind of object a path names: decides media type, caching and compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClass {
    Multivariant,
    Mpd,
    MediaPlaylist,
    Segment,
    InitSegment,
    Image,
    Text,
}

impl ObjectClass {
    /// Every class, in declaration order: `class as usize` is its index here.
    pub const ALL: [ObjectClass; 7] = [
        ObjectClass::Multivariant,
        ObjectClass::Mpd,
        ObjectClass::MediaPlaylist,
        ObjectClass::Segment,
        ObjectClass::InitSegment,
        ObjectClass::Image,
        ObjectClass::Text,
    ];

    pub fn of(file: &str) -> Option<Self> {
        let ext = file.rsplit_once('.').map(|(_, e)| e)?;
        Some(match ext {
            "m3u8" if is_multivariant(file) => ObjectClass::Multivariant,
            "m3u8" => ObjectClass::MediaPlaylist,
            "mpd" => ObjectClass::Mpd,
            "m4s" => ObjectClass::Segment,
            "mp4" => ObjectClass::InitSegment,
            "jpg" | "jpeg" | "png" | "webp" => ObjectClass::Image,
            "vtt" => ObjectClass::Text,
            _ => return None,
        })
    }

    /// Text, sent gzipped to clients that accept it; media never is (gzip over a segment breaks
    /// byte ranges in caches and gains nothing on compressed video).
    pub fn is_compressible(self) -> bool {
        matches!(
            self,
            ObjectClass::Multivariant
                | ObjectClass::Mpd
                | ObjectClass::MediaPlaylist
                | ObjectClass::Text
        )
    }

    /// Label used in metrics.
    pub fn label(self) -> &'static str {
        match self {
            ObjectClass::Multivariant => "multivariant",
            ObjectClass::Mpd => "mpd",
            ObjectClass::MediaPlaylist => "playlist",
            ObjectClass::Segment => "segment",
            ObjectClass::InitSegment => "init",
            ObjectClass::Image => "image",
            ObjectClass::Text => "text",
        }
    }

    pub fn content_type(self, file: &str) -> &'static str {
        match self {
            ObjectClass::Multivariant | ObjectClass::MediaPlaylist => {
                "application/vnd.apple.mpegurl"
            }
            ObjectClass::Mpd => "application/dash+xml",
            ObjectClass::Segment => "video/iso.segment",
            ObjectClass::InitSegment => "video/mp4",
            ObjectClass::Image if file.ends_with(".png") => "image/png",
            ObjectClass::Image if file.ends_with(".webp") => "image/webp",
            ObjectClass::Image => "image/jpeg",
            ObjectClass::Text => "text/vtt; charset=utf-8",
        }
    }

    /// Cache lifetimes (`docs/ORIGIN.md`): versioned objects never change; the top-level
    /// manifests point at the current version and change on re-ingest.
    pub fn cache_control(self) -> &'static str {
        match self {
            ObjectClass::Multivariant | ObjectClass::Mpd => {
                "public, max-age=60, stale-while-revalidate=300"
            }
            ObjectClass::MediaPlaylist => "public, max-age=86400",
            ObjectClass::Segment
            | ObjectClass::InitSegment
            | ObjectClass::Image
            | ObjectClass::Text => "public, max-age=31536000, immutable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectClass;

    #[test]
    fn every_class_is_at_its_index() {
        for (i, class) in ObjectClass::ALL.into_iter().enumerate() {
            assert_eq!(class as usize, i, "{class:?}");
        }
    }

    #[test]
    fn classes() {
        assert_eq!(
            ObjectClass::of("master.m3u8"),
            Some(ObjectClass::Multivariant)
        );
        for family in ["master-h264.m3u8", "master-av1.m3u8"] {
            assert_eq!(ObjectClass::of(family), Some(ObjectClass::Multivariant));
        }
        assert_eq!(
            ObjectClass::of("master-vp9.m3u8"),
            Some(ObjectClass::MediaPlaylist)
        );
        assert_eq!(
            ObjectClass::of("v720/index.m3u8"),
            Some(ObjectClass::MediaPlaylist)
        );
        assert_eq!(
            ObjectClass::of("v720/seg_00001.m4s"),
            Some(ObjectClass::Segment)
        );
        assert_eq!(
            ObjectClass::of("v720/init.mp4"),
            Some(ObjectClass::InitSegment)
        );
        assert_eq!(ObjectClass::of("secret.db"), None);
        assert_eq!(ObjectClass::of("noext"), None);
        assert!(ObjectClass::Segment.cache_control().contains("immutable"));
        assert!(
            ObjectClass::Multivariant
                .cache_control()
                .contains("stale-while-revalidate")
        );
    }
}
