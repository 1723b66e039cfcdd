//! What a job is doing, or how it ended, as data ([`Stage`]): the queue stores it beside the
//! job's English message and each line of its log, so the studio and the dashboard can say
//! it in the operator's language (`[job_stages]` in `crates/server/locales/*.toml`, one
//! template a stage, its values written in as `{name}`). The English message is its
//! `Display`, what the command line prints and scripts read.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::limits;
use crate::Rule;

/// A stage of a job's life. Its JSON is `{"name": "transcoding", "attempt": 1, "of": 3,
/// "worker": "host:pid"}`: `name` the variant, the other members its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum Stage {
    /// Submitted, waiting for a worker.
    Queued,
    /// Claimed by `worker`, on attempt `attempt` of `of`.
    Claimed {
        attempt: u32,
        of: u32,
        worker: String,
    },
    /// Claimed by `worker` from worker `from`, whose lease expired.
    TakenOver {
        attempt: u32,
        of: u32,
        from: String,
        worker: String,
    },
    /// Fetching the file uploaded in the studio from the media store (`mb`: its size, MB).
    Fetching {
        mb: f64,
        attempt: u32,
        of: u32,
        worker: String,
    },
    Probing {
        attempt: u32,
        of: u32,
        worker: String,
    },
    Transcoding {
        attempt: u32,
        of: u32,
        worker: String,
    },
    /// Adding the track `track` (its label) to a published film.
    AddingTrack {
        track: String,
        attempt: u32,
        of: u32,
        worker: String,
    },
    /// Verified; committing the new version to the catalog.
    Publishing {
        attempt: u32,
        of: u32,
        worker: String,
    },
    /// Done: `version` published, its ladder `verified` (`v180 320x180 avc1.64001e …`).
    Published {
        version: String,
        attempt: u32,
        of: u32,
        worker: String,
        verified: String,
    },
    /// Failed, for `reason` (the pipeline's own words: an ffmpeg or a probe error), and the
    /// `rule` the file breaks when a person can mend it (`monsoon_media::Error::refusal`),
    /// for a translation.
    Failed {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<Rule>,
    },
    /// Failed: `worker` stopped renewing its lease on the last of `attempts` attempts.
    LeaseLost { worker: String, attempts: u32 },
    /// Given back to the queue by `worker`, which was stopped.
    Released { worker: String },
    /// Cancelled by `by` (`operator lan`, `cli (user)`).
    Cancelled { by: String },
}

impl Stage {
    /// The stage's name, as its JSON names it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Claimed { .. } => "claimed",
            Self::TakenOver { .. } => "taken_over",
            Self::Fetching { .. } => "fetching",
            Self::Probing { .. } => "probing",
            Self::Transcoding { .. } => "transcoding",
            Self::AddingTrack { .. } => "adding_track",
            Self::Publishing { .. } => "publishing",
            Self::Published { .. } => "published",
            Self::Failed { .. } => "failed",
            Self::LeaseLost { .. } => "lease_lost",
            Self::Released { .. } => "released",
            Self::Cancelled { .. } => "cancelled",
        }
    }

    /// The stage of a job a worker claims (`previous`: the worker whose lease expired, for a
    /// take-over).
    pub fn claimed(worker: &str, previous: Option<&str>, attempt: u32, of: u32) -> Self {
        let worker = worker.to_owned();
        match previous {
            Some(from) => Self::TakenOver {
                attempt,
                of,
                from: from.to_owned(),
                worker,
            },
            None => Self::Claimed {
                attempt,
                of,
                worker,
            },
        }
    }

    /// One stage of each kind, with sample values: for the tests that every stage has its
    /// words (the catalog's conformance suite, the locales').
    pub fn every() -> Vec<Self> {
        let worker = || "host:42".to_owned();
        vec![
            Self::Queued,
            Self::Claimed {
                attempt: 1,
                of: 3,
                worker: worker(),
            },
            Self::TakenOver {
                attempt: 2,
                of: 3,
                from: "dead:1".into(),
                worker: worker(),
            },
            Self::Fetching {
                mb: 12.5,
                attempt: 1,
                of: 3,
                worker: worker(),
            },
            Self::Probing {
                attempt: 1,
                of: 3,
                worker: worker(),
            },
            Self::Transcoding {
                attempt: 1,
                of: 3,
                worker: worker(),
            },
            Self::AddingTrack {
                track: "en (English)".into(),
                attempt: 1,
                of: 3,
                worker: worker(),
            },
            Self::Publishing {
                attempt: 1,
                of: 3,
                worker: worker(),
            },
            Self::Published {
                version: "v20261206T063925518Z".into(),
                attempt: 1,
                of: 3,
                worker: worker(),
                verified: "v180 320x180 avc1.64001e 0.11 Mbit/s".into(),
            },
            Self::Failed {
                reason: "master.mov: not a media file".into(),
                rule: None,
            },
            Self::Failed {
                reason: "dub.wav: the audio lasts 3.0 s and the film 8.0 s; …".into(),
                rule: Some(Rule::TrackDuration {
                    audio_s: "3.0".into(),
                    film_s: "8.0".into(),
                    tolerance_s: "1.0".into(),
                }),
            },
            Self::LeaseLost {
                worker: worker(),
                attempts: 3,
            },
            Self::Released { worker: worker() },
            Self::Cancelled {
                by: "operator lan".into(),
            },
        ]
    }

    /// Within bounds, as backends store it: each text cut to `limits::MESSAGE_CHARS`
    /// characters (who cancelled to `limits::BY_BYTES`), a size that is finite.
    pub fn bounded(&self) -> Self {
        let mut stage = self.clone();
        match &mut stage {
            Self::Queued
            | Self::Claimed { .. }
            | Self::Probing { .. }
            | Self::Transcoding { .. }
            | Self::Publishing { .. } => {}
            Self::TakenOver { from: text, .. }
            | Self::AddingTrack { track: text, .. }
            | Self::LeaseLost { worker: text, .. }
            | Self::Released { worker: text } => *text = super::bounded_message(text),
            Self::Fetching { mb, .. } => {
                if !mb.is_finite() {
                    *mb = 0.0;
                }
            }
            Self::Published {
                version, verified, ..
            } => {
                *version = super::bounded_message(version);
                *verified = super::bounded_message(verified);
            }
            Self::Cancelled { by } => *by = bounded_by(by).to_owned(),
            Self::Failed { reason, rule } => {
                *reason = super::bounded_message(reason);
                // A rule's values are the file's words (ffprobe's last lines, how a text
                // begins): one too long to keep is dropped, and the reason says it.
                if rule.as_ref().is_some_and(|r| {
                    serde_json::to_string(r).map_or(0, |j| j.len()) > limits::MESSAGE_CHARS
                }) {
                    *rule = None;
                }
            }
        }
        stage
    }

    /// The stage's English message, cut to `limits::MESSAGE_CHARS` characters: what the
    /// queue stores as the job's message and its log line.
    pub fn message(&self) -> String {
        super::bounded_message(&self.to_string())
    }

    /// The stage as the JSON text the queue stores beside its message.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored stage read back; `None` for a row written before stages were stored, or by a
    /// newer Monsoon with a stage this one does not know (its message still says it).
    pub fn from_json(text: Option<&str>) -> Option<Self> {
        text.and_then(|text| serde_json::from_str(text).ok())
    }
}

/// Who cancelled, within `limits::BY_BYTES` (cut at a character boundary).
fn bounded_by(by: &str) -> &str {
    let by = if by.is_empty() { "the operator" } else { by };
    let mut end = by.len().min(limits::BY_BYTES);
    while !by.is_char_boundary(end) {
        end -= 1;
    }
    &by[..end]
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Queued => f.write_str("queued"),
            Self::Claimed {
                attempt,
                of,
                worker,
            } => write!(f, "attempt {attempt} of {of}: claimed by worker {worker}"),
            Self::TakenOver {
                attempt,
                of,
                from,
                worker,
            } => write!(
                f,
                "attempt {attempt} of {of}: taken over from worker {from}, whose lease \
                 expired; claimed by worker {worker}"
            ),
            Self::Fetching {
                mb,
                attempt,
                of,
                worker,
            } => write!(
                f,
                "fetching the uploaded file ({mb:.1} MB) from the media store (attempt \
                 {attempt} of {of}, worker {worker})"
            ),
            Self::Probing {
                attempt,
                of,
                worker,
            } => write!(
                f,
                "probing the master (attempt {attempt} of {of}, worker {worker})"
            ),
            Self::Transcoding {
                attempt,
                of,
                worker,
            } => write!(
                f,
                "transcoding (attempt {attempt} of {of}, worker {worker})"
            ),
            Self::AddingTrack {
                track,
                attempt,
                of,
                worker,
            } => write!(
                f,
                "adding the track {track:?} (attempt {attempt} of {of}, worker {worker})"
            ),
            Self::Publishing {
                attempt,
                of,
                worker,
            } => write!(f, "publishing (attempt {attempt} of {of}, worker {worker})"),
            Self::Published {
                version,
                attempt,
                of,
                worker,
                verified,
            } => write!(
                f,
                "published as version {version} by worker {worker} (attempt {attempt} of \
                 {of}); verified: {verified}"
            ),
            Self::Failed { reason, .. } => f.write_str(reason),
            Self::LeaseLost { worker, attempts } => write!(
                f,
                "failed: worker {worker} stopped renewing its lease on attempt {attempts} of \
                 {attempts} (it died, was killed or lost the database); no attempt is left"
            ),
            Self::Released { worker } => write!(
                f,
                "released by worker {worker}, which was stopped; queued for the next worker"
            ),
            Self::Cancelled { by } => write!(f, "cancelled by {}", bounded_by(by)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every stage's JSON names it and reads back as itself; its message is the queue's
    /// English words.
    #[test]
    fn a_stage_is_its_json_and_its_english_message() {
        let every = Stage::every();
        for stage in &every {
            let json = stage.json();
            let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
            assert_eq!(value["name"], stage.name(), "{json}");
            assert_eq!(
                Stage::from_json(Some(&json)).as_ref(),
                Some(stage),
                "{json}"
            );
        }
        assert_eq!(
            every[1].message(),
            "attempt 1 of 3: claimed by worker host:42"
        );
        assert_eq!(
            every[3].message(),
            "fetching the uploaded file (12.5 MB) from the media store (attempt 1 of 3, \
             worker host:42)"
        );
        assert_eq!(Stage::from_json(None), None);
        assert_eq!(Stage::from_json(Some(r#"{"name": "dreaming"}"#)), None);
        assert_eq!(
            Stage::from_json(Some(r#"{"name": "cancelled", "by": "lan", "extra": 1}"#)),
            None
        );
    }

    /// Texts from outside the queue's own words are cut to their bounds, in the stage as in
    /// its message.
    #[test]
    fn a_stage_is_bounded() {
        let long = "é".repeat(limits::MESSAGE_CHARS + 10);
        let failed = Stage::Failed {
            reason: long.clone(),
            rule: Some(Rule::Unreadable { said: long.clone() }),
        }
        .bounded();
        let Stage::Failed { reason, rule } = &failed else {
            panic!("{failed:?}");
        };
        assert_eq!(
            reason.chars().count(),
            limits::MESSAGE_CHARS + 1,
            "cut, with …"
        );
        assert!(failed.message().chars().count() <= limits::MESSAGE_CHARS + 1);
        assert_eq!(*rule, None, "a rule too long to keep");
        let by = Stage::Cancelled { by: long }.bounded();
        let Stage::Cancelled { by } = by else {
            panic!("{by:?}");
        };
        assert!(by.len() <= limits::BY_BYTES);
        let nan = Stage::Fetching {
            mb: f64::NAN,
            attempt: 1,
            of: 1,
            worker: "w".into(),
        }
        .bounded();
        assert!(nan.json().contains(r#""mb":0.0"#), "{}", nan.json());
    }
}
