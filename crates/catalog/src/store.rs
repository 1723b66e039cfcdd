use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::{Error, Result};

/// Where packaged media lives. Keys are `/`-separated paths such as `<slug>/<version>/v720/seg_00001.m4s`.
///
/// The local-disk backend is the default; an S3-compatible backend implements the same calls.
#[async_trait]
pub trait MediaStore: Send + Sync + std::fmt::Debug {
    /// Moves a finished, fsynced directory from staging to `prefix`, so that every file in it
    /// appears under its final name at once (a rename on local disk). `prefix` must not exist.
    async fn publish_dir(&self, staging: &Path, prefix: &str) -> Result<()>;

    /// Removes everything under `prefix`. Missing prefixes are not an error.
    async fn remove_prefix(&self, prefix: &str) -> Result<()>;

    /// The local path of `key`, for backends that have one (used by the delivery path to
    /// send files without copying them through user space).
    fn local_path(&self, key: &str) -> Option<PathBuf>;
}

/// Media on the local filesystem under one root directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Option<PathBuf> {
        // Keys come from the catalog and the router; still, never let one leave the root.
        let clean = key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\\'));
        clean.then(|| self.root.join(key))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

#[async_trait]
impl MediaStore for LocalStore {
    async fn publish_dir(&self, staging: &Path, prefix: &str) -> Result<()> {
        let target = self
            .path_of(prefix)
            .ok_or_else(|| Error::Backend(format!("invalid media key `{prefix}`")))?;
        let parent = target
            .parent()
            .ok_or_else(|| Error::Backend(format!("media key `{prefix}` has no parent")))?
            .to_owned();
        let staging = staging.to_owned();
        tokio::task::spawn_blocking(move || -> Result<()> {
            std::fs::create_dir_all(&parent).map_err(io(&parent))?;
            if target.exists() {
                return Err(Error::Backend(format!(
                    "{} already exists; versions are never overwritten",
                    target.display()
                )));
            }
            std::fs::rename(&staging, &target).map_err(io(&target))?;
            // Make the rename itself durable.
            std::fs::File::open(&parent)
                .and_then(|d| d.sync_all())
                .map_err(io(&parent))
        })
        .await
        .map_err(|e| Error::Backend(e.to_string()))?
    }

    async fn remove_prefix(&self, prefix: &str) -> Result<()> {
        let Some(path) = self.path_of(prefix) else {
            return Err(Error::Backend(format!("invalid media key `{prefix}`")));
        };
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path_of(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_moves_a_directory_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::new(tmp.path().join("media"));
        let staging = tmp.path().join("staging");
        std::fs::create_dir_all(staging.join("v360")).unwrap();
        std::fs::write(staging.join("v360/seg.m4s"), b"abc").unwrap();

        store.publish_dir(&staging, "film/v1").await.unwrap();
        let published = store.local_path("film/v1/v360/seg.m4s").unwrap();
        assert_eq!(std::fs::read(published).unwrap(), b"abc");
        assert!(!staging.exists());

        std::fs::create_dir_all(&staging).unwrap();
        assert!(store.publish_dir(&staging, "film/v1").await.is_err());

        store.remove_prefix("film/v1").await.unwrap();
        assert!(
            store
                .local_path("film/v1/v360/seg.m4s")
                .is_some_and(|p| !p.exists())
        );
        store.remove_prefix("film/v1").await.unwrap();
    }

    #[test]
    fn keys_never_leave_the_root() {
        let store = LocalStore::new("/srv/media");
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "a//b",
            "/abs",
            "a/./b",
            "a\\..\\b",
            "",
        ] {
            assert_eq!(store.local_path(bad), None, "{bad}");
        }
        assert_eq!(
            store.local_path("a/v1/x.m4s"),
            Some(PathBuf::from("/srv/media/a/v1/x.m4s"))
        );
    }
}
