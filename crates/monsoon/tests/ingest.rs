//! Ingest against the awkward master files of `docs/INGEST.md`, each made with ffmpeg here, and
//! against being killed: the real binary, real ffmpeg, a real catalog.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Fixture, MONSOON, Server, ffmpeg, ffprobe, join_rendition, monsoon, tree, version_dir,
};

/// Encodes a lavfi video source (no audio) to `out` with x264 `ultrafast`.
fn encode_video(source: &str, out: &Path) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        source,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        out.to_str().unwrap(),
    ]);
}

fn lavfi_video(size: &str, seconds: u32) -> String {
    format!("testsrc2=size={size}:rate=25:duration={seconds}")
}

#[test]
fn truncated_and_empty_and_disguised_files_are_refused() {
    let f = Fixture::new();
    let whole = f.path("whole.mp4");
    // moov at the end (no faststart), then cut in half: the index is gone.
    encode_video(&lavfi_video("320x180", 4), &whole);
    let bytes = std::fs::read(&whole).unwrap();
    let truncated = f.path("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    f.assert_refused_naming(&truncated, "incomplete file");

    let empty = f.path("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    f.assert_refused_naming(&empty, "empty (0 bytes)");

    let playlist = f.path("playlist.mp4");
    std::fs::write(&playlist, "#EXTM3U\n#EXTINF:10,\n/etc/passwd\n").unwrap();
    f.assert_refused_naming(&playlist, "not a media file");

    // The whole file, moov at the end, is fine.
    f.assert_accepted(&whole, "moov-at-end");
}

#[test]
fn files_without_a_picture_are_refused() {
    let f = Fixture::new();
    let m4a = f.path("audio.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-c:a",
        "aac",
        m4a.to_str().unwrap(),
    ]);
    f.assert_refused_naming(&m4a, "no video stream");

    let mp3 = f.path("cover.mp3");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=2",
        "-f",
        "lavfi",
        "-i",
        "color=c=red:size=300x300:duration=1",
        "-map",
        "0",
        "-map",
        "1",
        "-c:a",
        "libmp3lame",
        "-c:v",
        "mjpeg",
        "-frames:v",
        "1",
        "-disposition:v",
        "attached_pic",
        mp3.to_str().unwrap(),
    ]);
    f.assert_refused_naming(&mp3, "cover art does not count");
}

#[test]
fn huge_masters_are_refused_before_decoding() {
    let f = Fixture::new();
    let huge = f.path("huge.mp4");
    encode_video("color=size=8192x8192:rate=1:duration=1", &huge);
    f.assert_refused_naming(&huge, "resolution 8192x8192 exceeds the limit of 7680x4320");

    let fast = f.path("fast.mp4");
    encode_video("testsrc2=size=320x240:rate=240:duration=1", &fast);
    f.assert_refused_naming(&fast, "frame rate 240.000 fps exceeds the limit of 120 fps");
}

#[test]
fn corrupted_masters_are_refused() {
    let f = Fixture::new();
    let clean = f.path("clean.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &lavfi_video("320x180", 4),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "250",
        clean.to_str().unwrap(),
    ]);
    let mut bytes = std::fs::read(&clean).unwrap();
    let n = bytes.len();
    // Overwrite every 97th byte of the middle half: the container survives, the frames don't.
    let mut x: u32 = 12345;
    for i in (n / 4..n * 3 / 4).step_by(97) {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bytes[i] = (x >> 16) as u8;
    }
    let corrupt = f.path("corrupt.mp4");
    std::fs::write(&corrupt, bytes).unwrap();
    f.assert_refused_naming(&corrupt, "damaged");
}

#[test]
fn a_master_without_audio_gets_a_video_only_ladder() {
    let f = Fixture::new();
    let silent = f.path("silent.mp4");
    encode_video(&lavfi_video("640x360", 2), &silent);
    let dir = f.assert_accepted(&silent, "silent");
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert!(!master.contains("EXT-X-MEDIA:TYPE=AUDIO"), "{master}");
    assert!(!master.contains("mp4a"), "{master}");
    assert!(master.contains("RESOLUTION=640x360"), "{master}");
}

#[test]
fn odd_sizes_rotation_interlacing_and_surround_are_normalised() {
    let f = Fixture::new();

    let odd = f.path("odd.mp4");
    encode_video(&lavfi_video("1165x767", 2), &odd);
    let dir = f.assert_accepted(&odd, "odd");
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    for res in master.split("RESOLUTION=").skip(1) {
        let (w, rest) = res.split_once('x').unwrap();
        let h: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
        assert!(w % 2 == 0 && h % 2 == 0, "{w}x{h}");
        assert!(
            (f64::from(w) / f64::from(h) - 1165.0 / 767.0).abs() < 0.02,
            "{w}x{h}"
        );
    }

    let upright = f.path("upright.mp4");
    encode_video(&lavfi_video("640x360", 2), &upright);
    let rotated = f.path("rotated.mp4");
    // A phone held upright: a display matrix turning the coded landscape picture a quarter.
    ffmpeg(&[
        "-i",
        upright.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rotated.to_str().unwrap(),
    ]);
    let dir = f.assert_accepted(&rotated, "rotated");
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert!(
        master.contains("RESOLUTION=360x640"),
        "rotation not applied: {master}"
    );

    let interlaced = f.path("interlaced.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=720x576:rate=50:duration=2",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=cl=5.1:r=22050",
        "-vf",
        "interlace",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-flags",
        "+ildct+ilme",
        "-c:a",
        "aac",
        "-shortest",
        interlaced.to_str().unwrap(),
    ]);
    let dir = f.assert_accepted(&interlaced, "interlaced");
    let joined = f.path("joined-video.mp4");
    join_rendition(&dir.join("v360"), &joined);
    let probe = ffprobe(&joined, &["-show_streams"]);
    let field_order = probe["streams"][0]["field_order"]
        .as_str()
        .unwrap_or("progressive");
    assert_eq!(field_order, "progressive");
    let audio = f.path("joined-audio.mp4");
    join_rendition(&dir.join("a128"), &audio);
    let probe = ffprobe(&audio, &["-show_streams"]);
    assert_eq!(probe["streams"][0]["channels"], 2);
    assert_eq!(probe["streams"][0]["sample_rate"], "48000");
}

#[test]
fn hdr_and_variable_frame_rate_become_sdr_constant_rate_rungs() {
    let f = Fixture::new();
    let hdr = f.path("hdr.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &lavfi_video("640x360", 2),
        "-pix_fmt",
        "yuv420p10le",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error",
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "smpte2084",
        "-colorspace",
        "bt2020nc",
        hdr.to_str().unwrap(),
    ]);
    let dir = f.assert_accepted(&hdr, "hdr");
    let joined = f.path("hdr-out.mp4");
    join_rendition(&dir.join("v360"), &joined);
    let stream = &ffprobe(&joined, &["-show_streams"])["streams"][0];
    assert_eq!(stream["codec_name"], "h264");
    assert_eq!(stream["pix_fmt"], "yuv420p");
    assert_ne!(stream["color_transfer"], "smpte2084");

    let vfr = f.path("vfr.mkv");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &lavfi_video("320x180", 6),
        "-vf",
        "select='lt(random(0),0.7)'",
        "-fps_mode",
        "passthrough",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        vfr.to_str().unwrap(),
    ]);
    let dir = f.assert_accepted(&vfr, "vfr");
    let playlist = std::fs::read_to_string(dir.join("v180/index.m3u8")).unwrap();
    let total: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!((total - 6.0).abs() < 0.3, "EXTINF adds up to {total} s");
}

#[test]
fn awkward_file_names_are_read_as_plain_files() {
    let f = Fixture::new();
    let names = [
        "it's a \"quoted\" #1 ?.mp4",
        "-i.mp4",
        "concat:phim.mp4",
        "Mưa đỏ \u{202e}4pm.mov",
        &format!("{}.mp4", "đ".repeat(120)),
    ];
    for (i, name) in names.iter().enumerate() {
        let path = f.path(name);
        common::make_clip(&path, 1, "160x90");
        f.assert_accepted(&path, &format!("name-{i}"));
    }
}

/// Starts `monsoon ingest` in the background.
fn spawn_ingest(
    data: &Path,
    file: &Path,
    slug: &str,
    hang_before_commit: bool,
) -> std::process::Child {
    let mut cmd = Command::new(MONSOON);
    cmd.arg("--data")
        .arg(data)
        .args(["ingest"])
        .arg(file)
        .args(["--slug", slug, "--quality", "fast", "--json"]);
    if hang_before_commit {
        cmd.env("MONSOON_TEST_HANG_BEFORE_COMMIT", "1");
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn segments_under(dir: &Path) -> usize {
    tree(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
        .count()
}

#[test]
fn sigkill_mid_transcode_and_mid_publish_leaves_nothing_visible() {
    let f = Fixture::new();
    let master = f.path("long.mp4");
    common::make_clip(&master, 40, "640x360");
    let served_before = Server::start(&f.data).get_json("/api/v1/films");

    // 1. Killed while ffmpeg is writing segments.
    let mut child = spawn_ingest(&f.data, &master, "film", false);
    wait_until("the first segments", || {
        segments_under(&f.data.join("staging")) >= 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let server = Server::start(&f.data);
    assert_eq!(server.get_json("/api/v1/films"), served_before);
    let film = server.get_json("/api/v1/films/film");
    drop(server);
    // ffmpeg died with its parent (PR_SET_PDEATHSIG): nothing keeps writing.
    std::thread::sleep(Duration::from_millis(300));
    let frozen = tree(&f.data.join("staging"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        tree(&f.data.join("staging")),
        frozen,
        "an orphaned ffmpeg is still writing"
    );

    // 2. Killed after the rename into media/, before the catalog commit.
    let mut child = spawn_ingest(&f.data, &master, "film", true);
    let mut stderr = child.stderr.take().unwrap();
    wait_until("the commit hook", || {
        std::fs::read_dir(f.data.join("media/film"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 2
    });
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    assert!(said.contains("test hook"), "did not reach the hook: {said}");
    let server = Server::start(&f.data);
    assert_eq!(
        server.get_json("/api/v1/films/film"),
        film,
        "the unpublished version became visible"
    );
    let old_master = ureq::get(&format!("{}/media/film/master.m3u8", server.url))
        .call()
        .unwrap()
        .status();
    assert_eq!(old_master, 200);
    drop(server);

    // 3. The next ingest of the same slug succeeds and sweeps what the kills left.
    common::ingest_ok(&f.data, &master, "film");
    version_dir(&f.data, "film");
    assert!(tree(&f.data.join("staging")).is_empty());
    let server = Server::start(&f.data);
    let now = server.get_json("/api/v1/films/film");
    assert_ne!(now["published_at"], film["published_at"]);
    assert!((now["duration_s"].as_f64().unwrap() - 40.0).abs() < 0.5);
}

#[test]
fn sigterm_stops_ffmpeg_and_cleans_up() {
    let f = Fixture::new();
    let master = f.path("long.mp4");
    common::make_clip(&master, 40, "640x360");
    let mut child = spawn_ingest(&f.data, &master, "film", false);
    wait_until("the first segments", || {
        segments_under(&f.data.join("staging")) >= 2
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let mut said = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut said).unwrap();
    assert!(said.contains("stopped by SIGTERM"), "{said}");
    wait_until("staging to be removed", || {
        tree(&f.data.join("staging")).is_empty()
    });
}

#[test]
fn uhd_master_gets_the_whole_ladder_with_exact_gops_and_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let master = tmp.path().join("uhd.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=3840x2160:rate=24000/1001:duration=13",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=13",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "28",
        "-c:a",
        "aac",
        "-shortest",
        master.to_str().unwrap(),
    ]);
    common::ingest_ok(&data, &master, "uhd");
    let dir = version_dir(&data, "uhd");

    let master_playlist = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    let height_of = |line: &str| -> u32 {
        let res = line.split("RESOLUTION=").nth(1).unwrap();
        let h = res.split_once('x').unwrap().1;
        h.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    let heights: Vec<u32> = master_playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF") && l.contains("RESOLUTION="))
        .map(height_of)
        .collect();
    // Trick play: an I-frame playlist for every rung (HLS authoring spec §6.1).
    let iframe_heights: Vec<u32> = master_playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF"))
        .map(height_of)
        .collect();
    assert_eq!(iframe_heights, heights);
    assert_eq!(
        heights,
        [234, 360, 432, 540, 720, 1080, 1440, 2160],
        "{master_playlist}"
    );

    // The floor: the first variant, video + audio, within 192 kbit/s; audio-only is offered.
    let floor_bandwidth: u64 = master_playlist
        .split("BANDWIDTH=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    assert!(
        floor_bandwidth <= 192_000,
        "floor peaks at {floor_bandwidth}"
    );
    assert!(
        master_playlist.contains("CODECS=\"mp4a.40.2\"\n"),
        "no audio-only variant"
    );

    let frame = 1001.0 / 24000.0;
    for rung in ["v234", "v2160"] {
        // Segments of 6 s ± one frame (23.976 fps gives 6.006 s), the last one shorter.
        let playlist = std::fs::read_to_string(dir.join(rung).join("index.m3u8")).unwrap();
        let durations: Vec<f64> = playlist
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|d| d.trim_end_matches(',').parse().unwrap())
            .collect();
        assert!(durations.len() >= 2, "{playlist}");
        for d in &durations[..durations.len() - 1] {
            assert!((d - 6.0).abs() <= frame + 0.001, "{rung}: segment of {d} s");
        }

        // An IDR exactly every 2 s, and no other keyframe.
        let joined = tmp.path().join(format!("{rung}.mp4"));
        join_rendition(&dir.join(rung), &joined);
        let packets = ffprobe(
            &joined,
            &[
                "-select_streams",
                "v",
                "-show_entries",
                "packet=pts_time,flags",
                "-show_packets",
            ],
        );
        let keyframes: Vec<f64> = packets["packets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["flags"].as_str().unwrap().starts_with('K'))
            .map(|p| p["pts_time"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(keyframes.len(), 7, "{rung}: keyframes at {keyframes:?}");
        let start = keyframes[0];
        for (i, t) in keyframes.iter().enumerate() {
            assert!(
                (t - start - 2.0 * i as f64).abs() <= frame,
                "{rung}: keyframe at {t}, expected {}",
                2 * i
            );
        }
    }
}

#[test]
fn subtitles_key_art_and_a_custom_ladder_from_film_toml() {
    let f = Fixture::new();
    let master = f.path("film.mp4");
    common::make_clip(&master, 4, "640x360");
    let srt = f.path("phim.vi.srt");
    std::fs::write(&srt, "1\n00:00:00,500 --> 00:00:02,000\nXin chào\n\n2\n00:00:02,500 --> 00:00:03,500\nTạm biệt\n").unwrap();
    let vtt = f.path("film.en.vtt");
    std::fs::write(&vtt, "WEBVTT\n\n00:00.500 --> 00:02.000\nHello\n").unwrap();
    let art = f.path("art");
    std::fs::create_dir_all(&art).unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=navy:size=400x600",
        "-frames:v",
        "1",
        art.join("key art.png").to_str().unwrap(),
    ]);
    let meta = art.join("film.toml");
    std::fs::write(
        &meta,
        "title = { vi = \"Mưa đỏ\", en = \"Red Rain\" }\nposter = \"key art.png\"\n\
         free_release = \"2025-11-20T20:00:00+07:00\"\n\n[[ladder]]\nheight = 360\nkbps = 500\n",
    )
    .unwrap();

    let sub_vi = format!("vi={}", srt.display());
    let sub_en = format!("en={}", vtt.display());
    let out = monsoon(
        &f.data,
        &[
            "ingest",
            master.to_str().unwrap(),
            "--slug",
            "mua-do",
            "--meta",
            meta.to_str().unwrap(),
            "--subtitles",
            &sub_vi,
            "--subtitles",
            &sub_en,
            "--quality",
            "fast",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = version_dir(&f.data, "mua-do");

    let master_playlist = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert!(
        master_playlist.contains("TYPE=SUBTITLES") && master_playlist.contains("LANGUAGE=\"vi\""),
        "{master_playlist}"
    );
    assert!(
        master_playlist.contains("LANGUAGE=\"en\""),
        "{master_playlist}"
    );
    assert!(
        master_playlist.contains("SUBTITLES=\"subs\""),
        "{master_playlist}"
    );
    // The custom ladder: the 2G floor plus the one rung asked for.
    let variants: Vec<&str> = master_playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF") && l.contains("RESOLUTION"))
        .collect();
    assert_eq!(variants.len(), 2, "{master_playlist}");
    assert!(variants[1].contains("RESOLUTION=640x360"));
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap();
    assert!(
        mpd.contains("text/vtt") && mpd.contains("subs/vi.vtt"),
        "{mpd}"
    );
    let vi = std::fs::read_to_string(dir.join("subs/vi.vtt")).unwrap();
    assert!(vi.starts_with("WEBVTT") && vi.contains("Xin chào"), "{vi}");
    assert!(dir.join("poster-art.png").is_file());
    assert!(dir.join("thumbs/thumbs.vtt").is_file());

    let server = Server::start(&f.data);
    let film = server.get_json("/api/v1/films/mua-do");
    assert_eq!(film["title"]["en"], "Red Rain");
    assert_eq!(film["subtitles"], serde_json::json!(["vi", "en"]));
    let poster = film["poster_url"].as_str().unwrap();
    assert!(poster.ends_with("/poster-art.png"), "{poster}");
    let thumbs = film["thumbnails_url"].as_str().unwrap();
    let vtt_body = ureq::get(&format!("{}{thumbs}", server.url))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        vtt_body.contains("sprite_001.jpg#xywh=0,0,160,90"),
        "{vtt_body}"
    );
    assert!(
        film.get("poster").is_none(),
        "the operator's file path leaked into the API"
    );
}

#[test]
fn bad_subtitles_and_metadata_are_refused() {
    let f = Fixture::new();
    let clip = f.path("clip.mp4");
    common::make_clip(&clip, 1, "160x90");
    let media_before = tree(&f.data.join("media"));
    let run = |args: &[&str]| {
        let mut all = common::ingest_args(&clip, "film");
        all.extend_from_slice(args);
        let out = monsoon(&f.data, &all);
        assert!(!out.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = run(&["--subtitles", "Vietnamese=x.srt"]);
    assert!(
        said.contains("`Vietnamese` is not a language tag"),
        "{said}"
    );
    let missing = f.path("missing.srt");
    let said = run(&["--subtitles", &format!("vi={}", missing.display())]);
    assert!(
        said.contains(&missing.display().to_string()) && said.contains("not found"),
        "{said}"
    );
    let garbage = f.path("garbage.srt");
    std::fs::write(&garbage, [0u8, 159, 146, 150, 1, 2, 3].repeat(50)).unwrap();
    let said = run(&["--subtitles", &format!("vi={}", garbage.display())]);
    assert!(
        said.contains(&garbage.display().to_string()) && said.contains("not a subtitle file"),
        "{said}"
    );
    let meta = f.path("film.toml");
    std::fs::write(&meta, "title = { vi = \"A\" }\nposter = \"nope.jpg\"\n").unwrap();
    let said = run(&["--meta", meta.to_str().unwrap()]);
    assert!(
        said.contains("nope.jpg") && said.contains("`poster` names") && said.contains("not a file"),
        "{said}"
    );
    std::fs::write(
        &meta,
        "title = { vi = \"A\" }\n[[ladder]]\nheight = 360\nkbit = 500\n",
    )
    .unwrap();
    let said = run(&["--meta", meta.to_str().unwrap()]);
    assert!(
        said.contains("unknown key `ladder[0].kbit`; did you mean `kbps`?")
            && said.contains("`ladder[0]` has no `kbps`"),
        "{said}"
    );
    assert_eq!(tree(&f.data.join("media")), media_before);
    assert!(tree(&f.data.join("staging")).is_empty());
}

/// The errors of issue 21 item 8, from the binary as an operator meets them: each names the
/// key or file, says the rule and shows the form; nothing is written.
#[test]
fn film_toml_errors_name_the_key_the_rule_and_the_form() {
    let f = Fixture::new();
    let clip = f.path("clip.mp4");
    common::make_clip(&clip, 1, "160x90");
    let media_before = tree(&f.data.join("media"));
    let refused = |file: &Path, meta: Option<&Path>| {
        let mut all = common::ingest_args(file, "film");
        if let Some(meta) = meta {
            all.extend_from_slice(&["--meta", meta.to_str().unwrap()]);
        }
        let out = monsoon(&f.data, &all);
        assert!(!out.status.success(), "{all:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // A missing film.toml is said once, not "No such file …: No such file …".
    let missing = f.path("missing.toml");
    let said = refused(&clip, Some(&missing));
    assert_eq!(
        said.trim_end(),
        format!("error: film metadata {}: file not found", missing.display())
    );
    // A text file named .mp4 is not "an MP4 cut short".
    let text = f.path("notes.mp4");
    std::fs::write(&text, "Ghi chú: bản dựng cuối\n").unwrap();
    let said = refused(&text, None);
    assert!(
        said.contains("it is a text file, not a video: it begins with \"Ghi chú: bản dựng cuối\"")
            && !said.contains("cut short"),
        "{said}"
    );
    let meta = f.path("film.toml");
    for (toml, says) in [
        (
            "title = \"Mưa đỏ\"\n",
            "`title` is one text; give it in Vietnamese (vi) and English (en)",
        ),
        (
            "title = { vi = \"A\" }\ncast = { a = 1 }\n",
            "`cast` is a table; it must be a list",
        ),
        (
            "title = { vi = \"A\" }\nage_rating = \"PG-13\"\n",
            "`age_rating` is \"PG-13\"; it must be one of the Vietnamese film classes",
        ),
        (
            "title = { vi = \"A\" }\ndirectr = [\"B\"]\n",
            "did you mean `director`?",
        ),
        (
            "title = { vi = \"A\" }\ntrailer = \"no-such-film\"\n",
            "`trailer` is \"no-such-film\", and no published film has that slug",
        ),
    ] {
        std::fs::write(&meta, toml).unwrap();
        let said = refused(&clip, Some(&meta));
        assert!(
            said.contains(says) && said.contains("for example: "),
            "{toml}: {said}"
        );
        assert!(
            !said.contains("expected") && !said.contains("invalid type"),
            "{said}"
        );
    }
    assert_eq!(tree(&f.data.join("media")), media_before);
}

#[test]
fn a_second_ingest_of_the_same_slug_is_refused_while_one_runs() {
    let f = Fixture::new();
    let clip = f.path("again.mp4");
    encode_video(&lavfi_video("320x180", 2), &clip);
    // Another ingest of `film` is running: it holds the slug's lock.
    let locks = f.data.join("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let held = std::fs::File::create(locks.join("film.lock")).unwrap();
    held.try_lock().unwrap();
    let before = tree(&f.data.join("media"));
    let args = common::ingest_args(&clip, "film");
    let out = monsoon(&f.data, &args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another `monsoon ingest` of `film` is running"),
        "{stderr}"
    );
    assert_eq!(tree(&f.data.join("media")), before);
    // Once it ends (or dies: flock goes with the process), the slug is free again.
    drop(held);
    let out = monsoon(&f.data, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The codecs parameter string of AV1 (AV1 ISO-BMFF binding §5), `av01.P.LLT.DD`, as a
/// player's parser would take it apart: profile, level index, tier, bit depth.
fn parse_av01(codecs: &str) -> Option<(u8, u8, char, u8)> {
    let mut parts = codecs.strip_prefix("av01.")?.split('.');
    let profile = parts.next()?.parse().ok()?;
    let level_tier = parts.next()?;
    let level = level_tier.get(..2)?.parse().ok()?;
    let tier = level_tier.get(2..)?.parse().ok()?;
    let depth = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((profile, level, tier, depth))
}

#[test]
fn codecs_h264_av1_publishes_both_ladders_in_one_playlist_and_one_mpd() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let master = tmp.path().join("clip.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25:duration=8",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=8",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-shortest",
        master.to_str().unwrap(),
    ]);
    common::ingest_ok_with(&data, &master, "hai", &["--codecs", "h264,av1"]);
    let dir = version_dir(&data, "hai");
    let playlist = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();

    // Each codec has its own full ladder, floor to top, in the one multivariant playlist.
    let variants: Vec<(&str, &str)> = playlist
        .lines()
        .zip(playlist.lines().skip(1))
        .filter(|(l, _)| l.starts_with("#EXT-X-STREAM-INF") && l.contains("RESOLUTION="))
        .collect();
    let codecs_of = |line: &str| -> String {
        line.split("CODECS=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned()
    };
    let av1: Vec<_> = variants
        .iter()
        .filter(|(l, _)| l.contains("av01."))
        .collect();
    let h264: Vec<_> = variants
        .iter()
        .filter(|(l, _)| l.contains("avc1."))
        .collect();
    assert_eq!((av1.len(), h264.len()), (2, 2), "{playlist}");
    // H.264 first, the floor leading: a player that takes the first variant plays as before.
    assert!(
        variants[0].0.contains("avc1.") && variants[0].0.contains("416x234"),
        "{playlist}"
    );
    assert!(
        variants[2].0.contains("av01.") && variants[2].0.contains("416x234"),
        "{playlist}"
    );
    for (line, uri) in &av1 {
        let codecs = codecs_of(line);
        let video = codecs.split(',').next().unwrap();
        let (profile, level, tier, depth) =
            parse_av01(video).unwrap_or_else(|| panic!("`{video}` does not parse"));
        assert_eq!((profile, tier, depth), (0, 'M', 8), "{video}");
        assert!(level <= 31, "{video}");
        assert!(uri.contains("-av1/"), "{uri}");
    }
    // The AV1 floor plays with Opus, and stays within the 2G budget with it.
    let floor = av1
        .iter()
        .find(|(l, _)| l.contains("RESOLUTION=416x234"))
        .unwrap();
    assert!(codecs_of(floor.0).ends_with(",opus"), "{}", floor.0);
    assert!(floor.0.contains("AUDIO=\"o32\""), "{}", floor.0);
    let bandwidth: u64 = floor
        .0
        .split("BANDWIDTH=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bandwidth <= 192_000, "{}", floor.0);
    // I-frame playlists for the AV1 rungs too.
    assert_eq!(
        playlist
            .lines()
            .filter(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF") && l.contains("av01."))
            .count(),
        2,
        "{playlist}"
    );

    // The MPD: AV1 in an adaptation set of its own (codecs cannot switch within one).
    let mpd = std::fs::read_to_string(dir.join("manifest.mpd")).unwrap();
    let av1_set = mpd
        .split("<AdaptationSet id=\"video-av1\"")
        .nth(1)
        .unwrap_or_else(|| panic!("{mpd}"));
    let av1_set = av1_set.split("</AdaptationSet>").next().unwrap();
    let reps: Vec<&str> = av1_set
        .split("codecs=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(reps.len(), 2, "{av1_set}");
    assert!(reps.iter().all(|c| parse_av01(c).is_some()), "{reps:?}");
    let h264_set = mpd
        .split("<AdaptationSet id=\"video\"")
        .nth(1)
        .unwrap()
        .split("</AdaptationSet>")
        .next()
        .unwrap();
    assert!(!h264_set.contains("av01"), "{h264_set}");

    // 6 s segments cut where the H.264 ones are.
    let extinfs = |rung: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(rung).join("index.m3u8"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("#EXTINF:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(extinfs("v234")[0], "#EXTINF:6.000000,");
    for rung in ["v234-av1", "v360-av1"] {
        assert_eq!(extinfs(rung), extinfs("v234"), "{rung}");
    }

    for rung in ["v234-av1", "v360-av1"] {
        let rung_dir = dir.join(rung);
        // Every segment opens on a key frame: decoded alone after the init segment, its
        // first packet is one.
        let media = std::fs::read_to_string(rung_dir.join("index.m3u8")).unwrap();
        let segments: Vec<&str> = media.lines().filter(|l| l.ends_with(".m4s")).collect();
        assert_eq!(segments.len(), 2, "{media}");
        for seg in segments {
            let alone = tmp.path().join(format!("{rung}-{seg}.mp4"));
            let mut bytes = std::fs::read(rung_dir.join("init.mp4")).unwrap();
            bytes.extend(std::fs::read(rung_dir.join(seg)).unwrap());
            std::fs::write(&alone, bytes).unwrap();
            let packets = ffprobe(
                &alone,
                &[
                    "-select_streams",
                    "v",
                    "-show_entries",
                    "packet=flags",
                    "-show_packets",
                ],
            );
            let first = packets["packets"][0]["flags"].as_str().unwrap().to_owned();
            assert!(
                first.starts_with('K'),
                "{rung}/{seg} opens with a {first} packet"
            );
        }
        // ffmpeg decodes the whole rendition without an error: 8 s of 25 fps.
        let joined = tmp.path().join(format!("{rung}.mp4"));
        join_rendition(&rung_dir, &joined);
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&joined)
            .args(["-f", "framemd5", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let frames = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(frames, 200, "{rung}");
    }
    // The Opus rendition decodes too.
    let opus = tmp.path().join("o32.mp4");
    join_rendition(&dir.join("o32"), &opus);
    let streams = ffprobe(
        &opus,
        &["-show_entries", "stream=codec_name", "-show_streams"],
    );
    assert_eq!(streams["streams"][0]["codec_name"], "opus");

    // Sizes, for the record (`cargo nextest run --no-capture` shows them).
    let size = |name: &str| -> u64 {
        std::fs::read_dir(dir.join(name))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let (h, a) = (
        size("v234") + size("v360"),
        size("v234-av1") + size("v360-av1"),
    );
    eprintln!(
        "8 s 640x360 testsrc2: H.264 ladder {h} bytes, AV1 ladder {a} bytes ({:.2}×)",
        a as f64 / h as f64
    );
}

#[test]
fn unknown_codecs_are_refused_naming_the_value_and_the_choices() {
    let f = Fixture::new();
    let clip = f.path("clip.mp4");
    encode_video(&lavfi_video("320x180", 2), &clip);
    f.assert_refused(
        &clip,
        &["--codecs", "h264,vp9"],
        &["`vp9`", "the codecs are h264, av1"],
    );
    f.assert_refused(&clip, &["--codecs", "av1"], &["must include h264"]);
    // SVT-AV1 encodes no side under 64 pixels: a picture whose floor is smaller is refused
    // an AV1 ladder before anything is encoded.
    let tiny = f.path("tiny.mp4");
    encode_video(&lavfi_video("96x54", 1), &tiny);
    f.assert_refused(
        &tiny,
        &["--codecs", "h264,av1"],
        &["the smallest rung is 96x54", "no side under 64 pixels"],
    );
    let meta = f.path("film.toml");
    std::fs::write(&meta, "codecs = [\"hevc\"]\n[title]\nvi = \"Phim\"\n").unwrap();
    f.assert_refused(
        &clip,
        &["--meta", meta.to_str().unwrap()],
        &["`codecs[0]` is `hevc`; the codecs are h264, av1"],
    );
}

/// At 23.976 fps, two seconds are not a whole number of frames: x264's key frames forced by
/// time (`gte(t,n_forced*2)`) fall a frame earlier than every 48th frame from 42 s on, and
/// SVT-AV1 in ffmpeg 5.1 ignores forced key frames. The two ladders must still be cut at the
/// same instants, past that point.
#[test]
fn ntsc_rate_ladders_stay_aligned_past_the_first_frame_of_drift() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let master = tmp.path().join("ntsc.mp4");
    encode_video("testsrc2=size=128x72:rate=24000/1001:duration=50", &master);
    common::ingest_ok_with(&data, &master, "ntsc", &["--codecs", "h264,av1"]);
    let dir = version_dir(&data, "ntsc");
    let extinfs = |rung: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(rung).join("index.m3u8"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("#EXTINF:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(extinfs("v72").len(), 9, "{:?}", extinfs("v72"));
    assert_eq!(extinfs("v72-av1"), extinfs("v72"));
}

/// The operator's progress bar moves while the film is encoded, not only at the end: ffmpeg
/// reports progress only once every output has begun, and a tiled thumbnail output once began
/// after 100 thumbnails (1,000 s of film), then reported the sheets' timestamps (1,000 s).
#[test]
fn progress_is_reported_while_encoding_and_never_past_the_film() {
    let f = Fixture::new();
    let master = f.path("progress.mp4");
    common::make_clip(&master, 60, "640x360");
    let out = Command::new(MONSOON)
        .arg("--data")
        .arg(&f.data)
        .arg("ingest")
        .arg(&master)
        .args(["--slug", "progress", "--quality", "fast", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "progress")
        .collect();
    let during = reports
        .iter()
        .filter(|r| r["percent"].as_f64().unwrap() < 100.0)
        .count();
    assert!(
        during >= 2,
        "{during} progress reports before the end: {reports:?}"
    );
    for r in &reports {
        let at = r["out_time_s"].as_f64().unwrap();
        assert!(at <= 61.0, "a report past the 60 s film: {r}");
    }
}
