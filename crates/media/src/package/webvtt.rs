//! WebVTT (W3C, "WebVTT: The Web Video Text Tracks Format"): the index of the seek-preview
//! sprite sheets, one cue per stretch of the film.

/// File name of the WebVTT index of the seek-preview sprites, inside
/// [`crate::transcode::THUMBNAILS_DIR`].
pub const THUMBNAILS_VTT: &str = "thumbs.vtt";

/// The WebVTT file mapping each stretch of the film to its tile in a sprite sheet
/// (`sprite_001.jpg#xywh=x,y,w,h`, the convention players use for seek previews).
pub fn thumbnails_vtt(t: &crate::ladder::Thumbnails, duration_s: f64) -> String {
    let per_sheet = t.columns * t.rows;
    let mut vtt = String::from("WEBVTT\n");
    for i in 0..t.count(duration_s) {
        let start = f64::from(i * t.interval_s);
        let end = (f64::from((i + 1) * t.interval_s)).min(duration_s);
        let sheet = i / per_sheet + 1;
        let slot = i % per_sheet;
        let (x, y) = ((slot % t.columns) * t.width, (slot / t.columns) * t.height);
        vtt.push_str(&format!(
            "\n{} --> {}\nsprite_{sheet:03}.jpg#xywh={x},{y},{},{}\n",
            vtt_time(start),
            vtt_time(end),
            t.width,
            t.height
        ));
    }
    vtt
}

/// `hh:mm:ss.mmm`, as WebVTT cue timings are written.
pub fn vtt_time(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtt_times() {
        assert_eq!(vtt_time(0.0), "00:00:00.000");
        assert_eq!(vtt_time(3723.456), "01:02:03.456");
    }
}
