//! The player's page (`/watch/{slug}`): the player's settings and strings, the segments to
//! fetch first, the subtitles, and the ways to save the film for offline viewing.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use monsoon_catalog::Film;

use super::headers::START_JS;
use super::{Card, Chrome, find, page_or_error, render, script_json};
use crate::i18n::{Locale, Messages};
use crate::{ApiError, AppState};

#[derive(Template)]
#[template(path = "watch.html")]
struct WatchPage {
    t: &'static Messages,
    c: Chrome,
    card: Card,
    hls_url: String,
    /// What a viewer can save for offline viewing, with its size.
    offline: Vec<OfflineOption>,
    offline_json: String,
    /// What [`START_JS`] fetches: the first segments of [`Film::start_renditions`].
    start_json: String,
    start_js: &'static str,
    player_js: String,
    thumbnails: Option<String>,
    /// (language code, WebVTT URL)
    subtitles: Vec<(String, String)>,
    player_json: String,
}

/// A way to save a film for offline viewing (`web/src/offline.js`): the data saver's rung with
/// its sound, or the sound alone.
#[derive(Debug)]
struct OfflineOption {
    kind: &'static str,
    label: String,
    /// About how large, from the renditions' average bit rates and the running time.
    bytes: u64,
    size: String,
}

fn offline_options(film: &Film, locale: Locale, t: &Messages) -> Vec<OfflineOption> {
    use monsoon_catalog::RenditionKind;
    let lowest = |kind| {
        film.current
            .renditions
            .iter()
            .filter(|r| r.kind == kind)
            .min_by_key(|r| r.average_bitrate)
    };
    let bytes = |bits_per_s: u64| (bits_per_s as f64 * film.current.duration_s / 8.0) as u64;
    let mut options = Vec::new();
    let sound = lowest(RenditionKind::Audio);
    if let (Some(video), Some(sound)) = (lowest(RenditionKind::Video), sound) {
        let size = bytes(video.average_bitrate + sound.average_bitrate);
        options.push(OfflineOption {
            kind: "saver",
            label: format!("{} · {}p", t.data_saver, video.height),
            bytes: size,
            size: megabytes(size, locale),
        });
    }
    if let Some(sound) = sound {
        let size = bytes(sound.average_bitrate);
        options.push(OfflineOption {
            kind: "audio",
            label: t.audio_only.clone(),
            bytes: size,
            size: megabytes(size, locale),
        });
    }
    options
}

/// "12,4 MB" in Vietnamese, "12.4 MB" in English (decimal megabytes, as phones show them).
fn megabytes(bytes: u64, locale: Locale) -> String {
    let text = format!("{:.1} MB", bytes as f64 / 1e6);
    match locale.lang {
        crate::i18n::Lang::Vi => text.replace('.', ","),
        crate::i18n::Lang::En => text,
    }
}

pub(super) async fn watch_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    locale: Locale,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let page = watch_inner(&state, &slug, locale, &headers).await;
    page_or_error(&state, locale, &uri, page)
}

async fn watch_inner(
    state: &AppState,
    slug: &str,
    locale: Locale,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let film = find(state, slug).await?;
    if film.is_before_premiere(Utc::now()) {
        return Ok(Redirect::to(&format!("/films/{slug}")).into_response());
    }
    let t = locale.lang.messages();
    // The browser's data-saving mode (the `Save-Data` client hint, RFC 8942 §2 and the Save-Data
    // specification of the WICG): the data saver starts on unless the viewer chose otherwise.
    let save_data = headers
        .get("save-data")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("on"));
    let version = &film.current.version;
    let subtitles = film
        .current
        .subtitles
        .iter()
        .map(|lang| {
            (
                lang.clone(),
                format!("/media/{slug}/{version}/subs/{lang}.vtt"),
            )
        })
        .collect();
    let player_json = script_json(&serde_json::json!({
        "film": slug,
        "duration_s": film.current.duration_s,
        // The proof-of-work worker and the SHA-256 it loads (web/src/proof.js).
        "proof_worker": state.assets.url("proof.js"),
        "sha256_js": state.assets.url("sha256.js"),
        // Loaded by the player only when it needs it (docs/ARCHITECTURE.md, "The player").
        "hls_js": state.assets.url("hls.js"),
        "save_data": save_data,
        // The offline section's script, loaded by the player after the first frame.
        "offline_js": state.assets.url("offline.js"),
        "strings": {
            "play": t.play, "pause": t.pause, "mute": t.mute, "unmute": t.unmute,
            "auto": t.auto, "audio_only": t.audio_only, "off": t.subtitles_off,
            "resumed": t.resumed, "network_error": t.network_error,
            "playback_failed": t.playback_failed,
        },
    }));
    let chrome = Chrome::new(state, locale, &format!("/watch/{slug}"));
    let c_css = chrome.css.clone();
    let page = WatchPage {
        t,
        c: chrome,
        hls_url: film.hls_url(),
        start_json: script_json(&serde_json::json!({
            "film": slug,
            "duration_s": film.current.duration_s,
            "renditions": film.start_renditions(),
            "segment_s": monsoon_catalog::SEGMENT_SECONDS,
            "segment_pattern": monsoon_catalog::SEGMENT_PATTERN,
        })),
        start_js: START_JS,
        offline: offline_options(&film, locale, t),
        offline_json: script_json(&serde_json::json!({
            "film": slug,
            "sw": state.assets.sw_url(),
            // The page and what it loads, saved with the film so that it opens offline.
            "shell": [
                format!("/watch/{slug}"), c_css.clone(), state.assets.url("player.js"),
                state.assets.url("hls.js"), state.assets.url("proof.js"),
                state.assets.url("sha256.js"), state.assets.url("offline.js"),
            ],
            "strings": {
                "saving": t.offline_saving, "saved": t.offline_saved, "paused": t.offline_paused,
                "no_space": t.offline_no_space, "failed": t.offline_failed,
                "unsupported": t.offline_unsupported,
            },
        })),
        player_js: state.assets.url("player.js"),
        thumbnails: film.thumbnails_url(),
        subtitles,
        player_json,
        card: Card::new(&film, locale, Utc::now()),
    };
    let mut response = render(&page, locale)?;
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Cookie, Save-Data"));
    Ok(response)
}
