//! `/admin/api/uploads`: resumable upload of a master with the tus 1.0.0 protocol
//! (<https://tus.io/protocols/resumable-upload>: core, and the creation, expiration, checksum
//! and termination extensions), behind the admin sign-in like every `/admin/api` route.
//!
//! | method | path | answer |
//! |---|---|---|
//! | OPTIONS | `/admin/api/uploads` | 204: `Tus-Version`, `Tus-Extension`, `Tus-Max-Size`, `Tus-Checksum-Algorithm` |
//! | POST | `/admin/api/uploads` | 201 and `Location` (creation; `Upload-Length` required, `Upload-Metadata`: `filename`, `filetype`, `sha256`) |
//! | GET | `/admin/api/uploads` | `{"now", "uploads": […]}`: every upload, newest first, with offset, speed and state |
//! | HEAD | `/admin/api/uploads/{id}` | 200: `Upload-Offset`, `Upload-Length`, `Upload-Metadata`, `Upload-Expires`, `Monsoon-Upload-State` |
//! | PATCH | `/admin/api/uploads/{id}` | 204 and the new `Upload-Offset` (`application/offset+octet-stream`, `Upload-Offset` = the server's, optional `Upload-Checksum`) |
//! | DELETE | `/admin/api/uploads/{id}` | 204 (termination) |
//! | GET | `/admin/api/uploads/{id}` | the upload as in the listing (not part of tus) |
//!
//! Refusals: 412 for a `Tus-Resumable` other than 1.0.0 (with `Tus-Version`), 415 for a PATCH
//! of another media type, 409 for an `Upload-Offset` that is not the server's, 460 for a body
//! that does not have its `Upload-Checksum` (the chunk is discarded), 423 Locked for a PATCH
//! or DELETE while another PATCH writes the upload (two writers would interleave bytes at one
//! offset; tusd answers the same), 413 for an `Upload-Length` over `[uploads]
//! max_upload_bytes` or a body past `Upload-Length`, 507 when the uploads' cap or the disk's
//! free space would be exceeded, 429 past `max_concurrent_uploads`, 404 for an unknown, deleted
//! or expired upload; every one with the JSON body `{"code", "message"}`.
//!
//! A PATCH's body is streamed to the file a megabyte at a time, never held whole; its deadline
//! is `[uploads] patch_timeout_s`, not `[serve] body_timeout_s` ([`owns_body_deadline`]). When
//! the last byte is in, the size, the whole-file SHA-256 and the probe of `monsoon ingest`
//! ([`MasterProbe`]) are checked: the upload becomes `ready` (with the probe's summary) or
//! `failed` (with the CLI's message, its bytes deleted). Storage: [`store`].
//!
//! Written here rather than taken from a crate: the one axum tus server crate (fileloft-axum
//! 0.3) is young and brings its own store and lock traits, and most of this module is what
//! Monsoon needs around the protocol (fsync before each 204, disk bounds, the probe at the end,
//! the admin check, the body deadline).
//!
//! No cross-origin request can reach these routes with the operator's cookie: it is
//! `SameSite=Strict`, and every tus request carries `Tus-Resumable`, which makes a cross-site
//! `fetch` preflighted, and no preflight is granted.

mod store;
pub mod tus;

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use http_body_util::BodyExt as _;
use serde::Serialize;

pub use store::{
    ClaimedMaster, MasterProbe, MasterSummary, UploadConfig, UploadError, UploadKind, UploadState,
    UploadView, Uploads,
};

use crate::admin::Operator;
use crate::{ApiError, AppState};
use tus::Checksum;

/// Where the uploads live in the URL space.
pub const PREFIX: &str = "/admin/api/uploads";
/// Bytes of a PATCH body gathered before one write to the file.
const WRITE_BYTES: usize = 1 << 20;
/// The upload's state, on HEAD and PATCH answers (`uploading`, `verifying`, `ready`,
/// `failed`; `GET` of the upload says why it failed).
const STATE_HEADER: &str = "monsoon-upload-state";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PREFIX, get(list).post(create).options(options))
        .route("/admin/api/uploads/{id}", any(one))
        .layer(axum::middleware::from_fn(tus_resumable))
}

/// Whether this request's body deadline is the upload handler's (`[uploads]
/// patch_timeout_s`) rather than the connection's `body_timeout`: a PATCH of an upload, or a
/// POST standing in for one (`X-HTTP-Method-Override`, tus 1.0.0 §"Headers").
pub(crate) fn owns_body_deadline(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    let patch = *method == Method::PATCH
        || (*method == Method::POST
            && headers
                .get("x-http-method-override")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"PATCH")));
    patch
        && uri
            .path()
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `Tus-Resumable` on every answer but OPTIONS (tus 1.0.0 §"Tus-Resumable").
async fn tus_resumable(request: Request, next: axum::middleware::Next) -> Response {
    let options = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if !options {
        response
            .headers_mut()
            .insert("tus-resumable", HeaderValue::from_static(tus::VERSION));
    }
    response
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            UploadError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            UploadError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            UploadError::Conflict(_) => (StatusCode::CONFLICT, "offset_conflict"),
            UploadError::Locked(_) => (StatusCode::LOCKED, "locked"),
            UploadError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            UploadError::Storage(_) => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
            UploadError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_uploads"),
            UploadError::Checksum(_) => (CHECKSUM_MISMATCH, "checksum_mismatch"),
            UploadError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            UploadError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "upload request failed");
        }
        let body = serde_json::json!({ "code": code, "message": self.to_string() });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::REQUEST_TIMEOUT {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// 460 Checksum Mismatch (tus 1.0.0, checksum extension).
const CHECKSUM_MISMATCH: StatusCode = match StatusCode::from_u16(460) {
    Ok(status) => status,
    Err(_) => StatusCode::BAD_REQUEST,
};

fn uploads(state: &AppState) -> Result<Arc<Uploads>, UploadError> {
    state
        .uploads
        .get()
        .map(|(u, _)| Arc::clone(u))
        .ok_or_else(|| {
            UploadError::NotFound(
                "uploads are off on this server (no data directory for them)".into(),
            )
        })
}

/// The 412 answer to a request that does not speak tus 1.0.0, if it does not.
fn version_refused(headers: &HeaderMap) -> Option<Response> {
    tus::check_version(headers).err().map(|message| {
        let mut response = (
            StatusCode::PRECONDITION_FAILED,
            Json(serde_json::json!({ "code": "tus_version", "message": message })),
        )
            .into_response();
        response
            .headers_mut()
            .insert("tus-version", HeaderValue::from_static(tus::VERSION));
        response
    })
}

fn http_date(at: SystemTime) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(at)).unwrap_or(HeaderValue::from_static(""))
}

fn state_name(state: &UploadState) -> &'static str {
    match state {
        UploadState::Uploading => "uploading",
        UploadState::Verifying => "verifying",
        UploadState::Ready { .. } => "ready",
        UploadState::Failed { .. } => "failed",
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: impl Into<HeaderValue>) {
    headers.insert(HeaderName::from_static(name), value.into());
}

async fn options(State(state): State<AppState>, _: Operator) -> Response {
    let uploads = match uploads(&state) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    set(h, "tus-version", HeaderValue::from_static(tus::VERSION));
    set(
        h,
        "tus-extension",
        HeaderValue::from_static(tus::EXTENSIONS),
    );
    set(
        h,
        "tus-max-size",
        HeaderValue::from(uploads.config().max_upload_bytes),
    );
    set(
        h,
        "tus-checksum-algorithm",
        HeaderValue::from_static(tus::CHECKSUM_ALGORITHMS),
    );
    response
}

async fn create(State(state): State<AppState>, operator: Operator, headers: HeaderMap) -> Response {
    if let Some(refused) = version_refused(&headers) {
        return refused;
    }
    match create_upload(&state, &headers) {
        Ok((response, id, detail)) => {
            state
                .audit(
                    &operator,
                    monsoon_catalog::Action::UploadCreated,
                    &id,
                    detail,
                )
                .await;
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The 201 answer of a creation, the upload's id and what the audit log says of it.
fn create_upload(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Response, String, serde_json::Value), UploadError> {
    let uploads = uploads(state)?;
    if headers.contains_key("upload-defer-length") {
        return Err(UploadError::BadRequest(
            "Upload-Defer-Length is not supported (creation-defer-length): send Upload-Length"
                .into(),
        ));
    }
    let length = tus::integer(headers, "upload-length")
        .map_err(UploadError::BadRequest)?
        .ok_or_else(|| {
            UploadError::BadRequest("Upload-Length is missing: say the file's size in bytes".into())
        })?;
    let body = tus::integer(headers, "content-length").map_err(UploadError::BadRequest)?;
    if body.unwrap_or(0) > 0 || headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(UploadError::BadRequest(
            "a creation request carries no body here (creation-with-upload is not supported): send the bytes with PATCH".into(),
        ));
    }
    let meta = tus::metadata(headers).map_err(UploadError::BadRequest)?;
    let filename = meta.filename.clone();
    let (id, expires) = uploads.create(length, meta)?;
    tracing::info!(upload = %id, %filename, length, "upload created");
    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    let location = format!("{PREFIX}/{id}");
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).map_err(|e| UploadError::Internal(e.to_string()))?,
    );
    set(h, "upload-expires", http_date(expires));
    set(h, "upload-offset", HeaderValue::from(0));
    let detail = serde_json::json!({ "filename": filename, "bytes": length });
    Ok((response, id, detail))
}

#[derive(Serialize)]
struct Listing {
    now: chrono::DateTime<chrono::Utc>,
    uploads: Vec<UploadView>,
}

async fn list(State(state): State<AppState>, _: Operator) -> Response {
    match uploads(&state) {
        Ok(uploads) => crate::admin::private(
            Json(Listing {
                now: chrono::Utc::now(),
                uploads: uploads.list(),
            })
            .into_response(),
        ),
        Err(e) => e.into_response(),
    }
}

/// Every method on one upload: `X-HTTP-Method-Override` names the method for clients behind
/// proxies that drop PATCH and DELETE (tus 1.0.0 §"X-HTTP-Method-Override").
async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    operator: Result<Operator, ApiError>,
    request: Request,
) -> Response {
    let operator = match operator {
        Ok(operator) => operator,
        Err(e) => return e.into_response(),
    };
    let headers = request.headers();
    let method = match headers.get("x-http-method-override") {
        Some(name) if request.method() == Method::POST => {
            match Method::from_bytes(name.as_bytes()) {
                Ok(m) => m,
                Err(_) => {
                    return UploadError::BadRequest(
                        "X-HTTP-Method-Override names no method".into(),
                    )
                    .into_response();
                }
            }
        }
        _ => request.method().clone(),
    };
    let uploads = match uploads(&state) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    if method == Method::GET {
        return match checked_id(&id).and_then(|id| uploads.get(id)) {
            Ok(view) => crate::admin::private(Json(view).into_response()),
            Err(e) => e.into_response(),
        };
    }
    if method == Method::OPTIONS {
        return options(State(state), operator).await;
    }
    if let Some(refused) = version_refused(headers) {
        return refused;
    }
    let result = match method {
        Method::HEAD => checked_id(&id).and_then(|id| head(&uploads, id)),
        Method::PATCH => match checked_id(&id) {
            Ok(id) => patch(&uploads, id, request).await,
            Err(e) => Err(e),
        },
        Method::DELETE => checked_id(&id)
            .and_then(|id| uploads.terminate(id))
            .map(|()| {
                tracing::info!(upload = %id, "upload deleted");
                StatusCode::NO_CONTENT.into_response()
            }),
        other => {
            let mut response = (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(serde_json::json!({
                    "code": "method_not_allowed",
                    "message": format!("{other} is not a tus method; use HEAD, PATCH, DELETE or GET"),
                })),
            )
                .into_response();
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, PATCH, DELETE, OPTIONS"),
            );
            return response;
        }
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

fn checked_id(id: &str) -> Result<&str, UploadError> {
    if store::valid_id(id) {
        Ok(id)
    } else {
        Err(UploadError::NotFound(format!(
            "no upload {:?}: upload ids are 32 lowercase hex digits",
            id.chars().take(64).collect::<String>()
        )))
    }
}

/// tus HEAD: where the upload stands. Never cached (tus 1.0.0 §"HEAD").
fn head(uploads: &Uploads, id: &str) -> Result<Response, UploadError> {
    let (offset, length, meta, expires, state) = uploads.head(id)?;
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    set(h, "upload-offset", HeaderValue::from(offset));
    set(h, "upload-length", HeaderValue::from(length));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&tus::encode_metadata(&meta))
        && !value.is_empty()
    {
        set(h, "upload-metadata", value);
    }
    if let Some(at) = expires {
        set(h, "upload-expires", http_date(at));
    }
    set(
        h,
        STATE_HEADER,
        HeaderValue::from_static(state_name(&state)),
    );
    Ok(response)
}

/// tus PATCH: appends the body at the server's offset, streamed, then `fsync`s before
/// answering, so the offset acknowledged survives a crash.
async fn patch(
    uploads: &Arc<Uploads>,
    id: &str,
    request: Request,
) -> Result<Response, UploadError> {
    let (parts, mut body) = request.into_parts();
    let headers = &parts.headers;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(tus::OFFSET_OCTET_STREAM))
    {
        return Ok((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(serde_json::json!({
                "code": "unsupported_media_type",
                "message": format!("a PATCH body must be Content-Type: {}, not {content_type:?}", tus::OFFSET_OCTET_STREAM),
            })),
        )
            .into_response());
    }
    let offset = tus::integer(headers, "upload-offset")
        .map_err(UploadError::BadRequest)?
        .ok_or_else(|| {
            UploadError::BadRequest("Upload-Offset is missing: HEAD gives the server's".into())
        })?;
    let mut checksum = Checksum::from_headers(headers).map_err(UploadError::BadRequest)?;
    let declared = tus::integer(headers, "content-length").map_err(UploadError::BadRequest)?;
    let mut patch = uploads.begin(id, offset)?;
    if let Some(n) = declared
        && offset.saturating_add(n) > patch.length
    {
        return Err(UploadError::TooLarge(format!(
            "a body of {n} bytes at offset {offset} goes past Upload-Length {}",
            patch.length
        )));
    }
    if checksum.is_some() {
        patch.all_or_nothing();
    }
    let path = patch.path.clone();
    let io = |what: &'static str| store_io(what, &path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io("opening"))?;
    // Anything past the offset is a write the server never acknowledged: drop it.
    file.set_len(patch.start).map_err(io("truncating"))?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(patch.start))
        .map_err(io("seeking in"))?;
    let mut writer = Writer::new(file);
    let timeout = std::time::Duration::from_secs(uploads.config().patch_timeout_s);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pending: Vec<u8> = Vec::with_capacity(WRITE_BYTES);
    // Why the body stopped short, if it did.
    let mut cut: Option<UploadError> = None;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                cut = Some(UploadError::Timeout(format!(
                    "the PATCH body did not arrive whole within {} s ([uploads] patch_timeout_s); what arrived is kept, resume from the offset HEAD gives",
                    timeout.as_secs()
                )));
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                cut = Some(UploadError::BadRequest(format!(
                    "the PATCH body was cut: {e}"
                )));
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if patch.offset + (writer.queued() + pending.len() + data.len()) as u64 > patch.length {
            let _ = writer.finish(&mut patch, Vec::new(), false).await;
            patch.discard();
            return Err(UploadError::TooLarge(format!(
                "the PATCH body goes past Upload-Length {}; the chunk is discarded",
                patch.length
            )));
        }
        if let Some(c) = &mut checksum {
            c.update(&data);
        }
        pending.extend_from_slice(&data);
        if pending.len() >= WRITE_BYTES {
            pending = match writer.write(&mut patch, pending).await {
                Ok(buffer) => buffer,
                Err(e) => {
                    patch.discard();
                    return Err(io("writing")(e));
                }
            };
        }
    }
    if let Err(e) = writer.finish(&mut patch, pending, true).await {
        patch.discard();
        return Err(io("writing")(e));
    }
    if let Some(c) = checksum {
        if cut.is_some() {
            // A cut chunk cannot be checked: none of it counts.
            patch.discard();
        } else if c.matches() {
            patch.keep();
        } else {
            patch.discard();
            return Err(UploadError::Checksum(format!(
                "the PATCH body does not match its Upload-Checksum; the chunk is discarded, send it again from offset {}",
                patch.start
            )));
        }
    }
    if let Some(cut) = cut {
        tracing::info!(upload = %id, offset = patch.offset, error = %cut, "PATCH cut");
        return Err(cut);
    }
    let new_offset = patch.offset;
    let state = patch.finish().await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    set(h, "upload-offset", HeaderValue::from(new_offset));
    if let Ok((_, _, _, Some(at), _)) = uploads.head(id) {
        set(h, "upload-expires", http_date(at));
    }
    set(
        h,
        STATE_HEADER,
        HeaderValue::from_static(state_name(&state)),
    );
    Ok(response)
}

fn store_io(
    what: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> UploadError {
    let path = path.display().to_string();
    move |e| {
        if e.raw_os_error() == Some(28) {
            UploadError::Storage(format!(
                "{what} {path}: the disk is full; the chunk is discarded"
            ))
        } else {
            UploadError::Internal(format!("{what} {path}: {e}"))
        }
    }
}

/// Writes a PATCH's bytes to its file off the event loop, one buffer in flight while the next
/// fills, so reading the socket and writing the disk overlap and at most two buffers
/// ([`WRITE_BYTES`] each) are held.
#[derive(Debug)]
struct Writer {
    /// The file, when no write is in flight.
    file: Option<std::fs::File>,
    in_flight: Option<tokio::task::JoinHandle<Written>>,
    /// Bytes in the write in flight.
    queued: usize,
}

type Written = (std::fs::File, Vec<u8>, std::io::Result<()>);

impl Writer {
    fn new(file: std::fs::File) -> Self {
        Self {
            file: Some(file),
            in_flight: None,
            queued: 0,
        }
    }

    fn queued(&self) -> usize {
        self.queued
    }

    /// Waits for the write in flight and notes its bytes in `patch`; returns its buffer.
    async fn settle(&mut self, patch: &mut store::Patch) -> std::io::Result<Vec<u8>> {
        let Some(task) = self.in_flight.take() else {
            return Ok(Vec::with_capacity(WRITE_BYTES));
        };
        self.queued = 0;
        let (file, mut buffer, result) = task.await.map_err(std::io::Error::other)?;
        self.file = Some(file);
        result?;
        patch.wrote(&buffer);
        buffer.clear();
        Ok(buffer)
    }

    /// Starts writing `bytes` (after the write in flight); returns an empty buffer to fill.
    async fn write(
        &mut self,
        patch: &mut store::Patch,
        bytes: Vec<u8>,
    ) -> std::io::Result<Vec<u8>> {
        let next = self.settle(patch).await?;
        let mut file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("the upload's file was lost"))?;
        self.queued = bytes.len();
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let result = std::io::Write::write_all(&mut file, &bytes);
            (file, bytes, result)
        }));
        Ok(next)
    }

    /// Writes `bytes` after everything else and, with `sync`, makes it all durable.
    async fn finish(
        &mut self,
        patch: &mut store::Patch,
        bytes: Vec<u8>,
        sync: bool,
    ) -> std::io::Result<()> {
        self.settle(patch).await?;
        let mut file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("the upload's file was lost"))?;
        let (file, bytes, result) = tokio::task::spawn_blocking(move || {
            let result = std::io::Write::write_all(&mut file, &bytes)
                .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
            (file, bytes, result)
        })
        .await
        .map_err(std::io::Error::other)?;
        self.file = Some(file);
        result?;
        patch.wrote(&bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_uploads_patch_has_its_own_body_deadline() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let mut headers = HeaderMap::new();
        let id = "/admin/api/uploads/0123456789abcdef0123456789abcdef";
        assert!(owns_body_deadline(&Method::PATCH, &uri(id), &headers));
        for (method, path) in [
            (Method::POST, id),
            (Method::PUT, id),
            (Method::PATCH, PREFIX),
            (Method::POST, PREFIX),
            (Method::PATCH, "/admin/api/uploadsX/1"),
            (Method::PATCH, "/api/v1/sessions"),
        ] {
            assert!(
                !owns_body_deadline(&method, &uri(path), &headers),
                "{method} {path}"
            );
        }
        headers.insert("x-http-method-override", HeaderValue::from_static("patch"));
        assert!(owns_body_deadline(&Method::POST, &uri(id), &headers));
        assert!(!owns_body_deadline(&Method::POST, &uri(PREFIX), &headers));
    }
}
