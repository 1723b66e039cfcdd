//! The rules of a film's metadata, in one place for every way it is written: `film.toml` read
//! by `monsoon ingest` and its jobs ([`FilmMeta::parse_toml`]), and the studio's form
//! (`/admin/films`, which sends JSON and gets the same [`FieldError`]s back).
//!
//! Each broken rule is a [`FieldError`] a person without the source code can act on: the key
//! as `film.toml` spells it, what is wrong with the value, and the expected form written out
//! ([`FIELDS`]). The shape of every key is checked here, before serde sees the file, so a
//! title given as one string says how to give it in two languages instead of "expected
//! struct Localized"; a mistyped key names the key it is nearest to.

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::FilmMeta;

/// One broken rule of a film's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The key as `film.toml` spells it: `title.vi`, `cast[2]`, `ladder[0].kbps`; `film.toml`
    /// for the file as a whole (its syntax, its size).
    pub key: String,
    /// What is wrong, naming the value and the rule.
    pub message: String,
    /// The expected form, as a line of `film.toml` (`age_rating = "T13"`); empty when the
    /// message says it all.
    pub example: String,
    /// The rule broken and the values `message` names, for a translation of it (the studio
    /// shows it in its operator's language); absent where the message is only in English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
}

impl FieldError {
    /// An error of `key` with the example of its field in [`FIELDS`].
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
            example: example_of(key),
            rule: None,
        }
    }

    /// The error with the rule it breaks.
    pub fn because(mut self, rule: Rule) -> Self {
        self.rule = Some(rule);
        self
    }
}

/// A rule that the studio's forms can break (a film's metadata, its images, a media file it
/// uploads), with the values its message names: in JSON `{"name": "too_long", "chars": 300,
/// "max": 200}`. The English message is the catalog's (or the media crate's); the studio
/// shows its own translation of each (`crates/server/locales/studio.*.toml`, `[rules]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Rule {
    /// `title` has neither a Vietnamese nor an English text.
    TitleRequired,
    /// A text of `chars` characters, over its limit `max`.
    TooLong { chars: usize, max: usize },
    /// A control `character` (`U+000D`) at character `at` (from 1) of a text.
    ControlCharacter { character: String, at: usize },
    /// A list of `count` entries, over its limit `max`.
    TooMany { count: usize, max: usize },
    /// Not a BCP 47 language tag.
    LanguageTag { value: String },
    /// Not a slug (the trailer's, or the film's own).
    Slug { value: String },
    /// A codec Monsoon does not encode; `known` lists those it does.
    Codec { value: String, known: String },
    /// A codec listed twice.
    Twice { value: String },
    /// `codecs` without `h264`.
    NeedsH264,
    /// A number outside `low..=high`.
    OutOfRange { value: u64, low: u64, high: u64 },
    /// Class C: films that may not be shown in Viet Nam.
    BannedRating,
    /// Not one of [`AGE_RATINGS`].
    AgeRating { value: String },
    /// One of [`AGE_RATINGS`] (`near`) but for its case.
    AgeRatingCase { value: String, near: String },
    /// The trailer named is the film itself.
    TrailerIsItself,
    /// No published film has the trailer's slug.
    TrailerNotPublished { value: String },
    /// An image upload with no bytes.
    EmptyUpload,
    /// An upload that is not a JPEG, PNG or WebP image.
    NotImage,
    /// An image `width`×`height` with a side over `max` pixels.
    ImageTooBig { width: u32, height: u32, max: u32 },
    /// An image `width`×`height` with a side under `min` pixels.
    ImageTooSmall { width: u32, height: u32, min: u32 },
    // A media file's checks (`monsoon_media::Error::refusal`): an uploaded master, audio
    // track or subtitles, or the file of `monsoon ingest`.
    /// A text file, not a film; it `begins` so.
    TextFile { begins: String },
    /// An MP4 or MOV file cut short: its index (moov) is missing.
    CutShort,
    /// Named like an MP4 or MOV file, but not one.
    NotMp4,
    /// A file ffprobe cannot read; what it `said`.
    Unreadable { said: String },
    /// A container `format` that is not one of those `allowed`.
    Container { format: String, allowed: String },
    /// A master with no video stream.
    NoVideo,
    /// A master with audio but no picture.
    AudioOnly,
    /// An audio track's file with no audio stream.
    NoAudio,
    /// A stream with no duration (an incomplete file).
    NoDuration,
    /// A master's frame size `value` (`8192x8192`) over the `limit`.
    ResolutionOverLimit { value: String, limit: String },
    /// A frame rate `value` (`240.000 fps`) over the `limit`.
    FrameRateOverLimit { value: String, limit: String },
    /// A duration `value` (`90000 s`) over the `limit`.
    DurationOverLimit { value: String, limit: String },
    /// A file size `value` over the `limit`.
    FileSizeOverLimit { value: String, limit: String },
    /// Subtitles ffmpeg cannot read as SRT, WebVTT or ASS; what it `said`.
    NotSubtitles { said: String },
    /// Subtitles without a single cue.
    NoSubtitleCues,
    /// An audio track lasting `audio_s` seconds for a film of `film_s`, more than
    /// `tolerance_s` apart (each to one decimal).
    TrackDuration {
        audio_s: String,
        film_s: String,
        tolerance_s: String,
    },
}

/// A refusal before it is given its key: the English message, and the rule it breaks for a
/// translation (none for a failure of the machine, such as ffmpeg missing). What
/// [`FilmMeta::validate`]'s checks and an [`crate::ImageTool`] return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub rule: Option<Rule>,
}

impl Refusal {
    pub fn new(message: impl Into<String>, rule: Rule) -> Self {
        Self {
            message: message.into(),
            rule: Some(rule),
        }
    }

    /// The refusal as the error of `key`.
    pub fn at(self, key: &str) -> FieldError {
        FieldError {
            rule: self.rule,
            ..FieldError::new(key, self.message)
        }
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self {
            message,
            rule: None,
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)?;
        if !self.example.is_empty() {
            write!(f, "\n    for example: {}", self.example)?;
        }
        Ok(())
    }
}

/// Errors as text for a terminal: one per paragraph.
pub fn describe(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => {
            let mut text = format!("{} problems:", many.len());
            for e in many {
                text.push_str("\n  - ");
                text.push_str(&e.to_string().replace('\n', "\n  "));
            }
            text
        }
    }
}

/// The form a key's value takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{ vi = "…", en = "…" }`.
    Localized,
    /// A string.
    Text,
    /// A list of strings.
    List,
    /// A whole number from 0 up to the maximum given.
    Count(u64),
    /// A day, `"2025-08-22"`.
    Date,
    /// A moment with its UTC offset, `"2025-11-20T20:00:00+07:00"` (RFC 3339).
    DateTime,
    /// A list of `{ height = …, kbps = … }`.
    Ladder,
}

/// A key of `film.toml`: its shape and its expected form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: &'static str,
    pub shape: Shape,
    /// A `film.toml` value of the right form.
    pub example: &'static str,
}

const fn field(key: &'static str, shape: Shape, example: &'static str) -> Field {
    Field {
        key,
        shape,
        example,
    }
}

/// Every key of `film.toml`, in the order of `docs/film.example.toml`.
pub const FIELDS: &[Field] = &[
    field(
        "title",
        Shape::Localized,
        r#"{ vi = "Mưa Đỏ", en = "Red Rain" }"#,
    ),
    field("original_title", Shape::Text, r#""Mưa Đỏ""#),
    field(
        "synopsis",
        Shape::Localized,
        r#"{ vi = "Mùa hè năm 1972…", en = "Summer 1972…" }"#,
    ),
    field("director", Shape::List, r#"["Đặng Thái Huyền"]"#),
    field("writer", Shape::List, r#"["Chu Lai"]"#),
    field("cast", Shape::List, r#"["Đỗ Nhật Hoàng", "Lê Hạ Anh"]"#),
    field("genres", Shape::List, r#"["Chiến tranh", "Chính kịch"]"#),
    field("runtime_min", Shape::Count(u32::MAX as u64), "124"),
    field("country", Shape::Text, r#""VN""#),
    field(
        "production_company",
        Shape::Text,
        r#""Điện ảnh Quân đội nhân dân""#,
    ),
    field("cinema_release", Shape::Date, r#""2025-08-22""#),
    field(
        "free_release",
        Shape::DateTime,
        r#""2025-11-20T20:00:00+07:00""#,
    ),
    field("age_rating", Shape::Text, r#""T13""#),
    field("language", Shape::Text, r#""vi""#),
    field("codecs", Shape::List, r#"["h264", "av1"]"#),
    field("trailer", Shape::Text, r#""mua-do-trailer""#),
    field("poster", Shape::Text, r#""poster.jpg""#),
    field("backdrop", Shape::Text, r#""backdrop.jpg""#),
    field("ladder", Shape::Ladder, "[{ height = 720, kbps = 3000 }]"),
];

/// The example line of `key` (`title.vi` and `cast[2]` take their field's).
fn example_of(key: &str) -> String {
    let root = key.split(['.', '[']).next().unwrap_or(key);
    FIELDS
        .iter()
        .find(|f| f.key == root)
        .map(|f| format!("{} = {}", f.key, f.example))
        .unwrap_or_default()
}

/// The Vietnamese film classes a published film may have, from Circular 05/2023/TT-BVHTTDL
/// (Article 3 of the Law on Cinema's classification): the label, and who may watch.
pub const AGE_RATINGS: &[(&str, &str)] = &[
    ("P", "every age"),
    ("K", "under 13 with a parent or guardian"),
    ("T13", "13 and over"),
    ("T16", "16 and over"),
    ("T18", "18 and over"),
];

/// The class of films that may not be shown at all (the same circular): refused, since a
/// film Monsoon publishes is shown.
pub const BANNED_RATING: &str = "C";

/// [`AGE_RATINGS`] in words, for messages and the studio's form.
pub fn age_rating_rule() -> String {
    let classes: Vec<String> = AGE_RATINGS
        .iter()
        .map(|(label, who)| format!("{label} ({who})"))
        .collect();
    format!(
        "one of the Vietnamese film classes (Circular 05/2023/TT-BVHTTDL): {}",
        classes.join(", ")
    )
}

/// The age rating's error, if it breaks the rule.
pub(crate) fn check_age_rating(rating: &str) -> Option<FieldError> {
    if AGE_RATINGS.iter().any(|(label, _)| *label == rating) {
        return None;
    }
    let shown = rating.escape_debug();
    let near = AGE_RATINGS
        .iter()
        .find(|(label, _)| label.eq_ignore_ascii_case(rating.trim()))
        .map(|(label, _)| *label);
    let (message, rule) = if rating == BANNED_RATING {
        (
            "`age_rating` is \"C\": the class of films that may not be shown in Viet Nam \
             (Circular 05/2023/TT-BVHTTDL); Monsoon does not publish them"
                .to_owned(),
            Rule::BannedRating,
        )
    } else {
        let value = rating.to_owned();
        let (meant, rule) = match near {
            Some(near) => (
                format!("did you mean \"{near}\"? It"),
                Rule::AgeRatingCase {
                    value,
                    near: near.to_owned(),
                },
            ),
            None => ("it".to_owned(), Rule::AgeRating { value }),
        };
        (
            format!(
                "`age_rating` is \"{shown}\"; {meant} must be {}",
                age_rating_rule()
            ),
            rule,
        )
    };
    Some(FieldError::new("age_rating", message).because(rule))
}

/// The known key nearest to `key`, if one is near enough to be a typo of it.
pub fn nearest<'a>(key: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|&(distance, k)| distance <= 2.max(k.len() / 4) && distance < k.len())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, k)| k)
}

fn unknown_key(shown: &str, key: &str, known: &[&str]) -> FieldError {
    let mut error = match nearest(key, known.iter().copied()) {
        Some(near) => {
            let near_shown = shown.replacen(key, near, 1);
            let mut e = FieldError::new(
                &near_shown,
                format!("unknown key `{shown}`; did you mean `{near}`?"),
            );
            e.key = shown.to_owned();
            e
        }
        None => FieldError {
            key: shown.to_owned(),
            rule: None,
            message: format!(
                "unknown key `{shown}`; the keys here are {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            example: String::new(),
        },
    };
    error
        .message
        .push_str(" (every key is described in docs/film.example.toml)");
    error
}

/// The TOML type of `value`, in words.
fn kind(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a text",
        toml::Value::Integer(_) => "a whole number",
        toml::Value::Float(_) => "a decimal number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

/// Checks the shape of every key of a parsed `film.toml`, and writes its dates as the strings
/// serde reads (a TOML date, `2025-08-22` unquoted, is taken as the quoted one is).
pub(crate) fn check_shapes(table: &mut toml::Table) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let known: Vec<&str> = FIELDS.iter().map(|f| f.key).collect();
    for (key, value) in table.iter_mut() {
        let Some(field) = FIELDS.iter().find(|f| f.key == key) else {
            errors.push(unknown_key(key, key, &known));
            continue;
        };
        let wrong = |what: &str| {
            FieldError::new(
                key,
                format!("`{key}` is {}; it must be {what}", kind(value)),
            )
        };
        match field.shape {
            Shape::Text => {
                if !value.is_str() {
                    errors.push(wrong("a text in quotes"));
                }
            }
            Shape::Localized => match value {
                toml::Value::Table(inner) => {
                    for (lang, text) in inner.iter() {
                        let shown = format!("{key}.{lang}");
                        if !["vi", "en"].contains(&lang.as_str()) {
                            errors.push(unknown_key(&shown, lang, &["vi", "en"]));
                        } else if !text.is_str() {
                            errors.push(FieldError::new(
                                &shown,
                                format!("`{shown}` is {}; it must be a text in quotes", kind(text)),
                            ));
                        }
                    }
                }
                toml::Value::String(_) => errors.push(FieldError::new(
                    key,
                    format!(
                        "`{key}` is one text; give it in Vietnamese (vi) and English (en), \
                         either or both, as a table"
                    ),
                )),
                _ => errors.push(wrong(
                    "a table of a Vietnamese (vi) and an English (en) text",
                )),
            },
            Shape::List => match value {
                toml::Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_str() {
                            let shown = format!("{key}[{i}]");
                            errors.push(FieldError::new(
                                &shown,
                                format!("`{shown}` is {}; it must be a text in quotes", kind(item)),
                            ));
                        }
                    }
                }
                toml::Value::String(one) => errors.push(FieldError::new(
                    key,
                    format!(
                        "`{key}` is one text; it must be a list, even of one: [\"{}\"]",
                        one.escape_debug()
                    ),
                )),
                _ => errors.push(wrong("a list of texts in quotes")),
            },
            Shape::Count(max) => {
                if !value
                    .as_integer()
                    .is_some_and(|n| (0..=max as i64).contains(&n))
                {
                    let shown = match value {
                        toml::Value::Integer(n) => format!("{n}"),
                        other => kind(other).to_owned(),
                    };
                    errors.push(FieldError::new(
                        key,
                        format!("`{key}` is {shown}; it must be a whole number from 0 to {max}"),
                    ));
                }
            }
            Shape::Date => {
                if let toml::Value::Datetime(dt) = value
                    && dt.date.is_some()
                    && dt.time.is_none()
                {
                    *value = toml::Value::String(dt.to_string());
                }
                let ok = value
                    .as_str()
                    .is_some_and(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok());
                if !ok {
                    errors.push(FieldError::new(
                        key,
                        format!(
                            "`{key}` is {}; it must be a day, year-month-day",
                            shown_value(value)
                        ),
                    ));
                }
            }
            Shape::DateTime => {
                if let toml::Value::Datetime(dt) = value
                    && dt.offset.is_some()
                {
                    *value = toml::Value::String(dt.to_string());
                }
                let ok = value
                    .as_str()
                    .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok());
                if !ok {
                    errors.push(FieldError::new(
                        key,
                        format!(
                            "`{key}` is {}; it must be a date, a time and the UTC offset \
                             (+07:00 in Viet Nam), as RFC 3339 writes them",
                            shown_value(value)
                        ),
                    ));
                }
            }
            Shape::Ladder => match value {
                toml::Value::Array(rungs) => {
                    for (i, rung) in rungs.iter().enumerate() {
                        check_rung(key, i, rung, &mut errors);
                    }
                }
                _ => errors.push(wrong("a list of rungs")),
            },
        }
    }
    errors
}

fn shown_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{}\"", s.escape_debug()),
        toml::Value::Datetime(dt) => format!("{dt} (without its UTC offset)"),
        other => kind(other).to_owned(),
    }
}

fn check_rung(key: &str, i: usize, rung: &toml::Value, errors: &mut Vec<FieldError>) {
    let shown = format!("{key}[{i}]");
    let Some(rung) = rung.as_table() else {
        errors.push(FieldError::new(
            &shown,
            format!(
                "`{shown}` is {}; it must be a table of height and kbps",
                kind(rung)
            ),
        ));
        return;
    };
    for (name, value) in rung {
        let shown = format!("{key}[{i}].{name}");
        use crate::film_limits::{RUNG_HEIGHT, RUNG_KBPS};
        let (low, high) = match name.as_str() {
            "height" => (
                i64::from(*RUNG_HEIGHT.start()),
                i64::from(*RUNG_HEIGHT.end()),
            ),
            "kbps" => (*RUNG_KBPS.start() as i64, *RUNG_KBPS.end() as i64),
            _ => {
                errors.push(unknown_key(&shown, name, &["height", "kbps"]));
                continue;
            }
        };
        if !value
            .as_integer()
            .is_some_and(|n| (low..=high).contains(&n))
        {
            errors.push(FieldError::new(
                &shown,
                format!("`{shown}` is {value}; it must be between {low} and {high}"),
            ));
        }
    }
    for needed in ["height", "kbps"] {
        if !rung.contains_key(needed) {
            errors.push(FieldError::new(
                &format!("{shown}.{needed}"),
                format!("`{shown}` has no `{needed}`"),
            ));
        }
    }
}

impl FilmMeta {
    /// Parses `film.toml` text and checks every rule; the errors are all of them, each naming
    /// its key.
    pub fn parse_toml(text: &str) -> Result<Self, Vec<FieldError>> {
        let file_error = |message: String| {
            vec![FieldError {
                key: "film.toml".into(),
                message,
                example: String::new(),
                rule: None,
            }]
        };
        if text.len() > crate::film_limits::FILE_BYTES {
            return Err(file_error(format!(
                "the file is {} bytes long; the limit is {} bytes",
                text.len(),
                crate::film_limits::FILE_BYTES
            )));
        }
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            file_error(format!(
                "not valid TOML: {}",
                e.to_string()
                    .trim_end()
                    .trim_start_matches("TOML parse error ")
            ))
        })?;
        let errors = check_shapes(&mut table);
        if !errors.is_empty() {
            return Err(errors);
        }
        // Every shape is right, so serde takes it; should it not, its word is still shown.
        let meta: FilmMeta = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| file_error(e.to_string()))?;
        let errors = meta.validate();
        if errors.is_empty() {
            Ok(meta)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LadderRung, Localized, MemoryFilms, repository::conformance};

    fn errors(text: &str) -> Vec<FieldError> {
        FilmMeta::parse_toml(text).unwrap_err()
    }

    fn one(text: &str) -> FieldError {
        let mut all = errors(text);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    /// Was "invalid type: string "Mưa đỏ", expected struct Localized".
    #[test]
    fn a_title_in_one_language_says_how_to_give_both() {
        let e = one("title = \"Mưa đỏ\"");
        assert_eq!(e.key, "title");
        assert!(
            e.message
                .contains("give it in Vietnamese (vi) and English (en)"),
            "{e}"
        );
        assert_eq!(e.example, r#"title = { vi = "Mưa Đỏ", en = "Red Rain" }"#);
        assert!(!e.message.contains("Localized"), "{e}");
    }

    /// Was "invalid type: map, expected a sequence".
    #[test]
    fn a_wrong_shape_names_the_key_and_the_form() {
        let e = one("title = { vi = \"A\" }\ncast = { a = 1 }");
        assert_eq!(e.key, "cast");
        assert!(
            e.message
                .contains("`cast` is a table; it must be a list of texts"),
            "{e}"
        );
        assert_eq!(e.example, r#"cast = ["Đỗ Nhật Hoàng", "Lê Hạ Anh"]"#);
        let e = one("title = { vi = \"A\" }\ndirector = \"Đặng Thái Huyền\"");
        assert!(
            e.message
                .contains("it must be a list, even of one: [\"Đặng Thái Huyền\"]"),
            "{e}"
        );
        let e = one("title = { vi = \"A\" }\nruntime_min = \"124\"");
        assert!(
            e.message
                .contains("`runtime_min` is a text; it must be a whole number"),
            "{e}"
        );
        let e = one("title = { vi = \"A\" }\ncast = [\"B\", 3]");
        assert_eq!(e.key, "cast[1]");
        let e = one("title = { vi = \"A\" }\nfree_release = \"20/11/2025 20:00\"");
        assert!(e.message.contains("(+07:00 in Viet Nam)"), "{e}");
        assert_eq!(e.example, r#"free_release = "2025-11-20T20:00:00+07:00""#);
        // A TOML date without quotes is a date all the same; without its offset, it is not
        // a moment.
        let meta = FilmMeta::parse_toml(
            "title = { vi = \"A\" }\ncinema_release = 2025-08-22\nfree_release = 2025-11-20T20:00:00+07:00",
        )
        .unwrap();
        assert_eq!(meta.cinema_release.unwrap().to_string(), "2025-08-22");
        assert_eq!(
            meta.free_release.unwrap().to_rfc3339(),
            "2025-11-20T20:00:00+07:00"
        );
        let e = one("title = { vi = \"A\" }\nfree_release = 2025-11-20T20:00:00");
        assert!(e.message.contains("without its UTC offset"), "{e}");
        let all = errors("title = { vi = \"A\" }\n[[ladder]]\nheight = 720\nbitrate = 3000");
        assert!(
            all[0].message.contains("unknown key `ladder[0].bitrate`"),
            "{all:?}"
        );
        assert_eq!(all[1].message, "`ladder[0]` has no `kbps`");
    }

    #[test]
    fn a_typo_names_the_nearest_key() {
        let e = one("title = { vi = \"A\" }\nsynopsys = { vi = \"B\" }");
        assert_eq!(e.key, "synopsys");
        assert!(
            e.message
                .contains("unknown key `synopsys`; did you mean `synopsis`?"),
            "{e}"
        );
        assert!(e.example.starts_with("synopsis = { vi = "), "{e}");
        let e = one("title = { vn = \"A\", en = \"B\" }");
        assert!(
            e.message
                .contains("unknown key `title.vn`; did you mean `vi`?"),
            "{e}"
        );
        assert!(
            one("title = { vi = \"A\" }\nagerating = \"P\"")
                .message
                .contains("`age_rating`")
        );
        assert!(
            one("title = { vi = \"A\" }\nposter_image = \"p.jpg\"")
                .message
                .contains("`poster`")
        );
        // Nothing near: no guess.
        let e = one("title = { vi = \"A\" }\nbudget = 5");
        assert!(!e.message.contains("did you mean"), "{e}");
    }

    /// `PG-13` was accepted silently.
    #[test]
    fn the_age_rating_is_a_vietnamese_class() {
        for good in ["P", "K", "T13", "T16", "T18"] {
            FilmMeta::parse_toml(&format!(
                "title = {{ vi = \"A\" }}\nage_rating = \"{good}\""
            ))
            .unwrap();
        }
        let e = one("title = { vi = \"A\" }\nage_rating = \"PG-13\"");
        assert_eq!(e.key, "age_rating");
        assert!(
            e.message.contains("`age_rating` is \"PG-13\"; it must be one of the Vietnamese film classes (Circular 05/2023/TT-BVHTTDL): P (every age), K (under 13 with a parent or guardian), T13 (13 and over)"),
            "{e}"
        );
        assert_eq!(e.example, "age_rating = \"T13\"");
        let e = one("title = { vi = \"A\" }\nage_rating = \"t16\"");
        assert!(e.message.contains("did you mean \"T16\"?"), "{e}");
        let e = one("title = { vi = \"A\" }\nage_rating = \"C\"");
        assert!(e.message.contains("may not be shown"), "{e}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let all = errors("title = \"A\"\ncast = \"B\"\nsynopsys = \"C\"");
        let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["cast", "synopsys", "title"]);
        let text = describe(&all);
        assert!(text.starts_with("3 problems:\n  - "), "{text}");
        let all = FilmMeta {
            age_rating: Some("R".into()),
            codecs: vec!["vp9".into()],
            ladder: vec![LadderRung { height: 1, kbps: 1 }],
            ..FilmMeta::default()
        }
        .validate();
        let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "title",
                "codecs[0]",
                "codecs",
                "ladder[0].height",
                "age_rating"
            ]
        );
    }

    #[test]
    fn syntax_errors_keep_the_line_and_column() {
        let e = one("title = { vi = \"A\" \n");
        assert_eq!(e.key, "film.toml");
        assert!(e.message.starts_with("not valid TOML: at line 1"), "{e}");
    }

    /// A trailer naming no film was accepted silently.
    #[tokio::test]
    async fn the_trailer_is_a_published_film() {
        let films = MemoryFilms::new();
        let meta = FilmMeta {
            title: Localized {
                vi: "A".into(),
                en: String::new(),
            },
            trailer: Some("mua-do-trailer".into()),
            ..FilmMeta::default()
        };
        let e = meta.check_trailer("mua-do", &films).await.unwrap().unwrap();
        assert_eq!(e.key, "trailer");
        assert!(e.message.contains("no published film has that slug; publish the trailer first (`monsoon ingest trailer.mp4 --slug mua-do-trailer`)"), "{e}");
        let e = meta
            .check_trailer("mua-do-trailer", &films)
            .await
            .unwrap()
            .unwrap();
        assert!(e.message.contains("this film itself"), "{e}");
        use crate::FilmRepository as _;
        films
            .publish(
                "mua-do-trailer",
                &FilmMeta::untitled("t"),
                &conformance::version("v1"),
            )
            .await
            .unwrap();
        assert_eq!(meta.check_trailer("mua-do", &films).await.unwrap(), None);
    }

    #[test]
    fn a_missing_file_is_said_once_and_a_missing_image_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let err = FilmMeta::from_toml_file(&dir.path().join("film.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("film.toml: file not found"), "{err}");
        assert!(
            std::error::Error::source(
                &FilmMeta::from_toml_file(&dir.path().join("x")).unwrap_err()
            )
            .is_none()
        );
        let path = dir.path().join("film.toml");
        std::fs::write(&path, "title = { vi = \"A\" }\nposter = \"p.jpg\"").unwrap();
        let err = FilmMeta::from_toml_file(&path).unwrap_err();
        let crate::Error::Fields { errors, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(errors[0].key, "poster");
        assert!(
            errors[0]
                .message
                .contains("p.jpg, which is not a file (paths are relative to film.toml)")
        );
    }
}
