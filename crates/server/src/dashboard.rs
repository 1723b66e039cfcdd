//! What the operator's dashboard (`/admin`, [`crate::admin`]) reads beside a film's audience:
//! the origin's errors and egress over the last hour and day, the cache tier's offload
//! estimated from them, the series of a film as CSV, and the film picker's titles.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/api/dashboard.csv?film=` | the film's minute series of the last 24 h as CSV, as an attachment (401 without a session): the [`SERIES_METRICS`], then `rung:<height>` for each rung anyone watched at in the window, lowest first |
//!
//! **Offload** (`docs/AUDIENCE.md`, "Origin and cache tier"): the players report the bytes
//! they downloaded (`bytes` in each heartbeat) and the origin counts the bytes it sent
//! (`monsoon_media_bytes_total`); whatever players got that the origin did not send came from
//! a cache in between. So over a window, offload ≈ 1 − origin egress ÷ player bytes. It needs
//! no access to the cache's logs, and is an estimate: players count what their loader saw
//! (hls.js counts segments, not playlists; the native player counts nothing), beats arrive
//! up to one interval late, and on several nodes each compares its own egress with the beats
//! it committed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monsoon_audience::{RUNG_PREFIX, SERIES_METRICS, rung_series};
use serde::{Deserialize, Serialize};

use crate::delivery::ObjectClass;
use crate::metrics::OriginSample;
use crate::{ApiError, AppState};

/// The windows of the dashboard: the live chart's and the others'.
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// How often the origin's counters are sampled for the windows.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/api/dashboard.csv", get(csv))
}

/// Samples the origin's counters every [`SAMPLE_EVERY`] (the history keeps one a minute)
/// until the task is aborted.
pub(crate) fn spawn_sampler(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            sample(&state);
        }
    })
}

/// Records the origin's counters now, and returns them.
pub(crate) fn sample(state: &AppState) -> OriginSample {
    let now = state.audience.now_ms();
    let sample = state
        .metrics
        .origin_now(now, state.audience.bytes_reported());
    state.metrics.record_origin(sample);
    sample
}

/// Published films as (slug, title in `lang`), by title.
pub(crate) fn films(state: &AppState, lang: &str) -> Vec<(String, String)> {
    let mut films: Vec<(String, String)> = state
        .live
        .slugs()
        .into_iter()
        .filter_map(|slug| {
            let live = state.live.get(&slug)?;
            let title = live.film.meta.title.get(lang);
            let title = if title.is_empty() {
                slug.clone()
            } else {
                title.to_owned()
            };
            Some((slug, title))
        })
        .collect();
    films.sort_by(|a, b| {
        a.1.to_lowercase()
            .cmp(&b.1.to_lowercase())
            .then(a.0.cmp(&b.0))
    });
    films
}

/// Media answers that failed, over a window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Failed {
    /// 4xx: the client asked for something the origin does not have or will not give.
    pub client: u64,
    /// 5xx: the origin failed.
    pub server: u64,
}

/// Offload over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Offload {
    /// 1 − egress ÷ player bytes; `None` while players reported nothing.
    pub ratio: Option<f64>,
    pub egress_bytes: u64,
    pub player_bytes: u64,
    /// Where the window really starts: the process's first sample when it started later.
    pub from: i64,
}

/// The origin's side of the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Origin {
    pub offload_1h: Offload,
    pub offload_24h: Offload,
    /// Failed media answers over the last 24 h (since `offload_24h.from`), by object class.
    pub failed_24h: BTreeMap<&'static str, Failed>,
    /// Per minute, `[time_ms, bytes per second]` the origin sent and the players reported.
    pub egress: Vec<(i64, f64)>,
    pub players: Vec<(i64, f64)>,
}

/// The origin's figures at `now` from `history` (oldest first, ending with the sample taken
/// now).
pub(crate) fn origin(history: &[OriginSample], now: OriginSample) -> Origin {
    let first_since = |from: i64| {
        history
            .iter()
            .find(|s| s.at >= from)
            .copied()
            .unwrap_or(now)
    };
    let offload = |window: i64| {
        let start = first_since(now.at - window);
        let egress = now.egress.saturating_sub(start.egress);
        let players = now.players.saturating_sub(start.players);
        Offload {
            ratio: (players > 0).then(|| 1.0 - egress as f64 / players as f64),
            egress_bytes: egress,
            player_bytes: players,
            from: start.at,
        }
    };
    let day = first_since(now.at - DAY_MS);
    let failed_24h = ObjectClass::ALL
        .iter()
        .enumerate()
        .map(|(c, class)| {
            let count = |i: usize| now.failed[c][i].saturating_sub(day.failed[c][i]);
            (
                class.label(),
                Failed {
                    client: count(0),
                    server: count(1),
                },
            )
        })
        .collect();
    let rate = |pick: fn(&OriginSample) -> u64| {
        history
            .windows(2)
            .filter(|w| w[1].at > w[0].at)
            .map(|w| {
                let bytes = pick(&w[1]).saturating_sub(pick(&w[0]));
                (w[1].at, bytes as f64 * 1000.0 / (w[1].at - w[0].at) as f64)
            })
            .collect()
    };
    Origin {
        offload_1h: offload(HOUR_MS),
        offload_24h: offload(DAY_MS),
        failed_24h,
        egress: rate(|s| s.egress),
        players: rate(|s| s.players),
    }
}

/// Sessions watching by network, as series (`Minute::value`).
const NETWORK_SERIES: [&str; 5] = [
    "network:slow-2g",
    "network:2g",
    "network:3g",
    "network:4g",
    "network:unknown",
];

/// The film's series of the last 24 h, by metric: each of [`SERIES_METRICS`], sessions
/// watching by network, and sessions watching by rung (`rung:<height>`, one series for each
/// rung anyone watched at in the window).
pub(crate) fn series(state: &AppState, film: &str, now: i64) -> BTreeMap<String, Vec<(i64, f64)>> {
    let from = now - DAY_MS;
    let rungs = state
        .audience
        .rungs(film, from)
        .into_iter()
        .map(rung_series);
    SERIES_METRICS
        .iter()
        .chain(NETWORK_SERIES.iter())
        .map(|metric| (*metric).to_owned())
        .chain(rungs)
        .map(|metric| {
            let points = state.audience.series(film, &metric, from, 60_000);
            (metric, points)
        })
        .collect()
}

/// The rungs of `series` (`rung:<height>` keys), lowest first.
pub(crate) fn rungs_of(series: &BTreeMap<String, Vec<(i64, f64)>>) -> Vec<u32> {
    let mut rungs: Vec<u32> = series
        .keys()
        .filter_map(|k| k.strip_prefix(RUNG_PREFIX)?.parse().ok())
        .collect();
    rungs.sort_unstable();
    rungs
}

#[derive(Debug, Deserialize)]
struct FilmQuery {
    film: String,
}

/// `text/csv` (RFC 4180) of `series`: one row a minute, `time` in RFC 3339 UTC, then one
/// column per metric (empty where the minute has no value): the [`SERIES_METRICS`], then
/// sessions watching at each rung of `series`, lowest first (`rung:360`…). Every field is a
/// number or a fixed name, so nothing needs quoting.
pub(crate) fn to_csv(series: &BTreeMap<String, Vec<(i64, f64)>>) -> String {
    let metrics: Vec<String> = SERIES_METRICS
        .iter()
        .map(|m| (*m).to_owned())
        .chain(rungs_of(series).into_iter().map(rung_series))
        .collect();
    let mut rows: BTreeMap<i64, Vec<Option<f64>>> = BTreeMap::new();
    for (i, metric) in metrics.iter().enumerate() {
        for (at, value) in series.get(metric.as_str()).into_iter().flatten() {
            rows.entry(*at).or_insert_with(|| vec![None; metrics.len()])[i] = Some(*value);
        }
    }
    let mut out = format!("time,{}\r\n", metrics.join(","));
    for (at, values) in rows {
        let time = chrono::DateTime::from_timestamp_millis(at)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        out.push_str(&time);
        for value in values {
            out.push(',');
            if let Some(v) = value {
                let _ = write!(out, "{v}");
            }
        }
        out.push_str("\r\n");
    }
    out
}

async fn csv(
    State(state): State<AppState>,
    _: crate::admin::Operator,
    Query(query): Query<FilmQuery>,
) -> Result<Response, ApiError> {
    if state.live.get(&query.film).is_none() {
        return Err(ApiError::NotFound(format!(
            "no film with slug `{}`",
            query.film
        )));
    }
    if let Err(e) = state.audience.sync().await {
        return Err(ApiError::Unavailable(e.to_string()));
    }
    let now = state.audience.now_ms();
    let body = to_csv(&series(&state, &query.film, now));
    let day = chrono::DateTime::from_timestamp_millis(now)
        .map(|t| t.format("%Y%m%d-%H%M").to_string())
        .unwrap_or_default();
    // The slug is checked at ingest to letters, digits and `-`: safe inside the quotes.
    let disposition = format!("attachment; filename=\"monsoon-{}-{day}.csv\"", query.film);
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(crate::admin::private(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, egress: u64, players: u64, segment_failed: [u64; 2]) -> OriginSample {
        let mut failed = [[0; 2]; ObjectClass::ALL.len()];
        failed[ObjectClass::Segment as usize] = segment_failed;
        OriginSample {
            at,
            egress,
            players,
            failed,
        }
    }

    #[test]
    fn offload_is_one_minus_egress_over_player_bytes_in_each_window() {
        let t = 1_800_000_000_000;
        let history = [
            sample(t - 2 * DAY_MS, 0, 0, [0, 0]), // beyond a day: not used
            sample(t - 20 * HOUR_MS, 1_000, 1_000, [5, 1]),
            sample(t - HOUR_MS + 60_000, 2_000, 5_000, [6, 1]),
            sample(t, 3_000, 15_000, [9, 4]),
        ];
        let o = origin(&history, history[3]);
        // Last hour: 1,000 sent by the origin of 10,000 the players got.
        assert_eq!(o.offload_1h.ratio, Some(0.9));
        assert_eq!(o.offload_1h.from, t - HOUR_MS + 60_000);
        // Last day: 2,000 of 14,000.
        assert_eq!(o.offload_24h.egress_bytes, 2_000);
        assert_eq!(o.offload_24h.player_bytes, 14_000);
        assert_eq!(
            o.failed_24h["segment"],
            Failed {
                client: 4,
                server: 3
            }
        );
        assert_eq!(o.failed_24h["image"], Failed::default());
        // Rates per second between samples.
        assert_eq!(
            o.egress.last(),
            Some(&(t, 1_000.0 * 1000.0 / (HOUR_MS - 60_000) as f64))
        );
        // Nothing reported: no ratio rather than a division by zero.
        let quiet = [sample(t, 0, 0, [0, 0])];
        assert_eq!(origin(&quiet, quiet[0]).offload_1h.ratio, None);
    }

    #[test]
    fn csv_has_a_header_and_one_row_a_minute_with_empty_cells_where_a_metric_has_none() {
        let t = 1_800_000_000_000; // 2027-01-15T08:00:00Z
        let mut series = BTreeMap::new();
        series.insert(
            "concurrent_viewers".to_owned(),
            vec![(t, 3.0), (t + 60_000, 4.0)],
        );
        series.insert("startup_ms_p95".to_owned(), vec![(t + 60_000, 850.0)]);
        let text = to_csv(&series);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], format!("time,{}", SERIES_METRICS.join(",")));
        assert_eq!(lines[1], "2027-01-15T08:00:00Z,3,,,,,,");
        assert_eq!(lines[2], "2027-01-15T08:01:00Z,4,,,,,850,");
        assert_eq!(lines[3], "");
        assert_eq!(lines.len(), 4);

        // Sessions watching by rung: one column a rung, by height (1080 after 360, not
        // before it as text would sort), a network series left out.
        series.insert("rung:1080".to_owned(), vec![(t, 1.0), (t + 60_000, 2.0)]);
        series.insert("rung:360".to_owned(), vec![(t, 2.0), (t + 60_000, 2.0)]);
        series.insert("network:3g".to_owned(), vec![(t, 3.0)]);
        let text = to_csv(&series);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            format!("time,{},rung:360,rung:1080", SERIES_METRICS.join(","))
        );
        assert_eq!(lines[1], "2027-01-15T08:00:00Z,3,,,,,,,2,1");
        assert_eq!(lines[2], "2027-01-15T08:01:00Z,4,,,,,850,,2,2");
    }
}
