//! Master uploads with the tus 1.0.0 protocol (<https://tus.io/protocols/resumable-upload>)
//! against the real `monsoon serve`: a conformance run of the core protocol and of the
//! creation, expiration, checksum and termination extensions, resuming after a connection cut
//! mid-PATCH and after `kill -9`, one PATCH at a time per upload, the bounds of `[uploads]`,
//! the probe's refusal in the CLI's words and a real master ending `ready`, and 5 GiB streamed
//! through with the server's memory flat. Requests are written by hand on raw sockets, so
//! every header and every cut is the test's own.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{MONSOON, Server, make_clip, monsoon};
use sha2::Digest as _;

const TOKEN: &str = "uploads-test-admin-token";
const PREFIX: &str = "/admin/api/uploads";

/// Starts `monsoon serve` on `data` with the admin token and `uploads` as its `[uploads]`
/// table; its log goes to `data/../serve.log`.
fn start(data: &Path, uploads: &str) -> Server {
    start_with(data, "", uploads)
}

/// [`start`] with `serve` as the `[serve]` table.
fn start_with(data: &Path, serve: &str, uploads: &str) -> Server {
    start_on(data, serve, uploads, &[], &[])
}

/// [`start_with`] with the global flags `storage` (`--database`, `--media`) and `env`.
fn start_on(
    data: &Path,
    serve: &str,
    uploads: &str,
    storage: &[&str],
    env: &[(&str, &str)],
) -> Server {
    std::fs::create_dir_all(data).unwrap();
    let out = monsoon(data, &["admin-token", "--token", TOKEN]);
    assert!(out.status.success());
    let dir = data.parent().unwrap();
    let config = dir.join("monsoon.toml");
    std::fs::write(
        &config,
        format!(
            "[serve]\n{serve}\n{}\n[uploads]\n{uploads}\n",
            String::from_utf8_lossy(&out.stdout)
        ),
    )
    .unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let mut command = Command::new(MONSOON);
    command
        .arg("--data")
        .arg(data)
        .args(storage)
        .args(["serve", "--listen", "127.0.0.1:0", "--access-log", "false"])
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stderr(log);
    Server::spawn(command)
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_owned()
    }
}

/// Reads a response from `stream` until the server closes it.
fn read_reply(mut stream: TcpStream) -> Reply {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = response.parse(&bytes) else {
        panic!(
            "no complete response: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    };
    Reply {
        status: response.code.unwrap(),
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: bytes[len..].to_vec(),
    }
}

/// Writes a request head (with the admin token, `Connection: close` and `headers`) and
/// returns the open stream, for the body to follow.
fn send_head(to: SocketAddr, method: &str, path: &str, headers: &[(&str, String)]) -> TcpStream {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(to).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// One whole request with `body`.
fn request(
    to: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    let mut headers = headers.to_vec();
    if !body.is_empty() || method == "PATCH" || method == "POST" {
        headers.push(("Content-Length", body.len().to_string()));
    }
    let stream = send_head(to, method, path, &headers);
    // Written beside the reading: a refusal may come (and the connection close) before the
    // server has read the whole body, and is read as it arrives.
    let mut writer = stream.try_clone().unwrap();
    let body = body.to_vec();
    let writing = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let reply = read_reply(stream);
    writing.join().unwrap();
    reply
}

fn tus() -> (&'static str, String) {
    ("Tus-Resumable", "1.0.0".to_owned())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Creates an upload of `length` bytes named `filename`, with the whole file's SHA-256 if
/// given; returns its path.
fn create(to: SocketAddr, length: u64, filename: &str, sha256: Option<&[u8]>) -> String {
    let reply = try_create(to, length, filename, sha256);
    assert_eq!(
        reply.status,
        201,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let location = reply.header("location").to_owned();
    let id = location.strip_prefix(&format!("{PREFIX}/")).unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{location}"
    );
    location
}

fn try_create(to: SocketAddr, length: u64, filename: &str, sha256: Option<&[u8]>) -> Reply {
    let mut metadata = format!(
        "filename {},filetype {}",
        b64(filename.as_bytes()),
        b64(b"video/mp4")
    );
    if let Some(digest) = sha256 {
        metadata.push_str(&format!(",sha256 {}", b64(b64(digest).as_bytes())));
    }
    request(
        to,
        "POST",
        PREFIX,
        &[
            tus(),
            ("Upload-Length", length.to_string()),
            ("Upload-Metadata", metadata),
        ],
        b"",
    )
}

fn patch_headers(offset: u64) -> Vec<(&'static str, String)> {
    vec![
        tus(),
        ("Upload-Offset", offset.to_string()),
        ("Content-Type", "application/offset+octet-stream".to_owned()),
    ]
}

fn patch(to: SocketAddr, upload: &str, offset: u64, body: &[u8]) -> Reply {
    request(to, "PATCH", upload, &patch_headers(offset), body)
}

fn head(to: SocketAddr, upload: &str) -> Reply {
    request(to, "HEAD", upload, &[tus()], b"")
}

fn offset_of(to: SocketAddr, upload: &str) -> u64 {
    let reply = head(to, upload);
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.header("upload-offset").parse().unwrap()
}

/// The upload as the studio lists it.
fn view(to: SocketAddr, upload: &str) -> serde_json::Value {
    let reply = request(to, "GET", upload, &[], b"");
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json()
}

/// Waits (at most 60 s) until `done` holds for the upload's view, and returns it.
fn wait_for(
    to: SocketAddr,
    upload: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let v = view(to, upload);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < until, "never {what}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bytes that are not media, different at every offset.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Files of the upload in the data directory (its bytes and its record).
fn files_of(data: &Path, upload: &str) -> Vec<PathBuf> {
    let id = upload.rsplit('/').next().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("uploads"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("{id}."))
        })
        .collect();
    // The bytes first, then the record.
    files.sort_by_key(|p| p.extension().is_some_and(|e| e == "json"));
    files
}

#[test]
fn the_server_speaks_tus_1_0_with_creation_expiration_checksum_and_termination() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A connection silent for 4 s is closed (the silence rule of every connection).
    let serve = "header_timeout_s = 4";
    let uploads = "max_upload_bytes = 10000000\nmin_free_bytes = 0";
    let server = start_with(&data, serve, uploads);
    let to = server.addr();

    // Discovery.
    let options = request(to, "OPTIONS", PREFIX, &[], b"");
    assert_eq!(options.status, 204, "{options:?}");
    assert_eq!(options.header("tus-version"), "1.0.0");
    assert_eq!(
        options.header("tus-extension"),
        "creation,expiration,checksum,termination"
    );
    assert_eq!(options.header("tus-max-size"), "10000000");
    assert_eq!(options.header("tus-checksum-algorithm"), "sha1,sha256");

    // Every route is the operator's.
    let mut stranger = TcpStream::connect(to).unwrap();
    stranger
        .write_all(
            format!("POST {PREFIX} HTTP/1.1\r\nHost: t\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 10\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(read_reply(stranger).status, 401);

    // The protocol's version, on every request but OPTIONS.
    let old = request(
        to,
        "POST",
        PREFIX,
        &[
            ("Tus-Resumable", "0.2.2".to_owned()),
            ("Upload-Length", "10".to_owned()),
        ],
        b"",
    );
    assert_eq!(old.status, 412);
    assert_eq!(old.header("tus-version"), "1.0.0");
    assert!(old.message().contains("\"0.2.2\""), "{}", old.message());

    // Creation: Upload-Length required and bounded.
    let missing = request(to, "POST", PREFIX, &[tus()], b"");
    assert_eq!(missing.status, 400);
    assert!(
        missing.message().contains("Upload-Length"),
        "{}",
        missing.message()
    );
    let too_big = try_create(to, 10_000_001, "big.mov", None);
    assert_eq!(too_big.status, 413);
    assert!(
        too_big.message().contains("max_upload_bytes"),
        "{}",
        too_big.message()
    );
    let bad_meta = request(
        to,
        "POST",
        PREFIX,
        &[
            tus(),
            ("Upload-Length", "10".to_owned()),
            ("Upload-Metadata", format!("filename {}", b64(b"a\x07b"))),
        ],
        b"",
    );
    assert_eq!(bad_meta.status, 400);
    assert!(
        bad_meta.message().contains("filename"),
        "{}",
        bad_meta.message()
    );

    let file = noise(2_500_000, 7);
    let digest = sha2::Sha256::digest(&file);
    let upload = create(to, file.len() as u64, "phim.mp4", Some(&digest));
    assert_eq!(files_of(&data, &upload).len(), 2);

    // HEAD: the offset, never cached, with the metadata and the expiry.
    let h = head(to, &upload);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("upload-offset"), "0");
    assert_eq!(h.header("upload-length"), "2500000");
    assert_eq!(h.header("cache-control"), "no-store");
    assert_eq!(h.header("tus-resumable"), "1.0.0");
    assert!(
        h.header("upload-metadata")
            .contains(&format!("filename {}", b64(b"phim.mp4")))
    );
    let expires = httpdate::parse_http_date(h.header("upload-expires")).unwrap();
    assert!(expires > std::time::SystemTime::now() + Duration::from_secs(3600));

    // PATCH: the media type, the offset.
    let mut wrong_type = patch_headers(0);
    wrong_type[2].1 = "application/octet-stream".to_owned();
    assert_eq!(
        request(to, "PATCH", &upload, &wrong_type, b"abc").status,
        415
    );
    let no_offset = request(
        to,
        "PATCH",
        &upload,
        &patch_headers(0)[..1]
            .iter()
            .cloned()
            .chain([("Content-Type", "application/offset+octet-stream".to_owned())])
            .collect::<Vec<_>>(),
        b"abc",
    );
    assert_eq!(no_offset.status, 400);
    let first = patch(to, &upload, 0, &file[..1_000_000]);
    assert_eq!(first.status, 204, "{first:?}");
    assert_eq!(first.header("upload-offset"), "1000000");
    assert_eq!(first.header("monsoon-upload-state"), "uploading");
    let stale = patch(to, &upload, 0, &file[..1000]);
    assert_eq!(stale.status, 409);
    assert!(stale.message().contains("1000000"), "{}", stale.message());
    let ahead = patch(to, &upload, 1_000_001, &file[1_000_001..1_001_000]);
    assert_eq!(ahead.status, 409);
    assert_eq!(offset_of(to, &upload), 1_000_000);

    // Checksum: a chunk that does not match is discarded (460); one that does is kept.
    let chunk = &file[1_000_000..1_200_000];
    let mut wrong = patch_headers(1_000_000);
    wrong.push((
        "Upload-Checksum",
        format!("sha1 {}", b64(&sha1_of(&file[..10]))),
    ));
    let mismatch = request(to, "PATCH", &upload, &wrong, chunk);
    assert_eq!(mismatch.status, 460, "{mismatch:?}");
    assert!(
        mismatch.message().contains("Upload-Checksum"),
        "{}",
        mismatch.message()
    );
    assert_eq!(offset_of(to, &upload), 1_000_000);
    assert_eq!(
        std::fs::metadata(&files_of(&data, &upload)[0])
            .unwrap()
            .len(),
        1_000_000,
        "the discarded chunk is not on disk"
    );
    let mut unknown = patch_headers(1_000_000);
    unknown.push(("Upload-Checksum", format!("md5 {}", b64(&[0; 16]))));
    assert_eq!(request(to, "PATCH", &upload, &unknown, chunk).status, 400);
    let mut right = patch_headers(1_000_000);
    right.push((
        "Upload-Checksum",
        format!("sha256 {}", b64(&sha2::Sha256::digest(chunk))),
    ));
    let good = request(to, "PATCH", &upload, &right, chunk);
    assert_eq!(good.status, 204, "{good:?}");
    assert_eq!(good.header("upload-offset"), "1200000");

    // One PATCH at a time: while one is writing, another is refused with 423.
    let mut holder = send_head(
        to,
        "PATCH",
        &upload,
        &[
            patch_headers(1_200_000),
            vec![("Content-Length", "100000".to_owned())],
        ]
        .concat(),
    );
    holder.write_all(&file[1_200_000..1_210_000]).unwrap();
    wait_for(to, &upload, "receiving", |v| v["receiving"] == true);
    let second = patch(to, &upload, 1_200_000, &file[1_200_000..1_300_000]);
    assert_eq!(second.status, 423, "{second:?}");
    assert!(
        second.message().contains("another PATCH"),
        "{}",
        second.message()
    );
    assert_eq!(
        request(to, "DELETE", &upload, &[tus()], b"").status,
        423,
        "nor deleted while written"
    );
    holder.write_all(&file[1_210_000..1_300_000]).unwrap();
    let held = read_reply(holder);
    assert_eq!(held.status, 204, "{held:?}");
    assert_eq!(held.header("upload-offset"), "1300000");

    // A body past Upload-Length is refused whole.
    let mut past = file[1_300_000..].to_vec();
    past.extend_from_slice(b"one byte too many");
    let refused = patch(to, &upload, 1_300_000, &past);
    assert_eq!(refused.status, 413, "{refused:?}");
    assert_eq!(offset_of(to, &upload), 1_300_000);

    // The connection cut mid-PATCH: what arrived is kept, and HEAD says where to resume.
    let mut cut = send_head(
        to,
        "PATCH",
        &upload,
        &[
            patch_headers(1_300_000),
            vec![("Content-Length", "1200000".to_owned())],
        ]
        .concat(),
    );
    cut.write_all(&file[1_300_000..1_654_321]).unwrap();
    cut.shutdown(std::net::Shutdown::Both).unwrap();
    drop(cut);
    wait_for(to, &upload, "released", |v| {
        v["receiving"] == false && v["offset"] == 1_654_321
    });
    assert_eq!(offset_of(to, &upload), 1_654_321);

    // A client that vanishes mid-PATCH without closing: its connection is closed after the
    // silence rule, which gives the upload back with what arrived.
    let mut silent = send_head(
        to,
        "PATCH",
        &upload,
        &[
            patch_headers(1_654_321),
            vec![("Content-Length", "500000".to_owned())],
        ]
        .concat(),
    );
    silent.write_all(&file[1_654_321..1_700_000]).unwrap();
    wait_for(to, &upload, "receiving", |v| v["receiving"] == true);
    assert_eq!(
        patch(to, &upload, 1_654_321, &file[1_654_321..1_700_000]).status,
        423
    );
    wait_for(to, &upload, "given back", |v| v["receiving"] == false);
    assert_eq!(offset_of(to, &upload), 1_700_000);
    drop(silent);

    // A kill -9 keeps every acknowledged byte: the offset is the file's length.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = start_with(&data, serve, uploads);
    let to = server.addr();
    assert_eq!(offset_of(to, &upload), 1_700_000);

    // The rest, through a POST standing in for PATCH (X-HTTP-Method-Override).
    let mut override_headers = patch_headers(1_700_000);
    override_headers.push(("X-HTTP-Method-Override", "PATCH".to_owned()));
    let last = request(to, "POST", &upload, &override_headers, &file[1_700_000..]);
    assert_eq!(last.status, 204, "{last:?}");
    assert_eq!(last.header("upload-offset"), "2500000");
    // Size and SHA-256 matched (the running hash was rebuilt after the restart); the probe
    // refused the noise.
    let done = wait_for(to, &upload, "checked", |v| v["state"] != "verifying");
    assert_eq!(done["state"], "failed", "{done}");
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.starts_with("phim.mp4: "), "{reason}");
    assert!(!reason.contains("SHA-256"), "{reason}");
    assert!(
        !reason.contains(data.to_str().unwrap()),
        "no server path: {reason}"
    );
    assert_eq!(patch(to, &upload, 2_500_000, b"x").status, 409, "complete");

    // Termination.
    let gone = request(to, "DELETE", &upload, &[tus()], b"");
    assert_eq!(gone.status, 204);
    assert_eq!(head(to, &upload).status, 404);
    assert!(files_of(&data, &upload).is_empty());
    assert_eq!(request(to, "DELETE", &upload, &[tus()], b"").status, 404);
    // Ids are checked before anything is looked up.
    assert_eq!(
        request(
            to,
            "HEAD",
            &format!("{PREFIX}/..%2f..%2fcatalog.db"),
            &[tus()],
            b""
        )
        .status,
        404
    );

    // A whole file that is not what the client hashed is refused, naming both digests.
    let other = noise(5000, 8);
    let lying = create(
        to,
        5000,
        "lie.mov",
        Some(&sha2::Sha256::digest(b"something else")),
    );
    assert_eq!(patch(to, &lying, 0, &other).status, 204);
    let v = wait_for(to, &lying, "checked", |v| v["state"] != "verifying");
    assert_eq!(v["state"], "failed");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("SHA-256") && reason.contains(&hex::encode(sha2::Sha256::digest(&other))),
        "{reason}"
    );
    assert_eq!(
        files_of(&data, &lying).len(),
        1,
        "a failed upload's bytes are deleted"
    );
}

fn sha1_of(bytes: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(bytes).to_vec()
}

#[test]
fn abandoned_uploads_expire_and_the_bounds_of_uploads_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start(
        &data,
        "expiry_s = 1\nmax_concurrent_uploads = 1\nmax_total_bytes = 1000000\nmin_free_bytes = 0",
    );
    let to = server.addr();
    let upload = create(to, 1000, "a.mp4", None);
    assert_eq!(patch(to, &upload, 0, &noise(100, 1)).status, 204);
    let h = head(to, &upload);
    let expires = httpdate::parse_http_date(h.header("upload-expires")).unwrap();
    // One unfinished upload at a time.
    let busy = try_create(to, 1000, "b.mp4", None);
    assert_eq!(busy.status, 429, "{busy:?}");
    assert!(
        busy.message().contains("max_concurrent_uploads"),
        "{}",
        busy.message()
    );
    // Abandoned: deleted once expired, files and all.
    let until = Instant::now() + Duration::from_secs(30);
    while head(to, &upload).status != 404 {
        assert!(Instant::now() < until, "never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::time::SystemTime::now() + Duration::from_secs(1) >= expires,
        "deleted well before its Upload-Expires"
    );
    assert!(files_of(&data, &upload).is_empty());
    assert_eq!(patch(to, &upload, 100, b"late").status, 404);
    // The room it held is free again; the cap on all uploads holds.
    let over = try_create(to, 1_000_001, "c.mp4", None);
    assert_eq!(over.status, 507, "{over:?}");
    assert!(
        over.message().contains("max_total_bytes"),
        "{}",
        over.message()
    );
    create(to, 1_000_000, "c.mp4", None);
    drop(server);

    // A PATCH body trickled past patch_timeout_s: 408, the connection closed, what arrived
    // kept.
    let server = start(&data, "patch_timeout_s = 1\nmin_free_bytes = 0");
    let to = server.addr();
    let upload = create(to, 1000, "slow.mov", None);
    let mut slow = send_head(
        to,
        "PATCH",
        &upload,
        &[
            patch_headers(0),
            vec![("Content-Length", "1000".to_owned())],
        ]
        .concat(),
    );
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until && slow.write_all(&[b'x'; 10]).is_ok() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let late = read_reply(slow);
    assert_eq!(late.status, 408, "{late:?}");
    assert_eq!(late.header("connection"), "close");
    assert!(
        late.message().contains("patch_timeout_s"),
        "{}",
        late.message()
    );
    let kept = offset_of(to, &upload);
    assert!(kept > 0 && kept < 1000, "{kept}");
    drop(server);

    // The disk's free space: a master that would leave less than min_free_bytes is refused.
    let server = start(&data, "min_free_bytes = 9000000000000000000");
    let full = try_create(server.addr(), 1000, "d.mp4", None);
    assert_eq!(full.status, 507, "{full:?}");
    assert!(
        full.message().contains("min_free_bytes"),
        "{}",
        full.message()
    );
}

/// The message `monsoon ingest` prints for `file`.
fn cli_refusal(data: &Path, file: &Path) -> String {
    let out = monsoon(
        data,
        &[
            "ingest",
            file.to_str().unwrap(),
            "--slug",
            "cli",
            "--quality",
            "fast",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| panic!("no error line: {stderr}"))
        .to_owned()
}

#[test]
fn a_text_file_named_mp4_fails_in_the_clis_words_and_a_real_master_is_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start(&data, "min_free_bytes = 0");
    let to = server.addr();

    let text = tmp.path().join("notes.mp4");
    std::fs::write(&text, "Kịch bản, bản nháp thứ ba\n".repeat(200)).unwrap();
    let said = cli_refusal(&data, &text).replace(text.to_str().unwrap(), "notes.mp4");
    let bytes = std::fs::read(&text).unwrap();
    let upload = create(to, bytes.len() as u64, "notes.mp4", None);
    let last = patch(to, &upload, 0, &bytes);
    assert_eq!(last.status, 204);
    assert_eq!(last.header("monsoon-upload-state"), "failed");
    let v = view(to, &upload);
    assert_eq!(v["state"], "failed");
    assert_eq!(v["reason"], said.as_str(), "the CLI's words");
    let listing = request(to, "GET", PREFIX, &[], b"").json();
    assert_eq!(listing["uploads"][0]["reason"], said.as_str());
    // With the rule it breaks and its values, for the studio to say in Vietnamese.
    assert_eq!(
        v["rule"],
        serde_json::json!({"name": "text_file", "begins": "Kịch bản, bản nháp thứ ba"}),
        "{v}"
    );

    let clip = tmp.path().join("master.mp4");
    make_clip(&clip, 2, "320x180");
    let bytes = std::fs::read(&clip).unwrap();
    let digest = sha2::Sha256::digest(&bytes);
    let upload = create(to, bytes.len() as u64, "Mưa tháng sáu.mp4", Some(&digest));
    let half = bytes.len() / 2;
    assert_eq!(patch(to, &upload, 0, &bytes[..half]).status, 204);
    let last = patch(to, &upload, half as u64, &bytes[half..]);
    assert_eq!(last.status, 204);
    let v = wait_for(to, &upload, "checked", |v| v["state"] != "verifying");
    assert_eq!(v["state"], "ready", "{v}");
    assert_eq!(v["filename"], "Mưa tháng sáu.mp4");
    assert_eq!(v["sha256"], hex::encode(digest));
    assert_eq!(v["offset"], bytes.len());
    let probe = &v["probe"];
    assert_eq!(
        (probe["width"].as_u64(), probe["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(probe["video_codec"], "h264");
    assert_eq!(probe["audio_codec"], "aac");
    assert!(
        (probe["duration_s"].as_f64().unwrap() - 2.0).abs() < 0.2,
        "{probe}"
    );
    assert_eq!(head(to, &upload).header("monsoon-upload-state"), "ready");
    let kept = &files_of(&data, &upload)[0];
    assert_eq!(
        std::fs::read(kept).unwrap(),
        bytes,
        "the master, byte for byte"
    );
}

/// Uploads `bytes` as `filename` for `kind` (`master`, `audio`, `subtitles`) in one PATCH and
/// waits until it is checked; returns its path and view.
fn upload_kind(
    to: SocketAddr,
    bytes: &[u8],
    filename: &str,
    kind: &str,
) -> (String, serde_json::Value) {
    let metadata = format!(
        "filename {},kind {}",
        b64(filename.as_bytes()),
        b64(kind.as_bytes())
    );
    let reply = request(
        to,
        "POST",
        PREFIX,
        &[
            tus(),
            ("Upload-Length", bytes.len().to_string()),
            ("Upload-Metadata", metadata),
        ],
        b"",
    );
    assert_eq!(reply.status, 201, "{reply:?}");
    let upload = reply.header("location").to_owned();
    assert_eq!(patch(to, &upload, 0, bytes).status, 204);
    let v = wait_for(to, &upload, "checked", |v| v["state"] != "verifying");
    (upload, v)
}

/// `POST /admin/api/jobs` with the JSON `body`.
fn new_job(to: SocketAddr, body: &serde_json::Value) -> Reply {
    request(
        to,
        "POST",
        "/admin/api/jobs",
        &[("Content-Type", "application/json".to_owned())],
        body.to_string().as_bytes(),
    )
}

/// Waits (at most 120 s) for job `id` to be done, failing on a failed one.
fn job_done(to: SocketAddr, id: u64) -> serde_json::Value {
    let job = job_over(to, id);
    assert_eq!(job["state"], "done", "{job}");
    job
}

/// What the studio does with a ready upload: `POST /admin/api/jobs` makes it a job (on one
/// machine, run by the server's own worker): a master the film, then an audio track and
/// subtitles added to it; every refusal names the value and the rule.
#[test]
fn ready_uploads_become_jobs_a_film_and_then_its_tracks() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = start(&data, "min_free_bytes = 0\nclaimed_sweep_s = 1");
    let to = server.addr();

    let clip = tmp.path().join("master.mp4");
    make_clip(&clip, 8, "320x180");
    let (upload, v) = upload_kind(
        to,
        &std::fs::read(&clip).unwrap(),
        "Sông nước.mp4",
        "master",
    );
    assert_eq!(v["state"], "ready", "{v}");
    assert_eq!(v["kind"], "master");
    let id = upload.rsplit('/').next().unwrap();

    let refused = new_job(to, &serde_json::json!({"upload": id, "slug": "Sông nước"}));
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.body).contains("slug `Sông nước` is not valid"));
    let unknown = new_job(
        to,
        &serde_json::json!({"upload": "0".repeat(32), "slug": "song-nuoc"}),
    );
    assert_eq!(unknown.status, 404, "{unknown:?}");

    // Into a draft made in the studio: the film is published with the draft's metadata.
    let draft = request(
        to,
        "POST",
        "/admin/api/films",
        &[("Content-Type", "application/json".to_owned())],
        serde_json::json!({"slug": "song-nuoc", "meta": {"title": {"vi": "Sông nước", "en": "River life"}}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(draft.status, 201, "{draft:?}");
    let created = new_job(to, &serde_json::json!({"upload": id, "slug": "song-nuoc"}));
    assert_eq!(created.status, 201, "{created:?}");
    let job = created.json();
    assert_eq!(job["slug"], "song-nuoc");
    let done = job_done(to, job["id"].as_u64().unwrap());
    assert!(
        done["message"].as_str().unwrap().contains("verified: v180"),
        "{done}"
    );
    // The job's log: a line a stage (its many progress ticks are not lines), in order, from
    // the API and from `monsoon jobs --log`.
    let job_id = job["id"].as_u64().unwrap();
    let log = request(
        to,
        "GET",
        &format!("/admin/api/jobs/{job_id}/log"),
        &[],
        b"",
    );
    assert_eq!(log.status, 200, "{log:?}");
    let lines: Vec<String> = log.json()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap().to_owned())
        .collect();
    // Every stage, however short (a short master may probe and transcode within the second
    // between progress writes), in the order the worker went through them.
    let starts = [
        "queued",
        "attempt 1 of 3: claimed by worker ",
        "fetching the uploaded file (",
        "probing the master (attempt 1 of 3, worker ",
        "transcoding (attempt 1 of 3, worker ",
        "publishing (attempt 1 of 3, worker ",
        "published as version ",
    ];
    assert_eq!(lines.len(), starts.len(), "{lines:#?}");
    for (line, start) in lines.iter().zip(starts) {
        assert!(
            line.starts_with(start),
            "{line:?} is not {start:?}…: {lines:#?}"
        );
    }
    assert!(lines[6].contains("verified: v180"), "{lines:#?}");
    let cli = monsoon(&data, &["jobs", "--log", &job_id.to_string()]);
    assert!(cli.status.success(), "{cli:?}");
    let printed = String::from_utf8(cli.stdout).unwrap();
    let printed: Vec<&str> = printed.lines().collect();
    assert_eq!(printed.len(), lines.len(), "{printed:#?}");
    for (row, line) in printed.iter().zip(&lines) {
        let (at, text) = row.split_once("  ").unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{row}");
        assert_eq!(text, line);
    }
    let unknown = monsoon(&data, &["jobs", "--log", "999"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("there is no job 999"));
    let film = request(to, "GET", "/api/v1/films/song-nuoc", &[], b"");
    assert_eq!(film.status, 200);
    assert_eq!(
        film.json()["title"]["vi"],
        "Sông nước",
        "the draft's metadata"
    );
    // Claimed: the upload is a job now, not an upload.
    assert_eq!(
        new_job(to, &serde_json::json!({"upload": id, "slug": "song-nuoc"})).status,
        404
    );

    // An audio track not as long as the film: its job fails, naming both lengths and the
    // rule, as data too (for the studio's translation).
    let short = tmp.path().join("short.wav");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440",
        "-t",
        "3",
        short.to_str().unwrap(),
    ]);
    let (short, v) = upload_kind(to, &std::fs::read(&short).unwrap(), "ngắn.wav", "audio");
    assert_eq!(v["state"], "ready", "{v}");
    let short = new_job(
        to,
        &serde_json::json!({"upload": short.rsplit('/').next().unwrap(), "slug": "song-nuoc", "lang": "en"}),
    );
    assert_eq!(short.status, 201, "{short:?}");
    let failed = job_over(to, short.json()["id"].as_u64().unwrap());
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("an audio track must last as long as the film"),
        "{failed}"
    );
    let rule = &failed["stage"]["rule"];
    assert_eq!(failed["stage"]["name"], "failed", "{failed}");
    assert_eq!(rule["name"], "track_duration", "{failed}");
    assert_eq!(
        (rule["audio_s"].as_str(), rule["film_s"].as_str()),
        (Some("3.0"), Some("8.0")),
        "{failed}"
    );

    // An audio track: refused without its language, then added.
    let dub = tmp.path().join("dub.wav");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=880",
        "-t",
        "8",
        dub.to_str().unwrap(),
    ]);
    let (audio, v) = upload_kind(to, &std::fs::read(&dub).unwrap(), "lồng tiếng.wav", "audio");
    assert_eq!(v["state"], "ready", "{v}");
    let audio = audio.rsplit('/').next().unwrap();
    let refused = new_job(
        to,
        &serde_json::json!({"upload": audio, "slug": "song-nuoc"}),
    );
    assert_eq!(refused.status, 400);
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("give its \"lang\""), "{message}");
    let created = new_job(
        to,
        &serde_json::json!({"upload": audio, "slug": "song-nuoc", "lang": "en", "label": "English"}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    job_done(to, created.json()["id"].as_u64().unwrap());

    // Subtitles: a text without cues fails its check; an SRT is added.
    let (_, v) = upload_kind(to, b"no cues here\n", "notes.srt", "subtitles");
    assert_eq!(v["state"], "failed", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("notes.srt"), "{v}");
    assert!(
        ["not_subtitles", "no_subtitle_cues"].contains(&v["rule"]["name"].as_str().unwrap_or("")),
        "{v}"
    );
    let srt = b"1\n00:00:00,000 --> 00:00:02,000\nXin ch\xc3\xa0o\n\n";
    let (subs, v) = upload_kind(to, srt, "en.srt", "subtitles");
    assert_eq!(v["state"], "ready", "{v}");
    let subs = subs.rsplit('/').next().unwrap();
    let created = new_job(
        to,
        &serde_json::json!({"upload": subs, "slug": "song-nuoc", "lang": "en"}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    job_done(to, created.json()["id"].as_u64().unwrap());

    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let master =
            String::from_utf8(request(to, "GET", "/media/song-nuoc/master.m3u8", &[], b"").body)
                .unwrap();
        if master.contains("TYPE=SUBTITLES") {
            assert!(
                master.contains("LANGUAGE=\"en\",NAME=\"English\""),
                "{master}"
            );
            assert!(master.contains("a128-en/index.m3u8"), "{master}");
            break;
        }
        assert!(
            Instant::now() < until,
            "the tracks never reach the playlist: {master}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The uploaded files went from the uploads into the media store's private `_incoming/`
    // (on the local store, a hard link) and from there to the worker; the jobs over, nothing
    // of them is left on either side.
    assert_eq!(
        files_under(&data.join("media/_incoming")),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_under(&data.join("uploads/claimed")),
        Vec::<PathBuf>::new()
    );
    assert_eq!(files_under(&data.join("staging")), Vec::<PathBuf>::new());
    // An uploaded file waiting for its worker is a file under the local store's root, yet the
    // origin (its sendfile path included) never serves it.
    let waiting = data.join("media/_incoming/0123abcd/0123abcd.mp4");
    std::fs::create_dir_all(waiting.parent().unwrap()).unwrap();
    std::fs::write(&waiting, b"an uploaded master").unwrap();
    for path in [
        "/media/_incoming/0123abcd/0123abcd.mp4",
        "/media/%5Fincoming/0123abcd/0123abcd.mp4",
        "/media/song-nuoc/../_incoming/0123abcd/0123abcd.mp4",
    ] {
        for method in ["GET", "HEAD"] {
            let reply = request(to, method, path, &[], b"");
            assert_eq!(reply.status, 404, "{method} {path}: {reply:?}");
            assert!(
                !String::from_utf8_lossy(&reply.body).contains("an uploaded master"),
                "{path}"
            );
        }
    }

    // Every change is in the audit log, by whom: the script's token, then the worker.
    let audit = request(to, "GET", "/admin/api/audit?limit=100", &[], b"").json();
    let entries: Vec<(String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let has = |actor: &str, action: &str, subject: &str| {
        entries.iter().any(|(a, b, c)| {
            a.starts_with(actor) && b == action && (subject.is_empty() || c == subject)
        })
    };
    for (actor, action, subject) in [
        ("token", "upload_created", ""),
        ("token", "film_created", "song-nuoc"),
        ("token", "job_submitted", ""),
        ("worker ", "film_published", "song-nuoc"),
        ("worker ", "track_added", "song-nuoc"),
    ] {
        assert!(
            has(actor, action, subject),
            "no {action} by {actor}: {entries:?}"
        );
    }
    // The track's upload was a submitted job, like the master's: only its worker's publish
    // says the track was added.
    let mut submitted = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "token" && e["action"] == "job_submitted")
        .map(|e| e["detail"]["kind"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    submitted.sort();
    // (The first audio track is the one whose job failed: too short for the film.)
    assert_eq!(submitted, ["audio", "audio", "master", "subtitles"]);
    assert!(
        !entries
            .iter()
            .any(|(a, b, _)| a == "token" && b == "track_added"),
        "{entries:?}"
    );
}

/// Every file under `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Waits (at most 120 s) for job `id` to end, and returns it.
fn job_over(to: SocketAddr, id: u64) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let jobs = request(to, "GET", "/admin/api/jobs", &[], b"").json();
        let job = jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .unwrap()
            .clone();
        if ["done", "failed", "cancelled"].contains(&job["state"].as_str().unwrap()) {
            return job;
        }
        assert!(Instant::now() < until, "job {id} never over: {job}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A cluster: the catalog and the job queue in a real PostgreSQL, the media in a real Garage.
/// A master and an audio track uploaded to one node become jobs there; a `monsoon worker`
/// with a data directory of its own (the node's claimed file is gone before it starts, so it
/// cannot have read the node's disk) fetches them from the store, transcodes them, and the
/// film plays from the node. The origin never serves `_incoming/`; a cancelled job's file is
/// removed at once, a job whose file is gone fails saying so, and once every job is over
/// nothing is left under `_incoming/`.
#[test]
fn a_studio_upload_is_transcoded_by_a_worker_on_another_machine() {
    use monsoon_catalog::MediaStore as _;
    let pg = monsoon_engines::postgres::Postgres::start().unwrap();
    let database = pg.create_database("monsoon").unwrap();
    let garage = monsoon_engines::garage::Garage::start().unwrap();
    let media = format!(
        "s3://{}?endpoint={}&region={}",
        garage.bucket(),
        garage.endpoint(),
        garage.region()
    );
    let storage = ["--database", database.as_str(), "--media", media.as_str()];
    let (key_id, secret) = (garage.access_key_id(), garage.secret_access_key());
    let env = [
        ("AWS_ACCESS_KEY_ID", key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ];
    let store = monsoon_store::S3Store::new(
        monsoon_store::s3::S3Url::parse(&media).unwrap(),
        monsoon_store::s3::Credentials {
            access_key_id: key_id.to_string(),
            secret_access_key: secret.to_string(),
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let incoming = || runtime.block_on(store.list("_incoming")).unwrap();

    // Two nodes behind nginx running the shipped deploy/nginx-lb.conf (its third node is the
    // first again): the uploads and the job are made through it, as the studio makes them.
    let tmp = tempfile::tempdir().unwrap();
    let datas = [tmp.path().join("a/node"), tmp.path().join("b/node")];
    let nodes: Vec<Server> = datas
        .iter()
        .map(|data| start_on(data, "", "min_free_bytes = 0", &storage, &env))
        .collect();
    let lb = Nginx::in_front(
        &tmp.path().join("nginx"),
        [nodes[0].addr(), nodes[1].addr(), nodes[0].addr()],
    );
    let to = lb.addr;
    let clip = tmp.path().join("master.mp4");
    make_clip(&clip, 6, "320x180");
    let master = std::fs::read(&clip).unwrap();
    let make_job = |upload: &str, slug: &str| {
        let id = upload.rsplit('/').next().unwrap();
        let created = new_job(to, &serde_json::json!({"upload": id, "slug": slug}));
        assert_eq!(created.status, 201, "{created:?}");
        created.json()["id"].as_u64().unwrap()
    };

    // A job made and cancelled before any worker runs: its file goes with it.
    let (upload, _) = upload_kind(to, &master, "Bỏ.mp4", "master");
    let cancelled = make_job(&upload, "bo");
    assert_eq!(incoming().len(), 1, "{:?}", incoming());
    let reply = request(
        to,
        "POST",
        &format!("/admin/api/jobs/{cancelled}/cancel"),
        &[],
        b"",
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(incoming(), Vec::<String>::new());

    // A job whose file is removed from the store before a worker takes it.
    let (upload, _) = upload_kind(to, &master, "Mất.mp4", "master");
    let gone = make_job(&upload, "mat");
    runtime
        .block_on(store.delete_prefix(&incoming()[0]))
        .unwrap();

    // The film's master, in the store under its private key, which the origin never serves.
    let (upload, _) = upload_kind(to, &master, "Sông nước.mp4", "master");
    let film = make_job(&upload, "song-nuoc");
    let keys = incoming();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    assert!(key.starts_with("_incoming/"), "{key}");
    assert_eq!(
        runtime.block_on(store.head(key)).unwrap(),
        Some(master.len() as u64)
    );
    for path in [
        format!("/media/{key}"),
        "/media/_incoming/".to_owned(),
        format!("/media/{}", key.replace('_', "%5F")),
    ] {
        let reply = request(to, "GET", &path, &[], b"");
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        assert!(!reply.body.starts_with(&master[..64]), "{path}");
    }
    for data in &datas {
        assert_eq!(
            files_under(&data.join("uploads/claimed")),
            Vec::<PathBuf>::new(),
            "the node keeps no copy: the store holds the master"
        );
    }

    // A worker with nothing of the node's.
    let worker_data = tmp.path().join("worker");
    let worker_log = std::fs::File::create(tmp.path().join("worker.log")).unwrap();
    let worker = Killed(
        Command::new(MONSOON)
            .arg("--data")
            .arg(&worker_data)
            .args(storage)
            .args(["worker", "--poll-s", "1"])
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stderr(worker_log)
            .spawn()
            .unwrap(),
    );

    let failed = job_over(to, gone);
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("is no longer in the media store"),
        "{failed}"
    );
    let done = job_done(to, film);
    assert!(
        done["message"].as_str().unwrap().contains("verified: v180"),
        "{done}"
    );
    let played = common::play_whole(&format!("http://{to}/media/song-nuoc/master.m3u8"));
    assert!(played > 5.5, "decoded only {played} s of 6");

    // An audio track, the same way.
    let dub = tmp.path().join("dub.wav");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=880",
        "-t",
        "6",
        dub.to_str().unwrap(),
    ]);
    let (audio, v) = upload_kind(to, &std::fs::read(&dub).unwrap(), "lồng tiếng.wav", "audio");
    assert_eq!(v["state"], "ready", "{v}");
    let audio = audio.rsplit('/').next().unwrap();
    let created = new_job(
        to,
        &serde_json::json!({"upload": audio, "slug": "song-nuoc", "lang": "en", "label": "English"}),
    );
    assert_eq!(created.status, 201, "{created:?}");
    job_done(to, created.json()["id"].as_u64().unwrap());
    // From a node: nginx keeps the multivariant playlist it has for its max-age (60 s).
    let until = Instant::now() + Duration::from_secs(15);
    while !String::from_utf8(
        request(
            nodes[1].addr(),
            "GET",
            "/media/song-nuoc/master.m3u8",
            &[],
            b"",
        )
        .body,
    )
    .unwrap()
    .contains("a128-en/index.m3u8")
    {
        assert!(Instant::now() < until, "the dub never reaches the playlist");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every job over: nothing is left under `_incoming/`, nor in the worker's staging.
    assert_eq!(incoming(), Vec::<String>::new());
    assert_eq!(
        files_under(&worker_data.join("staging")),
        Vec::<PathBuf>::new()
    );
    drop(worker);
}

/// A child process killed when this is dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx running the shipped `deploy/nginx-lb.conf`, with this test's addresses and paths;
/// stopped with SIGTERM when dropped (a SIGKILL would leave its worker processes behind).
struct Nginx {
    addr: SocketAddr,
    child: std::process::Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn in_front(dir: &Path, nodes: [SocketAddr; 3]) -> Self {
        let replace = |text: String, from: &str, to: &str| {
            assert!(text.contains(from), "the shipped file has no `{from}`");
            text.replace(from, to)
        };
        for sub in ["logs", "tmp", "cache"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let port = common::free_port();
        let mut lb = include_str!("../../../deploy/nginx-lb.conf").to_owned();
        lb = replace(lb, "listen 80;", &format!("listen 127.0.0.1:{port};"));
        lb = replace(
            lb,
            "/var/cache/nginx/monsoon",
            &dir.join("cache").display().to_string(),
        );
        for (shipped, node) in ["10.0.0.11:8080", "10.0.0.12:8080", "10.0.0.13:8080"]
            .iter()
            .zip(nodes)
        {
            lb = replace(lb, shipped, &node.to_string());
        }
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n\
                 events {{ worker_connections 256; }}\nhttp {{\n access_log off;\n \
                 client_body_temp_path {d}/tmp;\n proxy_temp_path {d}/tmp;\n fastcgi_temp_path {d}/tmp;\n \
                 uwsgi_temp_path {d}/tmp;\n scgi_temp_path {d}/tmp;\n{lb}\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new(common::nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .spawn()
            .unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { addr, child }
    }
}

/// Resident memory of process `pid`, bytes (`VmRSS` of `/proc/<pid>/status`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

#[test]
fn five_gib_stream_to_disk_with_the_servers_memory_flat() {
    const GIB: u64 = 1 << 30;
    const TOTAL: u64 = 5 * GIB;
    const BLOCK: usize = 1 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Needs 5 GiB free on the disk of the temporary directory (507 otherwise, saying so).
    let server = start(&data, "min_free_bytes = 0");
    let to = server.addr();
    let pid = server.child.id();

    // The file: 1 MiB of noise, its first 8 bytes the block's number, generated as sent.
    let base = noise(BLOCK, 42);
    let block = |i: u64| {
        let mut b = base.clone();
        b[..8].copy_from_slice(&i.to_le_bytes());
        b
    };
    let mut whole = sha2::Sha256::new();
    for i in 0..TOTAL / BLOCK as u64 {
        whole.update(block(i));
    }
    let digest = whole.finalize();
    let upload = create(to, TOTAL, "master.mov", Some(&digest));

    // Warm the server up, then sample its memory all along.
    let start_rss = rss(pid);
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = std::sync::Arc::clone(&sampling);
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss(pid));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    // Five PATCHes of 1 GiB, as a client with 1 GiB chunks sends them.
    let mut offset = 0;
    let mut last = None;
    while offset < TOTAL {
        let mut stream = send_head(
            to,
            "PATCH",
            &upload,
            &[
                patch_headers(offset),
                vec![("Content-Length", GIB.to_string())],
            ]
            .concat(),
        );
        for i in offset / BLOCK as u64..(offset + GIB) / BLOCK as u64 {
            stream.write_all(&block(i)).unwrap();
        }
        let reply = read_reply(stream);
        assert_eq!(reply.status, 204, "{reply:?}");
        offset += GIB;
        assert_eq!(reply.header("upload-offset"), offset.to_string());
        last = Some(reply);
    }
    let v = wait_for(to, &upload, "checked", |v| v["state"] != "verifying");
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert!(last.is_some());
    // Size and checksum passed: what refused it is the probe (noise is no film).
    assert_eq!(v["state"], "failed", "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("master.mov: not a media file"),
        "{reason}"
    );
    assert_eq!(v["offset"], TOTAL);
    assert!(
        peak < start_rss + 64 * 1024 * 1024,
        "the server's memory grew from {start_rss} to {peak} bytes while 5 GiB went through"
    );
    eprintln!("RSS: {start_rss} bytes before, {peak} at the peak");
    assert_eq!(request(to, "DELETE", &upload, &[tus()], b"").status, 204);
    assert!(files_of(&data, &upload).is_empty());
}

/// The studio's module (`web/src/upload.js`, tus-js-client) in Debian's Chromium
/// (`web/e2e/upload.mjs`): the network cut mid-upload and the page reloaded, the same file
/// resumes from the server's offset and ends `ready`, under the pages' policy.
#[test]
fn the_browser_module_resumes_after_a_network_cut_and_a_reload() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `apt-get install chromium` (scripts/install-deps.sh does)"
    );
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    assert!(
        web.join("node_modules/playwright-core").exists()
            && web.join("dist/manifest.json").exists(),
        "web/node_modules or web/dist is missing: run `make web`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // About 5 MB: five seconds at the 1 MB/s the page is throttled to, cut after the first.
    let master = tmp.path().join("Mưa đỏ.mp4");
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=25:duration=6",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=6",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-shortest",
        master.to_str().unwrap(),
    ]);
    let web_dir = format!("web_dir = {:?}", web.join("dist").to_str().unwrap());
    let server = start_with(&data, &web_dir, "min_free_bytes = 0");
    let status = Command::new("node")
        .arg(web.join("e2e/upload.mjs"))
        .current_dir(&web)
        .env("BASE_URL", &server.url)
        .env("ADMIN_TOKEN", TOKEN)
        .env("MASTER", &master)
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(status.success(), "the upload test in the browser failed");
    // The server's side: one upload, ready, the file byte for byte.
    let to = server.addr();
    let listing = request(to, "GET", PREFIX, &[], b"").json();
    let uploads = listing["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 1, "{listing}");
    let bytes = std::fs::read(&master).unwrap();
    assert_eq!(
        uploads[0]["sha256"],
        hex::encode(sha2::Sha256::digest(&bytes))
    );
    let upload = uploads[0]["url"].as_str().unwrap();
    assert_eq!(std::fs::read(&files_of(&data, upload)[0]).unwrap(), bytes);
}
