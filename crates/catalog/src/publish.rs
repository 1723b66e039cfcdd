//! Publishing a version, crash-safely (`docs/INGEST.md`), written against the storage traits
//! so that the command line, a job worker and an upload API all publish the same way.
//!
//! A version is built in a [`Staging`] directory (removed if anything fails), one ingest per
//! film at a time ([`SlugLock`]). [`Publisher::publish`] then writes the object index, moves
//! every object into the media store, records the version in the catalog — the one commit
//! after which viewers get it — and only then retires the version it replaced. A crash at any
//! point leaves the previous version live; [`Publisher::sweep`] removes what a killed ingest
//! left behind.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{
    Error, FilmMeta, FilmRepository, MediaStore, OBJECT_INDEX, ObjectIndex, PublishedVersion,
    Result,
};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one: a temporary
/// name in the same directory, fsynced, renamed, and the directory fsynced.
pub fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// fsyncs every file and directory under `root` (ffmpeg does not fsync what it writes).
pub fn sync_tree(root: &Path) -> Result<()> {
    for entry in std::fs::read_dir(root).map_err(io(root))? {
        let entry = entry.map_err(io(root))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io(&path))?;
        }
    }
    sync_dir(root)
}

/// A directory a version is built in, removed when dropped unless it was published: an
/// ingest that fails, is cancelled or is dropped leaves nothing in staging.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    armed: bool,
}

impl Staging {
    /// Creates `<dir>/<slug>.<version>.<pid>`: the process id lets [`sweep_staging`] tell a
    /// live ingest's directory from a killed one's.
    pub fn create(dir: &Path, slug: &str, version: &str) -> Result<Self> {
        let path = dir.join(format!("{slug}.{version}.{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        Ok(Self { path, armed: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Removes the staging directories of processes that are gone.
pub fn sweep_staging(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// An exclusive lock on `<dir>/<slug>.lock`, released when dropped or when the process dies
/// (`flock`), so a killed ingest never leaves the film locked.
#[derive(Debug)]
pub struct SlugLock(#[allow(dead_code)] std::fs::File);

impl SlugLock {
    /// Takes the lock, or says which ingest holds it.
    pub fn take(dir: &Path, slug: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(format!("{slug}.lock"));
        let file = std::fs::File::create(&path).map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Backend(format!(
                "another `monsoon ingest` of `{slug}` is running (it holds {}); wait for it to finish",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
        }
    }
}

/// Publishes versions into a catalog and a media store.
#[derive(Debug)]
pub struct Publisher<'a> {
    pub films: &'a dyn FilmRepository,
    pub media: &'a dyn MediaStore,
}

impl Publisher<'_> {
    /// Removes the versions of `slug` the catalog does not reference (left by a killed
    /// ingest, between its move into the store and its commit).
    pub async fn sweep(&self, slug: &str) {
        let current = self
            .films
            .get(slug)
            .await
            .ok()
            .flatten()
            .map(|f| f.current.version);
        let Ok(keys) = self.media.list(slug).await else {
            return;
        };
        let versions: std::collections::BTreeSet<&str> = keys
            .iter()
            .filter_map(|key| key.split('/').nth(1))
            .collect();
        for version in versions {
            // The studio's artwork lives beside the versions, and is no version.
            if version == crate::artwork::ART_DIR {
                continue;
            }
            if Some(version) != current.as_deref() {
                let _ = self.media.delete_prefix(&format!("{slug}/{version}")).await;
            }
        }
    }

    /// Publishes the version built in `staging` as `record` of `slug`: the object index
    /// (sizes and content-derived ETags, computed once, here), every file fsynced, every
    /// object in the store, then the catalog commit, then the previous version retired.
    /// `before_commit` runs between the move and the commit (a test hook).
    pub async fn publish(
        &self,
        slug: &str,
        meta: &FilmMeta,
        mut staging: Staging,
        record: &PublishedVersion,
        before_commit: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        let index = ObjectIndex::build(&staging.path)?;
        write_durable(&staging.path.join(OBJECT_INDEX), &index.to_json())?;
        sync_tree(&staging.path)?;
        let prefix = format!("{slug}/{}", record.version);
        self.media.publish_dir(&staging.path, &prefix).await?;
        staging.armed = false;
        before_commit.await;
        let previous = match self.films.publish(slug, meta, record).await {
            Ok(previous) => previous,
            Err(e) => {
                let _ = self.media.delete_prefix(&prefix).await;
                return Err(e);
            }
        };
        // The new version is live; only now does the old one go.
        if let Some(old) = previous {
            self.media.delete_prefix(&format!("{slug}/{old}")).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::conformance::version;
    use crate::{MemoryFilms, MemoryStore};

    fn staged(dir: &Path, version: &str, body: &[u8]) -> Staging {
        let staging = Staging::create(dir, "film", version).unwrap();
        std::fs::create_dir_all(staging.path().join("v360")).unwrap();
        std::fs::write(staging.path().join("master.m3u8"), b"#EXTM3U\n").unwrap();
        std::fs::write(staging.path().join("v360/seg_00000.m4s"), body).unwrap();
        staging
    }

    #[tokio::test]
    async fn a_published_version_replaces_the_old_one_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let (films, media) = (MemoryFilms::new(), MemoryStore::new());
        let publisher = Publisher {
            films: &films,
            media: &media,
        };
        let meta = FilmMeta::untitled("film");
        let first = staged(tmp.path(), "v1", b"one");
        let first_dir = first.path().to_owned();
        publisher
            .publish("film", &meta, first, &version("v1"), async {})
            .await
            .unwrap();
        assert!(!first_dir.exists(), "staging is consumed");
        assert_eq!(
            media.list("film/v1").await.unwrap(),
            vec![
                "film/v1/master.m3u8",
                "film/v1/objects.json",
                "film/v1/v360/seg_00000.m4s"
            ]
        );
        publisher
            .publish(
                "film",
                &meta,
                staged(tmp.path(), "v2", b"two"),
                &version("v2"),
                async {},
            )
            .await
            .unwrap();
        assert!(
            media.list("film/v1").await.unwrap().is_empty(),
            "v1 retired"
        );
        assert_eq!(
            films.get("film").await.unwrap().unwrap().current.version,
            "v2"
        );

        // A commit that fails leaves the live version and no trace of the new one.
        let err = publisher
            .publish(
                "film",
                &meta,
                staged(tmp.path(), "v2", b"x"),
                &version("v2"),
                async {},
            )
            .await;
        assert!(err.is_err());
        assert_eq!(
            media.get("film/v2/v360/seg_00000.m4s", None).await.unwrap(),
            bytes::Bytes::from_static(b"two")
        );
    }

    #[tokio::test]
    async fn a_dropped_staging_directory_leaves_nothing_and_sweeping_finds_orphans() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = staged(tmp.path(), "v1", b"one").path().to_owned();
        assert!(!dir.exists());
        let (films, media) = (MemoryFilms::new(), MemoryStore::new());
        media
            .put("film/v0/seg.m4s", bytes::Bytes::from_static(b"orphan"))
            .await
            .unwrap();
        let art = "film/art/poster.0123456789abcdef.jpg";
        media
            .put(art, bytes::Bytes::from_static(b"art"))
            .await
            .unwrap();
        Publisher {
            films: &films,
            media: &media,
        }
        .sweep("film")
        .await;
        assert_eq!(media.list("film").await.unwrap(), [art], "the art is kept");
    }

    #[test]
    fn one_ingest_per_film_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let held = SlugLock::take(tmp.path(), "film").unwrap();
        let err = SlugLock::take(tmp.path(), "film").unwrap_err().to_string();
        assert!(err.contains("another `monsoon ingest` of `film`"), "{err}");
        assert!(SlugLock::take(tmp.path(), "other").is_ok());
        drop(held);
        assert!(SlugLock::take(tmp.path(), "film").is_ok());
    }
}
