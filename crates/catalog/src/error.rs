/// Errors of the catalog layer, whatever the backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("slug `{0}` is not valid: use 1 to 64 lowercase letters, digits and inner hyphens")]
    Slug(String),

    #[error("film metadata {path}: {message}")]
    Meta { path: String, message: String },

    /// Input that breaks a rule; the message names the value and the rule.
    #[error("{0}")]
    Invalid(String),

    /// The request does not fit what is stored (a name already taken).
    #[error("{0}")]
    Conflict(String),

    #[error("storage backend: {0}")]
    Backend(String),

    #[error("no media object `{0}`")]
    NotFound(String),

    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
