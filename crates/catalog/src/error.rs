/// Errors of the catalog layer, whatever the backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("slug `{0}` is not valid: use 1 to 64 lowercase letters, digits and inner hyphens")]
    Slug(String),

    #[error("film metadata {path}: {message}")]
    Meta { path: String, message: String },

    /// Metadata that breaks rules of `crate::rules`, every one of them.
    #[error("film metadata {path}: {}", crate::rules::describe(errors))]
    Fields {
        path: String,
        errors: Vec<crate::rules::FieldError>,
    },

    /// A draft cannot take a slug a film or another draft has.
    #[error("slug `{0}` is taken: a film or a draft has it already; choose another")]
    Taken(String),

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
