//! The jobs as a terminal shows them (`monsoon jobs`): an aligned table, and a job's log.

use super::{Job, JobLogLine, JobState};

/// A job's log as text, one line an entry: its time (RFC 3339, UTC, milliseconds), two
/// spaces, the line (a line break in it made a space).
pub fn log_text(lines: &[JobLogLine]) -> String {
    let mut out = String::new();
    for line in lines {
        let at = line.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        out.push_str(&format!("{at}  {}\n", line.line.replace(['\n', '\r'], " ")));
    }
    out
}

/// `jobs` as an aligned text table: a header, then one line per job with its id, film, state,
/// percent done, speed and ETA (while running), attempts and message (on one line).
pub fn table(jobs: &[Job]) -> String {
    let mut rows = vec![
        [
            "ID", "SLUG", "STATE", "DONE", "SPEED", "ETA", "TRIES", "MESSAGE",
        ]
        .map(String::from),
    ];
    for job in jobs {
        let running = job.state == JobState::Running;
        rows.push([
            job.id.to_string(),
            job.slug.clone(),
            job.state.as_str().to_owned(),
            format!("{:.1}%", job.percent),
            if running && job.speed > 0.0 {
                format!("{:.2}×", job.speed)
            } else {
                "-".into()
            },
            job.eta_s().map_or("-".into(), clock),
            format!("{}/{}", job.attempts, job.max_attempts),
            job.message.replace(['\n', '\r'], " "),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (cell, width) in row.iter().zip(&widths) {
            out.push_str(cell);
            out.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        out.push_str(&row[7]);
        out.push('\n');
    }
    out
}

/// Seconds as `h:mm:ss`.
fn clock(seconds: f64) -> String {
    let s = seconds.round().clamp(0.0, 359_999.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_one_line_an_entry_with_its_time() {
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 6, 2, 30, 0).single();
        let line = |text: &str| JobLogLine {
            at: at.unwrap_or_default(),
            line: text.to_owned(),
            stage: None,
        };
        let text = log_text(&[line("queued"), line("failed:\nffmpeg said\r\nno")]);
        assert_eq!(
            text,
            "2026-12-06T02:30:00.000Z  queued\n2026-12-06T02:30:00.000Z  failed: ffmpeg said  no\n"
        );
    }

    #[test]
    fn the_table_aligns_and_shows_the_eta_of_running_jobs() {
        assert_eq!(clock(3725.4), "1:02:05");
        let mut job = Job {
            id: 7,
            slug: "mua-do".into(),
            master: "/films/mua-do.mov".into(),
            film_toml: None,
            options: serde_json::json!({}),
            duration_s: 600.0,
            state: JobState::Running,
            attempts: 1,
            max_attempts: 3,
            lease_owner: Some("host:1".into()),
            lease_expires_at: None,
            percent: 50.0,
            speed: 2.0,
            message: "transcoding".into(),
            stage: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
        };
        let text = table(std::slice::from_ref(&job));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].contains("50.0%") && lines[1].contains("2.00×"),
            "{text}"
        );
        // 300 s of film left at 2× real time.
        assert!(lines[1].contains("0:02:30"), "{text}");
        assert_eq!(lines[0].find("STATE"), lines[1].find("running"));
        job.state = JobState::Done;
        assert!(!table(&[job]).contains("0:02:30"));
    }
}
