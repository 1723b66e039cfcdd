//! The request headers of the tus 1.0.0 protocol (<https://tus.io/protocols/resumable-upload>),
//! parsed and bounded: pure functions, tested here without a server.

use axum::http::HeaderMap;
use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// The one protocol version spoken (tus 1.0.0 §"Tus-Resumable").
pub const VERSION: &str = "1.0.0";
/// The extensions implemented (tus 1.0.0 §"Protocol Extensions").
pub const EXTENSIONS: &str = "creation,expiration,checksum,termination";
/// The algorithms `Upload-Checksum` may name (checksum extension).
pub const CHECKSUM_ALGORITHMS: &str = "sha1,sha256";
/// The media type of a PATCH body (tus 1.0.0 §"PATCH").
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Longest `Upload-Metadata` header accepted, bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Most pairs in `Upload-Metadata`.
pub const MAX_METADATA_PAIRS: usize = 16;
/// Longest file name kept, bytes of UTF-8.
pub const MAX_FILENAME_BYTES: usize = 255;
/// Longest media type kept, bytes.
pub const MAX_FILETYPE_BYTES: usize = 127;

/// What the client said of the file at creation (the `Upload-Metadata` keys Monsoon reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The file's name on the operator's machine: shown, never used as a path.
    pub filename: String,
    pub filetype: String,
    /// What the file is for (`kind`: `master`, the default, `audio` or `subtitles`), which
    /// decides the check it must pass.
    pub kind: super::UploadKind,
    /// SHA-256 of the whole file, lowercase hex, checked when the last byte has arrived.
    pub sha256: Option<String>,
}

/// The value of header `name` as text, if present once and visible ASCII.
fn text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!("{name} is repeated; send it once"));
    }
    value
        .to_str()
        .map(|v| Some(v.trim()))
        .map_err(|_| format!("{name} is not visible ASCII"))
}

/// A non-negative decimal integer header (`Upload-Length`, `Upload-Offset`): digits only, no
/// sign, at most 19 of them (tus 1.0.0: "a non-negative integer").
pub fn integer(headers: &HeaderMap, name: &str) -> Result<Option<u64>, String> {
    let Some(value) = text(headers, name)? else {
        return Ok(None);
    };
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{name} = {value:?} is not a non-negative integer (digits only, at most 19)"
        ));
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("{name} = {value:?} is too large"))
}

/// Whether the request speaks tus 1.0.0: `Err` names the version it sent, for the 412 answer.
pub fn check_version(headers: &HeaderMap) -> Result<(), String> {
    match text(headers, "tus-resumable")? {
        Some(VERSION) => Ok(()),
        Some(other) => Err(format!(
            "Tus-Resumable {other:?} is not supported; this server speaks tus {VERSION}"
        )),
        None => Err(format!(
            "Tus-Resumable is missing; send Tus-Resumable: {VERSION}"
        )),
    }
}

/// Parses `Upload-Metadata` (tus 1.0.0 §"Upload-Metadata": comma-separated pairs of a key and
/// an optional base64 value), keeping `filename`, `filetype`, `sha256` and `kind`, bounded in
/// size.
/// Other keys (Uppy sends `name`, `type`, `relativePath`) are checked for form and ignored.
pub fn metadata(headers: &HeaderMap) -> Result<Metadata, String> {
    let mut out = Metadata::default();
    let Some(value) = text(headers, "upload-metadata")? else {
        return Ok(out);
    };
    if value.len() > MAX_METADATA_BYTES {
        return Err(format!(
            "Upload-Metadata has {} bytes; the limit is {MAX_METADATA_BYTES}",
            value.len()
        ));
    }
    let mut seen = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if seen.len() == MAX_METADATA_PAIRS {
            return Err(format!(
                "Upload-Metadata has more than {MAX_METADATA_PAIRS} pairs"
            ));
        }
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("Upload-Metadata key {key:?} is not a token"));
        }
        if seen.contains(&key) {
            return Err(format!("Upload-Metadata key {key:?} is repeated"));
        }
        seen.push(key);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("Upload-Metadata {key}: the value is not base64 ({e})"))?;
        let string = || {
            String::from_utf8(bytes.clone())
                .map_err(|_| format!("Upload-Metadata {key}: the value is not UTF-8"))
        };
        match key {
            "filename" => out.filename = filename(&string()?)?,
            "filetype" => {
                let t = string()?;
                if t.len() > MAX_FILETYPE_BYTES || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!(
                        "Upload-Metadata filetype {t:?} is not a media type (visible ASCII, at most {MAX_FILETYPE_BYTES} bytes)"
                    ));
                }
                out.filetype = t;
            }
            "sha256" => out.sha256 = Some(sha256_value(&bytes)?),
            "kind" => {
                out.kind = match string()?.as_str() {
                    "master" => super::UploadKind::Master,
                    "audio" => super::UploadKind::Audio,
                    "subtitles" => super::UploadKind::Subtitles,
                    other => {
                        return Err(format!(
                            "Upload-Metadata kind {other:?} is not master, audio or subtitles"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A file name to show: its last path component (browsers send none, other clients might),
/// at most [`MAX_FILENAME_BYTES`], no control characters.
fn filename(name: &str) -> Result<String, String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    if base.is_empty() || base.len() > MAX_FILENAME_BYTES || base.chars().any(char::is_control) {
        return Err(format!(
            "Upload-Metadata filename {name:?} is not a file name (1 to {MAX_FILENAME_BYTES} bytes, no control characters)"
        ));
    }
    Ok(base.to_owned())
}

/// The whole file's SHA-256 as the client wrote it: 64 hex digits, or the 32 bytes' standard
/// base64 (itself base64-encoded once more by `Upload-Metadata`).
fn sha256_value(bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).unwrap_or("").trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(text.to_ascii_lowercase());
    }
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(digest) if digest.len() == 32 => Ok(hex::encode(digest)),
        _ => Err(format!(
            "Upload-Metadata sha256 {text:?} is not a SHA-256 (64 hex digits, or 32 bytes in base64)"
        )),
    }
}

/// The digest a PATCH body must have (checksum extension, `Upload-Checksum: <algorithm>
/// <base64 digest>`), with the running hash of the bytes received.
#[derive(Debug, Clone)]
pub enum Checksum {
    Sha1 { expected: Vec<u8>, hasher: Sha1 },
    Sha256 { expected: Vec<u8>, hasher: Sha256 },
}

impl Checksum {
    /// `Upload-Checksum`, if sent. An algorithm not in [`CHECKSUM_ALGORITHMS`] is an error
    /// (the extension says 400).
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, String> {
        let Some(value) = text(headers, "upload-checksum")? else {
            return Ok(None);
        };
        let (algorithm, encoded) = value
            .split_once(' ')
            .ok_or_else(|| format!("Upload-Checksum {value:?} is not `<algorithm> <base64>`"))?;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("Upload-Checksum {value:?}: the digest is not base64 ({e})"))?;
        let (checksum, size) = match algorithm {
            "sha1" => (
                Checksum::Sha1 {
                    expected,
                    hasher: Sha1::new(),
                },
                20,
            ),
            "sha256" => (
                Checksum::Sha256 {
                    expected,
                    hasher: Sha256::new(),
                },
                32,
            ),
            other => {
                return Err(format!(
                    "Upload-Checksum algorithm {other:?} is not supported; use one of {CHECKSUM_ALGORITHMS}"
                ));
            }
        };
        if checksum.expected().len() != size {
            return Err(format!(
                "Upload-Checksum {value:?}: a {algorithm} digest has {size} bytes"
            ));
        }
        Ok(Some(checksum))
    }

    fn expected(&self) -> &[u8] {
        match self {
            Checksum::Sha1 { expected, .. } | Checksum::Sha256 { expected, .. } => expected,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Checksum::Sha1 { hasher, .. } => hasher.update(bytes),
            Checksum::Sha256 { hasher, .. } => hasher.update(bytes),
        }
    }

    /// Whether the bytes received have the expected digest.
    pub fn matches(self) -> bool {
        match self {
            Checksum::Sha1 { expected, hasher } => hasher.finalize().as_slice() == expected,
            Checksum::Sha256 { expected, hasher } => hasher.finalize().as_slice() == expected,
        }
    }
}

/// `Upload-Metadata` as the server echoes it in HEAD answers: the pairs it kept, re-encoded.
pub fn encode_metadata(meta: &Metadata) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut pairs = Vec::new();
    if !meta.filename.is_empty() {
        pairs.push(format!("filename {}", b64(&meta.filename)));
    }
    if !meta.filetype.is_empty() {
        pairs.push(format!("filetype {}", b64(&meta.filetype)));
    }
    if let Some(sha) = &meta.sha256 {
        pairs.push(format!("sha256 {}", b64(sha)));
    }
    pairs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn integers_are_digits_only() {
        for (value, want) in [("0", Ok(Some(0))), ("1234", Ok(Some(1234)))] {
            assert_eq!(
                integer(&headers(&[("upload-length", value)]), "upload-length"),
                want
            );
        }
        for bad in ["-1", "+1", "1.0", "", "0x10", "99999999999999999999", "1 2"] {
            let err = integer(&headers(&[("upload-length", bad)]), "upload-length").unwrap_err();
            assert!(err.contains("upload-length"), "{err}");
        }
        assert_eq!(integer(&HeaderMap::new(), "upload-offset"), Ok(None));
        let twice = headers(&[("upload-offset", "1"), ("upload-offset", "1")]);
        assert!(
            integer(&twice, "upload-offset")
                .unwrap_err()
                .contains("repeated")
        );
    }

    #[test]
    fn the_version_must_be_one_zero_zero() {
        assert_eq!(
            check_version(&headers(&[("tus-resumable", "1.0.0")])),
            Ok(())
        );
        let err = check_version(&headers(&[("tus-resumable", "0.2.2")])).unwrap_err();
        assert!(err.contains("\"0.2.2\"") && err.contains("1.0.0"), "{err}");
        assert!(
            check_version(&HeaderMap::new())
                .unwrap_err()
                .contains("missing")
        );
    }

    #[test]
    fn metadata_keeps_what_monsoon_reads_and_bounds_it() {
        let digest = Sha256::digest(b"film");
        let value = format!(
            "filename {},filetype {},sha256 {},relativePath,name {}",
            b64("Mưa tháng sáu.mov".as_bytes()),
            b64(b"video/quicktime"),
            b64(b64(&digest).as_bytes()),
            b64(b"x"),
        );
        let meta = metadata(&headers(&[("upload-metadata", &value)])).unwrap();
        assert_eq!(meta.filename, "Mưa tháng sáu.mov");
        assert_eq!(meta.filetype, "video/quicktime");
        assert_eq!(meta.sha256.as_deref(), Some(hex::encode(digest).as_str()));
        // Hex works too, and a path keeps only its last component.
        let value = format!(
            "filename {},sha256 {}",
            b64(b"C:\\masters\\film.mp4"),
            b64(hex::encode(digest).to_uppercase().as_bytes())
        );
        let meta = metadata(&headers(&[("upload-metadata", &value)])).unwrap();
        assert_eq!(meta.filename, "film.mp4");
        assert_eq!(meta.sha256.as_deref(), Some(hex::encode(digest).as_str()));
        assert_eq!(
            metadata(&headers(&[("upload-metadata", &encode_metadata(&meta))])),
            Ok(meta)
        );

        for (bad, says) in [
            (format!("filename {}", b64(b"a\nb")), "filename"),
            (format!("filename {}", b64(&[b'a'; 256])), "255"),
            (format!("filename {}", b64(b"../")), "filename"),
            ("filename %%%".to_owned(), "base64"),
            (format!("sha256 {}", b64(b"abc")), "SHA-256"),
            (format!("filetype {}", b64(b"video mp4")), "media type"),
            (format!("a {0},a {0}", b64(b"1")), "repeated"),
            ("x".repeat(MAX_METADATA_BYTES + 1), "4096"),
            (
                (0..17)
                    .map(|i| format!("k{i}"))
                    .collect::<Vec<_>>()
                    .join(","),
                "16",
            ),
        ] {
            let err = metadata(&headers(&[("upload-metadata", &bad)])).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn checksums_name_a_known_algorithm_and_a_digest_of_its_size() {
        let body = b"chunk of a master";
        let good = format!("sha256 {}", b64(&Sha256::digest(body)));
        let mut c = Checksum::from_headers(&headers(&[("upload-checksum", &good)]))
            .unwrap()
            .unwrap();
        c.update(&body[..5]);
        c.update(&body[5..]);
        assert!(c.matches());
        let sha1 = format!("sha1 {}", b64(&Sha1::digest(body)));
        let mut c = Checksum::from_headers(&headers(&[("upload-checksum", &sha1)]))
            .unwrap()
            .unwrap();
        c.update(b"another chunk");
        assert!(!c.matches());
        assert!(Checksum::from_headers(&HeaderMap::new()).unwrap().is_none());
        for (bad, says) in [
            (format!("md5 {}", b64(&[0; 16])), "not supported"),
            (format!("sha256 {}", b64(&[0; 20])), "32 bytes"),
            ("sha256".to_owned(), "<algorithm> <base64>"),
            ("sha1 ***".to_owned(), "base64"),
        ] {
            let err = Checksum::from_headers(&headers(&[("upload-checksum", &bad)])).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }
}
