//! The object index of a published version: every file a viewer may fetch, with its size and a
//! strong entity tag derived from its content.
//!
//! It is written once, at publish time, as `objects.json` in the version directory, so every
//! origin node serving the same version gives the same `ETag` for the same bytes, across
//! restarts, without hashing anything per request. It is also the delivery path's allow-list:
//! a path that is not in the index is not served, whatever is on disk.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// File name of the index inside a version directory.
pub const OBJECT_INDEX: &str = "objects.json";

/// One servable file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub size: u64,
    /// Strong entity tag with its quotes, e.g. `"3f2a…"` (RFC 9110 §8.8.3).
    pub etag: String,
}

/// Every servable file of a version, by path relative to the version directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectIndex {
    pub objects: BTreeMap<String, ObjectInfo>,
}

impl ObjectIndex {
    /// Hashes every regular file under `dir` (except the index itself and hidden files).
    pub fn build(dir: &Path) -> Result<Self> {
        let mut index = ObjectIndex::default();
        index.add_dir(dir, "")?;
        Ok(index)
    }

    fn add_dir(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Io { path, source }
        };
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || (prefix.is_empty() && name == OBJECT_INDEX) {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            let key = format!("{prefix}{name}");
            // The server refuses an index with a key it could not serve safely: refuse the
            // file now, at ingest, rather than publish a version nobody can load.
            if !valid_key(&key) {
                return Err(Error::Backend(format!(
                    "{}: file name {key:?} is not one Monsoon publishes (ASCII letters, digits, `.`, `_`, `-`)",
                    path.display()
                )));
            }
            if kind.is_dir() {
                self.add_dir(&path, &format!("{key}/"))?;
            } else if kind.is_file() {
                let info = hash_file(&path).map_err(io(&path))?;
                self.objects.insert(key, info);
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&ObjectInfo> {
        self.objects.get(key)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Reads an index back, holding it to what [`ObjectIndex::build`] writes: it is the
    /// delivery path's allow-list and its tags go into response heads verbatim, so a key
    /// must stay inside the version directory ([`valid_key`]) and a tag must be a strong
    /// entity tag of visible ASCII ([`valid_etag`]) whatever the file says.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let bad = |message: String| Error::Backend(format!("{OBJECT_INDEX}: {message}"));
        let index: Self = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        for (key, info) in &index.objects {
            if !valid_key(key) {
                return Err(bad(format!(
                    "key {key:?} is not a relative path of names made of ASCII letters, digits, `.`, `_` and `-`"
                )));
            }
            if !valid_etag(&info.etag) {
                return Err(bad(format!(
                    "the entity tag of {key} ({:?}) is not a quoted strong tag of visible ASCII (RFC 9110 §8.8.3)",
                    info.etag
                )));
            }
        }
        Ok(index)
    }
}

/// Whether `key` names a file inside a version directory: `/`-separated names of ASCII
/// letters, digits, `.`, `_` and `-`, none empty, `.` or `..`, at most 255 bytes each and
/// 1024 in all. Every file Monsoon publishes has such a name.
pub fn valid_key(key: &str) -> bool {
    key.len() <= 1024
        && key.split('/').all(|name| {
            !name.is_empty()
                && name.len() <= 255
                && name != "."
                && name != ".."
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// Whether `etag` is a strong entity tag (RFC 9110 §8.8.3: `"` *etagc `"`) whose characters
/// are visible ASCII (`etagc` also allows obs-text, which no header writer here needs).
pub fn valid_etag(etag: &str) -> bool {
    etag.len() >= 2
        && etag.len() <= 130
        && etag.starts_with('"')
        && etag.ends_with('"')
        && etag[1..etag.len() - 1]
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b))
}

fn hash_file(path: &Path) -> std::io::Result<ObjectInfo> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    // 128 bits of SHA-256 are plenty to tell versions of one path apart.
    let digest = hasher.finalize();
    Ok(ObjectInfo {
        size,
        etag: format!("\"{}\"", hex::encode(&digest[..16])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_depend_on_content_only() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for dir in [a.path(), b.path()] {
            std::fs::create_dir_all(dir.join("v360")).unwrap();
            std::fs::write(dir.join("v360/seg_00000.m4s"), b"segment").unwrap();
            std::fs::write(dir.join("master.m3u8"), b"#EXTM3U\n").unwrap();
            std::fs::write(dir.join(".tmp"), b"ignored").unwrap();
        }
        std::fs::write(b.path().join("master.m3u8"), b"#EXTM3U\n#changed\n").unwrap();
        let (ia, ib) = (
            ObjectIndex::build(a.path()).unwrap(),
            ObjectIndex::build(b.path()).unwrap(),
        );
        assert_eq!(ia.objects.len(), 2);
        assert_eq!(ia.get("v360/seg_00000.m4s"), ib.get("v360/seg_00000.m4s"));
        assert_ne!(ia.get("master.m3u8"), ib.get("master.m3u8"));
        let seg = ia.get("v360/seg_00000.m4s").unwrap();
        assert_eq!(seg.size, 7);
        assert!(seg.etag.starts_with('"') && seg.etag.len() == 34);
        assert_eq!(ObjectIndex::from_json(&ia.to_json()).unwrap(), ia);
    }

    #[test]
    fn keys_stay_inside_the_version_and_tags_inside_the_header() {
        let index = |key: &str, etag: &str| {
            let json = serde_json::json!({"objects": {key: {"size": 1, "etag": etag}}});
            ObjectIndex::from_json(json.to_string().as_bytes())
        };
        assert!(index("v360/seg_00000.m4s", "\"0a1b\"").is_ok());
        assert!(index("thumbs/sprite_001.jpg", "\"x\"").is_ok());
        for key in [
            "../catalog.db",
            "/etc/passwd",
            "v360//a",
            "v360/./a",
            "a\\b",
            "a b",
            "a\0",
            "",
        ] {
            let err = index(key, "\"x\"").unwrap_err().to_string();
            assert!(err.contains("is not a relative path"), "{key:?}: {err}");
        }
        for etag in [
            "x",
            "\"",
            "W/\"x\"",
            "\"a\"b\"",
            "\"x\r\nset-cookie: a=b\"",
            "\"é\"",
        ] {
            let err = index("master.m3u8", etag).unwrap_err().to_string();
            assert!(
                err.contains("is not a quoted strong tag"),
                "{etag:?}: {err}"
            );
        }
    }
}
