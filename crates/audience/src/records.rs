//! What the audience engine persists: sessions, counted views, peaks and minute rollups. A
//! store writes these and gives them back on start ([`crate::Snapshot`]); they are enough to
//! rebuild every figure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Codec, Counters, PlayerState};

/// A playback session as persisted. It exists from its first accepted heartbeat (minting
/// keeps nothing), so every session here proved its work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub film: String,
    pub viewer: String,
    /// When the session was minted, ms since the Unix epoch.
    pub started_at: i64,
    pub last_beat_at: Option<i64>,
    pub last_seq: Option<u64>,
    pub state: Option<PlayerState>,
    /// The latest accepted cumulative counters.
    pub beat: Counters,
    /// `play_ms` of the first accepted beat: a view counts playing time the server saw
    /// accrue between beats, not what a single beat claims.
    pub first_play_ms: u64,
    /// This session crossed the view threshold and was counted as a view.
    pub view_counted: bool,
    /// This session crossed the threshold but the viewer's view was already counted recently.
    pub view_deduplicated: bool,
    /// Started while its viewer already had the most sessions watching the film at once that
    /// one person can: beats are kept, but the session is left out of the headline figures
    /// and counted apart (`suspicious_sessions`).
    pub suspicious: bool,
    /// Playing time by rendition height, ms.
    pub rungs: BTreeMap<u32, u64>,
    /// Playing time by video codec, ms (only time played under a codec the beats named).
    #[serde(default)]
    pub codecs: BTreeMap<Codec, u64>,
    /// Bytes downloaded by video codec: the growth of `bytes` between beats, counted under
    /// the codec the earlier beat named (as `codecs` counts playing time).
    #[serde(default)]
    pub codec_bytes: BTreeMap<Codec, u64>,
}

impl Session {
    /// A viewer in front of the film by its last beat's state (liveness aside).
    pub fn is_watching(&self) -> bool {
        self.state.is_some_and(PlayerState::is_watching)
    }

    /// Playing time the server saw accrue: since the first accepted beat.
    pub fn observed_play_ms(&self) -> u64 {
        self.beat.play_ms.saturating_sub(self.first_play_ms)
    }
}

/// A counted view, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub session: String,
    pub film: String,
    pub viewer: String,
    pub at: i64,
}

/// One change to persist.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Session(Session),
    View(View),
    Peak { film: String, peak: u64, at: i64 },
    Minute(Minute),
}

/// One minute of a film's history, for charts: the highest concurrency sampled in it and
/// the cumulative figures at its last sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    pub film: String,
    /// Start of the minute, ms since the Unix epoch.
    pub at: i64,
    pub concurrent_viewers: u64,
    pub views: u64,
    pub views_24h: u64,
    pub playing_time_s: f64,
    pub rebuffer_ratio: f64,
    pub startup_ms_p95: Option<u64>,
    /// Bytes the film's players reported downloading, all sessions in memory (minutes from
    /// before this figure have 0).
    #[serde(default)]
    pub bytes: u64,
    /// Sessions watching at the minute's last sample by network (`FilmStats`
    /// `watching_by_network`): the series `network:<name>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watching_by_network: BTreeMap<String, u64>,
    /// Sessions watching at the minute's last sample by rung, the rendition height the
    /// players' last beats named (`FilmStats` `watching_by_rung`): the series
    /// `rung:<height>`. Minutes from before this figure have none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watching_by_rung: BTreeMap<u32, u64>,
}

/// The series of sessions watching at rung `height` (see [`Minute::value`]).
pub fn rung_series(height: u32) -> String {
    format!("{RUNG_PREFIX}{height}")
}

/// The prefix of the series of sessions watching by rung: `rung:720`.
pub const RUNG_PREFIX: &str = "rung:";

/// The metrics a series can be asked for (besides `network:<name>`, a name of
/// `FilmStats::watching_by_network`, and `rung:<height>`).
pub const SERIES_METRICS: &[&str] = &[
    "concurrent_viewers",
    "views",
    "views_24h",
    "playing_time_s",
    "rebuffer_ratio",
    "startup_ms_p95",
    "bytes",
];

impl Minute {
    /// The value of `metric` (one of [`SERIES_METRICS`]).
    pub fn value(&self, metric: &str) -> Option<f64> {
        Some(match metric {
            "concurrent_viewers" => self.concurrent_viewers as f64,
            "views" => self.views as f64,
            "views_24h" => self.views_24h as f64,
            "playing_time_s" => self.playing_time_s,
            "rebuffer_ratio" => self.rebuffer_ratio,
            "startup_ms_p95" => self.startup_ms_p95? as f64,
            "bytes" => self.bytes as f64,
            _ => {
                if let Some(network) = metric.strip_prefix("network:") {
                    // A minute without the network says 0 watching on it.
                    self.watching_by_network.get(network).copied().unwrap_or(0) as f64
                } else {
                    // Likewise a minute without the rung; a height that is no number is no
                    // series.
                    let height: u32 = metric.strip_prefix(RUNG_PREFIX)?.parse().ok()?;
                    self.watching_by_rung.get(&height).copied().unwrap_or(0) as f64
                }
            }
        })
    }
}
