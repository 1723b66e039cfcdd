//! One ffmpeg process per film: decode once, filter once, encode every rung.
//!
//! PeerTube starts one ffmpeg per resolution, decoding the master again for each. Here a
//! single `filter_complex` splits the decoded picture to one scaler per rung, and each rung is
//! its own HLS/fMP4 output of the same process, so the master is read and decoded exactly once.

use std::ffi::OsString;
use std::path::Path;

use crate::ffmpeg::file_arg;
use crate::ladder::{
    AV1_PRESET, AudioCodec, AudioRung, Codec, GOP_SECONDS, Ladder, SEGMENT_SECONDS,
};
use crate::probe::{ALLOWED_FORMATS, Source};

pub use monsoon_catalog::{INIT_SEGMENT, MEDIA_PLAYLIST, SEGMENT_PATTERN};
/// Directory of the seek-preview sprites and their WebVTT index.
pub const THUMBNAILS_DIR: &str = "thumbs";
/// `printf` pattern of sprite sheet file names (numbered from 1).
pub const SPRITE_PATTERN: &str = "sprite_%03d.jpg";
/// `printf` pattern of the single thumbnails the encode writes; tiled into sprites after it
/// ([`crate::ffmpeg::tile_thumbnails`]) and removed. Not tiled in the encode itself: ffmpeg 5.1
/// starts its `-progress` reports only once every output has begun, and a `tile` output
/// begins when its first sheet is full (100 thumbnails, 1,000 s of film), so the progress bar
/// stood still until then, and then reported the sheets' timestamps.
pub const THUMB_PATTERN: &str = "thumb_%05d.jpg";

/// Instance name of the filter that refuses a frame of another size than the probed one.
/// ffmpeg names the instance in its error (`[crop@frame_size_guard @ 0x…]`), which is how
/// [`crate::ffmpeg::FrameBreach`] tells this refusal from any other failure.
pub const SIZE_GUARD: &str = "crop@frame_size_guard";

/// The first filter of the graph: passes frames of the probed size untouched and fails the
/// run at the first frame of any other size.
///
/// ffprobe reads the stream's header, that is the first frame's size, and the limits are
/// checked on that; but an H.264 or HEVC stream may switch to a new sequence parameter set
/// at any keyframe, and ffmpeg then reconfigures its filters for the new size (its default
/// `-reinit_filter 1`), so a 320×240 master could turn 7680×7680 after a second.
/// Reconfiguration is where this filter fails: `crop` evaluates its size when configured, and
/// a size other than the probed one evaluates to minus the frame's, which crop refuses
/// ("Invalid too big or non positive size for width '-W' or height '-H'"), naming it.
/// `exact=1`, because without it crop rounds odd sizes down to the chroma grid.
///
/// The probed size is accepted either way up: ffmpeg's autorotate turns the picture a quarter
/// before the graph for a display matrix of 90° or 270°, and whether a legacy `rotate` tag
/// does so depends on the ffmpeg version; a frame turned a quarter has the pixels, and fits the
/// limits, of the one probed.
pub fn size_guard(source: &Source) -> String {
    let (w, h) = (source.video.coded_width, source.video.coded_height);
    let same = format!("eq(iw,{w})*eq(ih,{h})+eq(iw,{h})*eq(ih,{w})");
    format!("{SIZE_GUARD}=w='if({same},iw,-iw)':h='if({same},ih,-ih)':x=0:y=0:exact=1")
}

/// The decoder's `-max_pixels`: the probed frame, with room for the stride alignment the
/// check is made on (libavcodec's `ff_get_buffer` checks `FFALIGN(width, STRIDE_ALIGN)` ×
/// height, and `STRIDE_ALIGN` is at most 64). A decoder refuses to allocate a bigger frame, so
/// a stream that grows mid-way never costs more memory than its first frames, and ffmpeg says
/// so ("Picture size WxH exceeds specified max pixel count"), naming the size. The option is
/// an `int` in libavcodec.
pub fn max_pixels(source: &Source) -> u64 {
    let v = &source.video;
    let pixels =
        (u64::from(v.coded_width.next_multiple_of(64)) + 64) * (u64::from(v.coded_height) + 64);
    pixels.min(i32::MAX as u64)
}

/// The filters applied once, before the split: de-interlacing, HDR tone-mapping, constant
/// frame rate for variable-rate sources. Rotation is applied by ffmpeg's autorotate.
fn pre_filters(source: &Source) -> Vec<String> {
    let video = &source.video;
    let mut filters = Vec::new();
    if video.interlaced {
        filters.push("bwdif=mode=send_frame".to_owned());
    }
    if video.hdr {
        // PQ/HLG → linear light → BT.709 with Hable tone-mapping → 8-bit SDR.
        filters.push(
            "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,\
             tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv"
                .to_owned(),
        );
    }
    filters.push("format=yuv420p".to_owned());
    filters
}

/// Where each H.264 rung is scaled from: the smallest other H.264 rung at least twice its
/// height, or the source. Scaling 234p from 540p instead of from a 4K frame does a fraction of
/// the work, and a 2:1 or larger bicubic downscale loses nothing the smaller rung could show.
/// AV1 rungs have no scaler of their own (see [`twins`]); their entry is `None`.
fn scale_parents(ladder: &Ladder) -> Vec<Option<usize>> {
    let rungs = &ladder.rungs;
    rungs
        .iter()
        .map(|rung| {
            if rung.codec != Codec::H264 {
                return None;
            }
            rungs
                .iter()
                .enumerate()
                .filter(|(_, other)| other.codec == Codec::H264)
                .filter(|(_, other)| other.height >= rung.height * 2)
                .min_by_key(|(_, other)| other.height)
                .map(|(j, _)| j)
        })
        .collect()
}

/// For each rung, the other-codec rungs of the same picture (size and frame rate), which take
/// their frames from its scaler: one decode, one scale per picture, one encoder per codec.
fn twins(ladder: &Ladder) -> Vec<Vec<usize>> {
    let rungs = &ladder.rungs;
    rungs
        .iter()
        .map(|rung| {
            if rung.codec != Codec::H264 {
                return Vec::new();
            }
            rungs
                .iter()
                .enumerate()
                .filter(|(_, other)| {
                    other.codec != Codec::H264
                        && (other.width, other.height) == (rung.width, rung.height)
                        && other.frame_rate == rung.frame_rate
                })
                .map(|(j, _)| j)
                .collect()
        })
        .collect()
}

/// The `filter_complex` graph: decode once, normalise once (de-interlace, tone-map, 8-bit),
/// then a tree of scalers ending in one labelled output `[v<i>]` per rung and `[thumbs]`. The
/// scalers are the H.264 rungs'; an AV1 rung of the same picture is one more output of its
/// twin's `split`.
pub fn filter_graph(source: &Source, ladder: &Ladder) -> String {
    let parents = scale_parents(ladder);
    let twins = twins(ladder);
    let children = |parent: Option<usize>| -> Vec<usize> {
        (0..ladder.rungs.len())
            .filter(|&i| ladder.rungs[i].codec == Codec::H264 && parents[i] == parent)
            .collect()
    };

    // A node's output goes to its own encoder (rungs only), its children, and, for the
    // source, the thumbnail branch.
    let mut graph = format!(
        "[0:{}]{},{}",
        source.video.index,
        size_guard(source),
        pre_filters(source).join(",")
    );
    let from_source = children(None);
    graph.push_str(&format!(",split={}[thumbsrc]", from_source.len() + 1));
    for i in &from_source {
        graph.push_str(&format!("[in{i}]"));
    }
    let t = &ladder.thumbnails;
    graph.push_str(&format!(
        ";[thumbsrc]fps=1/{},scale={}:{},setsar=1,format=yuvj420p[thumbs]",
        t.interval_s, t.width, t.height
    ));
    for (i, rung) in ladder.rungs.iter().enumerate() {
        if rung.codec != Codec::H264 {
            continue;
        }
        let parent_fps = parents[i].map_or(source.video.fps, |p| ladder.rungs[p].frame_rate_f64());
        let keeps_rate = (rung.frame_rate_f64() - parent_fps).abs() < 0.001
            && !(parents[i].is_none() && source.video.variable_frame_rate);
        let fps = if keeps_rate {
            String::new()
        } else {
            format!("fps={},", rung.frame_rate)
        };
        graph.push_str(&format!(
            ";[in{i}]{fps}scale={}:{}:flags=bicubic,setsar=1",
            rung.width, rung.height
        ));
        let kids = children(Some(i));
        let outputs = 1 + twins[i].len() + kids.len();
        if outputs > 1 {
            graph.push_str(&format!(",split={outputs}"));
        }
        graph.push_str(&format!("[v{i}]"));
        for t in &twins[i] {
            graph.push_str(&format!("[v{t}]"));
        }
        for k in kids {
            graph.push_str(&format!("[in{k}]"));
        }
    }
    graph
}

/// The encoder options of rung `index` of `ladder`: codec, preset, profile, level, rate
/// control and GOP. `bench/ladder.sh` gives the same options to its peers (it reads them from
/// `monsoon ingest --json`), so every side of that comparison encodes alike.
pub fn video_encoder_args(ladder: &Ladder, index: usize) -> Vec<String> {
    let rung = &ladder.rungs[index];
    let fps = rung.frame_rate_f64().max(1.0);
    let keyint = (fps * GOP_SECONDS).round();
    if rung.codec == Codec::Av1 {
        return av1_encoder_args(ladder, index, keyint);
    }
    // One lookahead thread per encoder: with a rung per encoder in one process, more
    // threads only contend for the same cores (measured in bench/ladder.sh).
    let x264 = format!(
        "keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:nal-hrd=vbr:lookahead-threads=1"
    );
    let mut args: Vec<String> = [
        "-c:v",
        "libx264",
        "-preset",
        ladder.quality.x264_preset(),
        "-profile:v",
        "high",
        "-level:v",
        &format!("{}.{}", rung.level / 10, rung.level % 10),
        "-b:v",
        &rung.average_bitrate.to_string(),
        "-maxrate",
        &rung.max_bitrate.to_string(),
        "-bufsize",
        &rung.buffer_bits.to_string(),
        "-x264-params",
        &x264,
    ]
    .map(str::to_owned)
    .to_vec();
    // Key frames by time: an IDR at the first frame at or after each 2 s. Where 2 s is not a
    // whole number of frames (23.976 fps: 47.952), these fall a frame short of every
    // `keyint`th frame from the 21st GOP on. SVT-AV1 in ffmpeg 5.1 ignores forced key frames
    // (it places them every `-g` frames), so a ladder with AV1 keys both codecs by frame count
    // instead, every `keyint` frames, and the two ladders are cut at the same instants
    // (`verify` checks it). H.264 alone keeps the time rule.
    if !ladder.rungs.iter().any(|r| r.codec == Codec::Av1) {
        let at = args.len() - 2;
        args.splice(
            at..at,
            [
                "-force_key_frames".to_owned(),
                format!("expr:gte(t,n_forced*{GOP_SECONDS})"),
            ],
        );
    }
    args
}

/// SVT-AV1's options for AV1 rung `index`, as `BENCHMARKS.md` ("Codecs") measured them: 1-pass
/// VBR at the rung's average (SVT-AV1 1.4.1 refuses CBR with its random-access structure, and
/// its VBR does not hold `-maxrate`, so the manifests declare the measured peak, as for every
/// rendition), a key frame every `keyint` frames (2 s: every 6 s segment starts on one),
/// `irefresh-type=2` for key frames that close the GOP (a segment decodes on its own) and
/// `scd=0` for no key frame in between.
fn av1_encoder_args(ladder: &Ladder, index: usize, keyint: f64) -> Vec<String> {
    let rung = &ladder.rungs[index];
    [
        "-c:v",
        "libsvtav1",
        "-preset",
        &ladder.av1_preset.unwrap_or(AV1_PRESET).to_string(),
        "-g",
        &keyint.to_string(),
        "-b:v",
        &rung.average_bitrate.to_string(),
        "-maxrate",
        &rung.max_bitrate.to_string(),
        "-bufsize",
        &rung.buffer_bits.to_string(),
        "-svtav1-params",
        "irefresh-type=2:scd=0",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The ffmpeg arguments (after the global ones `run_ffmpeg` adds) that encode `ladder` from
/// `source` into `out_dir/<rendition>/`.
pub fn ffmpeg_args(source: &Source, ladder: &Ladder, out_dir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |parts: &[&str]| args.extend(parts.iter().map(OsString::from));
    // Fail rather than ship garbage when more than 1 % of the master's frames do not decode.
    push(&["-y", "-max_error_rate", "0.01"]);
    push(&["-protocol_whitelist", "file", "-format_whitelist"]);
    push(&[&ALLOWED_FORMATS.join(",")]);
    push(&["-max_pixels", &max_pixels(source).to_string()]);
    push(&["-i"]);
    args.push(file_arg(&source.path));

    args.extend([
        "-filter_complex".into(),
        filter_graph(source, ladder).into(),
    ]);

    for (i, rung) in ladder.rungs.iter().enumerate() {
        args.extend(["-map".into(), format!("[v{i}]").into()]);
        args.extend(
            video_encoder_args(ladder, i)
                .into_iter()
                .map(OsString::from),
        );
        args.extend(["-an", "-sn", "-dn"].map(OsString::from));
        args.extend(hls_output(out_dir, &rung.name));
    }
    args.extend(
        [
            "-map", "[thumbs]", "-c:v", "mjpeg", "-q:v", "5", "-f", "image2",
        ]
        .map(OsString::from),
    );
    args.push(out_dir.join(THUMBNAILS_DIR).join(THUMB_PATTERN).into());
    if let Some(audio) = &source.audio {
        for rung in &ladder.audio {
            args.extend(audio_encoder_args(rung, audio.index));
            args.extend(hls_output(out_dir, &rung.name));
        }
    }
    args
}

/// The encoder arguments of one audio rendition, `rung`, from stream `index` of input 0:
/// stereo, 48 kHz.
fn audio_encoder_args(rung: &AudioRung, index: u32) -> Vec<OsString> {
    let codec: &[&str] = match rung.codec {
        AudioCodec::Aac => &["-c:a", "aac"],
        // Constrained VBR with 60 ms frames: a third of 20 ms frames' per-sample fMP4
        // overhead (BENCHMARKS.md, "Codecs": 35 kbit/s in fMP4 for 32 asked, against 42
        // with libopus's defaults).
        AudioCodec::Opus => &[
            "-c:a",
            "libopus",
            "-vbr",
            "constrained",
            "-frame_duration",
            "60",
        ],
    };
    let mut args: Vec<OsString> = codec.iter().map(OsString::from).collect();
    args.extend(
        [
            "-map",
            &format!("0:{index}"),
            "-b:a",
            &rung.bitrate.to_string(),
            "-ac",
            "2",
            "-ar",
            "48000",
            "-vn",
            "-sn",
            "-dn",
        ]
        .map(OsString::from),
    );
    args
}

/// The ffmpeg arguments that encode the audio of `source` (an added language,
/// `crate::tracks`) as each of `rungs`, into `out_dir/<rung's name><suffix>/`: the same
/// codecs, bit rates and 6 s CMAF segments as the film's own audio renditions, so the new
/// language's segments start where theirs do.
pub fn audio_track_args(
    source: &crate::probe::AudioSource,
    rungs: &[AudioRung],
    suffix: &str,
    out_dir: &Path,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-y",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        &ALLOWED_FORMATS.join(","),
        "-i",
    ]
    .map(OsString::from)
    .to_vec();
    args.push(file_arg(&source.path));
    for rung in rungs {
        args.extend(audio_encoder_args(rung, source.audio.index));
        args.extend(hls_output(out_dir, &format!("{}{suffix}", rung.name)));
    }
    args
}

/// One CMAF rendition: fMP4 init segment plus 6 s media segments and a VOD media playlist.
fn hls_output(out_dir: &Path, name: &str) -> Vec<OsString> {
    let dir = out_dir.join(name);
    let mut args: Vec<OsString> = [
        "-f",
        "hls",
        "-hls_time",
        &SEGMENT_SECONDS.to_string(),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_fmp4_init_filename",
        INIT_SEGMENT,
        "-hls_flags",
        "independent_segments",
        "-hls_segment_filename",
    ]
    .map(OsString::from)
    .to_vec();
    args.push(dir.join(SEGMENT_PATTERN).into());
    args.push(dir.join(MEDIA_PLAYLIST).into());
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::{LadderOptions, plan};
    use crate::probe::{AudioInfo, VideoInfo};

    #[test]
    fn rungs_are_scaled_from_a_rung_twice_their_size() {
        let mut source = crate::ladder::tests_support::source(3840, 2160, 25.0);
        source.audio = None;
        let ladder = plan(&source, &LadderOptions::default());
        let heights: Vec<u32> = ladder.rungs.iter().map(|r| r.height).collect();
        let parents: Vec<Option<u32>> = scale_parents(&ladder)
            .iter()
            .map(|p| p.map(|j| heights[j]))
            .collect();
        // 234←540, 360←720, 432←1080, 540←1080, 720←1440, 1080←2160, 1440←src, 2160←src
        assert_eq!(
            parents,
            [
                Some(540),
                Some(720),
                Some(1080),
                Some(1080),
                Some(1440),
                Some(2160),
                None,
                None
            ]
        );
        let graph = filter_graph(&source, &ladder);
        assert_eq!(
            graph.matches("]fps=").count(),
            1,
            "only the thumbnails change rate: {graph}"
        );
    }

    #[test]
    fn av1_rungs_share_the_h264_scalers() {
        let source = crate::ladder::tests_support::source(1920, 1080, 25.0);
        let options = LadderOptions {
            codecs: vec![crate::ladder::Codec::H264, crate::ladder::Codec::Av1],
            av1_preset: Some(13),
            ..LadderOptions::default()
        };
        let ladder = plan(&source, &options);
        let h264_only = plan(&source, &LadderOptions::default());
        let graph = filter_graph(&source, &ladder);
        // The same scalers as the H.264 ladder alone: no picture is scaled twice.
        assert_eq!(
            graph.matches("scale=").count(),
            filter_graph(&source, &h264_only).matches("scale=").count(),
            "{graph}"
        );
        for (i, rung) in ladder.rungs.iter().enumerate() {
            assert_eq!(graph.matches(&format!("[v{i}]")).count(), 1, "{graph}");
            let args = video_encoder_args(&ladder, i);
            let encoder = &args[args.iter().position(|a| a == "-c:v").unwrap() + 1];
            if rung.codec == crate::ladder::Codec::Av1 {
                assert_eq!(encoder, "libsvtav1");
                let at = |flag: &str| &args[args.iter().position(|a| a == flag).unwrap() + 1];
                assert_eq!(at("-g"), "50");
                assert_eq!(at("-preset"), "13");
                assert_eq!(at("-b:v"), &rung.average_bitrate.to_string());
                assert_eq!(at("-svtav1-params"), "irefresh-type=2:scd=0");
            } else {
                assert_eq!(encoder, "libx264");
                // Keyed by frame count, as SVT-AV1 is (see video_encoder_args).
                assert!(!args.contains(&"-force_key_frames".to_owned()), "{args:?}");
            }
        }
        let args: Vec<String> = ffmpeg_args(&source, &ladder, Path::new("/out"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args.iter().filter(|a| *a == "-i").count(), 1);
        assert!(args.contains(&"/out/v1080-av1/index.m3u8".to_owned()));
        assert!(args.contains(&"/out/o32/index.m3u8".to_owned()));
        assert!(args.contains(&"libopus".to_owned()));
    }

    #[test]
    fn the_size_guard_takes_the_probed_size_either_way_up() {
        let mut source = crate::ladder::tests_support::source(1280, 720, 25.0);
        // A phone's portrait video: coded landscape, turned upright by autorotate first.
        source.video.rotation = 90;
        let same = "eq(iw,1280)*eq(ih,720)+eq(iw,720)*eq(ih,1280)";
        assert_eq!(
            size_guard(&source),
            format!(
                "crop@frame_size_guard=w='if({same},iw,-iw)':h='if({same},ih,-ih)':x=0:y=0:exact=1"
            )
        );
        // Decoders see the coded picture, whatever the rotation.
        assert_eq!(max_pixels(&source), (1280 + 64) * (720 + 64));
    }

    #[test]
    fn one_input_one_split_every_rung_an_output() {
        let source = Source {
            path: "-weird name.mov".into(),
            format: "mov".into(),
            duration_s: 10.0,
            size_bytes: 1,
            video: VideoInfo {
                index: 0,
                codec: "h264".into(),
                coded_width: 1920,
                coded_height: 1080,
                display_width: 1920,
                display_height: 1080,
                fps: 25.0,
                variable_frame_rate: false,
                interlaced: true,
                rotation: 0,
                bit_depth: 8,
                hdr: false,
            },
            audio: Some(AudioInfo {
                index: 1,
                codec: "aac".into(),
                channels: 6,
                sample_rate: 22_050,
            }),
        };
        let ladder = plan(&source, &LadderOptions::default());
        let args: Vec<String> = ffmpeg_args(&source, &ladder, Path::new("/out"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args.iter().filter(|a| *a == "-i").count(), 1);
        assert!(args.contains(&"file:-weird name.mov".to_owned()));
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(
            graph.starts_with(
                "[0:0]crop@frame_size_guard=\
                 w='if(eq(iw,1920)*eq(ih,1080)+eq(iw,1080)*eq(ih,1920),iw,-iw)':\
                 h='if(eq(iw,1920)*eq(ih,1080)+eq(iw,1080)*eq(ih,1920),ih,-ih)':x=0:y=0:exact=1,bwdif"
            ),
            "{graph}"
        );
        let max_pixels = &args[args.iter().position(|a| a == "-max_pixels").unwrap() + 1];
        assert_eq!(max_pixels, &(1984 * 1144).to_string());
        assert!(args.iter().position(|a| a == "-max_pixels") < args.iter().position(|a| a == "-i"));
        assert!(graph.contains("format=yuvj420p[thumbs]"), "{graph}");
        assert!(!graph.contains("tile="), "tiled in the encode: {graph}");
        // Every rung has exactly one output, and every scaler input is fed exactly once.
        for i in 0..ladder.rungs.len() {
            assert_eq!(graph.matches(&format!("[v{i}]")).count(), 1, "{graph}");
            assert_eq!(graph.matches(&format!("[in{i}]")).count(), 2, "{graph}");
        }
        let outputs = args.iter().filter(|a| a.ends_with("/index.m3u8")).count();
        assert_eq!(outputs, ladder.rungs.len() + ladder.audio.len());
        assert!(args.contains(&"/out/v1080/index.m3u8".to_owned()));
        assert!(args.contains(&"/out/a48/index.m3u8".to_owned()));
        // H.264 alone: key frames by time, as always.
        let at = args.iter().position(|a| a == "-force_key_frames").unwrap();
        assert_eq!(args[at + 1], "expr:gte(t,n_forced*2)");
        assert_eq!(args[at + 2], "-x264-params");
    }
}
