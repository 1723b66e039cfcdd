//! The parsers the origin runs on bytes from the network, as pure functions, so fuzzing
//! (`fuzz/`, `crates/fuzzing`) and property tests can drive them without a server. Each calls
//! the code the server runs; nothing here is a copy of it.

use std::time::SystemTime;

use monsoon_catalog::ObjectInfo;

pub use axum::http::{HeaderMap, HeaderValue};

pub use crate::api::MintRequest;
pub use crate::delivery::Decision;
use crate::delivery::decide;
use crate::fast::{Headers, MAX_HEADERS, Reading, read_head};
pub use crate::upload::tus::{
    Checksum as UploadChecksum, MAX_FILENAME_BYTES, MAX_FILETYPE_BYTES, Metadata as UploadMetadata,
    encode_metadata as encode_upload_metadata, integer as tus_integer, metadata as upload_metadata,
};

/// An object as the delivery path knows it: its size, strong entity tag and publication time.
#[derive(Debug, Clone)]
pub struct Object {
    pub size: u64,
    /// With its quotes, e.g. `"3f2a"`.
    pub etag: String,
    pub last_modified: SystemTime,
}

/// What the media fast path makes of the bytes at the start of a connection's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// The head is not complete yet (the fast path reads more).
    Incomplete,
    /// Not a request the fast path answers (or not HTTP): hyper and the router get it.
    Handoff,
    /// A `GET` or `HEAD` of `/media/{slug}/{object}`.
    Media {
        method: &'static str,
        slug: String,
        object: String,
        /// The connection ends after the answer.
        close: bool,
        /// Bytes of the head, consumed once it is answered.
        len: usize,
        /// The answer for [`Object`] given the head's preconditions and range (RFC 9110 §13.2.2,
        /// §14): what both the fast path and the router decide.
        decision: Decision,
    },
}

/// Reads the request head at the start of `buf` as the fast path does (httparse, then its
/// rules) and decides the answer for `object` (its conditionals and range).
pub fn fast_path_head(buf: &[u8], object: &Object) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match read_head(buf, &mut headers, false) {
        Reading::Incomplete => Head::Incomplete,
        Reading::Defer => Head::Handoff,
        Reading::Media { head, headers, len } => {
            let info = ObjectInfo {
                size: object.size,
                etag: object.etag.clone(),
            };
            let decision = decide(
                &Headers(headers),
                head.is_get,
                &info,
                object.last_modified,
                &httpdate::fmt_http_date(object.last_modified),
            );
            Head::Media {
                method: head.method,
                slug: head.slug.to_owned(),
                object: head.object.to_owned(),
                close: head.close,
                len,
                decision,
            }
        }
    }
}
