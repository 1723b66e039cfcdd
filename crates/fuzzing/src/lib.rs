//! The fuzz targets: one function per parser that takes input from outside, each taking
//! arbitrary bytes. A target must never panic, and where a parser accepts its input the
//! target checks what the parser promises of it (a range inside the object, a film record
//! within its limits, an index key inside its version directory).
//!
//! `fuzz/fuzz_targets/<name>.rs` hands each to libFuzzer (`make fuzz`, see docs/SECURITY.md);
//! `tests/corpus.rs` replays `fuzz/corpus/<name>/` through them, with a few deterministic
//! mutations of every seed, on every `make test`. A crash found by libFuzzer is fixed and its
//! input committed to the corpus, so it stays fixed.

use std::path::Path;
use std::time::{Duration, SystemTime};

use monsoon_catalog::{FilmMeta, ObjectIndex, film_limits, is_language_tag, valid_etag, valid_key};
use monsoon_media::ladder::{LadderOptions, RungSpec, plan};
use monsoon_media::probe::{AudioInfo, VideoInfo, analyze, parse_probe};
use monsoon_media::{Limits, Source, transcode};
use monsoon_server::parse::{
    Decision, Head, HeaderMap, HeaderValue, MintRequest, Object, UploadChecksum, fast_path_head,
    tus_integer, upload_metadata,
};

/// A fuzz target: arbitrary bytes in, a panic when a promise is broken.
pub type Target = fn(&[u8]);

/// Every target by name: the names of `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_head", http_head),
    ("http_conditional", http_conditional),
    ("film_toml", film_toml),
    ("probe_json", probe_json),
    ("probe_values", probe_values),
    ("object_index", object_index),
    ("heartbeat", heartbeat),
    ("mint", mint),
    ("tus_headers", tus_headers),
];

/// Objects of the sizes that matter to ranges: empty, one byte, a playlist, a 4K segment.
fn objects() -> [Object; 4] {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_640_000);
    [0, 1, 4_321, 1 << 40].map(|size| Object {
        size,
        etag: "\"5d41402abc4b2a76b9719d911017c592\"".to_owned(),
        last_modified: at,
    })
}

/// What the media fast path's decision promises for `object`.
fn check_decision(object: &Object, decision: Decision, is_get: bool) {
    if let Decision::Part(start, end) = decision {
        assert!(is_get, "a range answered to a HEAD");
        assert!(
            start <= end && end < object.size,
            "bytes {start}-{end} of an object of {} bytes",
            object.size
        );
    }
}

/// The media fast path reading a request head from a connection (httparse, then its rules:
/// method, version, path, `Host`, body, `Connection`), then the RFC 9110 preconditions and
/// range against objects of several sizes.
pub fn http_head(data: &[u8]) {
    for object in objects() {
        if let Head::Media {
            method,
            object: name,
            len,
            decision,
            ..
        } = fast_path_head(data, &object)
        {
            assert!(len <= data.len(), "consumed {len} of {} bytes", data.len());
            assert!(!name.contains('%'), "{name:?} has something to decode");
            check_decision(&object, decision, method == "GET");
        }
    }
}

/// The preconditions and the range alone (RFC 9110 §13.1, §13.2.2, §14.1.2, §14.2): the input's
/// lines are the values of `Range`, `If-Range`, `If-Match`, `If-None-Match`,
/// `If-Modified-Since` and `If-Unmodified-Since`, in a well-formed head.
pub fn http_conditional(data: &[u8]) {
    const NAMES: [&str; 6] = [
        "Range",
        "If-Range",
        "If-Match",
        "If-None-Match",
        "If-Modified-Since",
        "If-Unmodified-Since",
    ];
    let mut head = b"GET /media/film/v1/v360/seg_00001.m4s HTTP/1.1\r\nHost: origin\r\n".to_vec();
    for (name, value) in NAMES.iter().zip(data.split(|&b| b == b'\n')) {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    for object in objects() {
        if let Head::Media { decision, .. } = fast_path_head(&head, &object) {
            check_decision(&object, decision, true);
        }
    }
}

/// A master as ffprobe might describe it, for planning ladders from a `film.toml`.
fn sample_source() -> Source {
    Source {
        path: "master.mov".into(),
        format: "mov".into(),
        duration_s: 7_200.0,
        size_bytes: 1 << 30,
        video: VideoInfo {
            index: 0,
            codec: "h264".into(),
            coded_width: 3840,
            coded_height: 2160,
            display_width: 3840,
            display_height: 2160,
            fps: 24_000.0 / 1_001.0,
            variable_frame_rate: false,
            interlaced: false,
            rotation: 0,
            bit_depth: 8,
            hdr: false,
        },
        audio: Some(AudioInfo {
            index: 1,
            codec: "aac".into(),
            channels: 2,
            sample_rate: 48_000,
        }),
    }
}

/// `film.toml` parsing and validation; an accepted file must stay within what its limits
/// promise (the film's record, as the API sends it, is bounded), and the ladder it asks for
/// must plan.
pub fn film_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(meta) = FilmMeta::from_toml(text) else {
        return;
    };
    assert!(!(meta.title.vi.is_empty() && meta.title.en.is_empty()));
    // Every text at its limit, each character 4 bytes in UTF-8 and escaped by JSON at most
    // once more (a synopsis' line breaks): the record is bounded whatever the file says.
    let json = serde_json::to_vec(&meta).unwrap_or_default();
    assert!(json.len() <= 256 * 1024, "a record of {} bytes", json.len());
    for one_line in [&meta.title.vi, &meta.title.en]
        .into_iter()
        .chain(&meta.cast)
        .chain(&meta.director)
        .chain(&meta.writer)
        .chain(&meta.genres)
    {
        assert!(!one_line.chars().any(char::is_control), "{one_line:?}");
    }
    // The language goes into the manifests' attributes as it is.
    let language = meta.language.as_deref();
    assert!(language.is_none_or(is_language_tag), "{language:?}");
    assert!(meta.ladder.len() <= film_limits::RUNGS);
    let rungs = meta
        .ladder
        .iter()
        .map(|r| RungSpec {
            height: r.height,
            kbps: r.kbps,
        })
        .collect();
    let source = sample_source();
    let ladder = plan(
        &source,
        &LadderOptions {
            rungs: Some(rungs),
            ..LadderOptions::default()
        },
    );
    let _ = transcode::ffmpeg_args(&source, &ladder, Path::new("/out"));
}

/// ffprobe's JSON → `Source` (`analyze`): an accepted master is within the limits, and its
/// ladder and ffmpeg command follow without panicking.
pub fn probe_json(data: &[u8]) {
    // As `probe_file` reads ffprobe's output.
    let text = String::from_utf8_lossy(data);
    let Ok(probe) = parse_probe(&text) else {
        return;
    };
    let limits = Limits::default();
    let Ok(source) = analyze(Path::new("master.mov"), &probe, &limits) else {
        return;
    };
    let v = &source.video;
    assert!(v.coded_width > 0 && v.coded_height > 0);
    assert!(limits.frame_fits(v.coded_width, v.coded_height));
    assert!(v.fps > 0.0 && v.fps <= limits.max_fps, "{} fps", v.fps);
    assert!(
        source.duration_s > 0.0 && source.duration_s <= limits.max_duration_s,
        "{} s",
        source.duration_s
    );
    assert!(source.size_bytes <= limits.max_size_bytes);
    assert!(matches!(v.rotation, 0..360));
    for options in [
        LadderOptions::default(),
        LadderOptions {
            max_height: Some(360),
            ..LadderOptions::default()
        },
    ] {
        let ladder = plan(&source, &options);
        assert!(!ladder.rungs.is_empty());
        let _ = transcode::ffmpeg_args(&source, &ladder, Path::new("/out"));
    }
}

/// ffprobe's values alone, in a well-formed probe of a master with video and audio: the
/// input's lines are, in order, the format's `duration` and `size`, the video stream's
/// `avg_frame_rate`, `r_frame_rate`, `sample_aspect_ratio`, `duration`, `nb_frames`,
/// `width`, `height`, display-matrix `rotation`, `field_order`, `color_transfer` and
/// `pix_fmt` (a missing line is a missing value). Byte mutations of JSON rarely make a
/// well-formed number-like string (`"nan"` where `"4.000000"` was); here every mutation
/// lands in `analyze`'s arithmetic.
pub fn probe_values(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut string = || {
        lines
            .next()
            .map_or(serde_json::Value::Null, |v| v.to_owned().into())
    };
    let (duration, size, avg_rate, r_rate, sar, stream_duration, frames) = (
        string(),
        string(),
        string(),
        string(),
        string(),
        string(),
        string(),
    );
    let number = |v: &serde_json::Value| -> serde_json::Value {
        v.as_str()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map_or(serde_json::Value::Null, Into::into)
    };
    let (width, height, rotation) = (number(&string()), number(&string()), number(&string()));
    let (field_order, transfer, pix_fmt) = (string(), string(), string());
    let probe = serde_json::json!({
        "streams": [
            {
                "index": 0, "codec_type": "video", "codec_name": "h264",
                "width": width, "height": height, "pix_fmt": pix_fmt,
                "sample_aspect_ratio": sar, "r_frame_rate": r_rate, "avg_frame_rate": avg_rate,
                "field_order": field_order, "color_transfer": transfer,
                "nb_frames": frames, "duration": stream_duration,
                "side_data_list": [{"side_data_type": "Display Matrix", "rotation": rotation}],
            },
            {"index": 1, "codec_type": "audio", "codec_name": "aac", "channels": 2, "sample_rate": "48000"},
        ],
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": duration, "size": size},
    });
    probe_json(probe.to_string().as_bytes());
}

/// The object index (`objects.json`), the delivery path's allow-list: an accepted index
/// names only files inside its version directory, with tags a response head can carry, and
/// reads back as itself.
pub fn object_index(data: &[u8]) {
    let Ok(index) = ObjectIndex::from_json(data) else {
        return;
    };
    for (key, info) in &index.objects {
        assert!(valid_key(key) && valid_etag(&info.etag));
        assert!(!key.starts_with('/') && !key.split('/').any(|n| n == ".." || n.is_empty()));
        assert!(!info.etag.bytes().any(|b| b.is_ascii_control() || b >= 0x80));
    }
    let again = ObjectIndex::from_json(&index.to_json());
    assert_eq!(again.ok().as_ref(), Some(&index));
}

/// A heartbeat body (`POST /api/v1/sessions/{id}/heartbeat`), as the API reads it and the
/// audience validates it: whatever passes validation can be applied to a session and stored
/// without overflowing anything.
pub fn heartbeat(data: &[u8]) {
    use monsoon_audience::{Beat, Config, Counters, Heartbeat, Outcome, State};
    let Ok(beat) = serde_json::from_slice::<Heartbeat>(data) else {
        return;
    };
    let again = serde_json::to_vec(&beat)
        .ok()
        .and_then(|json| serde_json::from_slice::<Heartbeat>(&json).ok());
    assert_eq!(again.as_ref(), Some(&beat));
    if beat.validate().is_err() {
        return;
    }
    // Every value a validated beat carries fits the store's signed 64-bit columns.
    for value in [
        beat.seq,
        beat.play_ms,
        beat.rebuffer_ms,
        beat.bytes,
        beat.dropped_frames,
    ] {
        assert!(value <= i64::MAX as u64, "{value}");
    }
    // Applied twice, a day apart, to one session: the rules and the figures hold.
    let config = Config::default();
    let mut state = State::default();
    let t0 = 1_800_000_000_000;
    for (seq_step, now) in [(0, t0 + 1_000), (1, t0 + 86_400_000)] {
        let applied = Beat {
            session: "s".into(),
            film: "f".into(),
            viewer: "v".into(),
            started_at: t0,
            seq: beat.seq.saturating_add(seq_step),
            state: beat.state,
            counters: Counters::from(&beat),
            proven: true,
        };
        if let (Ok(Outcome::Accepted), _) = state.beat(&config, &applied, now) {
            let stats = state.stats(&config, "f", now);
            assert!((0.0..=1.0).contains(&stats.rebuffer_ratio), "{stats:?}");
            assert!(stats.playing_time_s.is_finite(), "{stats:?}");
        }
    }
}

/// A mint request body (`POST /api/v1/films/{slug}/sessions`), as the API reads it.
pub fn mint(data: &[u8]) {
    let _ = serde_json::from_slice::<MintRequest>(data);
}

/// The tus headers of a master upload (`crates/server/src/upload/tus.rs`): the input's lines
/// are the values of `Upload-Metadata`, `Upload-Checksum`, `Upload-Offset` and
/// `Upload-Length`, in that order.
pub fn tus_headers(data: &[u8]) {
    use monsoon_server::parse::{
        MAX_FILENAME_BYTES, MAX_FILETYPE_BYTES, UploadMetadata, encode_upload_metadata,
    };
    let mut headers = HeaderMap::new();
    for (name, line) in [
        "upload-metadata",
        "upload-checksum",
        "upload-offset",
        "upload-length",
    ]
    .into_iter()
    .zip(data.split(|&b| b == b'\n'))
    {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.insert(name, value);
        }
    }
    if let Ok(meta) = upload_metadata(&headers) {
        // `kind` is an enum: whatever parsed is one of its three values.
        let UploadMetadata {
            filename,
            filetype,
            sha256,
            kind: _,
        } = &meta;
        assert!(filename.len() <= MAX_FILENAME_BYTES, "{filename:?}");
        assert!(
            !filename.contains(['/', '\\']) && !filename.chars().any(char::is_control),
            "{filename:?} is not one path component"
        );
        assert!(
            filetype.len() <= MAX_FILETYPE_BYTES && filetype.bytes().all(|b| b.is_ascii_graphic())
        );
        if let Some(sha) = sha256 {
            assert!(
                sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{sha}"
            );
        }
        // What the server echoes in HEAD answers reads back as itself.
        let mut echoed = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&encode_upload_metadata(&meta)) {
            echoed.insert("upload-metadata", value);
        }
        assert_eq!(upload_metadata(&echoed).as_ref(), Ok(&meta));
    }
    if let Ok(Some(mut checksum)) = UploadChecksum::from_headers(&headers) {
        checksum.update(data);
        let _ = checksum.matches();
    }
    for name in ["upload-offset", "upload-length"] {
        if let Ok(Some(n)) = tus_integer(&headers, name) {
            let text = headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            assert_eq!(text.trim().parse::<u64>().ok(), Some(n));
        }
    }
}
