//! The one place Monsoon starts ffmpeg and ffprobe.
//!
//! Every call passes an argv (never a shell string), reads inputs through the `file:` protocol
//! only, is killed if Monsoon is dropped or dies (`kill_on_drop` plus `PR_SET_PDEATHSIG`), and
//! turns a failure into an error that quotes the tool's own last words.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
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
    let start = lines.len().saturating_sub(6);
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
        });
    }
    if meta.len() == 0 {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    Ok(meta.len())
}

/// Probes `path` with ffprobe and checks it against `limits`.
pub async fn probe_file(path: &Path, limits: &Limits) -> Result<Source> {
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
        })?
        .map_err(spawn_error("ffprobe"))?;
    if !output.status.success() {
        let said = tail(&output.stderr);
        let reason = if said.contains("moov atom not found") {
            "incomplete file: the MP4 index (moov) is missing, the file was probably cut short"
                .to_owned()
        } else {
            format!("ffprobe could not read it: {said}")
        };
        return Err(Error::NotMedia {
            path: path.to_owned(),
            reason,
        });
    }
    let parsed: ProbeOutput = probe::parse_probe(&String::from_utf8_lossy(&output.stdout))
        .map_err(|e| Error::NotMedia {
            path: path.to_owned(),
            reason: format!("ffprobe output unreadable: {e}"),
        })?;
    let mut source = probe::analyze(path, &parsed, limits)?;
    if source.size_bytes == 0 {
        source.size_bytes = size;
    }
    Ok(source)
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
pub async fn run_ffmpeg(args: Vec<OsString>, mut on_progress: impl FnMut(Progress)) -> Result<()> {
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
    let mut child = cmd.spawn().map_err(spawn_error("ffmpeg"))?;
    let stdout = child.stdout.take().ok_or(Error::Interrupted)?;
    let mut stderr = child.stderr.take().ok_or(Error::Interrupted)?;

    // Collect stderr concurrently so a chatty ffmpeg never blocks on a full pipe.
    let stderr_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        buf
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut progress = Progress::default();
    while let Ok(Some(line)) = lines.next_line().await {
        if parse_progress_line(&line, &mut progress) {
            on_progress(progress);
        }
    }
    let status = child.wait().await.map_err(spawn_error("ffmpeg"))?;
    let stderr = stderr_task.await.unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(Error::ToolFailed {
            tool: "ffmpeg",
            status: status.to_string(),
            code: status.code(),
            stderr: tail(&stderr),
        })
    }
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
        Err(Error::NotMedia {
            path: input.to_owned(),
            reason: format!(
                "not a subtitle file in {SUBTITLE_FORMATS}: {}",
                tail(&output.stderr)
            ),
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
    fn inputs_are_file_urls() {
        assert_eq!(file_arg(Path::new("-i.mp4")), OsString::from("file:-i.mp4"));
        assert_eq!(
            file_arg(Path::new("concat:a|b")),
            OsString::from("file:concat:a|b")
        );
    }
}
