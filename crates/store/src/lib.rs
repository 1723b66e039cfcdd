//! The concrete media stores behind `monsoon_catalog::MediaStore`. [`LocalStore`] keeps every
//! object as a file under one root directory (`data/media/`, the default); [`S3Store`] keeps
//! them in a bucket of an S3-compatible object store (`s3.rs`). Domain crates never depend on
//! this one: the binary picks a store and hands it over as `Arc<dyn MediaStore>`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use monsoon_catalog::store::{check_key, walk};
use monsoon_catalog::{Error, MediaStore, Result};

pub mod s3;
pub use s3::S3Store;

/// Media on the local filesystem under one root directory. It offers the local-file
/// capability, so the origin sends its objects with `sendfile`.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Backend(format!("a file task failed: {e}")))?
}

/// Makes a rename or a new entry in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl MediaStore for LocalStore {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        let path = self.path_of(key)?;
        blocking(move || {
            let dir = path
                .parent()
                .ok_or_else(|| Error::Backend(format!("{} has no directory", path.display())))?
                .to_owned();
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            // A temporary name, fsynced, then renamed: a reader sees the old object or the new
            // one, never half of it, and a crash leaves one of the two.
            let tmp = dir.join(format!(
                ".{}.tmp",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            ));
            let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            file.write_all(&bytes).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            sync_dir(&dir)
        })
        .await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Bytes> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        blocking(move || {
            let mut file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NotFound(key));
                }
                Err(e) => return Err(io(&path)(e)),
            };
            let mut bytes = Vec::new();
            match range {
                None => {
                    file.read_to_end(&mut bytes).map_err(io(&path))?;
                }
                Some(r) => {
                    let len = file.metadata().map_err(io(&path))?.len();
                    let (start, end) = (r.start.min(len), r.end.min(len).max(r.start.min(len)));
                    file.seek(SeekFrom::Start(start)).map_err(io(&path))?;
                    bytes.resize((end - start) as usize, 0);
                    file.read_exact(&mut bytes).map_err(io(&path))?;
                }
            }
            Ok(Bytes::from(bytes))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<u64>> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let path = self.path_of(prefix)?;
        let prefix = prefix.to_owned();
        blocking(move || {
            let mut files = Vec::new();
            if path.is_file() {
                return Ok(vec![prefix]);
            }
            if !path.is_dir() {
                return Ok(Vec::new());
            }
            walk(&path, &path, &mut files)?;
            let mut keys: Vec<String> = files
                .into_iter()
                // Temporary files of a write in progress are not objects.
                .filter(|(relative, _)| {
                    !relative
                        .rsplit('/')
                        .next()
                        .is_some_and(|n| n.starts_with('.'))
                })
                .map(|(relative, _)| format!("{prefix}/{relative}"))
                .collect();
            keys.sort();
            Ok(keys)
        })
        .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let path = self.path_of(prefix)?;
        let removed = if path.is_dir() {
            tokio::fs::remove_dir_all(&path).await
        } else {
            tokio::fs::remove_file(&path).await
        };
        match removed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let (source, target) = (self.path_of(from)?, self.path_of(to)?);
        let from = from.to_owned();
        blocking(move || {
            if !source.is_file() {
                return Err(Error::NotFound(from));
            }
            // The same inode, no bytes copied (published objects are never written again, so
            // sharing is safe).
            link_or_copy(&source, &target)
        })
        .await
    }

    async fn put_file(&self, key: &str, file: &Path) -> Result<()> {
        let target = self.path_of(key)?;
        let source = file.to_owned();
        blocking(move || link_or_copy(&source, &target)).await
    }

    async fn get_file(&self, key: &str, file: &Path) -> Result<u64> {
        let source = self.path_of(key)?;
        let (key, target) = (key.to_owned(), file.to_owned());
        blocking(move || {
            if !source.is_file() {
                return Err(Error::NotFound(key));
            }
            link_or_copy(&source, &target)?;
            Ok(std::fs::metadata(&target).map_err(io(&target))?.len())
        })
        .await
    }

    async fn publish_dir(&self, staging: &Path, prefix: &str) -> Result<()> {
        let target = self.path_of(prefix)?;
        let parent = target
            .parent()
            .ok_or_else(|| Error::Backend(format!("media key `{prefix}` has no parent")))?
            .to_owned();
        let staging = staging.to_owned();
        blocking(move || {
            std::fs::create_dir_all(&parent).map_err(io(&parent))?;
            if target.exists() {
                return Err(Error::Backend(format!(
                    "{} already exists; versions are never overwritten",
                    target.display()
                )));
            }
            // One rename: every file of the version appears at once.
            std::fs::rename(&staging, &target).map_err(io(&target))?;
            sync_dir(&parent)
        })
        .await
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path_of(key).ok()
    }
}

/// `target` as the file `source` is (replacing it): a hard link under a temporary name,
/// renamed over it, so no byte is copied; across file systems a copy, fsynced. Either way a
/// reader of `target` sees the old file or the whole new one.
fn link_or_copy(source: &Path, target: &Path) -> Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| Error::Backend(format!("{} has no directory", target.display())))?
        .to_owned();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        target
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(source, &tmp).is_err() {
        std::fs::copy(source, &tmp).map_err(io(&tmp))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, target).map_err(io(target))?;
    sync_dir(&dir)
}

#[cfg(test)]
mod tests {
    use monsoon_catalog::store::conformance;

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_local_store_keeps_the_contract() {
        let tmp = tempfile::tempdir().unwrap();
        conformance::run(&LocalStore::new(tmp.path().join("media"))).await;
    }

    /// On one machine a studio upload's way through the store costs no copy: `put_file` and
    /// `get_file` are hard links when the file system allows (the data directory's default).
    #[tokio::test(flavor = "multi_thread")]
    async fn files_go_in_and_out_as_hard_links() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().join("media"));
        let file = tmp.path().join("claimed.mov");
        std::fs::write(&file, b"master bytes").unwrap();
        let key = "_incoming/0123abcd/0123abcd.mov";
        store.put_file(key, &file).await.unwrap();
        let inode = std::fs::metadata(&file).unwrap().ino();
        let object = store.local_path(key).unwrap();
        assert_eq!(std::fs::metadata(&object).unwrap().ino(), inode);
        let fetched = tmp.path().join("staging/fetched.mov");
        std::fs::create_dir_all(fetched.parent().unwrap()).unwrap();
        assert_eq!(store.get_file(key, &fetched).await.unwrap(), 12);
        assert_eq!(std::fs::metadata(&fetched).unwrap().ino(), inode);
        // Removing the object leaves the worker's copy whole.
        store.delete_prefix("_incoming/0123abcd").await.unwrap();
        assert_eq!(std::fs::read(&fetched).unwrap(), b"master bytes");
        assert_eq!(store.list("_incoming").await.unwrap(), Vec::<String>::new());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn objects_are_files_under_the_root_and_nothing_else_is() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().join("media"));
        store
            .put("film/v1/seg.m4s", Bytes::from_static(b"abc"))
            .await
            .unwrap();
        let path = store.local_path("film/v1/seg.m4s").unwrap();
        assert_eq!(path, tmp.path().join("media/film/v1/seg.m4s"));
        assert_eq!(std::fs::read(path).unwrap(), b"abc");
        // A write in progress leaves a hidden temporary file, never listed as an object.
        std::fs::write(tmp.path().join("media/film/v1/.x.tmp"), b"half").unwrap();
        assert_eq!(store.list("film").await.unwrap(), vec!["film/v1/seg.m4s"]);
        assert_eq!(store.local_path("../etc/passwd"), None);
    }
}
