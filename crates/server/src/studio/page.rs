//! The studio's page (`studio.html`): the list, a new film's form or a film's, with its strings
//! in Vietnamese and English (`locales/studio.<lang>.toml`).

use std::sync::LazyLock;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use monsoon_catalog::rules::{AGE_RATINGS, FIELDS, age_rating_rule};
use monsoon_catalog::validate_slug;
use serde::{Deserialize, Serialize};

use crate::admin::{Operator, private};
use crate::i18n::{Lang, Locale};
use crate::{ApiError, AppState};

/// The studio's strings, in one language (`locales/studio.<lang>.toml`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StudioMessages {
    pub title: String,
    pub new_film: String,
    pub edit_film: String,
    pub back_to_list: String,
    pub dashboard: String,
    pub col_title: String,
    pub col_slug: String,
    pub col_state: String,
    pub col_premiere: String,
    pub col_updated: String,
    pub state_published: String,
    pub state_draft: String,
    pub no_films: String,
    pub vietnamese: String,
    pub english: String,
    pub field_title: String,
    pub field_synopsis: String,
    pub field_slug: String,
    pub slug_hint: String,
    pub field_original_title: String,
    pub field_director: String,
    pub field_writer: String,
    pub field_cast: String,
    pub field_genres: String,
    pub one_per_line: String,
    pub field_runtime: String,
    pub field_country: String,
    pub field_company: String,
    pub field_cinema_release: String,
    pub field_free_release: String,
    pub free_release_hint: String,
    pub field_age_rating: String,
    pub no_rating: String,
    pub field_language: String,
    pub field_trailer: String,
    pub field_codecs: String,
    pub field_ladder: String,
    pub encoding: String,
    pub images: String,
    pub poster: String,
    pub backdrop: String,
    pub upload: String,
    pub images_hint: String,
    pub images_after_create: String,
    pub media: String,
    pub master: String,
    pub master_hint: String,
    pub upload_ingest: String,
    pub tracks: String,
    pub tracks_hint: String,
    pub track_kind: String,
    pub track_audio: String,
    pub track_subtitles: String,
    pub track_lang: String,
    pub track_label: String,
    pub add_track: String,
    pub jobs: String,
    pub col_job: String,
    pub col_progress: String,
    pub col_speed: String,
    pub col_eta: String,
    pub col_message: String,
    pub no_jobs: String,
    pub uploads_in_flight: String,
    pub col_file: String,
    pub col_job_state: String,
    pub no_uploads: String,
    pub cancel_job: String,
    pub show_log: String,
    pub hide_log: String,
    pub no_log: String,
    pub delete_draft: String,
    pub delete_confirm: String,
    pub deleted: String,
    pub hashing: String,
    pub uploading: String,
    pub checking: String,
    /// An upload's state once checked: ready for a job, or refused (with the reason).
    pub upload_ready: String,
    pub upload_refused: String,
    pub job_queued: String,
    pub save: String,
    pub create: String,
    pub saved: String,
    pub created: String,
    pub uploaded: String,
    pub problems: String,
    pub failed: String,
    pub example: String,
    pub public_page: String,
    pub countdown_page: String,
    pub draft_note: String,
    pub operators: String,
    pub operators_title: String,
    pub op_col_name: String,
    pub op_col_created: String,
    pub op_col_last_sign_in: String,
    pub op_col_state: String,
    pub op_col_actions: String,
    pub op_enabled: String,
    pub op_disabled: String,
    pub op_never: String,
    pub op_you: String,
    pub op_add: String,
    pub op_name: String,
    pub op_name_hint: String,
    pub op_password: String,
    pub op_password_hint: String,
    pub op_generate: String,
    pub op_create: String,
    pub op_disable: String,
    pub op_enable: String,
    pub op_reset: String,
    pub op_new_password: String,
    pub op_created: String,
    pub op_password_set: String,
    pub op_disabled_done: String,
    pub op_enabled_done: String,
    pub op_generated: String,
    pub op_self_note: String,
    /// The operators page's refusals; `{name}` is the account's.
    pub op_err_name: String,
    /// `{chars}`, the password's length, and `{min}` to `{max}`, the rule.
    pub op_err_password: String,
    pub op_err_taken: String,
    pub op_err_missing: String,
    pub op_err_self: String,
    pub op_err_disabled_already: String,
    pub op_err_active_already: String,
    pub op_err_last: String,
    /// A broken rule of a film's metadata, one template a `monsoon_catalog::Rule`, its values
    /// written in as `{value}`; shown under the field instead of the catalog's English.
    pub rules: RuleMessages,
}

/// The studio's text of each `monsoon_catalog::Rule`, named as its JSON names it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMessages {
    pub title_required: String,
    pub too_long: String,
    pub control_character: String,
    pub too_many: String,
    pub language_tag: String,
    pub slug: String,
    pub codec: String,
    pub twice: String,
    pub needs_h264: String,
    pub out_of_range: String,
    pub banned_rating: String,
    pub age_rating: String,
    pub age_rating_case: String,
    pub trailer_is_itself: String,
    pub trailer_not_published: String,
    pub empty_upload: String,
    pub not_image: String,
    pub image_too_big: String,
    pub image_too_small: String,
    pub text_file: String,
    pub cut_short: String,
    pub not_mp4: String,
    pub unreadable: String,
    pub container: String,
    pub no_video: String,
    pub audio_only: String,
    pub no_audio: String,
    pub no_duration: String,
    pub resolution_over_limit: String,
    pub frame_rate_over_limit: String,
    pub duration_over_limit: String,
    pub file_size_over_limit: String,
    pub not_subtitles: String,
    pub no_subtitle_cues: String,
    pub track_duration: String,
}

fn parse_messages(name: &str, text: &str) -> StudioMessages {
    toml::from_str(text).unwrap_or_else(|e| panic!("locales/{name}: {e}"))
}

static STUDIO_VI: LazyLock<StudioMessages> = LazyLock::new(|| {
    parse_messages(
        "studio.vi.toml",
        include_str!("../../locales/studio.vi.toml"),
    )
});
static STUDIO_EN: LazyLock<StudioMessages> = LazyLock::new(|| {
    parse_messages(
        "studio.en.toml",
        include_str!("../../locales/studio.en.toml"),
    )
});

pub(crate) fn messages(lang: Lang) -> &'static StudioMessages {
    match lang {
        Lang::Vi => &STUDIO_VI,
        Lang::En => &STUDIO_EN,
    }
}

/// The studio's page: the list, a new film's form or a film's.
#[derive(Template)]
#[template(path = "studio.html")]
struct StudioPage {
    t: &'static crate::i18n::Messages,
    s: &'static StudioMessages,
    c: crate::pages::Chrome,
    /// `list`, `new` or `edit`.
    mode: &'static str,
    slug: String,
    studio_css: String,
    studio_js: String,
    tus_js: String,
    /// The session's CSRF token, which the page's requests carry (`csrf.rs`).
    csrf: String,
    /// What the script needs: the mode, the slug, the strings and the rules, as JSON.
    config_json: String,
    /// The Vietnamese film classes, `(label, who may watch)`.
    ratings: &'static [(&'static str, &'static str)],
}

impl StudioPage {
    /// The list fields, one name a line in the form.
    fn lists(&self) -> [(&'static str, &'static str); 4] {
        let s = self.s;
        [
            ("director", s.field_director.as_str()),
            ("writer", s.field_writer.as_str()),
            ("cast", s.field_cast.as_str()),
            ("genres", s.field_genres.as_str()),
        ]
    }

    fn image_kinds(&self) -> [(&'static str, &'static str); 2] {
        [
            ("poster", self.s.poster.as_str()),
            ("backdrop", self.s.backdrop.as_str()),
        ]
    }

    /// The `film.toml` example of `key`: the form's hint is the file's rule.
    fn example(&self, key: &str) -> String {
        FIELDS
            .iter()
            .find(|f| f.key == key)
            .map(|f| format!("{key} = {}", f.example))
            .unwrap_or_default()
    }
}

pub(super) async fn page(
    state: State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Response {
    render(&state, locale, operator.ok(), "list", String::new())
}

pub(super) async fn page_new(
    state: State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Response {
    render(&state, locale, operator.ok(), "new", String::new())
}

pub(super) async fn page_edit(
    state: State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
    Path(slug): Path<String>,
) -> Response {
    if validate_slug(&slug).is_err() {
        return ApiError::NotFound(format!("no film `{slug}`")).into_response();
    }
    render(&state, locale, operator.ok(), "edit", slug)
}

fn render(
    state: &AppState,
    locale: Locale,
    operator: Option<Operator>,
    mode: &'static str,
    slug: String,
) -> Response {
    let Some(operator) = operator else {
        let to = format!("/admin/login?lang={}", locale.lang.code());
        return private(Redirect::to(&to).into_response());
    };
    let s = messages(locale.lang);
    let path = match mode {
        "new" => "/admin/films/new".to_owned(),
        "edit" => format!("/admin/films/{slug}"),
        _ => "/admin/films".to_owned(),
    };
    let t = locale.lang.messages();
    let page = StudioPage {
        t,
        s,
        c: crate::pages::Chrome::new(state, locale, &path),
        mode,
        slug: slug.clone(),
        studio_css: state.assets.url("studio.css"),
        studio_js: state.assets.url("studio.js"),
        tus_js: state.assets.url("tus.js"),
        csrf: operator.csrf().unwrap_or_default().to_owned(),
        config_json: crate::pages::script_json(&serde_json::json!({
            "mode": mode,
            "slug": slug,
            "upload_js": state.assets.url("upload.js"),
            "upload_hash_js": state.assets.url("upload-hash.js"),
            "sha256_js": state.assets.url("sha256.js"),
            "lang": locale.lang.code(),
            "strings": s,
            "job_stages": t.job_stages,
            "job_states": crate::admin::job_states(t),
            "age_rating_rule": age_rating_rule(),
        })),
        ratings: AGE_RATINGS,
    };
    match page.render() {
        Ok(html) => private(Html(html).into_response()),
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_catalogs_have_every_string() {
        // Parsing with deny_unknown_fields and no defaults: a key missing or extra panics.
        assert_eq!(messages(Lang::Vi).save, "Lưu");
        assert_eq!(messages(Lang::En).save, "Save");
    }

    /// One of each `Rule`; the `match` stops the build when a rule is added without one.
    fn every_rule() -> Vec<monsoon_catalog::Rule> {
        use monsoon_catalog::Rule::*;
        let value = || "x".to_owned();
        let rules = vec![
            TitleRequired,
            TooLong { chars: 3, max: 2 },
            ControlCharacter {
                character: "U+0007".into(),
                at: 1,
            },
            TooMany { count: 3, max: 2 },
            LanguageTag { value: value() },
            Slug { value: value() },
            Codec {
                value: value(),
                known: "h264, av1".into(),
            },
            Twice { value: value() },
            NeedsH264,
            OutOfRange {
                value: 9,
                low: 1,
                high: 2,
            },
            BannedRating,
            AgeRating { value: value() },
            AgeRatingCase {
                value: value(),
                near: "T13".into(),
            },
            TrailerIsItself,
            TrailerNotPublished { value: value() },
            EmptyUpload,
            NotImage,
            ImageTooBig {
                width: 9000,
                height: 100,
                max: 8192,
            },
            ImageTooSmall {
                width: 100,
                height: 100,
                min: 160,
            },
            TextFile { begins: value() },
            CutShort,
            NotMp4,
            Unreadable { said: value() },
            Container {
                format: value(),
                allowed: "mp4, mov".into(),
            },
            NoVideo,
            AudioOnly,
            NoAudio,
            NoDuration,
            ResolutionOverLimit {
                value: value(),
                limit: value(),
            },
            FrameRateOverLimit {
                value: value(),
                limit: value(),
            },
            DurationOverLimit {
                value: value(),
                limit: value(),
            },
            FileSizeOverLimit {
                value: value(),
                limit: value(),
            },
            NotSubtitles { said: value() },
            NoSubtitleCues,
            TrackDuration {
                audio_s: "3.0".into(),
                film_s: "8.0".into(),
                tolerance_s: "1.0".into(),
            },
        ];
        for rule in &rules {
            match rule {
                TitleRequired | TooLong { .. } | ControlCharacter { .. } | TooMany { .. } => {}
                LanguageTag { .. } | Slug { .. } | Codec { .. } | Twice { .. } | NeedsH264 => {}
                OutOfRange { .. } | BannedRating | AgeRating { .. } | AgeRatingCase { .. } => {}
                TrailerIsItself | TrailerNotPublished { .. } | EmptyUpload | NotImage => {}
                ImageTooBig { .. } | ImageTooSmall { .. } => {}
                TextFile { .. } | CutShort | NotMp4 | Unreadable { .. } | Container { .. } => {}
                NoVideo | AudioOnly | NoAudio | NoDuration | NotSubtitles { .. } => {}
                ResolutionOverLimit { .. } | FrameRateOverLimit { .. } => {}
                DurationOverLimit { .. } | FileSizeOverLimit { .. } | NoSubtitleCues => {}
                TrackDuration { .. } => {}
            }
        }
        rules
    }

    #[test]
    fn every_rule_has_its_text_in_both_languages_naming_only_its_values() {
        let rules: Vec<serde_json::Value> = every_rule()
            .iter()
            .map(|rule| serde_json::to_value(rule).unwrap())
            .collect();
        for lang in [Lang::Vi, Lang::En] {
            let texts = serde_json::to_value(&messages(lang).rules).unwrap();
            crate::i18n::check_templates(&format!("studio.{}.toml", lang.code()), &texts, &rules);
        }
    }
}
