//! What both audience stores share: the session columns, and a batch of records reduced to
//! what one transaction writes.

use std::collections::HashMap;

use monsoon_audience::{Error, Minute, Record, Result, Session, View};

/// The columns of `audience_sessions`, in the order the stores bind and read them.
pub(crate) const SESSION_COLUMNS: [&str; 27] = [
    "id",
    "film",
    "viewer",
    "started_at",
    "last_beat_at",
    "last_seq",
    "state",
    "play_ms",
    "rebuffer_ms",
    "rebuffer_count",
    "startup_ms",
    "seek_ms",
    "playhead_ms",
    "height",
    "bitrate_kbps",
    "bytes",
    "dropped_frames",
    "fatal_error",
    "view_counted",
    "view_deduplicated",
    "rungs",
    "first_play_ms",
    "suspicious",
    "codec",
    "codecs",
    "network",
    "codec_bytes",
];

/// The columns an upsert leaves as they are: a session's id, film, viewer, start and first
/// playing time never change once stored.
pub(crate) const SESSION_FIXED: [&str; 5] = ["id", "film", "viewer", "started_at", "first_play_ms"];

/// `column = excluded.column` for every column an upsert of a session changes.
pub(crate) fn session_changes() -> String {
    SESSION_COLUMNS
        .iter()
        .filter(|c| !SESSION_FIXED.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A batch of records as one transaction writes it. A batch holds many beats of the same
/// sessions: only each session's newest state matters (its counters are cumulative), so the
/// last is kept; likewise the last state of each minute, and the highest peak of each film.
#[derive(Debug, Default)]
pub(crate) struct Batch<'a> {
    pub sessions: HashMap<&'a str, &'a Session>,
    pub views: Vec<&'a View>,
    pub peaks: HashMap<&'a str, (u64, i64)>,
    pub minutes: HashMap<(&'a str, i64), &'a Minute>,
}

impl<'a> Batch<'a> {
    pub fn of(records: &'a [Record]) -> Self {
        let mut batch = Self::default();
        for record in records {
            match record {
                Record::Session(s) => {
                    batch.sessions.insert(&s.id, s);
                }
                Record::View(v) => batch.views.push(v),
                Record::Minute(m) => {
                    batch.minutes.insert((&m.film, m.at), m);
                }
                Record::Peak { film, peak, at } => {
                    let entry = batch.peaks.entry(film).or_insert((*peak, *at));
                    if *peak > entry.0 {
                        *entry = (*peak, *at);
                    }
                }
            }
        }
        batch
    }
}

/// A counter as both engines store it: a signed 64-bit integer. Heartbeats are validated far
/// below this, so an error here means a bug, and it fails only the transaction it is in.
pub(crate) fn int(field: &str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        store(format!(
            "{field} = {value} does not fit a 64-bit integer column"
        ))
    })
}

pub(crate) fn store(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}
