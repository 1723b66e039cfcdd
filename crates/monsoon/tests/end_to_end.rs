//! End-to-end: the real `monsoon` binary, real ffmpeg, a real HTTP client.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Server, ffmpeg, ingest_ok_with, make_clip, monsoon, play_whole, tree, version_dir};

#[test]
fn ingest_serve_and_play_hls_and_dash() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("clip.mp4");
    make_clip(&clip, 8, "640x360");
    let meta = tmp.path().join("film.toml");
    std::fs::write(&meta, "title = { vi = \"Phim thử\", en = \"Test film\" }\n").unwrap();
    let data = tmp.path().join("data");

    ingest_ok_with(
        &data,
        &clip,
        "test-film",
        &["--meta", meta.to_str().unwrap()],
    );

    let server = Server::start(&data);
    assert_eq!(
        ureq::get(&format!("{}/healthz", server.url))
            .call()
            .unwrap()
            .status(),
        200
    );

    let films = server.get_json("/api/v1/films");
    let films = films["films"].as_array().expect("a list");
    assert_eq!(films.len(), 1);
    assert_eq!(films[0]["slug"], "test-film");
    assert_eq!(films[0]["title"]["vi"], "Phim thử");
    assert_eq!(films[0]["title"]["en"], "Test film");
    assert_eq!(films[0]["hls_url"], "/media/test-film/master.m3u8");
    assert_eq!(films[0]["dash_url"], "/media/test-film/manifest.mpd");
    let film = server.get_json("/api/v1/films/test-film");
    assert_eq!(film["slug"], "test-film");

    let hls = play_whole(&format!("{}/media/test-film/master.m3u8", server.url));
    assert!(hls > 7.5, "HLS decoded only {hls} s of 8");
    let dash = play_whole(&format!("{}/media/test-film/manifest.mpd", server.url));
    assert!(dash > 7.5, "DASH decoded only {dash} s of 8");

    for page in ["/", "/films/test-film", "/watch/test-film"] {
        let body = ureq::get(&format!("{}{page}", server.url))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(body.contains("Phim thử"), "{page} does not show the title");
    }
    let missing = ureq::get(&format!("{}/api/v1/films/nope", server.url)).call();
    assert!(matches!(missing, Err(ureq::Error::StatusCode(404))));
}

#[test]
fn bad_inputs_are_refused_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let clip = tmp.path().join("good.mp4");
    make_clip(&clip, 2, "320x180");
    common::ingest_ok(&data, &clip, "film");
    let media_before = tree(&data.join("media"));
    let films_before = Server::start(&data).get_json("/api/v1/films");

    let empty = tmp.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = tmp.path().join("playlist.mp4");
    std::fs::write(&text, "#EXTM3U\n#EXTINF:10,\n/etc/passwd\n").unwrap();
    let missing = tmp.path().join("missing.mp4");

    let cases: [(&Path, &str); 3] = [
        (&missing, "not found"),
        (&empty, "empty"),
        (&text, "not a media file"),
    ];
    for (file, reason) in cases {
        let out = monsoon(&data, &["ingest", file.to_str().unwrap(), "--slug", "film"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was accepted", file.display());
        assert!(
            stderr.contains(file.to_str().unwrap()),
            "message does not name the file: {stderr}"
        );
        assert!(
            stderr.contains(reason),
            "message does not say `{reason}`: {stderr}"
        );
    }

    let bad_slug = monsoon(&data, &["ingest", clip.to_str().unwrap(), "--slug", "../x"]);
    assert!(!bad_slug.status.success());
    assert!(String::from_utf8_lossy(&bad_slug.stderr).contains("`../x`"));

    assert_eq!(tree(&data.join("media")), media_before);
    assert_eq!(Server::start(&data).get_json("/api/v1/films"), films_before);
}

#[test]
fn demo_makes_ingests_and_serves_a_film() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::MONSOON)
        .arg("--data")
        .arg(tmp.path())
        .args([
            "demo",
            "--seconds",
            "4",
            "--height",
            "360",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    let films: serde_json::Value = serde_json::from_str(
        &ureq::get(&format!("{url}/api/v1/films"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap(),
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(films["films"][0]["slug"], "monsoon-demo");
    assert!(
        films["films"][0]["title"]["vi"]
            .as_str()
            .unwrap()
            .contains("Gió mùa")
    );
    let master = tmp.path().join("demo/master-360p-4s.mp4");
    let probe = common::ffprobe(&master, &["-show_streams"]);
    assert_eq!(probe["streams"][0]["height"], 360);
    assert_eq!(probe["streams"][1]["codec_type"], "audio");
}

/// `--database` / `--media` (and `[storage]` in the settings file) put the catalog and the
/// media outside the data directory; a URL Monsoon has no backend for is refused by name.
#[test]
fn storage_named_by_url_lives_where_it_is_told() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("clip.mp4");
    make_clip(&clip, 3, "320x180");
    let data = tmp.path().join("data");
    let db = tmp.path().join("elsewhere/catalog.db");
    let media = tmp.path().join("elsewhere/media");
    let database_url = format!("sqlite://{}", db.display());
    let media_url = format!("file://{}", media.display());
    let out = std::process::Command::new(common::MONSOON)
        .arg("--data")
        .arg(&data)
        .args(["--database", &database_url, "--media", &media_url])
        .args(common::ingest_args(&clip, "film"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(db.is_file() && media.join("film").is_dir());
    assert!(!data.join("catalog.db").exists() && !data.join("media").exists());

    // The server finds them through [storage] in its settings file.
    let config = tmp.path().join("monsoon.toml");
    std::fs::write(
        &config,
        format!("[storage]\ndatabase = \"{database_url}\"\nmedia = \"{media_url}\"\n"),
    )
    .unwrap();
    let server = Server::start_with(&data, &["--config", config.to_str().unwrap()]);
    let hls = play_whole(&format!("{}/media/film/master.m3u8", server.url));
    assert!(hls > 2.5, "HLS decoded only {hls} s of 3");

    let refused = monsoon(
        &data,
        &[
            "--media",
            "gs://bucket",
            "ingest",
            clip.to_str().unwrap(),
            "--slug",
            "f",
        ],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("gs://bucket") && err.contains("not a backend"),
        "{err}"
    );
}

/// A viewer mid-film when the film is re-ingested is served every segment its playlists name,
/// to the end, while new viewers get the new version (`docs/INGEST.md`, "Re-ingest").
#[test]
fn a_viewer_mid_film_finishes_it_across_a_re_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("film.mp4");
    make_clip(&clip, 30, "320x180");
    let data = tmp.path().join("data");
    ingest_ok_with(&data, &clip, "film", &[]);
    let server = Server::start(&data);
    let text = |path: &str| -> String {
        ureq::get(&format!("{}/media/film/{path}", server.url))
            .call()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let version_of = |master: &str| -> String {
        let uri = master
            .lines()
            .find(|l| !l.starts_with('#') && l.ends_with(".m3u8"))
            .expect("a variant");
        uri.split('/').next().unwrap().to_owned()
    };

    // The viewer starts: the multivariant playlist, the floor and its audio, the init
    // segments and the first segment of each.
    let master = text("master.m3u8");
    let version = version_of(&master);
    let video = master
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .to_owned();
    let audio = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let mut objects: Vec<String> = Vec::new();
    for playlist in [&video, &audio] {
        let dir = playlist.rsplit_once('/').unwrap().0;
        let body = text(playlist);
        objects.push(format!("{dir}/init.mp4"));
        objects.extend(
            body.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(|seg| format!("{dir}/{seg}")),
        );
    }
    let segments = objects.len();
    assert!(segments >= 12, "{objects:?}");
    let fetch = |path: &str| -> Result<usize, String> {
        match ureq::get(&format!("{}/media/film/{path}", server.url)).call() {
            Ok(mut r) => Ok(r.body_mut().read_to_vec().map_err(|e| e.to_string())?.len()),
            Err(e) => Err(format!("{path}: {e}")),
        }
    };
    let (started, rest) = objects.split_at(4);
    for path in started {
        assert!(fetch(path).unwrap() > 0);
    }

    // The film is re-ingested mid-film; new viewers get the new version.
    ingest_ok_with(&data, &clip, "film", &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while version_of(&text("master.m3u8")) == version {
        assert!(
            std::time::Instant::now() < deadline,
            "the new version is not served"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // The viewer goes on to the end of what its playlists name: no error.
    let errors: Vec<String> = rest.iter().filter_map(|p| fetch(p).err()).collect();
    assert_eq!(errors, Vec::<String>::new(), "of {} objects", rest.len());
    // And a player given the old playlist plays it whole.
    let reached = play_whole(&format!("{}/media/film/{video}", server.url));
    assert!(
        reached > 29.5,
        "the old version played to {reached} s of 30"
    );
}

/// A dub and subtitles join a published film without its video encoded again
/// (`monsoon add-track`; `docs/INGEST.md`, "Adding audio and subtitles"): each is a new
/// version whose video files are the old ones (the same inodes on local disk), whose manifests
/// name the new language beside the film's own, and which plays whole; a bad track is refused
/// by name and changes nothing.
#[test]
fn an_audio_language_and_subtitles_join_a_film_without_a_re_encode() {
    use std::os::unix::fs::MetadataExt;

    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("film.mp4");
    make_clip(&clip, 12, "640x360");
    let data = tmp.path().join("data");
    ingest_ok_with(&data, &clip, "film", &[]);
    let first = version_dir(&data, "film");
    let file = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let dub = tmp.path().join("en.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=880:sample_rate=44100",
        "-t",
        "12",
        dub.to_str().unwrap(),
    ]);
    let add = |args: &[&str]| {
        let mut all = vec!["add-track", "film"];
        all.extend(args);
        monsoon(&data, &all)
    };
    let refused = |args: &[&str], said: &str| {
        let before = version_dir(&data, "film");
        let out = add(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
        assert_eq!(
            version_dir(&data, "film"),
            before,
            "{args:?} published a version"
        );
    };

    // Refused, naming the value and the rule, with nothing published.
    let short = tmp.path().join("short.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine",
        "-t",
        "5",
        short.to_str().unwrap(),
    ]);
    refused(
        &["--audio", short.to_str().unwrap(), "--lang", "en"],
        "the audio lasts 5.0 s and the film 12.0 s",
    );
    let silent = tmp.path().join("silent.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64",
        "-t",
        "12",
        silent.to_str().unwrap(),
    ]);
    refused(
        &["--audio", silent.to_str().unwrap(), "--lang", "en"],
        "it has no audio stream",
    );
    refused(
        &["--audio", dub.to_str().unwrap(), "--lang", "english!"],
        "track language `english!` is not a language tag",
    );
    let notes = file("notes.srt", "this is not a subtitle file\n");
    refused(
        &["--subtitles", notes.to_str().unwrap(), "--lang", "en"],
        "not a subtitle file",
    );
    let out = monsoon(
        &data,
        &[
            "add-track",
            "nope",
            "--audio",
            dub.to_str().unwrap(),
            "--lang",
            "en",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no film `nope`"));

    // The dub.
    let out = add(&[
        "--audio",
        dub.to_str().unwrap(),
        "--lang",
        "en",
        "--label",
        "English (dub)",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dubbed = version_dir(&data, "film");
    assert_ne!(dubbed, first);
    // In the audit log as the command line's, like an ingest.
    let db = rusqlite::Connection::open(data.join("catalog.db")).unwrap();
    let (actor, subject): (String, String) = db
        .query_row(
            "SELECT actor, subject FROM audit_log WHERE action = 'track_added'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((actor.as_str(), subject.as_str()), ("cli", "film"));
    for segment in [
        "v360/seg_00000.m4s",
        "v234/seg_00001.m4s",
        "a128/seg_00000.m4s",
    ] {
        let (old, new) = (first.join(segment), dubbed.join(segment));
        assert_eq!(
            std::fs::metadata(&old).unwrap().ino(),
            std::fs::metadata(&new).unwrap().ino(),
            "{segment} was written again, not carried"
        );
    }
    let server = Server::start(&data);
    let get = |path: &str| -> String {
        ureq::get(&format!("{}/media/film/{path}", server.url))
            .call()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .body_mut()
            .read_to_string()
            .unwrap()
    };
    let version = dubbed.file_name().unwrap().to_string_lossy().into_owned();
    let master = get("master.m3u8");
    for group in ["a48", "a128"] {
        assert!(
            master.contains(&format!(
                "URI=\"{version}/{group}-en/index.m3u8\",GROUP-ID=\"{group}\",LANGUAGE=\"en\",NAME=\"English (dub)\",AUTOSELECT=YES"
            )),
            "{master}"
        );
    }
    assert!(
        master.contains("LANGUAGE=\"vi\",NAME=\"Tiếng Việt\",DEFAULT=YES"),
        "{master}"
    );
    let mpd = get("manifest.mpd");
    assert!(
        mpd.contains(r#"id="audio-a128-en" contentType="audio" lang="en""#),
        "{mpd}"
    );
    let reached = play_whole(&format!(
        "{}/media/film/{version}/a128-en/index.m3u8",
        server.url
    ));
    assert!(reached > 11.5, "the dub played to {reached} s of 12");
    let reached = play_whole(&format!("{}/media/film/master.m3u8", server.url));
    assert!(reached > 11.5, "the film played to {reached} s of 12");

    // Subtitles, then a corrected file for the same language, which replaces them.
    let srt = file(
        "en.srt",
        "1\n00:00:01,000 --> 00:00:04,000\nHello there\n\n",
    );
    let out = add(&["--subtitles", srt.to_str().unwrap(), "--lang", "en"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixed = file(
        "en-fixed.srt",
        "1\n00:00:01,000 --> 00:00:04,000\nHello, there\n\n",
    );
    let out = add(&["--subtitles", fixed.to_str().unwrap(), "--lang", "en"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = version_dir(&data, "film")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !get("master.m3u8").contains(&version) {
        assert!(
            std::time::Instant::now() < deadline,
            "the new version is not served"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let master = get("master.m3u8");
    assert_eq!(master.matches("TYPE=SUBTITLES").count(), 1, "{master}");
    assert!(
        master.contains("LANGUAGE=\"en\",NAME=\"English\""),
        "{master}"
    );
    assert!(master.contains("SUBTITLES=\"subs\""), "{master}");
    assert!(
        master.contains("a128-en/index.m3u8"),
        "the dub is kept: {master}"
    );
    let vtt = get(&format!("{version}/subs/en.vtt"));
    assert!(
        vtt.starts_with("WEBVTT") && vtt.contains("Hello, there"),
        "{vtt}"
    );
    assert!(get("manifest.mpd").contains(r#"id="text-en""#));
}
