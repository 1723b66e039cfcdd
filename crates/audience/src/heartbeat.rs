//! The heartbeat as players send it, and the bounds every field must keep.
//!
//! A heartbeat comes from outside, so nothing in it is trusted until [`Heartbeat::validate`]
//! has held each field to what a player can report. The bounds keep every figure built from
//! the fields finite (sums over a day of sessions stay far below `u64::MAX`), and every field
//! storable as a signed 64-bit integer: one beat with a counter above `i64::MAX` used to make
//! the whole batch of the group commit fail, honest beats with it.

use serde::{Deserialize, Serialize};

use crate::Error;

/// The video codec family a player decodes, as a heartbeat names it: `h264` (RFC 6381 `avc1`)
/// or `av1` (`av01`, the AV1 ISO-BMFF binding). A player plays one family at a time (it
/// does not switch families mid-stream), so a session reports one at each beat.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    H264,
    Av1,
}

impl Codec {
    pub const ALL: [Codec; 2] = [Codec::H264, Codec::Av1];

    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Av1 => "av1",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// The kind of link a player is on, as the browser estimates it: the Network Information
/// API's `effectiveType` (WICG Network Information, §"EffectiveConnectionType"), one of
/// `slow-2g`, `2g`, `3g`, `4g` — measured round-trip time and throughput, not the radio.
/// Browsers without the API (Safari, Firefox) say nothing and the heartbeat leaves it out.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Network {
    #[serde(rename = "slow-2g")]
    Slow2g,
    #[serde(rename = "2g")]
    G2,
    #[serde(rename = "3g")]
    G3,
    #[serde(rename = "4g")]
    G4,
}

impl Network {
    pub const ALL: [Network; 4] = [Network::Slow2g, Network::G2, Network::G3, Network::G4];

    /// The name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Slow2g => "slow-2g",
            Network::G2 => "2g",
            Network::G3 => "3g",
            Network::G4 => "4g",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == name)
    }
}

/// The player's state in a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlayerState {
    Startup,
    Playing,
    Paused,
    Seeking,
    Rebuffering,
    Ended,
    Error,
}

impl PlayerState {
    pub const ALL: [PlayerState; 7] = [
        PlayerState::Startup,
        PlayerState::Playing,
        PlayerState::Paused,
        PlayerState::Seeking,
        PlayerState::Rebuffering,
        PlayerState::Ended,
        PlayerState::Error,
    ];

    /// The name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            PlayerState::Startup => "startup",
            PlayerState::Playing => "playing",
            PlayerState::Paused => "paused",
            PlayerState::Seeking => "seeking",
            PlayerState::Rebuffering => "rebuffering",
            PlayerState::Ended => "ended",
            PlayerState::Error => "error",
        }
    }

    /// The state named `name` (see [`PlayerState::as_str`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Startup, playing, seeking or rebuffering: a viewer in front of the film (Mux's
    /// definition of a concurrent viewer excludes paused).
    pub fn is_watching(self) -> bool {
        matches!(
            self,
            PlayerState::Startup
                | PlayerState::Playing
                | PlayerState::Seeking
                | PlayerState::Rebuffering
        )
    }

    /// Ended or failed: the session takes no more beats.
    pub fn is_terminal(self) -> bool {
        matches!(self, PlayerState::Ended | PlayerState::Error)
    }
}

/// A heartbeat as the player sends it (the wire contract of the audience issue). Counters are
/// cumulative since the session started, so a lost beat loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The session token, unless sent as `Authorization: Bearer`.
    #[serde(default)]
    pub token: Option<String>,
    /// The proof of work for this session (see `proof_bits` in the mint answer). Needed on
    /// the first beat a server accepts; ignored after.
    #[serde(default)]
    pub proof: Option<String>,
    pub seq: u64,
    pub state: PlayerState,
    pub play_ms: u64,
    #[serde(default)]
    pub rebuffer_ms: u64,
    #[serde(default)]
    pub rebuffer_count: u64,
    #[serde(default)]
    pub startup_ms: u64,
    #[serde(default)]
    pub seek_ms: u64,
    #[serde(default)]
    pub playhead_ms: u64,
    #[serde(default)]
    pub height: u32,
    #[serde(default)]
    pub bitrate_kbps: u32,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub dropped_frames: u64,
    #[serde(default)]
    pub fatal_error: bool,
    /// The video codec being played: `h264` or `av1` (absent: not said, as from players
    /// older than the AV1 ladder). Any other value is refused, naming the field.
    #[serde(default)]
    pub codec: Option<String>,
    /// The link the player is on ([`Network`]): `slow-2g`, `2g`, `3g` or `4g` (absent: the
    /// browser does not say). Any other value is refused, naming the field.
    #[serde(default)]
    pub network: Option<String>,
}

/// The largest value of each field a player can report, and why. `docs/SECURITY.md` lists
/// them for client writers.
pub mod limits {
    /// `seq`: the largest integer a JavaScript number holds exactly (2^53 − 1).
    pub const SEQ: u64 = (1 << 53) - 1;
    /// Time counters (`play_ms`, `rebuffer_ms`, `seek_ms`, `playhead_ms`): a week. A session
    /// token lives 12 hours by default; no session can account for more time than this.
    pub const TIME_MS: u64 = 7 * 24 * 3_600_000;
    /// `startup_ms`: ten minutes. A player that waited longer has given up.
    pub const STARTUP_MS: u64 = 10 * 60_000;
    /// `rebuffer_count`: one stall a second for a week.
    pub const REBUFFER_COUNT: u64 = 7 * 24 * 3_600;
    /// `height`: 8K's 4320 lines, doubled for portrait video.
    pub const HEIGHT: u32 = 8_640;
    /// `bitrate_kbps`: 1 Gbit/s, far above any rung.
    pub const BITRATE_KBPS: u32 = 1_000_000;
    /// `bytes`: 1 Gbit/s for a week.
    pub const BYTES: u64 = 125_000_000 * 7 * 24 * 3_600;
    /// `dropped_frames`: 240 frames a second for a week.
    pub const DROPPED_FRAMES: u64 = 240 * 7 * 24 * 3_600;
}

fn bound(field: &'static str, value: u64, max: u64) -> Result<(), Error> {
    if value > max {
        return Err(Error::Invalid(format!(
            "heartbeat field `{field}` is {value}, above its limit of {max}"
        )));
    }
    Ok(())
}

impl Heartbeat {
    /// Holds every field to the bounds of [`limits`]; the error names the field, its value and
    /// the limit. Nothing of a beat is applied or stored before this passed.
    pub fn validate(&self) -> Result<(), Error> {
        use limits::*;
        bound("seq", self.seq, SEQ)?;
        bound("play_ms", self.play_ms, TIME_MS)?;
        bound("rebuffer_ms", self.rebuffer_ms, TIME_MS)?;
        bound("seek_ms", self.seek_ms, TIME_MS)?;
        bound("playhead_ms", self.playhead_ms, TIME_MS)?;
        bound("startup_ms", self.startup_ms, STARTUP_MS)?;
        bound("rebuffer_count", self.rebuffer_count, REBUFFER_COUNT)?;
        bound("height", self.height.into(), HEIGHT.into())?;
        bound(
            "bitrate_kbps",
            self.bitrate_kbps.into(),
            BITRATE_KBPS.into(),
        )?;
        bound("bytes", self.bytes, BYTES)?;
        bound("dropped_frames", self.dropped_frames, DROPPED_FRAMES)?;
        if let Some(codec) = &self.codec
            && Codec::from_name(codec).is_none()
        {
            // Named by length, not echoed: the value comes from outside.
            return Err(Error::Invalid(format!(
                "heartbeat field `codec` ({} bytes) is not one of `h264`, `av1`",
                codec.len()
            )));
        }
        if let Some(network) = &self.network
            && Network::from_name(network).is_none()
        {
            return Err(Error::Invalid(format!(
                "heartbeat field `network` ({} bytes) is not one of `slow-2g`, `2g`, `3g`, `4g`",
                network.len()
            )));
        }
        if let Some(proof) = &self.proof {
            bound(
                "proof (length)",
                proof.len() as u64,
                crate::proof::MAX_PROOF_LEN as u64,
            )?;
        }
        Ok(())
    }
}

/// The cumulative counters of a heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub play_ms: u64,
    pub rebuffer_ms: u64,
    pub rebuffer_count: u64,
    pub startup_ms: u64,
    pub seek_ms: u64,
    pub playhead_ms: u64,
    pub height: u32,
    pub bitrate_kbps: u32,
    pub bytes: u64,
    pub dropped_frames: u64,
    pub fatal_error: bool,
    /// The codec of the beat (`None`: not said).
    #[serde(default)]
    pub codec: Option<Codec>,
    /// The link of the beat (`None`: not said).
    #[serde(default)]
    pub network: Option<Network>,
}

impl From<&Heartbeat> for Counters {
    fn from(b: &Heartbeat) -> Self {
        Counters {
            play_ms: b.play_ms,
            rebuffer_ms: b.rebuffer_ms,
            rebuffer_count: b.rebuffer_count,
            startup_ms: b.startup_ms,
            seek_ms: b.seek_ms,
            playhead_ms: b.playhead_ms,
            height: b.height,
            bitrate_kbps: b.bitrate_kbps,
            bytes: b.bytes,
            dropped_frames: b.dropped_frames,
            fatal_error: b.fatal_error,
            // Validated before: an unknown name never gets here.
            codec: b.codec.as_deref().and_then(Codec::from_name),
            network: b.network.as_deref().and_then(Network::from_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_are_the_wire_names() {
        for state in PlayerState::ALL {
            let wire = serde_json::to_string(&state).unwrap();
            assert_eq!(wire, format!("\"{}\"", state.as_str()));
            assert_eq!(PlayerState::from_name(state.as_str()), Some(state));
        }
        assert_eq!(PlayerState::from_name("dancing"), None);
        for codec in Codec::ALL {
            let wire = serde_json::to_string(&codec).unwrap();
            assert_eq!(wire, format!("\"{}\"", codec.as_str()));
            assert_eq!(Codec::from_name(codec.as_str()), Some(codec));
        }
    }

    #[test]
    fn a_codec_is_h264_or_av1_and_anything_else_is_refused_naming_the_field() {
        for (body, codec) in [
            (
                r#"{"seq":1,"state":"playing","play_ms":1,"codec":"av1"}"#,
                Some(Codec::Av1),
            ),
            (
                r#"{"seq":1,"state":"playing","play_ms":1,"codec":"h264"}"#,
                Some(Codec::H264),
            ),
            (r#"{"seq":1,"state":"playing","play_ms":1}"#, None),
        ] {
            let beat: Heartbeat = serde_json::from_str(body).unwrap();
            beat.validate().unwrap();
            assert_eq!(Counters::from(&beat).codec, codec);
        }
        for bad in ["vp9", "AV1", "", "av01.0.00M.08"] {
            let beat = Heartbeat {
                codec: Some(bad.into()),
                ..serde_json::from_str(r#"{"seq":1,"state":"playing","play_ms":1}"#).unwrap()
            };
            let message = beat.validate().unwrap_err().to_string();
            assert!(message.contains("`codec`"), "{message}");
        }
    }

    #[test]
    fn a_network_is_one_of_the_effective_types_and_anything_else_is_refused_naming_the_field() {
        for network in Network::ALL {
            let wire = serde_json::to_string(&network).unwrap();
            assert_eq!(wire, format!("\"{}\"", network.as_str()));
            let body = format!(
                r#"{{"seq":1,"state":"playing","play_ms":1,"network":"{}"}}"#,
                network.as_str()
            );
            let beat: Heartbeat = serde_json::from_str(&body).unwrap();
            beat.validate().unwrap();
            assert_eq!(Counters::from(&beat).network, Some(network));
        }
        let none: Heartbeat =
            serde_json::from_str(r#"{"seq":1,"state":"playing","play_ms":1}"#).unwrap();
        assert_eq!(Counters::from(&none).network, None);
        for bad in ["5g", "wifi", "4G", "", "slow_2g", &"4g".repeat(1000)] {
            let beat = Heartbeat {
                network: Some(bad.to_owned()),
                ..none.clone()
            };
            let message = beat.validate().unwrap_err().to_string();
            assert!(message.contains("`network`"), "{message}");
            assert!(
                !message.contains("wifi"),
                "the value is not echoed: {message}"
            );
        }
    }

    #[test]
    fn every_field_is_bounded_and_the_error_names_it() {
        let ok: Heartbeat =
            serde_json::from_str(r#"{"seq":1,"state":"playing","play_ms":1000}"#).unwrap();
        assert!(ok.validate().is_ok());
        let cases: [(&str, Heartbeat); 5] = [
            (
                "seq",
                Heartbeat {
                    seq: u64::MAX,
                    ..ok.clone()
                },
            ),
            (
                "play_ms",
                Heartbeat {
                    play_ms: limits::TIME_MS + 1,
                    ..ok.clone()
                },
            ),
            (
                "startup_ms",
                Heartbeat {
                    startup_ms: 3_600_000,
                    ..ok.clone()
                },
            ),
            (
                "height",
                Heartbeat {
                    height: u32::MAX,
                    ..ok.clone()
                },
            ),
            (
                "bytes",
                Heartbeat {
                    bytes: i64::MAX as u64 + 1,
                    ..ok.clone()
                },
            ),
        ];
        for (field, beat) in cases {
            let message = beat.validate().unwrap_err().to_string();
            assert!(message.contains(&format!("`{field}`")), "{message}");
            assert!(message.contains("limit"), "{message}");
        }
    }

    #[test]
    fn every_bound_fits_a_signed_64_bit_column_and_sums_cannot_overflow() {
        use limits::*;
        for max in [
            SEQ,
            TIME_MS,
            STARTUP_MS,
            REBUFFER_COUNT,
            BYTES,
            DROPPED_FRAMES,
        ] {
            assert!(max <= i64::MAX as u64, "{max}");
        }
        // The figures sum time counters over sessions: ten million sessions at the limit.
        assert!(TIME_MS.checked_mul(10_000_000).is_some());
    }
}
