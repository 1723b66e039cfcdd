//! The media store: where packaged media lives, as objects under `/`-separated keys such as
//! `<slug>/<version>/v720/seg_00001.m4s`.
//!
//! The calls are the ones an object store has (put, get with a range, head, list, delete),
//! plus publishing a finished staging directory, so that an S3-compatible backend implements
//! the same trait as the local disk. Sending a file without copying it through user space
//! (`sendfile`) is an optional capability, [`MediaStore::local_path`]: the local store has it,
//! a remote one does not, and the HTTP fast path then hands the request to the router.
//! `crates/store` holds the concrete stores; [`MemoryStore`] and [`conformance::run`] are here
//! so that every backend is held to the same contract.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Error, Result};

#[async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug {
    /// Writes `bytes` as object `key`, replacing it. Durable when it returns.
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()>;

    /// Object `key`, whole or bytes `range` of it (clamped to its end); [`Error::NotFound`]
    /// if there is none.
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Bytes>;

    /// The size of object `key`, or `None` if there is none.
    async fn head(&self, key: &str) -> Result<Option<u64>>;

    /// The keys under `prefix` (a key, or a path of keys ending before a `/`), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Removes everything under `prefix`. A missing prefix is not an error.
    async fn delete_prefix(&self, prefix: &str) -> Result<()>;

    /// Publishes a finished, fsynced directory from staging under `prefix`, which must not
    /// exist yet: every file becomes the object `prefix/<its path>`. On local disk this is
    /// one rename (every file appears at once); an object store writes every object before it
    /// returns. Either way the catalog records the version only after, so a published
    /// playlist never names a missing object.
    async fn publish_dir(&self, staging: &Path, prefix: &str) -> Result<()>;

    /// Copies object `from` to `to` (replacing it) inside the store, without its bytes passing
    /// through this process where the backend can: a hard link on local disk, a server-side
    /// copy on S3. A new version that keeps an old one's media (an added audio track) carries
    /// it this way. [`Error::NotFound`] if `from` does not exist.
    async fn copy(&self, from: &str, to: &str) -> Result<()>;

    /// Writes the local file `file` as object `key` (replacing it), streamed: never whole in
    /// memory, so a master of many gigabytes keeps the process flat. A hard link on local disk
    /// where the file system allows it (the file must then not be written again), a multipart
    /// upload on S3. `file` stays where it is.
    async fn put_file(&self, key: &str, file: &Path) -> Result<()>;

    /// Writes object `key` to the local file `file` (created or replaced; its directory must
    /// exist), streamed, and returns its size. [`Error::NotFound`] if there is none. By
    /// default in ranged reads of [`GET_FILE_CHUNK`] bytes.
    async fn get_file(&self, key: &str, file: &Path) -> Result<u64> {
        use std::io::Write;
        let size = self
            .head(key)
            .await?
            .ok_or_else(|| Error::NotFound(key.to_owned()))?;
        let io = |source| Error::Io {
            path: file.display().to_string(),
            source,
        };
        let mut out = std::fs::File::create(file).map_err(io)?;
        let mut at = 0;
        while at < size {
            let end = (at + GET_FILE_CHUNK).min(size);
            let bytes = self.get(key, Some(at..end)).await?;
            if bytes.is_empty() {
                return Err(Error::Backend(format!(
                    "object `{key}` ended at {at} bytes of {size} while it was read"
                )));
            }
            out.write_all(&bytes).map_err(io)?;
            at += bytes.len() as u64;
        }
        out.sync_all().map_err(io)?;
        Ok(at)
    }

    /// The local file of object `key`, for backends that keep objects as files (the delivery
    /// path sends those without copying them through user space). `None` by default.
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }
}

/// Bytes a default [`MediaStore::get_file`] reads at once.
pub const GET_FILE_CHUNK: u64 = 8 * 1024 * 1024;

/// The private prefix of uploaded files on their way to a worker (`_incoming/<upload id>/<file
/// name>`, `monsoon_catalog::jobs::Incoming`). A slug never starts with `_` (`validate_slug`),
/// so no film's key is under it, and the origin serves only keys of a published version's
/// object index: nothing here is ever served.
pub const INCOMING_PREFIX: &str = "_incoming";

/// Checks that `key` is a clean object key: non-empty parts, none `.` or `..`, no
/// backslash, no NUL. Keys come from the catalog and the router; still, never let one escape.
pub fn check_key(key: &str) -> Result<()> {
    let clean = key.split('/').all(|part| {
        !part.is_empty() && part != "." && part != ".." && !part.contains(['\\', '\0'])
    });
    if clean {
        Ok(())
    } else {
        Err(Error::Backend(format!("invalid media key `{key}`")))
    }
}

/// Whether `key` is `prefix` or lies under it.
pub fn under(key: &str, prefix: &str) -> bool {
    key == prefix
        || key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Bytes `range` of `bytes`, clamped to its end.
pub fn slice(bytes: &Bytes, range: Option<Range<u64>>) -> Bytes {
    match range {
        None => bytes.clone(),
        Some(r) => {
            let len = bytes.len() as u64;
            let (start, end) = (r.start.min(len), r.end.min(len));
            bytes.slice(start as usize..end.max(start) as usize)
        }
    }
}

/// Objects in memory: for tests of everything above the store (the router's in-process
/// tests, the publish protocol) and as the reference of the contract.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl MediaStore for MemoryStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        check_key(key)?;
        self.objects().insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Bytes> {
        check_key(key)?;
        let bytes = self
            .objects()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound(key.to_owned()))?;
        Ok(slice(&bytes, range))
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        check_key(key)?;
        Ok(self.objects().get(key).map(|b| b.len() as u64))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        check_key(prefix)?;
        Ok(self
            .objects()
            .keys()
            .filter(|k| under(k, prefix))
            .cloned()
            .collect())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        check_key(prefix)?;
        self.objects().retain(|k, _| !under(k, prefix));
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        check_key(from)?;
        check_key(to)?;
        let mut objects = self.objects();
        let bytes = objects
            .get(from)
            .cloned()
            .ok_or_else(|| Error::NotFound(from.to_owned()))?;
        objects.insert(to.to_owned(), bytes);
        Ok(())
    }

    async fn put_file(&self, key: &str, file: &Path) -> Result<()> {
        check_key(key)?;
        // In memory by nature: this store is for tests.
        let bytes = std::fs::read(file).map_err(|source| Error::Io {
            path: file.display().to_string(),
            source,
        })?;
        self.objects().insert(key.to_owned(), Bytes::from(bytes));
        Ok(())
    }

    async fn publish_dir(&self, staging: &Path, prefix: &str) -> Result<()> {
        check_key(prefix)?;
        if !self.list(prefix).await?.is_empty() {
            return Err(Error::Backend(format!(
                "{prefix} already exists; versions are never overwritten"
            )));
        }
        let mut files = Vec::new();
        walk(staging, staging, &mut files)?;
        let mut objects = BTreeMap::new();
        for (relative, path) in files {
            let bytes = std::fs::read(&path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })?;
            objects.insert(format!("{prefix}/{relative}"), Bytes::from(bytes));
        }
        self.objects().extend(objects);
        std::fs::remove_dir_all(staging).map_err(|source| Error::Io {
            path: staging.display().to_string(),
            source,
        })
    }
}

/// Every file under `dir`, as (its path relative to `root` with `/`, its path).
pub fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((relative.join("/"), path));
        }
    }
    Ok(())
}

/// The contract of [`MediaStore`], as a suite any backend runs: `conformance::run(&store)`
/// on a fresh, empty store (feature `conformance`). A broken promise panics.
#[cfg(any(test, feature = "conformance"))]
#[allow(clippy::unwrap_used)]
pub mod conformance {
    use bytes::Bytes;

    use super::MediaStore;
    use crate::Error;

    pub async fn run(store: &dyn MediaStore) {
        objects_round_trip_with_ranges(store).await;
        listing_and_deleting_follow_prefixes(store).await;
        publishing_a_directory_makes_every_file_an_object_once(store).await;
        keys_never_escape(store).await;
        copies_carry_an_object_whole(store).await;
        files_go_in_and_come_out_whole(store).await;
    }

    /// `put_file` and `get_file`: the same bytes, the source file left in place, a missing
    /// object `NotFound`, bad keys refused.
    async fn files_go_in_and_come_out_whole(store: &dyn MediaStore) {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("master.mov");
        // Past one default chunk, so a ranged reader reads more than once.
        let body: Vec<u8> = (0..super::GET_FILE_CHUNK + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&file, &body).unwrap();
        let key = format!("{}/0123abcd/0123abcd.mov", super::INCOMING_PREFIX);
        store.put_file(&key, &file).await.unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), body, "the file stays");
        assert_eq!(store.head(&key).await.unwrap(), Some(body.len() as u64));
        let back = tmp.path().join("back.mov");
        assert_eq!(
            store.get_file(&key, &back).await.unwrap(),
            body.len() as u64
        );
        assert_eq!(std::fs::read(&back).unwrap(), body);
        // Replaced by a second put; the first copy out is unchanged.
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, b"short").unwrap();
        store.put_file(&key, &file).await.unwrap();
        assert_eq!(store.head(&key).await.unwrap(), Some(5));
        assert_eq!(std::fs::read(&back).unwrap(), body);
        store.delete_prefix(super::INCOMING_PREFIX).await.unwrap();
        assert!(matches!(
            store.get_file(&key, &back).await,
            Err(Error::NotFound(_))
        ));
        assert!(store.put_file("../x", &file).await.is_err());
        assert!(store.get_file("a//b", &back).await.is_err());
    }

    /// A copy is the same bytes under another key; the original stays; a missing one is
    /// `NotFound`; a copy replaces what was there.
    async fn copies_carry_an_object_whole(store: &dyn MediaStore) {
        let body = Bytes::from_static(b"segment bytes");
        store.put("c/v1/a/seg.m4s", body.clone()).await.unwrap();
        store
            .copy("c/v1/a/seg.m4s", "c/v2/a/seg.m4s")
            .await
            .unwrap();
        assert_eq!(store.get("c/v2/a/seg.m4s", None).await.unwrap(), body);
        assert_eq!(store.get("c/v1/a/seg.m4s", None).await.unwrap(), body);
        assert!(matches!(
            store.copy("c/v1/a/none.m4s", "c/v2/a/none.m4s").await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(store.head("c/v2/a/none.m4s").await.unwrap(), None);
        store
            .put("c/v1/b.m4s", Bytes::from_static(b"b"))
            .await
            .unwrap();
        store.copy("c/v1/b.m4s", "c/v2/a/seg.m4s").await.unwrap();
        assert_eq!(
            store.get("c/v2/a/seg.m4s", None).await.unwrap(),
            Bytes::from_static(b"b")
        );
        // Deleting one version leaves the other's copy.
        store.delete_prefix("c/v1").await.unwrap();
        assert_eq!(
            store.get("c/v2/a/seg.m4s", None).await.unwrap(),
            Bytes::from_static(b"b")
        );
        assert!(store.copy("c/v2/a/seg.m4s", "../x").await.is_err());
        store.delete_prefix("c").await.unwrap();
    }

    async fn objects_round_trip_with_ranges(store: &dyn MediaStore) {
        let body = Bytes::from_static(b"0123456789");
        store.put("film/v1/a/seg.m4s", body.clone()).await.unwrap();
        assert_eq!(store.get("film/v1/a/seg.m4s", None).await.unwrap(), body);
        assert_eq!(
            store.get("film/v1/a/seg.m4s", Some(2..5)).await.unwrap(),
            Bytes::from_static(b"234")
        );
        assert_eq!(
            store.get("film/v1/a/seg.m4s", Some(8..100)).await.unwrap(),
            Bytes::from_static(b"89"),
            "a range past the end is clamped"
        );
        assert_eq!(store.head("film/v1/a/seg.m4s").await.unwrap(), Some(10));
        assert_eq!(store.head("film/v1/a/none.m4s").await.unwrap(), None);
        assert!(matches!(
            store.get("film/v1/a/none.m4s", None).await,
            Err(Error::NotFound(_))
        ));
        // A put replaces.
        store
            .put("film/v1/a/seg.m4s", Bytes::from_static(b"new"))
            .await
            .unwrap();
        assert_eq!(store.head("film/v1/a/seg.m4s").await.unwrap(), Some(3));
        store.delete_prefix("film").await.unwrap();
    }

    async fn listing_and_deleting_follow_prefixes(store: &dyn MediaStore) {
        for key in ["s/v1/x.m4s", "s/v1/sub/y.m4s", "s/v10/z.m4s", "t/v1/x.m4s"] {
            store.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        assert_eq!(
            store.list("s/v1").await.unwrap(),
            vec!["s/v1/sub/y.m4s".to_owned(), "s/v1/x.m4s".to_owned()],
            "`s/v1` is not a prefix of `s/v10`"
        );
        store.delete_prefix("s/v1").await.unwrap();
        assert!(store.list("s/v1").await.unwrap().is_empty());
        assert_eq!(
            store.list("s").await.unwrap(),
            vec!["s/v10/z.m4s".to_owned()]
        );
        store.delete_prefix("s/v1").await.unwrap(); // missing: fine
        store.delete_prefix("s").await.unwrap();
        store.delete_prefix("t").await.unwrap();
        assert!(store.list("t").await.unwrap().is_empty());
    }

    async fn publishing_a_directory_makes_every_file_an_object_once(store: &dyn MediaStore) {
        let tmp = tempfile::tempdir().unwrap();
        let staging = tmp.path().join("staging");
        std::fs::create_dir_all(staging.join("v360")).unwrap();
        std::fs::write(staging.join("master.m3u8"), b"#EXTM3U\n").unwrap();
        std::fs::write(staging.join("v360/seg_00000.m4s"), b"seg").unwrap();
        store.publish_dir(&staging, "film/v2").await.unwrap();
        assert_eq!(
            store.list("film/v2").await.unwrap(),
            vec![
                "film/v2/master.m3u8".to_owned(),
                "film/v2/v360/seg_00000.m4s".to_owned()
            ]
        );
        assert_eq!(
            store.get("film/v2/v360/seg_00000.m4s", None).await.unwrap(),
            Bytes::from_static(b"seg")
        );
        // Versions are never overwritten.
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("master.m3u8"), b"other").unwrap();
        assert!(store.publish_dir(&staging, "film/v2").await.is_err());
        assert_eq!(
            store.get("film/v2/master.m3u8", None).await.unwrap(),
            Bytes::from_static(b"#EXTM3U\n")
        );
        store.delete_prefix("film").await.unwrap();
    }

    async fn keys_never_escape(store: &dyn MediaStore) {
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "a//b",
            "/abs",
            "a/./b",
            "a\\..\\b",
            "",
        ] {
            assert!(store.get(bad, None).await.is_err(), "{bad}");
            assert!(store.put(bad, Bytes::new()).await.is_err(), "{bad}");
            assert!(store.delete_prefix(bad).await.is_err(), "{bad}");
            assert_eq!(store.local_path(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_keeps_the_contract() {
        conformance::run(&MemoryStore::new()).await;
    }
}
