//! The outcome of a run: the server's figures against the ground truth, request latency and
//! errors per class, the concurrency series; printed as a table, written as JSON and as an
//! SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::client::Latency;

/// One figure compared.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub figure: String,
    pub server: f64,
    pub truth: f64,
    /// Server minus truth, after the rule of [`Comparison::rule`].
    pub difference: f64,
    /// How the two are compared.
    pub rule: &'static str,
}

/// Requests of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    pub requests: u64,
    pub errors: u64,
    pub shed: u64,
    pub bytes: u64,
    pub latency: Latency,
}

/// One poll of `/stats` during the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// The server's concurrent viewers (minus the baseline), if the poll was answered.
    pub server: Option<u64>,
    /// Ground truth: sessions certainly and possibly watching at the poll.
    pub low: u64,
    pub high: u64,
    /// Viewer tasks present (arrived, not yet leaving).
    pub viewers: i64,
}

/// One window of the progress line (`progress_every_s`): each request class's p99 latency in
/// it, and the errors in it, so a run with a node killed can be judged outside the kill.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Seconds since the run started, at the window's end.
    pub t_s: f64,
    pub requests_per_s: f64,
    pub errors: u64,
    /// p99 latency (ms) by request class, of requests completed in the window.
    pub p99_ms: BTreeMap<String, f64>,
}

/// The live comparison of concurrency at every poll.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveCheck {
    pub polls: u64,
    pub unanswered: u64,
    /// Polls where the server's figure fell outside the ground truth's range.
    pub outside: u64,
    /// Largest distance outside the range.
    pub worst: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: String,
    pub url: String,
    pub film: String,
    pub connections: super::scenario::Connections,
    pub pool_size: usize,
    pub segment_share: f64,
    pub wall_s: f64,
    pub sessions: u64,
    /// Highest number of viewers present at once, and of sessions certainly watching.
    pub peak_viewers: i64,
    pub peak_watching: u64,
    /// Sessions certainly watching, at least, over the second half of the curve's top
    /// (the hold of `peak-60k`), if the curve has a plateau.
    pub held_watching: Option<u64>,
    /// The server's own `peak_concurrent_viewers` (it samples every `sample_every_ms`).
    pub server_peak_concurrent: u64,
    pub comparison: Vec<Comparison>,
    pub live: LiveCheck,
    pub requests: BTreeMap<String, ClassReport>,
    pub beats: BTreeMap<String, u64>,
    /// Sessions whose beats may have landed but were never acknowledged.
    pub unconfirmed_sessions: u64,
    pub lost_final_beats: u64,
    /// Viewers still present when `settle_s` ran out.
    pub stranded_viewers: i64,
    /// CPU seconds the simulator itself used (it shares the machine with the server).
    pub simulator_cpu_s: Option<f64>,
    pub interval_mismatches: u64,
    pub series: Vec<Sample>,
    /// The progress windows, in order.
    pub windows: Vec<Window>,
    /// Zero difference on every compared figure, every live poll in range, nothing lost.
    pub ok: bool,
}

impl Report {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{} — {} sessions in {:.0} s, peak {} viewers ({} watching), {:?} connections{}, segments for {:.0} % of viewers",
            self.scenario,
            self.sessions,
            self.wall_s,
            self.peak_viewers,
            self.peak_watching,
            self.connections,
            if matches!(self.connections, super::scenario::Connections::Pooled) {
                format!(" (pool {})", self.pool_size)
            } else {
                String::new()
            },
            self.segment_share * 100.0
        );
        let _ = writeln!(
            out,
            "\n{:<22} {:>14} {:>14} {:>12}  rule",
            "figure", "server", "ground truth", "difference"
        );
        for c in &self.comparison {
            let _ = writeln!(
                out,
                "{:<22} {:>14} {:>14} {:>12}  {}",
                c.figure,
                trim(c.server),
                trim(c.truth),
                trim(c.difference),
                c.rule
            );
        }
        let _ = writeln!(
            out,
            "{:<22} {:>14} {:>14} {:>12}  polls in the ground truth's range ({} unanswered)",
            "live concurrency",
            self.live.polls - self.live.outside,
            self.live.polls,
            self.live.outside,
            self.live.unanswered
        );
        let _ = writeln!(
            out,
            "\n{:<10} {:>10} {:>8} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "requests", "count", "errors", "shed", "MB", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for (name, c) in &self.requests {
            let _ = writeln!(
                out,
                "{:<10} {:>10} {:>8} {:>8} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.1}",
                name,
                c.requests,
                c.errors,
                c.shed,
                c.bytes as f64 / 1e6,
                c.latency.p50_ms,
                c.latency.p90_ms,
                c.latency.p99_ms,
                c.latency.max_ms
            );
        }
        let beats: Vec<String> = self.beats.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            out,
            "\nsimulator CPU: {:.0} s\nheld (watching, second half of the plateau): {}\nheartbeats: {}; server peak {}; unconfirmed sessions {}; final beats lost {}; interval mismatches {}",
            self.simulator_cpu_s.unwrap_or(0.0),
            self.held_watching
                .map_or_else(|| "no plateau".to_owned(), |h| h.to_string()),
            beats.join(", "),
            self.server_peak_concurrent,
            self.unconfirmed_sessions,
            self.lost_final_beats,
            self.interval_mismatches
        );
        let _ = writeln!(
            out,
            "{}",
            if self.ok {
                "RESULT: the server's figures equal the ground truth"
            } else {
                "RESULT: the server's figures DIFFER from the ground truth (or requests were lost)"
            }
        );
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self).context("encoding the report")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Concurrent viewers over time: the server's figure and the ground truth on one chart.
    pub fn plot(&self, path: &Path) -> anyhow::Result<()> {
        use plotters::prelude::*;
        let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
        let max_t = self.series.last().map_or(1.0, |s| s.t_s).max(1.0);
        let max_y = self
            .series
            .iter()
            .map(|s| {
                s.high
                    .max(s.server.unwrap_or(0))
                    .max(s.viewers.max(0) as u64)
            })
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.1;
        let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: concurrent viewers", self.scenario),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..max_t, 0.0..max_y)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("viewers")
            .draw()
            .map_err(|e| err(&e))?;
        let truth = self
            .series
            .iter()
            .map(|s| (s.t_s, (s.low + s.high) as f64 / 2.0));
        chart
            .draw_series(LineSeries::new(truth, BLUE.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("ground truth (watching)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        let server = self
            .series
            .iter()
            .filter_map(|s| Some((s.t_s, s.server? as f64)));
        chart
            .draw_series(LineSeries::new(server, RED.stroke_width(1)))
            .map_err(|e| err(&e))?
            .label("server /stats concurrent_viewers")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        let viewers = self.series.iter().map(|s| (s.t_s, s.viewers.max(0) as f64));
        chart
            .draw_series(LineSeries::new(viewers, BLACK.mix(0.4)))
            .map_err(|e| err(&e))?
            .label("viewers present (incl. paused)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
        Ok(())
    }
}

/// A number without a useless fraction.
fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
