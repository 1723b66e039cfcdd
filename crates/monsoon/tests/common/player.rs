//! A simulated player of the audience tests: mints a session (solving its proof of work) and
//! sends heartbeats with cumulative counters, remembering what the server acknowledged.

use serde_json::{Value, json};

use super::Server;

/// One simulated player.
pub struct Viewer {
    pub session: String,
    pub token: String,
    pub viewer: String,
    /// The session's proof of work, as a player finds it (`proof_bits` of the mint).
    pub proof: String,
    pub seq: u64,
    pub play_ms: u64,
    /// The last beat the server acknowledged (204).
    pub acked_play_ms: u64,
    /// The `codec` its beats name, if any.
    pub codec: Option<&'static str>,
}

pub fn post(url: &str, body: &Value) -> (u16, String) {
    match ureq::post(url)
        .content_type("text/plain")
        .send(body.to_string())
    {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(ureq::Error::StatusCode(code)) => (code, String::new()),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// Mints a session of `film` at `base` (a node, or the balancer in front of the nodes).
pub fn mint_at(base: &str, viewer: Option<&str>) -> Viewer {
    let body = viewer.map_or(json!({}), |v| json!({ "viewer_id": v }));
    let (status, text) = post(&format!("{base}/api/v1/films/film/sessions"), &body);
    assert_eq!(status, 201, "{text}");
    let minted: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(minted["heartbeat_interval_s"], 10);
    let session: String = minted["session_id"].as_str().unwrap().into();
    let bits = minted["proof_bits"].as_u64().unwrap() as u32;
    Viewer {
        proof: monsoon_audience::proof::solve(&session, bits),
        session,
        token: minted["token"].as_str().unwrap().into(),
        viewer: minted["viewer_id"].as_str().unwrap().into(),
        seq: 0,
        play_ms: 0,
        acked_play_ms: 0,
        codec: None,
    }
}

/// Sends `v`'s next beat to `base` (a node, or the balancer in front of the nodes); `played`
/// ms of playing since the last one.
pub fn beat_at(base: &str, v: &mut Viewer, state: &str, played: u64) -> u16 {
    v.seq += 1;
    v.play_ms += played;
    let mut body = json!({
        "token": v.token, "proof": v.proof, "seq": v.seq, "state": state, "play_ms": v.play_ms,
        "rebuffer_ms": 0, "rebuffer_count": 0, "startup_ms": 600, "seek_ms": 0,
        "playhead_ms": v.play_ms, "height": 180, "bitrate_kbps": 110, "bytes": 0,
        "dropped_frames": 0, "fatal_error": false
    });
    if let Some(codec) = v.codec {
        body["codec"] = json!(codec);
    }
    let (status, _) = post(
        &format!("{base}/api/v1/sessions/{}/heartbeat", v.session),
        &body,
    );
    if status == 204 {
        v.acked_play_ms = v.play_ms;
    }
    status
}

/// Mints a session of `film` on `server`.
pub fn mint(server: &Server, viewer: Option<&str>) -> Viewer {
    mint_at(&server.url, viewer)
}

/// Sends `v`'s next beat to `server`; `played` ms of playing since the last one.
pub fn beat(server: &Server, v: &mut Viewer, state: &str, played: u64) -> u16 {
    beat_at(&server.url, v, state, played)
}
