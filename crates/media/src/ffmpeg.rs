//! The one place Monsoon starts ffmpeg and ffprobe.
//!
//! Every call passes an argv (never a shell string), reads inputs through the `file:` protocol
//! only (the demo's synthetic master reads lavfi's generators, no file), is killed if Monsoon is dropped or dies (`kill_on_drop` plus `PR_SET_PDEATHSIG`), and
//! turns a failure into an error that quotes the tool's own last words.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::probe::{self, Limits, ProbeOutput, Source};
use crate::{Error, Result};

/// How long ffprobe may take on one file before Monsoon gives up on it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// A `file:` URL for `path`, so that names starting with `-`, `concat:` or `http:` are read
/// as plain local files.
pub fn file_arg(path: &Path) -> OsString {
    let mut arg = OsString::from("file:");
    arg.push(path.as_os_str());
    arg
}

/// Builds a command with the safety settings every ffmpeg-family call shares.
pub fn command(program: &'static str) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    die_with_parent(&mut cmd);
    cmd
}

/// Asks the kernel to kill the child if Monsoon dies, even by SIGKILL, so that no orphaned
/// ffmpeg keeps writing into a staging directory.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn spawn_error(tool: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::ToolMissing { tool, source }
}

/// The last lines of a tool's stderr, which is where ffmpeg says what went wrong.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].join("\n")
}

/// The size of `path`, which must be a non-empty regular file; the error says which rule
/// it broke.
async fn input_file_size(path: &Path) -> Result<u64> {
    let meta = match tokio::fs::metadata(path).await {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(Error::io(path)(e)),
    };
    if !meta.is_file() {
        return Err(Error::Unsupported {
            path: path.to_owned(),
            reason: "not a regular file".into(),
            rule: None,
        });
    }
    if meta.len() == 0 {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    Ok(meta.len())
}

/// The first [`probe::HEAD_BYTES`] of `path` (fewer if it is shorter or unreadable).
async fn read_head(path: &Path) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let mut head = Vec::with_capacity(probe::HEAD_BYTES);
    if let Ok(file) = tokio::fs::File::open(path).await {
        let _ = file
            .take(probe::HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .await;
    }
    head
}

/// Probes `path` with ffprobe and checks it against `limits`.
pub async fn probe_file(path: &Path, limits: &Limits) -> Result<Source> {
    let (size, parsed) = ffprobe(path).await?;
    let mut source = probe::analyze(path, &parsed, limits)?;
    if source.size_bytes == 0 {
        source.size_bytes = size;
    }
    Ok(source)
}

/// Probes `path` as an audio track to add to a film (`crate::tracks`): any container
/// ffmpeg reads among the allowed ones, with an audio stream.
pub async fn probe_audio_file(path: &Path, limits: &Limits) -> Result<probe::AudioSource> {
    let (_, parsed) = ffprobe(path).await?;
    probe::analyze_audio(path, &parsed, limits)
}

/// ffprobe's reading of `path` (a non-empty regular file) and the file's size.
async fn ffprobe(path: &Path) -> Result<(u64, ProbeOutput)> {
    let size = input_file_size(path).await?;

    let mut cmd = command("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
    ])
    .arg(probe::ALLOWED_FORMATS.join(","))
    .args(["-print_format", "json", "-show_format", "-show_streams"])
    .arg(file_arg(path));
    let output = tokio::time::timeout(PROBE_TIMEOUT, cmd.output())
        .await
        .map_err(|_| Error::NotMedia {
            path: path.to_owned(),
            reason: format!("ffprobe took longer than {} s", PROBE_TIMEOUT.as_secs()),
            rule: None,
        })?
        .map_err(spawn_error("ffprobe"))?;
    if !output.status.success() {
        let said = tail(&output.stderr);
        let refusal = probe::unreadable_reason(&read_head(path).await, &said);
        return Err(Error::NotMedia {
            path: path.to_owned(),
            reason: refusal.message,
            rule: refusal.rule.map(Box::new),
        });
    }
    let parsed: ProbeOutput = probe::parse_probe(&String::from_utf8_lossy(&output.stdout))
        .map_err(|e| Error::NotMedia {
            path: path.to_owned(),
            reason: format!("ffprobe output unreadable: {e}"),
            rule: None,
        })?;
    Ok((size, parsed))
}

/// A progress report parsed from ffmpeg's `-progress` key/value stream.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Progress {
    /// Media time encoded so far, seconds.
    pub out_time_s: f64,
    /// Encoding speed as a multiple of real time.
    pub speed: f64,
    /// True on the last report.
    pub done: bool,
}

/// Folds one `-progress` line into `progress`; returns true when a report block ends.
pub fn parse_progress_line(line: &str, progress: &mut Progress) -> bool {
    let Some((key, value)) = line.split_once('=') else {
        return false;
    };
    let value = value.trim();
    match key.trim() {
        "out_time_us" | "out_time_ms" => {
            // Both keys carry microseconds (ffmpeg's `out_time_ms` is misnamed).
            if let Ok(us) = value.parse::<i64>() {
                progress.out_time_s = us.max(0) as f64 / 1e6;
            }
        }
        "speed" => {
            if let Ok(speed) = value.trim_end_matches('x').trim().parse() {
                progress.speed = speed;
            }
        }
        "progress" => {
            progress.done = value == "end";
            return true;
        }
        _ => {}
    }
    false
}

/// ffmpeg's exit code when `-max_error_rate` is crossed.
pub const EXIT_TOO_MANY_DECODE_ERRORS: i32 = 69;

/// Runs ffmpeg with `args`, calling `on_progress` for each `-progress` report. Dropping the
/// returned future kills ffmpeg.
pub async fn run_ffmpeg(args: Vec<OsString>, on_progress: impl FnMut(Progress)) -> Result<()> {
    run_ffmpeg_watching(args, on_progress).await.0
}

/// A rule a decoded frame broke, as ffmpeg's stderr tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameBreach {
    /// The decoder refused a frame over its `-max_pixels` (libavutil's `av_image_check_size2`
    /// logs "Picture size WxH exceeds specified max pixel count N").
    OverMaxPixels { width: u32, height: u32 },
    /// The size guard ([`crate::transcode::SIZE_GUARD`]) met a frame whose size is not the
    /// probed one; that size, as the filters saw it, when crop's message gives it.
    SizeChanged { size: Option<(u32, u32)> },
}

impl FrameBreach {
    /// Recognises a breach in one line of ffmpeg's stderr.
    pub fn from_stderr_line(line: &str) -> Option<Self> {
        if line.contains(crate::transcode::SIZE_GUARD) {
            // crop: "Invalid too big or non positive size for width '-W' or height '-H'"; the
            // guard negates the size of a frame it refuses.
            let number = |after: &str| -> Option<u32> {
                let rest = line.split_once(after)?.1;
                let digits = rest.split('\'').next()?;
                u32::try_from(digits.parse::<i64>().ok()?.unsigned_abs()).ok()
            };
            let size = number("width '").zip(number("height '"));
            return Some(FrameBreach::SizeChanged { size });
        }
        let rest = line.split_once("Picture size ")?.1;
        let (size, tail) = rest.split_once(' ')?;
        if !tail.starts_with("exceeds specified max pixel count") {
            return None;
        }
        let (w, h) = size.split_once('x')?;
        Some(FrameBreach::OverMaxPixels {
            width: w.parse().ok()?,
            height: h.parse().ok()?,
        })
    }
}

/// Lines of ffmpeg's stderr kept for an error message.
const TAIL_LINES: usize = 6;

/// [`run_ffmpeg`], also reading stderr for frames that break a rule ([`FrameBreach`]), which
/// it returns beside the outcome. ffmpeg is stopped at the first: a decoder that refuses
/// frames over `-max_pixels` counts them as decoding errors and would go on through the rest
/// of a two-hour master.
pub(crate) async fn run_ffmpeg_watching(
    args: Vec<OsString>,
    mut on_progress: impl FnMut(Progress),
) -> (Result<()>, Option<FrameBreach>) {
    let mut cmd = command("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-v",
        "error",
        "-progress",
        "pipe:1",
    ])
    .args(args)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return (Err(spawn_error("ffmpeg")(e)), None),
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return (Err(Error::Interrupted), None);
    };

    // Read stderr concurrently so a chatty ffmpeg never blocks on a full pipe.
    let (breach_tx, mut breach_rx) = tokio::sync::oneshot::channel();
    let stderr_task = tokio::spawn(watch_stderr(stderr, breach_tx));
    let mut lines = BufReader::new(stdout).lines();
    let mut progress = Progress::default();
    let mut breached = false;
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if parse_progress_line(&line, &mut progress) {
                        on_progress(progress);
                    }
                }
                _ => break,
            },
            breach = &mut breach_rx, if !breached => {
                breached = true;
                if breach.is_ok() {
                    let _ = child.start_kill();
                }
            }
        }
    }
    let status = match child.wait().await {
        Ok(status) => status,
        Err(e) => return (Err(spawn_error("ffmpeg")(e)), None),
    };
    let (stderr, breach) = stderr_task.await.unwrap_or_default();
    let outcome = if status.success() {
        Ok(())
    } else {
        Err(Error::ToolFailed {
            tool: "ffmpeg",
            status: status.to_string(),
            code: status.code(),
            stderr,
        })
    };
    (outcome, breach)
}

/// Reads ffmpeg's stderr to the end: returns its last lines and the first [`FrameBreach`],
/// which is also sent on `first` as soon as it is read.
async fn watch_stderr(
    stderr: tokio::process::ChildStderr,
    first: tokio::sync::oneshot::Sender<FrameBreach>,
) -> (String, Option<FrameBreach>) {
    let mut reader = BufReader::new(stderr);
    let mut tail = std::collections::VecDeque::with_capacity(TAIL_LINES);
    let mut breach = None;
    let mut first = Some(first);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Bytes, not `lines()`: a line that is not UTF-8 (a file name, a tag) must not stop
        // the reading, or ffmpeg would block on the full pipe.
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end();
        if breach.is_none()
            && let Some(found) = FrameBreach::from_stderr_line(line)
        {
            breach = Some(found);
            if let Some(first) = first.take() {
                let _ = first.send(found);
            }
        }
        if !line.trim().is_empty() {
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.to_owned());
        }
    }
    (Vec::from(tail).join("\n"), breach)
}

/// Subtitle formats accepted as sidecar files.
pub const SUBTITLE_FORMATS: &str = "srt,webvtt,ass";

/// Converts a sidecar subtitle file (SRT, WebVTT, ASS) to WebVTT at `out`.
pub async fn convert_subtitle(input: &Path, out: &Path) -> Result<()> {
    input_file_size(input).await?;
    let mut cmd = command("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-protocol_whitelist",
        "file",
    ])
    .args(["-format_whitelist", SUBTITLE_FORMATS, "-i"])
    .arg(file_arg(input))
    .args(["-map", "0:s:0", "-c:s", "webvtt", "-f", "webvtt"])
    .arg(out);
    let output = cmd.output().await.map_err(spawn_error("ffmpeg"))?;
    if output.status.success() {
        Ok(())
    } else {
        let said = tail(&output.stderr);
        Err(Error::NotMedia {
            path: input.to_owned(),
            reason: format!("not a subtitle file in {SUBTITLE_FORMATS}: {said}"),
            rule: Some(Box::new(monsoon_catalog::Rule::NotSubtitles { said })),
        })
    }
}

/// Writes one JPEG frame of `source` at `at_s` seconds, `height` pixels high.
pub async fn extract_frame(source: &Source, at_s: f64, height: u32, out: &Path) -> Result<()> {
    let mut cmd = command("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-protocol_whitelist",
        "file",
    ])
    .args(["-ss", &format!("{at_s:.3}")])
    .arg("-i")
    .arg(file_arg(&source.path))
    .args(["-map", &format!("0:{}", source.video.index)])
    .args([
        "-frames:v",
        "1",
        "-vf",
        &format!("scale=-2:{height}"),
        "-q:v",
        "3",
    ])
    .arg(PathBuf::from(out));
    let output = cmd.output().await.map_err(spawn_error("ffmpeg"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::ToolFailed {
            tool: "ffmpeg",
            status: output.status.to_string(),
            code: output.status.code(),
            stderr: tail(&output.stderr),
        })
    }
}

/// Tiles the single thumbnails in `dir` (named by [`crate::transcode::THUMB_PATTERN`]) into
/// sprite sheets of `columns` × `rows` ([`crate::transcode::SPRITE_PATTERN`]), then removes
/// them. Small JPEGs: a fraction of a second for a feature film.
pub async fn tile_thumbnails(dir: &Path, columns: u32, rows: u32) -> Result<()> {
    use crate::transcode::{SPRITE_PATTERN, THUMB_PATTERN};
    let mut cmd = command("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args([
            "-protocol_whitelist",
            "file",
            "-f",
            "image2",
            "-framerate",
            "1",
        ])
        .arg("-i")
        .arg(dir.join(THUMB_PATTERN))
        .args(["-vf", &format!("tile={columns}x{rows}"), "-q:v", "5"])
        .arg(dir.join(SPRITE_PATTERN));
    let output = cmd.output().await.map_err(spawn_error("ffmpeg"))?;
    if !output.status.success() {
        return Err(Error::ToolFailed {
            tool: "ffmpeg",
            status: output.status.to_string(),
            code: output.status.code(),
            stderr: tail(&output.stderr),
        });
    }
    let mut entries = tokio::fs::read_dir(dir).await.map_err(Error::io(dir))?;
    while let Some(entry) = entries.next_entry().await.map_err(Error::io(dir))? {
        if entry.file_name().to_string_lossy().starts_with("thumb_") {
            let path = entry.path();
            tokio::fs::remove_file(&path)
                .await
                .map_err(Error::io(&path))?;
        }
    }
    Ok(())
}

/// Refuses to go on when ffmpeg or ffprobe is missing (or does not run), before anything is
/// written, with the command that installs them.
pub fn require_ffmpeg() -> Result<()> {
    for tool in ["ffmpeg", "ffprobe"] {
        let found = std::process::Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(Error::ToolNotInstalled { tool });
        }
    }
    Ok(())
}

/// Makes a synthetic master at `out` (for `monsoon demo`): a lavfi test pattern with a
/// burnt-in timecode and a 1 kHz tone, so every frame and every second is identifiable, in
/// H.264 and AAC at 25 fps, 16:9, `height` lines high. Its inputs are lavfi's generators, not
/// files; it is written under a temporary name and renamed, so `out` is whole or absent.
pub async fn make_master(out: &Path, seconds: u32, height: u32) -> Result<()> {
    let width = height * 16 / 9 / 2 * 2;
    let font_size = height / 12;
    let video = format!(
        "testsrc2=size={width}x{height}:rate=25:duration={seconds},\
         drawtext=timecode='00\\:00\\:00\\:00':rate=25:fontsize={font_size}:fontcolor=white:\
         box=1:boxcolor=black@0.6:x=(w-tw)/2:y=h-th-{font_size}"
    );
    let audio = format!("sine=frequency=1000:sample_rate=48000:duration={seconds}");
    let tmp = out.with_extension("part.mp4");
    let mut cmd = command("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
        ])
        .args(["-c:a", "aac", "-b:a", "192k", "-ac", "2", "-shortest"])
        .args(["-movflags", "+faststart"])
        .arg(&tmp);
    let output = cmd.output().await.map_err(spawn_error("ffmpeg"))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::ToolFailed {
            tool: "ffmpeg",
            status: output.status.to_string(),
            code: output.status.code(),
            stderr: tail(&output.stderr),
        });
    }
    std::fs::rename(&tmp, out).map_err(Error::io(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_blocks() {
        let mut p = Progress::default();
        let lines = "frame=10\nout_time_us=2500000\nspeed=1.53x\nprogress=continue\n\
                     out_time_us=5000000\nspeed=N/A\nprogress=end";
        let reports: Vec<Progress> = lines
            .lines()
            .filter_map(|l| parse_progress_line(l, &mut p).then_some(p))
            .collect();
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].out_time_s, 2.5);
        assert_eq!(reports[0].speed, 1.53);
        assert!(!reports[0].done);
        assert_eq!(reports[1].out_time_s, 5.0);
        assert!(reports[1].done);
    }

    #[test]
    fn frame_breaches_are_read_from_ffmpeg_s_own_words() {
        // As ffmpeg 5.1 writes them (`-v error`).
        assert_eq!(
            FrameBreach::from_stderr_line(
                "[h264 @ 0x55d0c8a3c2c0] Picture size 7680x7680 exceeds specified max pixel \
                 count 116736, see the documentation if you wish to increase it"
            ),
            Some(FrameBreach::OverMaxPixels {
                width: 7680,
                height: 7680
            })
        );
        assert_eq!(
            FrameBreach::from_stderr_line(
                "[crop@frame_size_guard @ 0x5581] Invalid too big or non positive size for \
                 width '-160' or height '-120'"
            ),
            Some(FrameBreach::SizeChanged {
                size: Some((160, 120))
            })
        );
        assert_eq!(
            FrameBreach::from_stderr_line("[crop@frame_size_guard @ 0x5581] Failed to configure"),
            Some(FrameBreach::SizeChanged { size: None })
        );
        for other in [
            "Error while decoding stream #0:0: Invalid argument",
            "Picture size 0x0 is invalid",
            "[h264 @ 0x1] Picture size 7680x exceeds specified max pixel count 1",
            "",
        ] {
            assert_eq!(FrameBreach::from_stderr_line(other), None, "{other}");
        }
    }

    #[test]
    fn inputs_are_file_urls() {
        assert_eq!(file_arg(Path::new("-i.mp4")), OsString::from("file:-i.mp4"));
        assert_eq!(
            file_arg(Path::new("concat:a|b")),
            OsString::from("file:concat:a|b")
        );
    }
}
