//! The film page (or the premiere's countdown before its free release), with its facts and
//! schema.org JSON-LD, and the premiere's calendar event (`premiere.ics`, RFC 5545).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use monsoon_catalog::Film;

use super::headers::COUNTDOWN_JS;
use super::{Card, Chrome, find, format_time, page_or_error, render, script_json};
use crate::i18n::{self, Lang, Locale, Messages};
use crate::{ApiError, AppState};

/// Facts shown under the synopsis, in order: (label, value).
type Facts = Vec<(&'static str, String)>;

#[derive(Template)]
#[template(path = "film.html")]
struct FilmPage {
    t: &'static Messages,
    c: Chrome,
    card: Card,
    /// The title in the other language, when it differs.
    other_title: Option<String>,
    facts: Facts,
    /// Seconds to the premiere, when it is ahead.
    countdown_s: Option<i64>,
    /// The countdown as text, for pages without JavaScript.
    countdown_text: String,
    premiere_iso: String,
    trailer: Option<String>,
    page_url: String,
    image_url: Option<String>,
    json_ld: String,
    countdown_json: String,
    countdown_js: &'static str,
}

/// A film's running time in whole minutes, rounded to the nearest (a 60.04 s film is 1
/// minute, not 2), and at least 1 for anything that plays; 0 when unknown.
fn runtime_minutes(duration_s: f64) -> u32 {
    if !duration_s.is_finite() || duration_s <= 0.0 {
        return 0;
    }
    // At most a day (the catalog's bound is far below); the cast cannot overflow.
    (duration_s.min(86_400.0) / 60.0).round().max(1.0) as u32
}

fn facts(film: &Film, lang: Lang, runtime_min: u32) -> Facts {
    let t = lang.messages();
    let meta = &film.meta;
    let mut facts: Facts = Vec::new();
    let mut list = |label: &'static str, items: &[String]| {
        if !items.is_empty() {
            facts.push((label, items.join(", ")));
        }
    };
    list(&t.director, &meta.director);
    list(&t.writer, &meta.writer);
    list(&t.cast, &meta.cast);
    let genres: Vec<String> = meta.genres.iter().map(|g| i18n::label(g, lang)).collect();
    list(&t.genres, &genres);
    if runtime_min > 0 {
        facts.push((&t.runtime, format!("{runtime_min} {}", t.minutes)));
    }
    if let Some(date) = meta.cinema_release {
        facts.push((&t.cinema_release, date.format(&t.date_format).to_string()));
    }
    if let Some(at) = meta.free_release {
        facts.push((&t.free_release, format_time(at, &t.datetime_format)));
    }
    if let Some(rating) = &meta.age_rating {
        facts.push((&t.age_rating, rating.clone()));
    }
    if let Some(country) = &meta.country {
        facts.push((&t.country, i18n::label(country, lang)));
    }
    if let Some(company) = &meta.production_company {
        facts.push((&t.production_company, company.clone()));
    }
    facts
}

/// `2 ngày 3 giờ 4 phút 5 giây`, as the script writes it.
fn countdown(seconds: i64, t: &Messages) -> String {
    let parts = [
        (seconds / 86_400, &t.days),
        (seconds % 86_400 / 3600, &t.hours),
        (seconds % 3600 / 60, &t.mins),
        (seconds % 60, &t.secs),
    ];
    parts
        .iter()
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// schema.org `Movie`, for search engines and link previews.
fn json_ld(film: &Film, page_url: &str, image: Option<&str>, runtime_min: u32) -> String {
    let meta = &film.meta;
    let people = |names: &[String]| {
        names
            .iter()
            .map(|n| serde_json::json!({"@type": "Person", "name": n}))
            .collect::<Vec<_>>()
    };
    let mut movie = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "Movie",
        "name": meta.title.get("vi"),
        "url": page_url,
        "description": meta.synopsis.get("vi"),
        "duration": format!("PT{runtime_min}M"),
        "director": people(&meta.director),
        "author": people(&meta.writer),
        "actor": people(&meta.cast),
        "genre": meta.genres,
        "inLanguage": "vi",
        "isAccessibleForFree": true,
    });
    let extra = [
        (
            "alternateName",
            Some(meta.title.en.clone()).filter(|s| !s.is_empty()),
        ),
        ("image", image.map(str::to_owned)),
        ("contentRating", meta.age_rating.clone()),
        ("countryOfOrigin", meta.country.clone()),
        ("dateCreated", meta.cinema_release.map(|d| d.to_string())),
    ];
    for (key, value) in extra {
        if let Some(value) = value {
            movie[key] = serde_json::Value::String(value);
        }
    }
    script_json(&movie)
}

pub(super) async fn film_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    locale: Locale,
    uri: Uri,
) -> Response {
    let page = film_inner(&state, &slug, locale).await;
    page_or_error(&state, locale, &uri, page)
}

async fn film_inner(state: &AppState, slug: &str, locale: Locale) -> Result<Response, ApiError> {
    let film = find(state, slug).await?;
    let t = locale.lang.messages();
    let now = Utc::now();
    let runtime_min = film
        .meta
        .runtime_min
        .unwrap_or_else(|| runtime_minutes(film.current.duration_s));
    let site = state.site_url();
    let page_url = format!("{site}/films/{slug}");
    let image_url = film
        .backdrop_url()
        .or(film.poster_url())
        .map(|p| format!("{site}{p}"));
    let countdown_s = film
        .meta
        .free_release
        .filter(|_| film.is_before_premiere(now))
        .map(|at| (at.with_timezone(&Utc) - now).num_seconds().max(0));
    let trailer = film
        .meta
        .trailer
        .as_deref()
        .filter(|t| state.live.get(t).is_some())
        .map(|t| format!("/watch/{t}"));
    let other_lang = locale.lang.other().code();
    let card = Card::new(&film, locale, now);
    let other_title = Some(film.meta.title.get(other_lang).to_owned())
        .filter(|other| *other != card.title && !other.is_empty());
    let page = FilmPage {
        t,
        c: Chrome::new(state, locale, &format!("/films/{slug}")),
        other_title,
        facts: facts(&film, locale.lang, runtime_min),
        countdown_text: countdown_s.map(|r| countdown(r, t)).unwrap_or_default(),
        countdown_s,
        premiere_iso: film
            .meta
            .free_release
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        trailer,
        json_ld: json_ld(&film, &page_url, image_url.as_deref(), runtime_min),
        countdown_json: script_json(&serde_json::json!({
            "units": [&t.days, &t.hours, &t.mins, &t.secs],
            "done": t.premiere_now,
        })),
        countdown_js: COUNTDOWN_JS,
        page_url,
        image_url,
        card,
    };
    render(&page, locale)
}

/// "Remind me": an iCalendar event (RFC 5545) for the premiere, with an alarm 15 minutes
/// before, that any phone's calendar imports.
pub(super) async fn premiere_ics(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    locale: Locale,
    uri: Uri,
) -> Response {
    let answer = ics_inner(&state, &slug, locale).await;
    page_or_error(&state, locale, &uri, answer)
}

async fn ics_inner(state: &AppState, slug: &str, locale: Locale) -> Result<Response, ApiError> {
    let film = find(state, slug).await?;
    let at = film.meta.free_release.ok_or_else(|| {
        ApiError::NotFound(format!("`{slug}` has no premiere time (free_release)"))
    })?;
    let t = locale.lang.messages();
    let start = at.with_timezone(&Utc);
    // At least a minute, at most a day (a record's duration is never trusted to fit a
    // `chrono::Duration`).
    let runtime_s = (film.current.duration_s.ceil() as i64).clamp(60, 86_400);
    let body = crate::ics::premiere(&crate::ics::Premiere {
        slug,
        title: film.meta.title.get(locale.lang.code()),
        reminder: &t.premiere_reminder,
        url: &format!("{}/films/{slug}", state.site_url()),
        stamp: Utc::now(),
        start,
        end: start + chrono::Duration::seconds(runtime_s),
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{slug}.ics\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_rounds_to_the_nearest_minute_and_is_never_zero_for_a_film() {
        for (seconds, minutes) in [
            (60.0, 1),
            (60.04, 1),
            (70.0, 1),
            (89.9, 1),
            (90.0, 2),
            (20.0, 1),
            (0.4, 1),
            (5400.0, 90),
            (5429.0, 90),
            (5430.0, 91),
            (0.0, 0),
            (-3.0, 0),
            (f64::NAN, 0),
            (f64::INFINITY, 0),
        ] {
            assert_eq!(runtime_minutes(seconds), minutes, "{seconds} s");
        }
    }
}
