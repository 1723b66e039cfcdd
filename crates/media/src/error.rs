use std::path::PathBuf;

use monsoon_catalog::Rule;
use monsoon_catalog::rules::Refusal;

/// Everything that can go wrong between a master file and a packaged ladder.
///
/// Messages are written for the operator: they name the file or value and the rule it broke.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: file not found")]
    NotFound { path: PathBuf },

    #[error("{path}: file is empty (0 bytes); give the complete master file")]
    Empty { path: PathBuf },

    /// `rule`: the rule broken, for a translation of `reason` (none when it is the machine's
    /// failure, such as ffprobe timing out).
    #[error("{path}: not a media file Monsoon accepts ({reason})")]
    NotMedia {
        path: PathBuf,
        reason: String,
        rule: Option<Box<Rule>>,
    },

    #[error("{path}: {reason}")]
    Unsupported {
        path: PathBuf,
        reason: String,
        rule: Option<Box<Rule>>,
    },

    #[error("{path}: {what} {value} exceeds the limit of {limit}")]
    Limit {
        path: PathBuf,
        what: Limited,
        value: String,
        limit: String,
    },

    /// A frame past the first ones is over the frame-size limit (the probe reads only the
    /// stream's header, so this is found while decoding).
    #[error(
        "{path}: frame size {size} exceeds the limit of {limit} (the picture changes size mid-stream; it starts at {first})"
    )]
    FrameOverLimit {
        path: PathBuf,
        size: String,
        first: String,
        limit: String,
    },

    /// The picture changes size mid-stream, within the limits.
    #[error(
        "{path}: the picture changes size mid-stream, from {first} to {size}; Monsoon encodes one ladder for one picture size, so re-encode the master at a single size"
    )]
    FrameSizeChanged {
        path: PathBuf,
        first: String,
        size: String,
    },

    #[error("{tool} could not be started ({source}); install it with `apt-get install ffmpeg`")]
    ToolMissing {
        tool: &'static str,
        source: std::io::Error,
    },

    /// Found before any work starts (`ffmpeg::require_ffmpeg`), rather than as a failed start.
    #[error("{tool} is not installed; run `apt-get install ffmpeg`")]
    ToolNotInstalled { tool: &'static str },

    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        status: String,
        code: Option<i32>,
        stderr: String,
    },

    #[error("{path}: the file is damaged: more than 1 % of its frames do not decode ({detail})")]
    Corrupt { path: PathBuf, detail: String },

    #[error("transcoding was interrupted")]
    Interrupted,

    #[error("packaging check failed: {0}")]
    Verify(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What of a master [`Error::Limit`] holds to a limit (`crate::Limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Resolution,
    FrameRate,
    Duration,
    FileSize,
}

impl std::fmt::Display for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Resolution => "resolution",
            Self::FrameRate => "frame rate",
            Self::Duration => "duration",
            Self::FileSize => "file size",
        })
    }
}

impl Error {
    /// The error as a refusal: its message, and the rule it breaks when a person can mend the
    /// file (what the studio translates); none for the machine's failures.
    pub fn refusal(&self) -> Refusal {
        let rule = match self {
            Self::Empty { .. } => Some(Rule::EmptyUpload),
            Self::NotMedia { rule, .. } | Self::Unsupported { rule, .. } => {
                rule.as_deref().cloned()
            }
            Self::Limit {
                what, value, limit, ..
            } => {
                let (value, limit) = (value.clone(), limit.clone());
                Some(match what {
                    Limited::Resolution => Rule::ResolutionOverLimit { value, limit },
                    Limited::FrameRate => Rule::FrameRateOverLimit { value, limit },
                    Limited::Duration => Rule::DurationOverLimit { value, limit },
                    Limited::FileSize => Rule::FileSizeOverLimit { value, limit },
                })
            }
            _ => None,
        };
        Refusal {
            message: self.to_string(),
            rule,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

/// The catalog's file helpers (`monsoon_catalog::publish::write_durable`) fail only with
/// `Io`; anything else keeps its message.
impl From<monsoon_catalog::Error> for Error {
    fn from(e: monsoon_catalog::Error) -> Self {
        match e {
            monsoon_catalog::Error::Io { path, source } => Error::Io {
                path: path.into(),
                source,
            },
            other => Error::Io {
                path: PathBuf::new(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}
