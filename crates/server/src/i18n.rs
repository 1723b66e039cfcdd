//! The viewer's language: Vietnamese by default, English by a switch remembered in a cookie.
//!
//! Every string of the UI lives in a message catalog (`locales/vi.toml`, `locales/en.toml`),
//! parsed into [`Messages`], whose fields templates name: a missing key is a compile error in
//! the template, a key missing from a catalog fails the tests below.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

/// A language of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Vi => Lang::En,
            Lang::En => Lang::Vi,
        }
    }

    fn parse(code: &str) -> Option<Lang> {
        match code {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn messages(self) -> &'static Messages {
        match self {
            Lang::Vi => &VI,
            Lang::En => &EN,
        }
    }
}

/// Every UI string, in one language.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Messages {
    pub lang_name: String,
    pub switch_to: String,
    pub switch_label: String,
    pub skip_to_content: String,
    pub site_tagline: String,
    pub date_format: String,
    pub datetime_format: String,
    pub home_title: String,
    pub featured: String,
    pub row_premieres: String,
    pub row_all: String,
    pub empty_catalog: String,
    pub watch_free: String,
    pub details: String,
    pub director: String,
    pub writer: String,
    pub cast: String,
    pub genres: String,
    pub runtime: String,
    pub minutes: String,
    pub cinema_release: String,
    pub free_release: String,
    pub age_rating: String,
    pub country: String,
    pub production_company: String,
    pub trailer: String,
    pub premiere_in: String,
    pub premiere_at: String,
    pub premiere_now: String,
    pub days: String,
    pub hours: String,
    pub mins: String,
    pub secs: String,
    pub remind_me: String,
    pub premiere_reminder: String,
    pub back_to_film: String,
    pub search_label: String,
    pub search_button: String,
    pub search_title: String,
    pub search_results: String,
    pub search_none: String,
    pub search_prompt: String,
    pub search_too_long: String,
    pub not_found_title: String,
    pub not_found_text: String,
    pub server_error_title: String,
    pub server_error_text: String,
    pub bad_request_title: String,
    pub back_to_catalog: String,
    pub continue_watching: String,
    pub time_left: String,
    pub watched: String,
    pub share: String,
    pub link_copied: String,
    pub copy_link: String,
    pub player_label: String,
    pub play: String,
    pub pause: String,
    pub mute: String,
    pub unmute: String,
    pub seek: String,
    pub quality: String,
    pub auto: String,
    pub audio_only: String,
    pub subtitles: String,
    pub subtitles_off: String,
    pub data_saver: String,
    pub fullscreen: String,
    pub settings: String,
    pub audio_language: String,
    pub speed: String,
    pub speed_normal: String,
    pub offline_title: String,
    pub offline_intro: String,
    pub offline_save: String,
    pub offline_about: String,
    pub offline_saving: String,
    pub offline_saved: String,
    pub offline_paused: String,
    pub offline_no_space: String,
    pub offline_failed: String,
    pub offline_delete: String,
    pub offline_unsupported: String,
    pub resumed: String,
    pub network_error: String,
    pub playback_failed: String,
    pub keyboard_help: String,
    pub admin_title: String,
    pub admin_sign_in: String,
    pub admin_token: String,
    pub admin_submit: String,
    pub admin_too_many: String,
    pub admin_name: String,
    pub admin_password: String,
    pub admin_wrong_password: String,
    pub admin_form_expired: String,
    pub admin_unavailable: String,
    pub admin_with_token: String,
    pub admin_no_account: String,
    pub admin_signed_in_as: String,
    pub audit_title: String,
    pub audit_at: String,
    pub audit_actor: String,
    pub audit_action: String,
    pub audit_subject: String,
    pub audit_detail: String,
    pub audit_empty: String,
    pub audit_older: String,
    pub audit_sign_in: String,
    pub audit_sign_in_failed: String,
    pub audit_sign_out: String,
    pub audit_operator_created: String,
    pub audit_operator_password_set: String,
    pub audit_operator_disabled: String,
    pub audit_operator_enabled: String,
    pub audit_job_submitted: String,
    pub audit_job_cancelled: String,
    pub audit_film_created: String,
    pub audit_film_updated: String,
    pub audit_film_published: String,
    pub audit_film_scheduled: String,
    pub audit_upload_created: String,
    pub audit_upload_cancelled: String,
    pub audit_track_added: String,
    pub admin_sign_out: String,
    pub admin_film: String,
    pub admin_updated: String,
    pub stat_concurrent: String,
    pub stat_peak: String,
    pub stat_views: String,
    pub stat_views_24h: String,
    pub stat_unique_24h: String,
    pub stat_playing_time: String,
    pub stat_startup: String,
    pub stat_rebuffer: String,
    pub stat_completion: String,
    pub stat_failures: String,
    pub stat_exits: String,
    pub stat_suspicious: String,
    pub chart_concurrent: String,
    pub chart_views: String,
    pub chart_startup: String,
    pub chart_rebuffer: String,
    pub chart_rungs: String,
    pub chart_codecs: String,
    pub codec_sessions: String,
    pub chart_last_hour: String,
    pub chart_last_day: String,
    pub chart_now: String,
    pub chart_egress: String,
    pub chart_origin_sent: String,
    pub chart_players_bytes: String,
    pub chart_offload: String,
    pub chart_errors: String,
    pub chart_networks: String,
    pub chart_watching_rungs: String,
    pub network_unknown: String,
    pub failed_client: String,
    pub failed_server: String,
    pub players_fatal: String,
    pub offload_none: String,
    pub since: String,
    pub codec_downloaded: String,
    pub csv_export: String,
    pub view_threshold_note: String,
    pub jobs_title: String,
    pub jobs_state: String,
    pub jobs_progress: String,
    pub jobs_speed: String,
    pub jobs_eta: String,
    pub jobs_attempts: String,
    pub jobs_message: String,
    pub jobs_empty: String,
    pub jobs_real_time: String,
    pub job_queued: String,
    pub job_running: String,
    pub job_done: String,
    pub job_failed: String,
    pub job_cancelled: String,
    /// What a job is doing, or how it ended: one template a `monsoon_catalog::Stage`.
    pub job_stages: JobStageMessages,
}

/// The text of each `monsoon_catalog::Stage`, named as its JSON names it; its values are
/// written in as `{value}` by the pages' scripts (`web/src/admin.js`, `web/src/studio.js`),
/// which show the stage's English message when a job has no stage.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobStageMessages {
    pub queued: String,
    pub claimed: String,
    pub taken_over: String,
    pub fetching: String,
    pub probing: String,
    pub transcoding: String,
    pub adding_track: String,
    pub publishing: String,
    pub published: String,
    pub failed: String,
    pub lease_lost: String,
    pub released: String,
    pub cancelled: String,
}

/// Checks templates as the pages' scripts fill them: `texts` (an object of templates by
/// name) has one for each of `values` (objects named by their `name`), and each names only
/// `{value}`s its object has. Panics naming the first that does not.
#[cfg(test)]
pub(crate) fn check_templates(what: &str, texts: &serde_json::Value, values: &[serde_json::Value]) {
    let texts = texts.as_object().unwrap();
    let names: std::collections::BTreeSet<&str> =
        values.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(texts.len(), names.len(), "{what}: a text for nothing");
    for value in values {
        let name = value["name"].as_str().unwrap();
        let text = texts[name]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no text for {name}"));
        assert!(!text.trim().is_empty(), "{what}: `{name}` is empty");
        // `{value}` → `value`: what the scripts write in.
        let named = text.split('{').skip(1).filter_map(|s| s.split_once('}'));
        for (field, _) in named {
            assert!(
                field != "name" && value.get(field).is_some(),
                "{what}: `{name}` names {{{field}}}, which it does not have"
            );
        }
    }
}

fn parse(name: &str, text: &str) -> Messages {
    toml::from_str(text).unwrap_or_else(|e| panic!("message catalog {name}: {e}"))
}

static VI: LazyLock<Messages> =
    LazyLock::new(|| parse("vi.toml", include_str!("../locales/vi.toml")));
static EN: LazyLock<Messages> =
    LazyLock::new(|| parse("en.toml", include_str!("../locales/en.toml")));

/// The cookie remembering the choice.
pub const COOKIE: &str = "lang";

/// The language of a request: `?lang=` (the switch, a plain link that works without
/// JavaScript), else the `lang` cookie, else Vietnamese. `switched` asks the page to set the
/// cookie.
#[derive(Debug, Clone, Copy)]
pub struct Locale {
    pub lang: Lang,
    pub switched: bool,
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Locale {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let asked = Query::<LangQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.lang)
            .and_then(|code| Lang::parse(&code));
        if let Some(lang) = asked {
            return Ok(Locale {
                lang,
                switched: true,
            });
        }
        let from_cookie = crate::cookie(&parts.headers, COOKIE).and_then(Lang::parse);
        Ok(Locale {
            lang: from_cookie.unwrap_or(Lang::Vi),
            switched: false,
        })
    }
}

impl Locale {
    /// `Set-Cookie` value remembering the language for a year.
    pub fn cookie(&self) -> String {
        format!(
            "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            self.lang.code()
        )
    }
}

/// Genres and countries as `film.toml` writes them, in Vietnamese, with their English names.
/// English pages show the English name of a value found here (compared after
/// [`crate::search::fold`], so `chiến tranh` and `Chiến Tranh` are one); any other value is
/// shown as written.
const LABELS: &[(&str, &str)] = &[
    // Genres
    ("Hành động", "Action"),
    ("Phiêu lưu", "Adventure"),
    ("Hoạt hình", "Animation"),
    ("Tiểu sử", "Biography"),
    ("Hài", "Comedy"),
    ("Hài hước", "Comedy"),
    ("Hình sự", "Crime"),
    ("Tội phạm", "Crime"),
    ("Tài liệu", "Documentary"),
    ("Chính kịch", "Drama"),
    ("Tâm lý", "Drama"),
    ("Gia đình", "Family"),
    ("Giả tưởng", "Fantasy"),
    ("Lịch sử", "History"),
    ("Kinh dị", "Horror"),
    ("Âm nhạc", "Music"),
    ("Nhạc kịch", "Musical"),
    ("Bí ẩn", "Mystery"),
    ("Lãng mạn", "Romance"),
    ("Tình cảm", "Romance"),
    ("Khoa học viễn tưởng", "Science fiction"),
    ("Thể thao", "Sport"),
    ("Giật gân", "Thriller"),
    ("Chiến tranh", "War"),
    ("Cổ trang", "Period drama"),
    ("Võ thuật", "Martial arts"),
    ("Thiếu nhi", "Children's"),
    ("Học đường", "School"),
    ("Viễn Tây", "Western"),
    // Countries
    ("Việt Nam", "Vietnam"),
    ("Campuchia", "Cambodia"),
    ("Lào", "Laos"),
    ("Thái Lan", "Thailand"),
    ("Trung Quốc", "China"),
    ("Đài Loan", "Taiwan"),
    ("Hồng Kông", "Hong Kong"),
    ("Hàn Quốc", "South Korea"),
    ("Nhật Bản", "Japan"),
    ("Ấn Độ", "India"),
    ("Mỹ", "United States"),
    ("Hoa Kỳ", "United States"),
    ("Anh", "United Kingdom"),
    ("Pháp", "France"),
    ("Đức", "Germany"),
    ("Nga", "Russia"),
    ("Ý", "Italy"),
    ("Tây Ban Nha", "Spain"),
    ("Úc", "Australia"),
];

static LABELS_FOLDED: LazyLock<HashMap<String, &'static str>> = LazyLock::new(|| {
    LABELS
        .iter()
        .map(|(vi, en)| (crate::search::fold(vi), *en))
        .collect()
});

/// A genre or a country in `lang`: on English pages the English name of a known Vietnamese
/// value; otherwise the value as written. A country may be a list (`Việt Nam, Pháp`): each
/// part is translated.
pub fn label(value: &str, lang: Lang) -> String {
    if lang == Lang::Vi {
        return value.to_owned();
    }
    value
        .split(',')
        .map(|part| {
            LABELS_FOLDED
                .get(&crate::search::fold(part))
                .map_or_else(|| part.trim().to_owned(), |en| (*en).to_owned())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn both_catalogs_have_every_message_and_none_is_empty() {
        for lang in [Lang::Vi, Lang::En] {
            let value = serde_json::to_value(lang.messages()).unwrap();
            for (key, text) in value.as_object().unwrap() {
                if key == "job_stages" {
                    continue;
                }
                assert!(
                    !text.as_str().unwrap().trim().is_empty(),
                    "{}.toml: `{key}` is empty",
                    lang.code()
                );
            }
        }
        assert_ne!(
            Lang::Vi.messages().watch_free,
            Lang::En.messages().watch_free
        );
    }

    #[test]
    fn every_job_stage_has_its_text_in_both_languages_naming_only_its_values() {
        let stages: Vec<serde_json::Value> = monsoon_catalog::Stage::every()
            .iter()
            .map(|stage| serde_json::to_value(stage).unwrap())
            .collect();
        for lang in [Lang::Vi, Lang::En] {
            let texts = serde_json::to_value(&lang.messages().job_stages).unwrap();
            check_templates(&format!("{}.toml", lang.code()), &texts, &stages);
        }
    }

    #[tokio::test]
    async fn the_switch_wins_over_the_cookie_and_vietnamese_is_the_default() {
        async fn locale(uri: &str, cookie: Option<&str>) -> Locale {
            let mut request = axum::http::Request::builder().uri(uri);
            if let Some(c) = cookie {
                request = request.header(header::COOKIE, c);
            }
            let (mut parts, ()) = request.body(()).unwrap().into_parts();
            Locale::from_request_parts(&mut parts, &()).await.unwrap()
        }
        assert_eq!(locale("/", None).await.lang, Lang::Vi);
        assert_eq!(locale("/", Some("a=b; lang=en")).await.lang, Lang::En);
        let switched = locale("/?lang=vi", Some("lang=en")).await;
        assert_eq!((switched.lang, switched.switched), (Lang::Vi, true));
        assert_eq!(
            locale("/?lang=xx", Some("lang=klingon")).await.lang,
            Lang::Vi
        );
    }

    #[test]
    fn known_genres_and_countries_are_translated_on_english_pages_only() {
        assert_eq!(label("Chiến tranh", Lang::En), "War");
        assert_eq!(label("chiến  TRANH", Lang::En), "War");
        assert_eq!(label("Việt Nam", Lang::En), "Vietnam");
        assert_eq!(label("Việt Nam, Pháp", Lang::En), "Vietnam, France");
        assert_eq!(label("Chiến tranh", Lang::Vi), "Chiến tranh");
        // Unknown values, and values already in English, pass through.
        assert_eq!(
            label("Phim ngắn thể nghiệm", Lang::En),
            "Phim ngắn thể nghiệm"
        );
        assert_eq!(label("War", Lang::En), "War");
        assert_eq!(label("Việt Nam, Atlantis", Lang::En), "Vietnam, Atlantis");
    }

    #[test]
    fn no_two_labels_fold_alike_with_different_names() {
        let mut seen = HashMap::new();
        for (vi, en) in LABELS {
            let previous = seen.insert(crate::search::fold(vi), *en);
            assert!(
                previous.is_none_or(|p| p == *en),
                "{vi} folds like another label"
            );
        }
    }
}
