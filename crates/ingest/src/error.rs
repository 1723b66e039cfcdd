use std::path::PathBuf;

use monsoon_catalog::rules::Refusal;

/// Why an ingest was refused or failed. The catalog's and media's errors pass through
/// unchanged: their messages already name the file or key and the rule it broke.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Catalog(#[from] monsoon_catalog::Error),

    #[error(transparent)]
    Media(#[from] monsoon_media::Error),

    /// Subtitle languages name files (`subs/<lang>.vtt`) and manifest attributes.
    #[error("subtitle language `{0}` is not a language tag: use {rule}", rule = monsoon_catalog::LANGUAGE_TAG_RULE)]
    SubtitleLanguage(String),

    #[error("the subtitles give `{0}` twice; give one file per language")]
    SubtitlesTwice(String),

    #[error("{}: images must be .jpg, .png or .webp", .0.display())]
    ImageType(PathBuf),

    #[error("{}: {source}", .path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A list of codecs that is not a ladder's (`monsoon_media::Codec::parse_list` says why).
    #[error("{0}")]
    Codecs(String),

    /// A job that cannot be submitted or run, and why.
    #[error("{0}")]
    Job(String),

    #[error("copying {}", .path.display())]
    Copy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The error as a refusal: its message, and the rule a media file breaks when a person
    /// can mend it (`monsoon_media::Error::refusal`).
    pub fn refusal(&self) -> Refusal {
        match self {
            Self::Media(e) => e.refusal(),
            other => Refusal::from(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
