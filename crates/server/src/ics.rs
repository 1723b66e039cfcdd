//! iCalendar (RFC 5545) output for the premiere reminder (`/films/{slug}/premiere.ics`).
//!
//! Operator text (a film's title) ends up in property values, so it is escaped as TEXT
//! (§3.3.11) and every content line is folded at 75 octets (§3.1). No value can end a
//! content line early: a line break in the text, whether CRLF, LF or a bare CR, becomes the
//! two characters `\n`, and other control characters are dropped, so a title such as
//! `"Film\rDTSTART:…"` cannot add a property of its own.

/// Longest content line, in octets, not counting its CRLF (RFC 5545 §3.1).
pub const MAX_LINE_OCTETS: usize = 75;

/// Escapes `text` as an iCalendar TEXT value (RFC 5545 §3.3.11): `\`, `;` and `,` are escaped,
/// a line break becomes `\n`, and the control characters TEXT does not allow (everything in
/// U+0000–U+001F and U+007F but HTAB, which is a TSAFE-CHAR) are dropped.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            // CRLF is one line break. A bare CR is one too (old Mac text), and it must not
            // reach the output raw: some parsers end the content line at it.
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_ascii_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// An iCalendar object being written: content lines joined by CRLF, each folded.
#[derive(Debug, Default)]
pub struct Calendar {
    text: String,
}

impl Calendar {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the content line `name:value`. `value` must already be in its type's syntax
    /// (TEXT through [`escape_text`]); control characters other than HTAB are dropped here
    /// all the same, so nothing written through this can break a line (a URI value comes from
    /// the `Host` header or the configuration). The line is folded (RFC 5545 §3.1): CRLF and a
    /// space before it reaches 75 octets, never inside a UTF-8 sequence.
    pub fn line(&mut self, name: &str, value: &str) -> &mut Self {
        let mut octets = 0;
        let content = name.chars().chain([':']).chain(value.chars());
        for c in content.filter(|c| *c == '\t' || !c.is_ascii_control()) {
            let n = c.len_utf8();
            if octets + n > MAX_LINE_OCTETS {
                self.text.push_str("\r\n ");
                octets = 1;
            }
            self.text.push(c);
            octets += n;
        }
        self.text.push_str("\r\n");
        self
    }

    /// Appends `name:value` with `value` escaped as TEXT.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.line(name, &escape_text(value))
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// What the premiere reminder says.
#[derive(Debug)]
pub struct Premiere<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    /// Text of the event's description (the "free premiere on Monsoon" line).
    pub reminder: &'a str,
    pub url: &'a str,
    pub stamp: chrono::DateTime<chrono::Utc>,
    pub start: chrono::DateTime<chrono::Utc>,
    pub end: chrono::DateTime<chrono::Utc>,
}

/// The premiere as a calendar event with a display alarm 15 minutes before.
pub fn premiere(event: &Premiere<'_>) -> String {
    let utc = |d: chrono::DateTime<chrono::Utc>| d.format("%Y%m%dT%H%M%SZ").to_string();
    let mut cal = Calendar::new();
    cal.line("BEGIN", "VCALENDAR")
        .line("VERSION", "2.0")
        .line("PRODID", "-//Monsoon//Premiere//EN")
        .line("BEGIN", "VEVENT")
        .line("UID", &format!("premiere-{}@monsoon", event.slug))
        .line("DTSTAMP", &utc(event.stamp))
        .line("DTSTART", &utc(event.start))
        .line("DTEND", &utc(event.end))
        .text("SUMMARY", event.title)
        .text("DESCRIPTION", event.reminder)
        .line("URL", event.url)
        .line("BEGIN", "VALARM")
        .line("ACTION", "DISPLAY")
        .text("DESCRIPTION", event.title)
        .line("TRIGGER", "-PT15M")
        .line("END", "VALARM")
        .line("END", "VEVENT")
        .line("END", "VCALENDAR");
    cal.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Undoes folding (RFC 5545 §3.1: a CRLF followed by one space or tab is removed).
    fn unfold(text: &str) -> String {
        text.replace("\r\n ", "").replace("\r\n\t", "")
    }

    /// Undoes TEXT escaping.
    fn unescape(value: &str) -> String {
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n' | 'N') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn event(title: &str) -> String {
        let at = chrono::DateTime::parse_from_rfc3339("2025-11-20T13:00:00Z")
            .unwrap()
            .to_utc();
        premiere(&Premiere {
            slug: "film",
            title,
            reminder: "Free premiere on Monsoon",
            url: "http://example.test/films/film",
            stamp: at,
            start: at,
            end: at + chrono::Duration::hours(2),
        })
    }

    /// Every content line ends with CRLF, has no other CR or LF, and is at most 75 octets.
    fn assert_well_formed(ics: &str) {
        assert!(ics.ends_with("\r\n"), "{ics:?}");
        for line in ics[..ics.len() - 2].split("\r\n") {
            assert!(!line.contains(['\r', '\n']), "raw line break in {line:?}");
            assert!(
                line.len() <= MAX_LINE_OCTETS,
                "{} octets: {line:?}",
                line.len()
            );
        }
    }

    fn properties(ics: &str) -> Vec<String> {
        unfold(ics)
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| l.split(':').next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn text_escaping_per_rfc_5545() {
        assert_eq!(escape_text("a\\b;c,d"), "a\\\\b\\;c\\,d");
        assert_eq!(
            escape_text("one\r\ntwo\nthree\rfour"),
            "one\\ntwo\\nthree\\nfour"
        );
        assert_eq!(escape_text("tab\there\u{0}\u{7}\u{1b}[1m"), "tab\there[1m");
        assert_eq!(escape_text("Mưa đỏ"), "Mưa đỏ");
    }

    #[test]
    fn a_bare_cr_cannot_add_a_property() {
        let clean = properties(&event("Red Rain"));
        for title in [
            "Red Rain\rDTSTART:19700101T000000Z",
            "Red Rain\r\nBEGIN:VALARM",
            "Red Rain\nATTACH:http://evil.test/x",
            "Red Rain\r\rEND:VCALENDAR\r",
        ] {
            let ics = event(title);
            assert_well_formed(&ics);
            assert_eq!(properties(&ics), clean, "{ics}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_title_breaks_a_line_or_adds_a_property(title in proptest::prelude::any::<String>()) {
            let ics = event(&title);
            assert_well_formed(&ics);
            proptest::prop_assert_eq!(properties(&ics), properties(&event("x")));
            // What a calendar shows: the title, line breaks as LF, other controls gone.
            let shown: String = title
                .replace("\r\n", "\n")
                .replace('\r', "\n")
                .chars()
                .filter(|c| !c.is_ascii_control() || matches!(c, '\n' | '\t'))
                .collect();
            let unfolded = unfold(&ics);
            let summary = unfolded.split("\r\n").find_map(|l| l.strip_prefix("SUMMARY:")).unwrap();
            proptest::prop_assert_eq!(unescape(summary), shown);
        }
    }

    #[test]
    fn long_lines_are_folded_at_75_octets_between_characters() {
        let title = "Mưa đỏ — ".repeat(40);
        let ics = event(&title);
        assert_well_formed(&ics);
        let unfolded = unfold(&ics);
        let summary = unfolded
            .split("\r\n")
            .find_map(|l| l.strip_prefix("SUMMARY:"))
            .unwrap();
        assert_eq!(unescape(summary), title);
    }
}
