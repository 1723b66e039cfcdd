//! Packaging: one set of CMAF fMP4 segments, referenced by both an HLS multivariant playlist
//! (RFC 8216) and a DASH MPD (ISO/IEC 23009-1).
//!
//! ffmpeg writes each rendition's init segment, media segments and media playlist. The jobs
//! after it, one module each: `measure` reads what was written (durations from the media
//! playlists, sizes from the files); `hls` and `dash` write the two top-level manifests from
//! those measurements, never from the targets; `webvtt` writes the seek-preview index. The
//! manifests' file names are `monsoon_catalog::{MULTIVARIANT_PLAYLIST, DASH_MANIFEST}`, the
//! names the origin serves them by.

mod dash;
#[cfg(test)]
mod fixture;
mod hls;
mod measure;
mod webvtt;

pub use dash::{mpd, write_mpd};
pub use hls::{
    IFRAME_PLAYLIST, exact_extinf_us, family_files, family_playlists, iframe_playlist,
    multivariant_playlist, parse_media_playlist, parse_multivariant, rewrite_extinf,
    subtitle_playlist, write_media_playlist, write_multivariant,
};
pub use measure::{
    Budget, Kind, MeasuredRendition, MeasuredSegment, measure, measure_audio, measure_ladder,
};
/// Edits of a published version's manifests (`crate::tracks`).
pub mod edit {
    pub use super::dash::{
        add_audio_language as add_mpd_audio_language, add_subtitles as add_mpd_subtitles,
        retarget_mpd,
    };
    pub use super::hls::{add_audio_language, add_subtitles, retarget};
}
pub use webvtt::{THUMBNAILS_VTT, thumbnails_vtt, vtt_time};

/// Directory of the WebVTT subtitles and their playlists, which both manifests point into.
pub const SUBTITLES_DIR: &str = "subs";

/// The name of a language in that language, for menus.
pub fn language_name(code: &str) -> &str {
    match code {
        "vi" => "Tiếng Việt",
        "en" => "English",
        "fr" => "Français",
        "zh" => "中文",
        "ko" => "한국어",
        "ja" => "日本語",
        other => other,
    }
}
