//! Media in a bucket of an S3-compatible object store (AWS S3, Garage, MinIO…), through the
//! `object_store` crate. Objects keep their keys as they are (`<slug>/<version>/…`); there is
//! no local file, so the origin serves them through its router, not with `sendfile`.
//!
//! The store is named by a URL, `s3://<bucket>?endpoint=<URL>&region=<region>`, and signs
//! with the standard AWS variables `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`. Secrets are
//! never taken from the URL: it is a setting that ends up in logs and `ps`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use monsoon_catalog::store::{check_key, walk};
use monsoon_catalog::{Error, MediaStore, Result};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use tokio::io::AsyncWriteExt;

/// How many files of a published directory are uploaded at once.
const CONCURRENT_UPLOADS: usize = 8;

/// Where the media bucket is: what an `s3://` URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// The S3 API's base URL; `None` is AWS S3 itself (`https://s3.<region>.amazonaws.com`).
    pub endpoint: Option<String>,
    pub region: String,
}

impl S3Url {
    /// Parses `s3://<bucket>?endpoint=<http(s) URL>&region=<region>` (`endpoint` optional).
    /// The error names the part at fault and the rule it breaks.
    pub fn parse(url: &str) -> std::result::Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| "an S3 media store is `s3://<bucket>?region=<region>`".to_owned())?;
        let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
        let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
        if let Some((bucket, path)) = bucket.split_once('/') {
            return Err(format!(
                "`/{path}` after bucket `{bucket}`: the media are at the root of their bucket \
                 (no path after it)"
            ));
        }
        check_bucket(bucket)?;
        let (mut endpoint, mut region) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "endpoint" => &mut endpoint,
                "region" => &mut region,
                _ if is_secret(name) => {
                    return Err(format!(
                        "`{name}`: credentials never go in the URL (it is logged); set \
                         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
                    ));
                }
                _ => {
                    return Err(format!(
                        "`{name}` is not a setting of an S3 store; there are `endpoint` and `region`"
                    ));
                }
            };
            if value.is_empty() {
                return Err(format!("`{name}` is empty"));
            }
            if slot.replace(value.to_owned()).is_some() {
                return Err(format!("`{name}` is given twice"));
            }
        }
        let region = region.ok_or_else(|| {
            "no `region`: add `?region=<the region the endpoint signs for>` (Garage's \
             `s3_region`, `garage` by default)"
                .to_owned()
        })?;
        if !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "region `{region}`: a region is letters, digits, `-` and `_`"
            ));
        }
        if let Some(endpoint) = &endpoint {
            check_endpoint(endpoint)?;
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            endpoint,
            region,
        })
    }
}

/// The S3 rules for a bucket name: 3 to 63 lowercase letters, digits, `.` and `-`, beginning
/// and ending with a letter or digit (AWS S3 User Guide, "General purpose bucket naming
/// rules").
fn check_bucket(bucket: &str) -> std::result::Result<(), String> {
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && ends_ok(bucket.chars().next())
        && ends_ok(bucket.chars().last());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bucket `{bucket}`: a bucket name is 3 to 63 lowercase letters, digits, `.` and `-`, \
             beginning and ending with a letter or digit"
        ))
    }
}

/// Names that would carry a credential.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["key", "secret", "token", "password", "credential"]
        .iter()
        .any(|word| name.contains(word))
}

/// An endpoint is an `https://` URL with a host and nothing after it; plain `http://` only to
/// this machine (objects and signatures would otherwise cross the network in clear).
fn check_endpoint(endpoint: &str) -> std::result::Result<(), String> {
    let parsed = url::Url::parse(endpoint)
        .map_err(|e| format!("endpoint `{endpoint}` is not a URL ({e})"))?;
    let host = parsed
        .host()
        .ok_or_else(|| format!("endpoint `{endpoint}` names no host"))?;
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "endpoint `{endpoint}`: an endpoint is `scheme://host[:port]` with nothing after it"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "endpoint `{endpoint}`: credentials never go in the URL (it is logged); set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
        ));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&host) => Ok(()),
        "http" => Err(format!(
            "endpoint `{endpoint}`: plain http is only for an endpoint on this machine \
             (127.0.0.1, ::1, localhost); use https"
        )),
        other => Err(format!(
            "endpoint `{endpoint}`: `{other}://` is not HTTP; use https://"
        )),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => *name == "localhost",
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The key pair requests are signed with.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// From `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, both required.
    pub fn from_env() -> std::result::Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!(
                        "{name} is not set: an S3 media store signs with AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY from the environment"
                    )
                })
        };
        Ok(Self {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
        })
    }
}

/// Media as objects in one bucket of an S3-compatible store.
#[derive(Clone)]
pub struct S3Store {
    objects: Arc<dyn ObjectStore>,
    url: S3Url,
}

impl fmt::Debug for S3Store {
    // Not the client's own: it holds the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store").field("url", &self.url).finish()
    }
}

impl S3Store {
    /// A client of the bucket `url` names (no request is made yet). Path-style requests
    /// (`<endpoint>/<bucket>/<key>`), which every S3-compatible server answers.
    pub fn new(url: S3Url, credentials: Credentials) -> Result<Self> {
        Self::with_retry(url, credentials, RetryConfig::default())
    }

    /// [`S3Store::new`] with `retry` instead of `object_store`'s default (10 retries with
    /// backoff, within 3 minutes): the tests turn retries off to see every error the server
    /// answers.
    pub(crate) fn with_retry(
        url: S3Url,
        credentials: Credentials,
        retry: RetryConfig,
    ) -> Result<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_retry(retry)
            .with_bucket_name(&url.bucket)
            .with_region(&url.region)
            .with_access_key_id(credentials.access_key_id)
            .with_secret_access_key(credentials.secret_access_key)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &url.endpoint {
            // check_endpoint let plain http through only to this machine.
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let objects = builder
            .build()
            .map_err(|e| Error::Backend(format!("S3 bucket {}: {e}", url.bucket)))?;
        Ok(Self {
            objects: Arc::new(objects),
            url,
        })
    }

    /// The store `url` names, signing with the credentials of the environment.
    pub fn from_url(url: &str) -> Result<Self> {
        let bad = |rule: String| Error::Backend(format!("media store `{url}`: {rule}"));
        Self::new(
            S3Url::parse(url).map_err(bad)?,
            Credentials::from_env().map_err(bad)?,
        )
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    fn failed(&self, what: &str, key: &str, e: object_store::Error) -> Error {
        Error::Backend(format!(
            "S3 {what} `{key}` in bucket {}: {e}",
            self.url.bucket
        ))
    }

    /// Uploads the file at `path` as `key`, in parts when it is large (`BufWriter` sends one
    /// PUT up to its capacity, a multipart upload beyond): never wholly in memory.
    async fn upload(&self, path: PathBuf, key: String) -> Result<()> {
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = tokio::fs::File::open(&path).await.map_err(io)?;
        let mut writer = BufWriter::new(Arc::clone(&self.objects), object_path(&key)?);
        let written = async {
            tokio::io::copy(&mut file, &mut writer).await?;
            writer.shutdown().await
        }
        .await;
        if let Err(e) = written {
            let _ = writer.abort().await;
            return Err(Error::Backend(format!(
                "S3 upload of {} as `{key}` in bucket {}: {e}",
                path.display(),
                self.url.bucket
            )));
        }
        Ok(())
    }
}

/// `key`, checked, as an object path (the same string).
fn object_path(key: &str) -> Result<ObjectPath> {
    check_key(key)?;
    ObjectPath::parse(key).map_err(|e| Error::Backend(format!("invalid media key `{key}`: {e}")))
}

#[async_trait]
impl MediaStore for S3Store {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = object_path(key)?;
        self.objects
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map(drop)
            .map_err(|e| self.failed("put of", key, e))
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Bytes> {
        let path = object_path(key)?;
        let not_found = || Error::NotFound(key.to_owned());
        let Some(range) = range else {
            return match self.objects.get(&path).await {
                Ok(result) => result
                    .bytes()
                    .await
                    .map_err(|e| self.failed("get of", key, e)),
                Err(object_store::Error::NotFound { .. }) => Err(not_found()),
                Err(e) => Err(self.failed("get of", key, e)),
            };
        };
        // HTTP cannot ask for no bytes (RFC 9110 §14.1.2: a range has a first byte); the
        // object must still exist.
        if range.start >= range.end {
            return match self.head(key).await? {
                Some(_) => Ok(Bytes::new()),
                None => Err(not_found()),
            };
        }
        match self.objects.get_range(&path, range.clone()).await {
            Ok(bytes) => Ok(bytes),
            Err(object_store::Error::NotFound { .. }) => Err(not_found()),
            // A range starting at or past the end is unsatisfiable (RFC 9110 §15.5.17); the
            // contract clamps it to nothing.
            Err(e) => match self.head(key).await? {
                None => Err(not_found()),
                Some(len) if range.start >= len => Ok(Bytes::new()),
                Some(_) => Err(self.failed("get of", key, e)),
            },
        }
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = object_path(key)?;
        match self.objects.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("head of", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let path = object_path(prefix)?;
        // object_store lists by whole segments: `s/v1` lists `s/v1/…`, never `s/v10/…`.
        let mut keys: Vec<String> = self
            .objects
            .list(Some(&path))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|e| self.failed("listing of", prefix, e))?;
        // A prefix may be a key itself.
        if self.head(prefix).await?.is_some() {
            keys.push(prefix.to_owned());
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let keys = self.list(prefix).await?;
        let paths = keys
            .iter()
            .map(|key| object_path(key))
            .collect::<Result<Vec<_>>>()?;
        // One DeleteObjects request per thousand keys.
        let mut deleted = self
            .objects
            .delete_stream(futures_util::stream::iter(paths.into_iter().map(Ok)).boxed());
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed("deletion under", prefix, e)),
            }
        }
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let (source, target) = (object_path(from)?, object_path(to)?);
        // CopyObject: the bytes stay in the store.
        match self.objects.copy(&source, &target).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Err(Error::NotFound(from.to_owned())),
            Err(e) => Err(self.failed("copy of", from, e)),
        }
    }

    async fn put_file(&self, key: &str, file: &Path) -> Result<()> {
        check_key(key)?;
        self.upload(file.to_owned(), key.to_owned()).await
    }

    async fn get_file(&self, key: &str, file: &Path) -> Result<u64> {
        let path = object_path(key)?;
        let result = match self.objects.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::NotFound(key.to_owned()));
            }
            Err(e) => return Err(self.failed("get of", key, e)),
        };
        let io = |source| Error::Io {
            path: file.display().to_string(),
            source,
        };
        let mut out = tokio::fs::File::create(file).await.map_err(io)?;
        // The body as it arrives, chunk by chunk: never whole in memory.
        let mut body = result.into_stream();
        let mut written = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.failed("get of", key, e))?;
            out.write_all(&chunk).await.map_err(io)?;
            written += chunk.len() as u64;
        }
        out.sync_all().await.map_err(io)?;
        Ok(written)
    }

    async fn publish_dir(&self, staging: &Path, prefix: &str) -> Result<()> {
        check_key(prefix)?;
        if !self.list(prefix).await?.is_empty() {
            return Err(Error::Backend(format!(
                "{prefix} already exists in bucket {}; versions are never overwritten",
                self.url.bucket
            )));
        }
        let root = staging.to_owned();
        let files = tokio::task::spawn_blocking(move || {
            let mut files = Vec::new();
            walk(&root, &root, &mut files).map(|()| files)
        })
        .await
        .map_err(|e| Error::Backend(format!("a file task failed: {e}")))??;
        let uploaded = futures_util::stream::iter(files)
            .map(|(relative, path)| self.upload(path, format!("{prefix}/{relative}")))
            .buffer_unordered(CONCURRENT_UPLOADS)
            .try_collect::<Vec<()>>()
            .await;
        if let Err(e) = uploaded {
            // Leave no half version behind, so that publishing it again can succeed.
            let _ = self.delete_prefix(prefix).await;
            return Err(e);
        }
        // Every object is written: staging is consumed, as a rename would.
        tokio::fs::remove_dir_all(staging)
            .await
            .map_err(|source| Error::Io {
                path: staging.display().to_string(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use monsoon_catalog::store::conformance;
    use monsoon_engines::garage::Garage;

    use super::*;

    #[test]
    fn an_s3_url_names_bucket_endpoint_and_region() {
        assert_eq!(
            S3Url::parse("s3://media?endpoint=http://127.0.0.1:3900&region=garage").unwrap(),
            S3Url {
                bucket: "media".into(),
                endpoint: Some("http://127.0.0.1:3900".into()),
                region: "garage".into(),
            }
        );
        assert_eq!(
            S3Url::parse("s3://my.media-1/?region=eu-west-3").unwrap(),
            S3Url {
                bucket: "my.media-1".into(),
                endpoint: None,
                region: "eu-west-3".into(),
            }
        );
        assert!(S3Url::parse("s3://media?region=garage&endpoint=https://s3.example.org").is_ok());
        assert!(S3Url::parse("s3://media?region=garage&endpoint=http://[::1]:3900").is_ok());
        assert!(S3Url::parse("s3://media?region=garage&endpoint=http://localhost:3900").is_ok());
    }

    #[test]
    fn a_bad_s3_url_is_refused_naming_the_value_and_the_rule() {
        for (url, names, rule) in [
            ("file://media", "s3://", "s3://<bucket>"),
            ("s3://?region=garage", "bucket ``", "3 to 63"),
            ("s3://Media?region=garage", "`Media`", "lowercase"),
            (
                "s3://-media?region=garage",
                "`-media`",
                "beginning and ending",
            ),
            (
                "s3://media/films?region=garage",
                "`/films`",
                "root of their bucket",
            ),
            ("s3://media", "`region`", "region="),
            ("s3://media?region=eu west", "`eu west`", "letters, digits"),
            ("s3://media?region=a&region=b", "`region`", "twice"),
            ("s3://media?region=", "`region`", "empty"),
            (
                "s3://media?region=garage&bucket=x",
                "`bucket`",
                "`endpoint` and `region`",
            ),
            (
                "s3://media?region=garage&secret_access_key=x",
                "`secret_access_key`",
                "never go in the URL",
            ),
            (
                "s3://media?region=garage&access_key_id=x",
                "`access_key_id`",
                "environment",
            ),
            (
                "s3://media?region=garage&endpoint=http://u:p@127.0.0.1:3900",
                "http://u:p@127.0.0.1:3900",
                "never go in the URL",
            ),
            (
                "s3://media?region=garage&endpoint=http://s3.example.org",
                "http://s3.example.org",
                "use https",
            ),
            (
                "s3://media?region=garage&endpoint=ftp://127.0.0.1",
                "ftp://127.0.0.1",
                "not HTTP",
            ),
            (
                "s3://media?region=garage&endpoint=nowhere",
                "`nowhere`",
                "not a URL",
            ),
            (
                "s3://media?region=garage&endpoint=https://s3.example.org/media",
                "https://s3.example.org/media",
                "nothing after it",
            ),
        ] {
            let message = S3Url::parse(url).unwrap_err();
            assert!(
                message.contains(names) && message.contains(rule),
                "{url}: {message}"
            );
        }
    }

    #[test]
    fn credentials_never_show_their_secret() {
        let credentials = Credentials {
            access_key_id: "GK1234".into(),
            secret_access_key: "very-secret".into(),
        };
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("GK1234") && !shown.contains("very-secret"),
            "{shown}"
        );
    }

    /// A store on the bucket of a real Garage started for the test.
    async fn garage() -> (Garage, S3Store) {
        let garage = tokio::task::spawn_blocking(Garage::start)
            .await
            .unwrap()
            .expect("starting Garage");
        let store = store_at(&garage, &garage.endpoint(), RetryConfig::default());
        (garage, store)
    }

    /// A real Garage cluster of `n` nodes (replication factor `n`) started for the test.
    async fn garage_cluster(n: usize) -> Garage {
        tokio::task::spawn_blocking(move || Garage::start_cluster(n))
            .await
            .unwrap()
            .expect("starting a Garage cluster")
    }

    /// A store on `garage`'s bucket through the node whose S3 API is `endpoint`.
    fn store_at(garage: &Garage, endpoint: &str, retry: RetryConfig) -> S3Store {
        let url = S3Url::parse(&format!(
            "s3://{}?endpoint={endpoint}&region={}",
            garage.bucket(),
            garage.region()
        ))
        .unwrap();
        let credentials = Credentials {
            access_key_id: garage.access_key_id().to_owned(),
            secret_access_key: garage.secret_access_key().to_owned(),
        };
        S3Store::with_retry(url, credentials, retry).unwrap()
    }

    /// No retry by the client: an error Garage answers (or a refused connection) is an error
    /// of the call, never hidden by `object_store` asking again.
    fn no_retry() -> RetryConfig {
        RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_s3_store_keeps_the_contract() {
        let (_garage, store) = garage().await;
        conformance::run(&store).await;
        assert_eq!(store.local_path("film/v1/master.m3u8"), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_s3_store_keeps_the_contract_on_a_three_node_cluster() {
        let garage = garage_cluster(3).await;
        assert_eq!(garage.endpoints().len(), 3);
        // Through the second node: any node answers for the whole cluster.
        let store = store_at(&garage, &garage.endpoints()[1], no_retry());
        conformance::run(&store).await;
    }

    /// A published version: `count` files of sizes from a few bytes to past Garage's 1 MiB
    /// block size (so some objects are several blocks), each of its own bytes.
    fn write_version(dir: &Path, count: usize) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for i in 0..count {
            let name = if i == 0 {
                "master.m3u8".to_owned()
            } else {
                format!("v{}/seg_{i:05}.m4s", [180, 360, 720][i % 3])
            };
            let size = [7, 4_096, 65_536 + i, 1_048_576 + 3 * i, 2_621_440 + i][i % 5];
            let bytes: Vec<u8> = (0..size).map(|b| ((b * 31 + i * 7) % 251) as u8).collect();
            let path = dir.join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            files.push((name, bytes));
        }
        files
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_killed_garage_node_causes_no_read_error() {
        let mut garage = garage_cluster(3).await;
        let endpoints = garage.endpoints();
        let tmp = tempfile::tempdir().unwrap();
        let staging = tmp.path().join("staging");
        let files = write_version(&staging, 30);
        let total: usize = files.iter().map(|(_, bytes)| bytes.len()).sum();
        // Published through node 0, which then crashes: whatever it acknowledged was on a
        // quorum (two of three) before the answer.
        store_at(&garage, &endpoints[0], RetryConfig::default())
            .publish_dir(&staging, "film/v1")
            .await
            .unwrap();
        garage.kill_node(0).unwrap();
        assert!(
            garage.kill_node(0).is_err(),
            "a node cannot be killed twice"
        );

        // Every object, read whole through each surviving node with no client retry.
        let (mut reads, mut errors) = (0, Vec::new());
        for endpoint in &endpoints[1..] {
            let store = store_at(&garage, endpoint, no_retry());
            for (name, bytes) in &files {
                let key = format!("film/v1/{name}");
                reads += 1;
                match store.get(&key, None).await {
                    Ok(read) => assert!(
                        read == bytes.as_slice(),
                        "{key} through {endpoint}: {} bytes read, {} published, or other bytes",
                        read.len(),
                        bytes.len()
                    ),
                    Err(e) => errors.push(format!("{key} through {endpoint}: {e}")),
                }
            }
        }
        eprintln!(
            "node 0 of 3 killed: {reads} reads of {} objects ({total} bytes) through nodes 1 \
             and 2, {} errors",
            files.len(),
            errors.len()
        );
        assert!(
            errors.is_empty(),
            "{} read errors: {errors:#?}",
            errors.len()
        );
        assert_eq!(reads, 2 * files.len());

        // And the two survivors still make a write quorum.
        let store = store_at(&garage, &endpoints[1], no_retry());
        store
            .put("film/v2/master.m3u8", Bytes::from_static(b"#EXTM3U\n"))
            .await
            .unwrap();
        let other = store_at(&garage, &endpoints[2], no_retry());
        assert_eq!(
            other.get("film/v2/master.m3u8", None).await.unwrap(),
            Bytes::from_static(b"#EXTM3U\n")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ranges_s3_cannot_express_are_clamped_as_the_contract_says() {
        let (_garage, store) = garage().await;
        store
            .put("film/v1/seg.m4s", Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        // Starting at or past the end: S3 answers 416; the contract, nothing.
        for range in [10..20, 50..60] {
            assert_eq!(
                store.get("film/v1/seg.m4s", Some(range)).await.unwrap(),
                Bytes::new()
            );
        }
        // Empty: HTTP has no such range.
        assert_eq!(
            store.get("film/v1/seg.m4s", Some(4..4)).await.unwrap(),
            Bytes::new()
        );
        for range in [None, Some(0..1), Some(4..4), Some(50..60)] {
            assert!(matches!(
                store.get("film/v1/none.m4s", range).await,
                Err(Error::NotFound(_))
            ));
        }
        // A key is a prefix of itself, as on disk.
        assert_eq!(
            store.list("film/v1/seg.m4s").await.unwrap(),
            vec!["film/v1/seg.m4s".to_owned()]
        );
        store.delete_prefix("film/v1/seg.m4s").await.unwrap();
        assert_eq!(store.head("film/v1/seg.m4s").await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_file_larger_than_one_part_is_published_whole() {
        let (_garage, store) = garage().await;
        let tmp = tempfile::tempdir().unwrap();
        let staging = tmp.path().join("staging");
        std::fs::create_dir_all(staging.join("v1080")).unwrap();
        // Past BufWriter's 10 MiB capacity: a multipart upload of three parts.
        let big: Vec<u8> = (0..25 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(staging.join("v1080/seg_00000.m4s"), &big).unwrap();
        std::fs::write(staging.join("master.m3u8"), b"#EXTM3U\n").unwrap();
        store.publish_dir(&staging, "film/v1").await.unwrap();
        assert!(!staging.exists(), "staging is consumed");
        let key = "film/v1/v1080/seg_00000.m4s";
        assert_eq!(store.head(key).await.unwrap(), Some(big.len() as u64));
        assert_eq!(
            store.get(key, None).await.unwrap(),
            Bytes::from(big.clone())
        );
        let (start, end) = (10 * 1024 * 1024 - 3, 10 * 1024 * 1024 + 5);
        assert_eq!(
            store
                .get(key, Some(start as u64..end as u64))
                .await
                .unwrap(),
            Bytes::copy_from_slice(&big[start..end]),
            "a range across two parts"
        );
    }

    /// Peak resident memory of this process (`VmHWM`), bytes.
    fn peak_rss() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// A master of hundreds of megabytes goes into the store and back out (`put_file`,
    /// `get_file`) byte for byte with this process's peak memory far below its size: both are
    /// streamed, a multipart upload in and the response body chunk by chunk out.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_large_file_goes_in_and_out_with_memory_flat() {
        use std::io::{Read, Write};
        const SIZE: u64 = 384 * 1024 * 1024;
        let (_garage, store) = garage().await;
        let tmp = tempfile::tempdir().unwrap();
        let (file, back) = (tmp.path().join("master.mov"), tmp.path().join("back.mov"));
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
            let chunk: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
            for n in 0..SIZE / chunk.len() as u64 {
                out.write_all(&n.to_le_bytes()).unwrap();
                out.write_all(&chunk[8..]).unwrap();
            }
        }
        let key = "_incoming/0123abcd/0123abcd.mov";
        store.put_file(key, &file).await.unwrap();
        assert_eq!(store.head(key).await.unwrap(), Some(SIZE));
        assert_eq!(store.get_file(key, &back).await.unwrap(), SIZE);
        let peak = peak_rss();
        assert!(
            peak < SIZE / 2,
            "peak memory {} MiB for a file of {} MiB",
            peak >> 20,
            SIZE >> 20
        );
        let (mut a, mut b) = (
            std::fs::File::open(&file).unwrap(),
            std::fs::File::open(&back).unwrap(),
        );
        let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
        loop {
            let n = a.read(&mut x).unwrap();
            b.read_exact(&mut y[..n]).unwrap();
            assert!(x[..n] == y[..n], "the copy differs");
            if n == 0 {
                break;
            }
        }
        assert_eq!(b.read(&mut y).unwrap(), 0, "the copy is longer");
        eprintln!(
            "peak memory {} MiB for {} MiB in and out",
            peak >> 20,
            SIZE >> 20
        );
        store.delete_prefix("_incoming").await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_wrong_secret_is_an_error_never_an_empty_store() {
        let (garage, _store) = garage().await;
        let url = S3Url::parse(&format!(
            "s3://{}?endpoint={}&region={}",
            garage.bucket(),
            garage.endpoint(),
            garage.region()
        ))
        .unwrap();
        let store = S3Store::new(
            url,
            Credentials {
                access_key_id: garage.access_key_id().to_owned(),
                secret_access_key: "0".repeat(64),
            },
        )
        .unwrap();
        assert!(store.head("film/v1/master.m3u8").await.is_err());
        assert!(store.list("film").await.is_err());
        assert!(matches!(
            store.get("film/v1/master.m3u8", None).await,
            Err(Error::Backend(_))
        ));
    }
}
