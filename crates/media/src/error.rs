use std::path::PathBuf;

/// Everything that can go wrong between a master file and a packaged ladder.
///
/// Messages are written for the operator: they name the file or value and the rule it broke.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: file not found")]
    NotFound { path: PathBuf },

    #[error("{path}: file is empty (0 bytes); give the complete master file")]
    Empty { path: PathBuf },

    #[error("{path}: not a media file Monsoon accepts ({reason})")]
    NotMedia { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    Unsupported { path: PathBuf, reason: String },

    #[error("{path}: {what} {value} exceeds the limit of {limit}")]
    Limit {
        path: PathBuf,
        what: &'static str,
        value: String,
        limit: String,
    },

    #[error("{tool} could not be started ({source}); install it with `apt-get install ffmpeg`")]
    ToolMissing {
        tool: &'static str,
        source: std::io::Error,
    },

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

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
