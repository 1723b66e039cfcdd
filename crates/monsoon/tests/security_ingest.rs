//! The hardening of what an operator hands `monsoon ingest` and of what the pages make of it
//! (docs/SECURITY.md, "Ingest inputs"): the real binary, real ffmpeg, a real catalog.
//!
//! - a master whose picture grows (or changes size) mid-stream is refused while it is
//!   decoded, naming the limit, and nothing is published or left behind;
//! - `film.toml` is bounded field by field and in size, the error naming the key;
//! - the premiere's calendar event escapes a title's line breaks, bare CR included, and folds
//!   its lines, so a title cannot add a property.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{Fixture, Server, ffmpeg, ffprobe};

/// Encodes `seconds` of a test pattern of `size` as a raw H.264 elementary stream (Annex B:
/// each part starts with its own SPS, PPS and IDR).
fn h264_part(out: &Path, size: &str, seconds: f64) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate=25:duration={seconds}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "h264",
        out.to_str().unwrap(),
    ]);
}

/// An MPEG-TS master whose picture is `first` for two seconds, then `then`: two elementary
/// streams back to back (the second SPS changes the size at an IDR, as a broadcast recording
/// or a crafted file may), remuxed without re-encoding. Checks with ffprobe that the stream
/// header says `first` and that the decoded frames really switch.
fn switching_master(dir: &Path, first: &str, then: &str, then_seconds: f64) -> PathBuf {
    let (a, b) = (dir.join("first.h264"), dir.join("then.h264"));
    h264_part(&a, first, 2.0);
    h264_part(&b, then, then_seconds);
    let joined = dir.join("joined.h264");
    let mut bytes = std::fs::read(&a).unwrap();
    bytes.extend(std::fs::read(&b).unwrap());
    std::fs::write(&joined, bytes).unwrap();
    let master = dir.join(format!("switch-{first}-to-{then}.ts"));
    ffmpeg(&[
        "-f",
        "h264",
        "-framerate",
        "25",
        "-i",
        joined.to_str().unwrap(),
        "-c",
        "copy",
        "-f",
        "mpegts",
        master.to_str().unwrap(),
    ]);

    let size = |v: &serde_json::Value| format!("{}x{}", v["width"], v["height"]);
    let streams = ffprobe(&master, &["-show_streams"]);
    assert_eq!(size(&streams["streams"][0]), first, "the header's size");
    let frames = ffprobe(
        &master,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=width,height",
            "-show_frames",
        ],
    );
    let mut sizes: Vec<String> = frames["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(size)
        .collect();
    sizes.dedup();
    assert_eq!(sizes, [first, then], "the decoded frames do not switch");
    master
}

#[test]
fn a_master_that_grows_past_the_limit_mid_stream_is_refused_naming_the_limit() {
    let f = Fixture::new();
    // 320x240, then a second of 7680x7680: 1.8x the pixels of the 8K limit, which only the
    // first frames' header was checked against (before the fix, this was published).
    let master = switching_master(f.tmp.path(), "320x240", "7680x7680", 1.0);
    f.assert_refused(
        &master,
        &[],
        &[
            &master.display().to_string(),
            "frame size 7680x7680 exceeds the limit of 7680x4320",
            "it starts at 320x240",
        ],
    );
}

#[test]
fn a_master_that_changes_size_within_the_limits_is_refused() {
    let f = Fixture::new();
    // Smaller frames pass the decoder's pixel bound; the filter graph's size guard stops them.
    let master = switching_master(f.tmp.path(), "320x240", "160x120", 1.0);
    f.assert_refused(
        &master,
        &[],
        &[
            &master.display().to_string(),
            "the picture changes size mid-stream, from 320x240 to 160x120",
        ],
    );
}

#[test]
fn film_toml_is_bounded_field_by_field_and_in_size() {
    let f = Fixture::new();
    let clip = f.path("clip.mp4");
    common::make_clip(&clip, 1, "160x90");
    let meta = f.path("film.toml");
    let refused = |text: &str, said: &[&str]| {
        std::fs::write(&meta, text).unwrap();
        let mut said: Vec<&str> = said.to_vec();
        let path = meta.display().to_string();
        said.push(&path);
        f.assert_refused(&clip, &["--meta", meta.to_str().unwrap()], &said);
    };

    // The 5 MB title: refused before it is parsed.
    let huge = format!("title = {{ vi = \"{}\" }}\n", "A".repeat(5_000_000));
    refused(
        &huge,
        &[&format!(
            "the file is {} bytes long; the limit is 262144 bytes",
            huge.len()
        )],
    );
    // Within the file's bound, each field has its own.
    let title = format!("title = {{ vi = \"{}\" }}\n", "đ".repeat(201));
    refused(
        &title,
        &["`title.vi` is 201 characters long; the limit is 200"],
    );
    let synopsis = format!(
        "title = {{ vi = \"A\" }}\nsynopsis = {{ en = \"{}\" }}\n",
        "x".repeat(5_001)
    );
    refused(
        &synopsis,
        &["`synopsis.en` is 5001 characters long; the limit is 5000"],
    );
    let cast = format!(
        "title = {{ vi = \"A\" }}\ncast = [{}]\n",
        vec!["\"Tên\""; 101].join(", ")
    );
    refused(&cast, &["`cast` lists 101 entries; the limit is 100"]);
    let name = format!(
        "title = {{ vi = \"A\" }}\ndirector = [\"{}\"]\n",
        "n".repeat(101)
    );
    refused(
        &name,
        &["`director[0]` is 101 characters long; the limit is 100"],
    );
    // A title is one line: a CR would reach page titles and calendar lines.
    refused(
        "title = { vi = \"Mưa đỏ\\rDTSTART:19700101T000000Z\" }\n",
        &["`title.vi` has a control character (U+000D) at character 7"],
    );
}

/// Every content line ends with CRLF, holds no other CR or LF, and is at most 75 octets
/// (RFC 5545 §3.1); returns the lines unfolded.
fn ics_lines(body: &[u8]) -> Vec<String> {
    assert!(body.ends_with(b"\r\n"), "{body:?}");
    let body = &body[..body.len() - 2];
    let mut physical = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(rest.len());
        let line = &rest[..end];
        assert!(
            !line.contains(&b'\r') && !line.contains(&b'\n'),
            "a raw line break inside {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        physical.push(String::from_utf8(line.to_vec()).unwrap());
        rest = rest.get(end + 2..).unwrap_or_default();
    }
    let mut lines: Vec<String> = Vec::new();
    for line in physical {
        match line.strip_prefix(' ') {
            Some(folded) => lines.last_mut().unwrap().push_str(folded),
            None => lines.push(line),
        }
    }
    lines
}

/// Undoes RFC 5545 §3.3.11 TEXT escaping.
fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[test]
fn a_carriage_return_in_a_title_cannot_add_a_calendar_property() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let clip = tmp.path().join("soon.mp4");
    common::make_clip(&clip, 2, "320x180");
    common::ingest_with_meta(
        &data,
        &clip,
        "soon",
        "title = { vi = \"Sắp chiếu\", en = \"Soon\" }\nfree_release = \"2099-01-01T20:00:00+07:00\"\n",
    );
    // Titles as a record might hold them from before film.toml refused control characters
    // (or written by another tool): a bare CR, the line break some parsers end a line at.
    let hostile =
        "Red Rain\rDTSTART:19700101T000000Z\rBEGIN:VALARM\r\nATTACH:http://evil.example/x";
    let long = "Mưa đỏ, 81 ngày đêm; ".repeat(8);
    let db = rusqlite::Connection::open(data.join("catalog.db")).unwrap();
    let meta: String = db
        .query_row("SELECT meta_json FROM films WHERE slug = 'soon'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    meta["title"] = serde_json::json!({"vi": long, "en": hostile});
    db.execute(
        "UPDATE films SET meta_json = ?1 WHERE slug = 'soon'",
        [meta.to_string()],
    )
    .unwrap();
    drop(db);

    let server = Server::start(&data);
    let expected = [
        "BEGIN",
        "VERSION",
        "PRODID",
        "BEGIN",
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "SUMMARY",
        "DESCRIPTION",
        "URL",
        "BEGIN",
        "ACTION",
        "DESCRIPTION",
        "TRIGGER",
        "END",
        "END",
        "END",
    ];
    for (query, title) in [("?lang=en", hostile.to_owned()), ("", long.clone())] {
        let url = format!("{}/films/soon/premiere.ics{query}", server.url);
        let body = ureq::get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap();
        let lines = ics_lines(&body);
        let names: Vec<&str> = lines
            .iter()
            .map(|l| l.split([':', ';']).next().unwrap())
            .collect();
        assert_eq!(names, expected, "{lines:#?}");
        let summary = lines
            .iter()
            .find_map(|l| l.strip_prefix("SUMMARY:"))
            .unwrap();
        assert_eq!(
            unescape(summary),
            title.replace("\r\n", "\n").replace('\r', "\n")
        );
        assert!(
            lines.iter().any(|l| l == "DTSTART:20990101T130000Z"),
            "{lines:#?}"
        );
    }
}
