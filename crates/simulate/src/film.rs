//! The film as a player finds it: `GET /api/v1/films/<slug>` for the multivariant playlist's
//! path, then the multivariant and every media playlist (RFC 8216 §4.4), parsed once before
//! the run so each viewer only fetches the bytes and never spends CPU re-parsing them.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use hyper::{Method, StatusCode};
use m3u8_rs::{AlternativeMediaType, Playlist};
use serde::Deserialize;

use super::client::{Class, Conn, Http};

/// One media playlist and its segments.
#[derive(Debug, Clone)]
pub struct Track {
    pub playlist: String,
    pub init: Option<String>,
    pub segments: Vec<Segment>,
    /// Average bits per second (`AVERAGE-BANDWIDTH`, else `BANDWIDTH`) — what a modelled
    /// download of one of its segments weighs.
    pub bitrate: u64,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub path: String,
    pub ms: f64,
}

/// A video rendition of the ladder.
#[derive(Debug, Clone)]
pub struct Rung {
    pub track: Track,
    /// `BANDWIDTH` (peak), bits per second: what the ABR model compares with throughput.
    pub bandwidth: u64,
    pub height: u32,
    /// The audio rendition played with it (its `AUDIO` group's default).
    pub audio: Option<Arc<Track>>,
}

/// Everything the viewers need to know about the film.
#[derive(Debug, Clone)]
pub struct FilmPlan {
    pub slug: String,
    pub master: String,
    /// Rungs by increasing bandwidth.
    pub rungs: Vec<Rung>,
    /// Length of one pass over the segments, ms.
    pub length_ms: f64,
}

/// The ladder names audio groups by bitrate (`a48`, `a128`); anything else is taken as
/// 128 kbit/s. It only weighs modelled downloads.
fn group_bitrate(group: &str) -> u64 {
    group
        .strip_prefix('a')
        .and_then(|k| k.parse::<u64>().ok())
        .map_or(128_000, |k| k * 1000)
}

#[derive(Deserialize)]
struct FilmJson {
    hls_url: String,
}

/// Resolves `uri` against the playlist at `base` (RFC 8216 §4.1: relative to the playlist's
/// URI), giving a path on the origin.
pub fn resolve(base: &str, uri: &str) -> String {
    let uri = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => uri,
    };
    let joined = if uri.starts_with('/') {
        uri.to_owned()
    } else {
        let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{uri}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." | "" => {}
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

async fn get(http: &Http, conn: &Conn, path: &str) -> anyhow::Result<bytes::Bytes> {
    let reply = http
        .send(conn, Class::Playlist, Method::GET, path, None, true)
        .await
        .map_err(|e| anyhow::anyhow!("GET {path}: {e}"))?;
    if reply.status != StatusCode::OK {
        bail!("GET {path} answered {}", reply.status);
    }
    Ok(reply.body)
}

async fn track(http: &Http, conn: &Conn, path: String, bitrate: u64) -> anyhow::Result<Track> {
    let bytes = get(http, conn, &path).await?;
    let media = m3u8_rs::parse_media_playlist_res(&bytes)
        .map_err(|e| anyhow::anyhow!("{path} is not a media playlist: {e:?}"))?;
    let init = media
        .segments
        .iter()
        .find_map(|s| s.map.as_ref())
        .map(|m| resolve(&path, &m.uri));
    let segments: Vec<Segment> = media
        .segments
        .iter()
        .map(|s| Segment {
            path: resolve(&path, &s.uri),
            ms: f64::from(s.duration) * 1000.0,
        })
        .collect();
    if segments.is_empty() || segments.iter().any(|s| s.ms <= 0.0) {
        bail!("{path} has no segments, or one without a duration");
    }
    Ok(Track {
        playlist: path,
        init,
        segments,
        bitrate,
    })
}

impl FilmPlan {
    /// Finds and parses `slug`'s playlists on the server.
    pub async fn load(http: &Http, slug: &str) -> anyhow::Result<Self> {
        let conn = http.conn();
        let path = format!("/api/v1/films/{slug}");
        let reply = http
            .send(&conn, Class::Playlist, Method::GET, &path, None, true)
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the server: GET {path}: {e}"))?;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => bail!("the server has no film `{slug}` (GET {path}: 404)"),
            other => bail!("GET {path} answered {other}"),
        }
        let film: FilmJson =
            serde_json::from_slice(&reply.body).with_context(|| format!("reading GET {path}"))?;
        let master = resolve("/", &film.hls_url);
        let bytes = get(http, &conn, &master).await?;
        let Ok(Playlist::MasterPlaylist(parsed)) = m3u8_rs::parse_playlist_res(&bytes) else {
            bail!("{master} is not a multivariant playlist");
        };
        // Audio-only variants (a fallback for the weakest links) are not rungs of the video
        // ladder; each rung plays the default audio rendition of its group.
        let mut audio: BTreeMap<String, Arc<Track>> = BTreeMap::new();
        for a in &parsed.alternatives {
            if a.media_type != AlternativeMediaType::Audio || audio.contains_key(&a.group_id) {
                continue;
            }
            if let Some(uri) = &a.uri {
                let bitrate = group_bitrate(&a.group_id);
                let t = track(http, &conn, resolve(&master, uri), bitrate).await?;
                audio.insert(a.group_id.clone(), Arc::new(t));
            }
        }
        let mut rungs = Vec::new();
        for v in parsed
            .variants
            .iter()
            .filter(|v| !v.is_i_frame && v.resolution.is_some())
        {
            let bitrate = v.average_bandwidth.unwrap_or(v.bandwidth);
            rungs.push(Rung {
                track: track(http, &conn, resolve(&master, &v.uri), bitrate).await?,
                bandwidth: v.bandwidth,
                height: v.resolution.map_or(0, |r| r.height as u32),
                audio: v.audio.as_ref().and_then(|g| audio.get(g).cloned()),
            });
        }
        if rungs.is_empty() {
            bail!("{master} lists no video variant streams");
        }
        rungs.sort_by_key(|r| r.bandwidth);
        let length_ms = rungs[0].track.segments.iter().map(|s| s.ms).sum();
        Ok(FilmPlan {
            slug: slug.to_owned(),
            master,
            rungs,
            length_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn uris_resolve_against_the_playlist() {
        let base = "/media/film/v1/master.m3u8";
        assert_eq!(
            resolve(base, "720p/index.m3u8"),
            "/media/film/v1/720p/index.m3u8"
        );
        assert_eq!(resolve(base, "../x.m3u8"), "/media/film/x.m3u8");
        assert_eq!(resolve(base, "/abs/y.m4s"), "/abs/y.m4s");
        assert_eq!(resolve(base, "http://cdn:80/z/s.m4s"), "/z/s.m4s");
        assert_eq!(resolve("/", "/media/f/master.m3u8"), "/media/f/master.m3u8");
    }
}
