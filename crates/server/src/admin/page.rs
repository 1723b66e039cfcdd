//! The dashboard (`/admin`): its page, and the figures and series its charts poll
//! (`/admin/api/dashboard`).

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use monsoon_audience::FilmStats;
use serde::{Deserialize, Serialize};

use super::{Operator, private};
use crate::i18n::{Locale, Messages};
use crate::{ApiError, AppState};

#[derive(Template)]
#[template(path = "admin.html")]
struct DashboardPage {
    t: &'static Messages,
    c: crate::pages::Chrome,
    /// (slug, title in the page's language), by title.
    films: Vec<(String, String)>,
    uplot_css: String,
    uplot_js: String,
    admin_css: String,
    admin_js: String,
    admin_fetch_js: String,
    /// The session's CSRF token (`csrf.rs`).
    csrf: String,
    operator: String,
    /// The page's strings for the script, as JSON.
    strings_json: String,
}

/// The jobs tables' state names (`JobState`, as the API names them) in `t`'s language.
pub(crate) fn job_states(t: &Messages) -> serde_json::Value {
    serde_json::json!({
        "queued": t.job_queued,
        "running": t.job_running,
        "done": t.job_done,
        "failed": t.job_failed,
        "cancelled": t.job_cancelled,
    })
}

pub(super) async fn dashboard(
    State(state): State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Result<Response, ApiError> {
    let Ok(operator) = operator else {
        let to = format!("/admin/login?lang={}", locale.lang.code());
        return Ok(private(Redirect::to(&to).into_response()));
    };
    let t = locale.lang.messages();
    let page = DashboardPage {
        t,
        c: crate::pages::Chrome::new(&state, locale, "/admin"),
        films: crate::dashboard::films(&state, locale.lang.code()),
        uplot_css: state.assets.url("uplot.css"),
        uplot_js: state.assets.url("uplot.js"),
        admin_css: state.assets.url("admin.css"),
        admin_js: state.assets.url("admin.js"),
        admin_fetch_js: state.assets.url("admin-fetch.js"),
        csrf: operator.csrf().unwrap_or_default().to_owned(),
        operator: operator.name.clone(),
        strings_json: crate::pages::script_json(&serde_json::json!({
            "concurrent": t.chart_concurrent,
            "views": t.chart_views,
            "startup": t.chart_startup,
            "rebuffer": t.chart_rebuffer,
            "updated": t.admin_updated,
            "audio_only": t.audio_only,
            "codec_sessions": t.codec_sessions,
            "last_hour": t.chart_last_hour,
            "last_day": t.chart_last_day,
            "origin_sent": t.chart_origin_sent,
            "players_bytes": t.chart_players_bytes,
            "network_unknown": t.network_unknown,
            "failed_client": t.failed_client,
            "failed_server": t.failed_server,
            "offload_none": t.offload_none,
            "since": t.since,
            "view_threshold": t.view_threshold_note,
            "players_fatal": t.players_fatal,
            "codec_downloaded": t.codec_downloaded,
            "progress": t.jobs_progress,
            "real_time": t.jobs_real_time,
            "states": job_states(t),
            "stages": t.job_stages,
            // A failed job's rule (a dub not as long as the film), as the studio says it.
            "rules": crate::studio::messages(locale.lang).rules,
            "actions": crate::audit::action_labels(t),
        })),
    };
    let html = page
        .render()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(private(Html(html).into_response()))
}

#[derive(Debug, Deserialize)]
pub(super) struct DashboardQuery {
    film: String,
}

/// Everything the dashboard draws, in one poll.
#[derive(Debug, Serialize)]
struct Dashboard {
    /// Server time of the figures, ms since the Unix epoch.
    now: i64,
    stats: FilmStats,
    /// Minute rollups of the last 24 hours, `[time_ms, value]`, by metric; sessions watching
    /// by network (`network:<name>`) and by rung (`rung:<height>`) among them.
    series: std::collections::BTreeMap<String, Vec<(i64, f64)>>,
    /// The rungs of the `rung:<height>` series: every height anyone watched at in the last
    /// 24 hours, lowest first.
    rungs: Vec<u32>,
    /// Playing time that makes a view (`[audience] view_threshold_ms`), seconds.
    view_threshold_s: f64,
    /// The origin's errors, egress and the cache tier's offload ([`crate::dashboard`]).
    origin: crate::dashboard::Origin,
}

pub(super) async fn dashboard_data(
    State(state): State<AppState>,
    _: Operator,
    Query(query): Query<DashboardQuery>,
) -> Result<Response, ApiError> {
    if state.live.get(&query.film).is_none() {
        return Err(ApiError::NotFound(format!(
            "no film with slug `{}`",
            query.film
        )));
    }
    let now = state.audience.now_ms();
    let series = crate::dashboard::series(&state, &query.film, now);
    let rungs = crate::dashboard::rungs_of(&series);
    let origin_now = crate::dashboard::sample(&state);
    let origin = crate::dashboard::origin(&state.metrics.origin_history(), origin_now);
    Ok(private(
        Json(Dashboard {
            now,
            stats: state
                .audience
                .fresh_stats(&query.film)
                .await
                .map_err(|e| ApiError::Unavailable(e.to_string()))?,
            series,
            rungs,
            view_threshold_s: state.audience.config().view_threshold_ms as f64 / 1000.0,
            origin,
        })
        .into_response(),
    ))
}
