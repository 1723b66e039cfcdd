//! The rules of a film's metadata on its values ([`FilmMeta::validate`]): lengths, the title,
//! the language tag, the codecs, the ladder, the age rating; and the one that needs the
//! catalog ([`FilmMeta::check_trailer`]). The shape of each key, checked before, is
//! `rules.rs`'s.

use crate::FilmMeta;
use crate::film::limits;
use crate::rules::{FieldError, Refusal, Rule};
use crate::{LANGUAGE_TAG_RULE, Result, VIDEO_CODECS, is_language_tag, validate_slug};

impl FilmMeta {
    /// Holds every field to its rules: [`limits`], the title, the language tag, the age
    /// rating, the codecs and the ladder. The errors are all of them; none means it is valid.
    /// The one check of metadata: `film.toml` ([`FilmMeta::parse_toml`]) and the studio's
    /// form both come here. What needs the catalog (the trailer is a published film) is
    /// [`FilmMeta::check_trailer`].
    pub fn validate(&self) -> Vec<FieldError> {
        use limits::*;
        let mut errors = Vec::new();
        let mut check = |key: &str, result: std::result::Result<(), Refusal>| {
            if let Err(refusal) = result {
                errors.push(refusal.at(key));
            }
        };
        if self.title.vi.trim().is_empty() && self.title.en.trim().is_empty() {
            check(
                "title",
                Err(Refusal::new(
                    "`title` is required: `title.vi` (Vietnamese), `title.en` (English) or both",
                    Rule::TitleRequired,
                )),
            );
        }
        let titles = [
            ("title.vi", self.title.vi.as_str()),
            ("title.en", self.title.en.as_str()),
            (
                "original_title",
                self.original_title.as_deref().unwrap_or(""),
            ),
        ];
        for (key, value) in titles {
            check(key, one_line(key, value, TITLE_CHARS));
        }
        for (key, value) in [
            ("synopsis.vi", &self.synopsis.vi),
            ("synopsis.en", &self.synopsis.en),
        ] {
            check(key, text(key, value, SYNOPSIS_CHARS));
        }
        let lists = [
            ("director", &self.director, CREW_NAMES, NAME_CHARS),
            ("writer", &self.writer, CREW_NAMES, NAME_CHARS),
            ("cast", &self.cast, CAST_NAMES, NAME_CHARS),
            ("genres", &self.genres, GENRES, LABEL_CHARS),
        ];
        for (key, items, max_items, max_chars) in lists {
            if items.len() > max_items {
                check(key, too_many(key, "entries", items.len(), max_items));
                continue;
            }
            for (i, item) in items.iter().enumerate() {
                let key = format!("{key}[{i}]");
                check(&key, one_line(&key, item, max_chars));
            }
        }
        let labels = [
            ("country", &self.country, LABEL_CHARS),
            ("age_rating", &self.age_rating, LABEL_CHARS),
            ("production_company", &self.production_company, NAME_CHARS),
        ];
        for (key, value, max_chars) in labels {
            check(
                key,
                one_line(key, value.as_deref().unwrap_or(""), max_chars),
            );
        }
        if let Some(language) = &self.language {
            let result = one_line("language", language, LABEL_CHARS).and_then(|()| {
                if is_language_tag(language) {
                    Ok(())
                } else {
                    Err(Refusal::new(
                        format!(
                            "`language` is \"{}\"; it must be a BCP 47 language tag: \
                             {LANGUAGE_TAG_RULE}",
                            language.escape_debug()
                        ),
                        Rule::LanguageTag {
                            value: language.clone(),
                        },
                    ))
                }
            });
            check("language", result);
        }
        if let Some(trailer) = &self.trailer {
            let result = one_line("trailer", trailer, SLUG_CHARS).and_then(|()| {
                validate_slug(trailer).map_err(|e| {
                    let value = trailer.clone();
                    Refusal::new(format!("`trailer`: {e}"), Rule::Slug { value })
                })
            });
            check("trailer", result);
        }
        for (key, image) in [("poster", &self.poster), ("backdrop", &self.backdrop)] {
            let len = image.as_ref().map_or(0, |p| p.as_os_str().len());
            if len > IMAGE_PATH_BYTES {
                check(
                    key,
                    Err(Refusal::from(format!(
                        "`{key}` is a path of {len} bytes; the limit is {IMAGE_PATH_BYTES}"
                    ))),
                );
            }
        }
        if self.ladder.len() > RUNGS {
            check(
                "ladder",
                too_many("ladder", "rungs", self.ladder.len(), RUNGS),
            );
        }
        for (i, codec) in self.codecs.iter().enumerate() {
            let key = format!("codecs[{i}]");
            if !VIDEO_CODECS.contains(&codec.as_str()) {
                let known = VIDEO_CODECS.join(", ");
                let message = format!(
                    "`{key}` is `{}`; the codecs are {known}",
                    codec.escape_debug()
                );
                let value = codec.clone();
                check(
                    &key,
                    Err(Refusal::new(message, Rule::Codec { value, known })),
                );
            } else if self.codecs[..i].contains(codec) {
                let message = format!("`{key}`: `{codec}` is listed twice");
                let value = codec.clone();
                check(&key, Err(Refusal::new(message, Rule::Twice { value })));
            }
        }
        if !self.codecs.is_empty() && !self.codecs.iter().any(|c| c == "h264") {
            check(
                "codecs",
                Err(Refusal::new(
                    "`codecs` must include h264: every player decodes it, and AV1 is offered beside it",
                    Rule::NeedsH264,
                )),
            );
        }
        for (i, rung) in self.ladder.iter().enumerate() {
            let ranges = [
                (
                    "height",
                    u64::from(rung.height),
                    u64::from(*RUNG_HEIGHT.start()),
                    u64::from(*RUNG_HEIGHT.end()),
                ),
                ("kbps", rung.kbps, *RUNG_KBPS.start(), *RUNG_KBPS.end()),
            ];
            for (name, value, low, high) in ranges {
                if !(low..=high).contains(&value) {
                    let key = format!("ladder[{i}].{name}");
                    let message =
                        format!("`{key}` is {value}; it must be between {low} and {high}");
                    check(
                        &key,
                        Err(Refusal::new(message, Rule::OutOfRange { value, low, high })),
                    );
                }
            }
        }
        // Checked once the label is one line: its own rule says which labels there are.
        if let Some(rating) = &self.age_rating
            && one_line("age_rating", rating, LABEL_CHARS).is_ok()
            && let Some(error) = crate::rules::check_age_rating(rating)
        {
            errors.push(error);
        }
        errors
    }

    /// The first broken rule of [`FilmMeta::validate`], as text.
    pub fn check_limits(&self) -> std::result::Result<(), String> {
        match self.validate().first() {
            Some(error) => Err(error.message.clone()),
            None => Ok(()),
        }
    }

    /// The rule that needs the catalog: `trailer` names a published film, not this one
    /// (`slug`). The pages link to it and hide it from the catalog's lists, so a slug naming
    /// no film would be a link to nothing, silently. Checked wherever metadata is saved.
    pub async fn check_trailer(
        &self,
        slug: &str,
        films: &dyn crate::FilmRepository,
    ) -> Result<Option<FieldError>> {
        let Some(trailer) = &self.trailer else {
            return Ok(None);
        };
        if trailer == slug {
            return Ok(Some(
                FieldError::new(
                    "trailer",
                    format!(
                        "`trailer` is \"{trailer}\", this film itself; it must name its trailer, another film"
                    ),
                )
                .because(Rule::TrailerIsItself),
            ));
        }
        if validate_slug(trailer).is_err() || films.get(trailer).await?.is_some() {
            return Ok(None);
        }
        let value = trailer.clone();
        Ok(Some(
            FieldError::new(
                "trailer",
                format!(
                    "`trailer` is \"{trailer}\", and no published film has that slug; publish the \
                     trailer first (`monsoon ingest trailer.mp4 --slug {trailer}`), or leave `trailer` out"
                ),
            )
            .because(Rule::TrailerNotPublished { value }),
        ))
    }
}

/// A one-line field (a title, a name, a label): at most `max_chars` characters and no control
/// character, not even a line break (such text reaches HTML titles, HTTP headers and calendar
/// lines).
fn one_line(key: &str, value: &str, max_chars: usize) -> std::result::Result<(), Refusal> {
    checked(
        key,
        value,
        max_chars,
        |_| false,
        "; it must be one line of text",
    )
}

/// A text field (a synopsis): at most `max_chars` characters; line breaks and tabs are its
/// only control characters.
fn text(key: &str, value: &str, max_chars: usize) -> std::result::Result<(), Refusal> {
    checked(
        key,
        value,
        max_chars,
        |c| matches!(c, '\n' | '\r' | '\t'),
        "",
    )
}

fn checked(
    key: &str,
    value: &str,
    max_chars: usize,
    allowed_control: impl Fn(char) -> bool,
    rule: &str,
) -> std::result::Result<(), Refusal> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(Refusal::new(
            format!("`{key}` is {chars} characters long; the limit is {max_chars}"),
            Rule::TooLong {
                chars,
                max: max_chars,
            },
        ));
    }
    let bad = value
        .chars()
        .enumerate()
        .find(|&(_, c)| c.is_control() && !allowed_control(c));
    match bad {
        Some((at, c)) => {
            let (character, at) = (format!("U+{:04X}", u32::from(c)), at + 1);
            Err(Refusal::new(
                format!("`{key}` has a control character ({character}) at character {at}{rule}"),
                Rule::ControlCharacter { character, at },
            ))
        }
        None => Ok(()),
    }
}

/// A list of `count` `what`, over its limit `max`.
fn too_many(key: &str, what: &str, count: usize, max: usize) -> std::result::Result<(), Refusal> {
    Err(Refusal::new(
        format!("`{key}` lists {count} {what}; the limit is {max}"),
        Rule::TooMany { count, max },
    ))
}
