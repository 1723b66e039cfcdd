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

/// `e` and its causes in one line, as `anyhow`'s `{:#}` writes them, without a cause the
/// message before it already says (a `"{path}: {source}"` and then its source again): the
/// whole reason an operator reads, from the command line or a failed job.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_names_each_cause_once() {
        let io = Error::Io {
            path: "/srv/film.toml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "file not found"),
        };
        // `Io` says its source already: not repeated.
        assert_eq!(chain(&io), "/srv/film.toml: file not found");
        #[derive(Debug, thiserror::Error)]
        #[error("reading the job")]
        struct Outer(#[source] Error);
        assert_eq!(
            chain(&Outer(io)),
            "reading the job: /srv/film.toml: file not found"
        );
    }
}
