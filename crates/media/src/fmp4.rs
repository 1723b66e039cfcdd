//! Reading the fMP4 (CMAF) files ffmpeg wrote, with mp4-atom: the track timescale from the init
//! segment, and from each media segment its real duration (sum of the `trun` sample durations,
//! ISO/IEC 14496-12 §8.8.8) and where its first frame lies, for I-frame playlists.

use mp4_atom::{Atom, Decode, Moof, Moov};

use crate::{Error, Result};

/// What the init segment says about the (single) track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub timescale: u32,
    /// `trex` default sample duration, used when neither `tfhd` nor `trun` gives one.
    pub default_duration: u32,
    /// The codec string of the sample entry, where it is read from the stream rather than
    /// planned: AV1 ([`av1_codecs`]) and Opus (`opus`); `None` for the others.
    pub codecs: Option<String>,
}

/// The codecs parameter string of an AV1 stream, from its `av1C` box: "AV1 Codec ISO Media
/// File Format Binding" §5 (Codecs Parameter String), `av01.P.LLT.DD`: `seq_profile`,
/// `seq_level_idx_0` in two digits and `seq_tier_0` as `M` (Main) or `H` (High), and the bit
/// depth in two digits (8, 10 or 12 from `high_bitdepth` and `twelve_bit`). The optional
/// fields after the bit depth are left out: their defaults (4:2:0, BT.709, studio range) are
/// what every Monsoon rung is.
pub fn av1_codecs(av1c: &mp4_atom::Av1c) -> String {
    let depth = match (av1c.high_bitdepth, av1c.twelve_bit) {
        (true, true) => 12,
        (true, false) => 10,
        (false, _) => 8,
    };
    format!(
        "av01.{}.{:02}{}.{depth:02}",
        av1c.seq_profile,
        av1c.seq_level_idx_0,
        if av1c.seq_tier_0 { 'H' } else { 'M' }
    )
}

/// Checks an `av01.P.LLT.DD` codecs string (AV1-ISOBMFF §5): profile 0–2, level index 0–31,
/// tier `M` or `H`, bit depth 08, 10 or 12. Optional trailing fields are refused, as Monsoon
/// never writes them.
pub fn parse_av1_codecs(codecs: &str) -> Option<(u8, u8, char, u8)> {
    let mut parts = codecs.strip_prefix("av01.")?.split('.');
    let (profile, level_tier, depth) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || profile.len() != 1 || level_tier.len() != 3 || depth.len() != 2 {
        return None;
    }
    let profile: u8 = profile.parse().ok().filter(|p| *p <= 2)?;
    let level: u8 = level_tier[..2]
        .parse()
        .ok()
        .filter(|l| *l <= 31 && level_tier.as_bytes()[..2].iter().all(u8::is_ascii_digit))?;
    let tier = level_tier[2..]
        .chars()
        .next()
        .filter(|t| matches!(t, 'M' | 'H'))?;
    let depth: u8 = depth.parse().ok().filter(|d| matches!(d, 8 | 10 | 12))?;
    Some((profile, level, tier, depth))
}

/// What one media segment holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fragment {
    /// Sum of the sample durations, in seconds.
    pub duration_s: f64,
    /// Byte offset of the `moof` box.
    pub moof_offset: u64,
    /// Byte offset just past the first sample's data.
    pub first_sample_end: u64,
    /// The first sample is a sync sample (an IDR frame for H.264).
    pub starts_with_sync: bool,
    pub samples: u32,
}

/// `sample_is_non_sync_sample` in the sample flags (ISO/IEC 14496-12 §8.8.3.1).
const NON_SYNC: u32 = 0x0001_0000;

/// Top-level boxes of `bytes` as (type, offset, size).
fn boxes(bytes: &[u8]) -> Result<Vec<([u8; 4], usize, usize)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let kind = [bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]];
        let size = match size32 {
            0 => bytes.len() - at,
            1 if at + 16 <= bytes.len() => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[at + 8..at + 16]);
                usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX)
            }
            n => n as usize,
        };
        if size < 8 || at + size > bytes.len() {
            return Err(Error::Verify(format!(
                "box `{}` at byte {at} overruns the file",
                String::from_utf8_lossy(&kind)
            )));
        }
        out.push((kind, at, size));
        at += size;
    }
    Ok(out)
}

fn decode_box<T: Atom>(bytes: &[u8], what: &str) -> Result<(T, usize)> {
    let kind = T::KIND.as_ref();
    let (_, offset, size) = boxes(bytes)?
        .into_iter()
        .find(|(k, _, _)| k == kind)
        .ok_or_else(|| {
            Error::Verify(format!(
                "{what} has no `{}` box",
                String::from_utf8_lossy(kind)
            ))
        })?;
    let mut slice = &bytes[offset..offset + size];
    let atom = T::decode(&mut slice).map_err(|e| Error::Verify(format!("{what}: {e}")))?;
    Ok((atom, offset))
}

/// Reads the track of an init segment.
pub fn read_init(bytes: &[u8]) -> Result<Track> {
    let (moov, _) = decode_box::<Moov>(bytes, "init segment")?;
    let trak = moov
        .trak
        .first()
        .ok_or_else(|| Error::Verify("init segment has no track".into()))?;
    let default_duration = moov
        .mvex
        .as_ref()
        .and_then(|m| m.trex.first())
        .map_or(0, |t| t.default_sample_duration);
    let codecs = trak
        .mdia
        .minf
        .stbl
        .stsd
        .codecs
        .first()
        .and_then(|entry| match entry {
            mp4_atom::Codec::Av01(av01) => Some(av1_codecs(&av01.av1c)),
            mp4_atom::Codec::Opus(_) => Some("opus".to_owned()),
            _ => None,
        });
    Ok(Track {
        timescale: trak.mdia.mdhd.timescale,
        default_duration,
        codecs,
    })
}

/// Reads one media segment of `track`.
pub fn read_segment(bytes: &[u8], track: &Track) -> Result<Fragment> {
    let (moof, moof_offset) = decode_box::<Moof>(bytes, "media segment")?;
    let traf = moof
        .traf
        .first()
        .ok_or_else(|| Error::Verify("media segment has no track fragment".into()))?;
    let default_duration = traf
        .tfhd
        .default_sample_duration
        .unwrap_or(track.default_duration);
    let default_size = traf.tfhd.default_sample_size.unwrap_or(0);
    let default_flags = traf.tfhd.default_sample_flags.unwrap_or(0);
    let mut ticks: u64 = 0;
    let mut samples = 0;
    for trun in &traf.trun {
        for entry in &trun.entries {
            ticks += u64::from(entry.duration.unwrap_or(default_duration));
            samples += 1;
        }
    }
    let trun = traf
        .trun
        .first()
        .ok_or_else(|| Error::Verify("media segment has no samples".into()))?;
    let first = trun
        .entries
        .first()
        .ok_or_else(|| Error::Verify("media segment has no samples".into()))?;
    // With `default-base-is-moof` (CMAF), data_offset counts from the moof's first byte.
    let data_start = moof_offset as i64 + i64::from(trun.data_offset.unwrap_or(0));
    let first_sample_end = data_start + i64::from(first.size.unwrap_or(default_size));
    let flags = first.flags.unwrap_or(default_flags);
    Ok(Fragment {
        duration_s: ticks as f64 / f64::from(track.timescale.max(1)),
        moof_offset: moof_offset as u64,
        first_sample_end: u64::try_from(first_sample_end).unwrap_or(0),
        starts_with_sync: flags & NON_SYNC == 0,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrunning_boxes_are_errors() {
        let mut bytes = 100u32.to_be_bytes().to_vec();
        bytes.extend(b"moof");
        assert!(boxes(&bytes).is_err());
        assert!(
            read_segment(
                &bytes,
                &Track {
                    timescale: 1,
                    default_duration: 0,
                    codecs: None,
                }
            )
            .is_err()
        );
        assert!(read_init(b"").is_err());
    }

    #[test]
    fn av1_codecs_strings() {
        let mut av1c = mp4_atom::Av1c {
            seq_level_idx_0: 8,
            ..mp4_atom::Av1c::default()
        };
        assert_eq!(av1_codecs(&av1c), "av01.0.08M.08");
        av1c.high_bitdepth = true;
        av1c.seq_tier_0 = true;
        av1c.seq_level_idx_0 = 13;
        assert_eq!(av1_codecs(&av1c), "av01.0.13H.10");
        assert_eq!(parse_av1_codecs("av01.0.13H.10"), Some((0, 13, 'H', 10)));
        assert_eq!(parse_av1_codecs("av01.0.04M.08"), Some((0, 4, 'M', 8)));
        for bad in [
            "av01",
            "av01.0.04M",
            "av01.3.04M.08",
            "av01.0.32M.08",
            "av01.0.04X.08",
            "av01.0.04M.09",
            "av01.0.4M.08",
            "av01.0.+4M.08",
            "av01.0.04M.08.0",
            "avc1.64001f",
        ] {
            assert_eq!(parse_av1_codecs(bad), None, "{bad}");
        }
    }
}
