//! Publishing a version, crash-safely (`docs/INGEST.md`), written against the storage traits
//! so that the command line, a job worker and an upload API all publish the same way.
//!
//! A version is built in a [`Staging`] directory (removed if anything fails), one ingest per
//! film at a time ([`SlugLock`]). [`Publisher::publish`] then writes the object index, moves
//! every object into the media store, records the version in the catalog — the one commit
//! after which viewers get it. The version it replaced stays served for a grace period, to
//! viewers whose playlists name it, and is removed by [`Publisher::retire_expired`] after it
//! (`docs/INGEST.md`, "Re-ingest"). A crash at any point leaves the previous version live;
//! [`Publisher::sweep`] removes what a killed ingest left behind.

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
        // The versions the catalog records: the current one and those still in their grace
        // period. When the catalog cannot say, nothing is deleted.
        let (Ok(film), Ok(retired)) = (self.films.get(slug).await, self.films.retired().await)
        else {
            return;
        };
        let keep: Vec<String> = film
            .map(|f| f.current.version)
            .into_iter()
            .chain(
                retired
                    .into_iter()
                    .filter(|r| r.slug == slug)
                    .map(|r| r.version.version),
            )
            .collect();
        self.sweep_except(slug, &keep).await;
    }

    /// Deletes every version of `slug` in the media store but those in `keep`.
    async fn sweep_except(&self, slug: &str, keep: &[String]) {
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
            if !keep.iter().any(|k| k == version) {
                let _ = self.media.delete_prefix(&format!("{slug}/{version}")).await;
            }
        }
    }

    /// Removes every replaced version whose grace period is over at `now`: its record first
    /// (from then on no node serves it), then its objects. The grace period of a version is
    /// `grace`, or twice its running time when that is longer, so that a viewer who started
    /// it just before it was replaced can finish it even with pauses. Returns the versions
    /// removed, as `slug/version`. A crash between the two steps leaves objects no record
    /// names, which [`sweep`](Self::sweep) removes at the film's next ingest.
    pub async fn retire_expired(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        grace: std::time::Duration,
    ) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for r in self.films.retired().await? {
            let film_s = std::time::Duration::from_secs_f64((r.version.duration_s * 2.0).max(0.0));
            let grace =
                chrono::Duration::from_std(grace.max(film_s)).unwrap_or(chrono::Duration::MAX);
            if now < r.retired_at + grace {
                continue;
            }
            if self.films.forget(&r.slug, &r.version.version).await? {
                let prefix = format!("{}/{}", r.slug, r.version.version);
                self.media.delete_prefix(&prefix).await?;
                removed.push(prefix);
            }
        }
        Ok(removed)
    }

    /// Publishes the version built in `staging` as `record` of `slug`: the object index
    /// (sizes and content-derived ETags, computed once, here), every file fsynced, every
    /// object in the store, then the catalog commit; the previous version stays served for its
    /// grace period.
    /// `before_commit` runs between the move and the commit (a test hook).
    pub async fn publish(
        &self,
        slug: &str,
        meta: &FilmMeta,
        staging: Staging,
        record: &PublishedVersion,
        before_commit: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        self.publish_carrying(slug, meta, staging, record, None, before_commit)
            .await
    }

    /// [`publish`](Self::publish), with objects of another version of the film carried into
    /// the new one: `carry` names that version and the objects (with their index entries,
    /// which hold for the copies: the bytes are the same). They are copied inside the store
    /// ([`MediaStore::copy`]: a hard link on disk, a server-side copy on S3) after the staged
    /// files are published and before the commit, so the new version is whole when it is
    /// recorded, and a crash leaves an unrecorded version the next sweep removes. This is how
    /// an audio track or subtitles join a film without its video being encoded again.
    pub async fn publish_carrying(
        &self,
        slug: &str,
        meta: &FilmMeta,
        mut staging: Staging,
        record: &PublishedVersion,
        carry: Option<(&str, &ObjectIndex)>,
        before_commit: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        let mut index = ObjectIndex::build(&staging.path)?;
        if let Some((_, carried)) = carry {
            for (key, info) in &carried.objects {
                if index.objects.insert(key.clone(), info.clone()).is_some() {
                    return Err(Error::Backend(format!(
                        "{key} is both staged and carried from the previous version"
                    )));
                }
            }
        }
        write_durable(&staging.path.join(OBJECT_INDEX), &index.to_json())?;
        sync_tree(&staging.path)?;
        let prefix = format!("{slug}/{}", record.version);
        self.media.publish_dir(&staging.path, &prefix).await?;
        staging.armed = false;
        if let Some((from, carried)) = carry {
            for key in carried.objects.keys() {
                let copied = self
                    .media
                    .copy(&format!("{slug}/{from}/{key}"), &format!("{prefix}/{key}"))
                    .await;
                if let Err(e) = copied {
                    let _ = self.media.delete_prefix(&prefix).await;
                    return Err(e);
                }
            }
        }
        before_commit.await;
        // Once committed the new version is live; the one it replaced stays served until its
        // grace period is over (`retire_expired`).
        if let Err(e) = self.films.publish(slug, meta, record).await {
            let _ = self.media.delete_prefix(&prefix).await;
            return Err(e);
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
        assert_eq!(
            films.get("film").await.unwrap().unwrap().current.version,
            "v2"
        );
        assert_eq!(
            media.list("film/v1").await.unwrap().len(),
            3,
            "v1 is kept for its grace period"
        );
        // `version` lasts 60 s, so its grace is max(grace, 120 s).
        let replaced_at = films.retired().await.unwrap()[0].retired_at;
        let grace = std::time::Duration::from_secs(3600);
        let early = replaced_at + chrono::Duration::seconds(3599);
        assert_eq!(
            publisher.retire_expired(early, grace).await.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(media.list("film/v1").await.unwrap().len(), 3);
        // A sweep (the next ingest's) keeps a version within its grace period.
        publisher.sweep("film").await;
        assert_eq!(media.list("film/v1").await.unwrap().len(), 3);
        let late = replaced_at + chrono::Duration::seconds(3600);
        assert_eq!(
            publisher.retire_expired(late, grace).await.unwrap(),
            ["film/v1"]
        );
        assert!(
            media.list("film/v1").await.unwrap().is_empty(),
            "v1 retired"
        );
        assert!(films.retired().await.unwrap().is_empty());
        // A short grace period is stretched to twice the running time.
        let short = std::time::Duration::from_secs(1);
        publisher
            .publish(
                "film",
                &meta,
                staged(tmp.path(), "v3", b"three"),
                &version("v3"),
                async {},
            )
            .await
            .unwrap();
        let replaced_at = films.retired().await.unwrap()[0].retired_at;
        let within = replaced_at + chrono::Duration::seconds(119);
        assert!(
            publisher
                .retire_expired(within, short)
                .await
                .unwrap()
                .is_empty()
        );
        let after = replaced_at + chrono::Duration::seconds(120);
        assert_eq!(
            publisher.retire_expired(after, short).await.unwrap(),
            ["film/v2"]
        );
        assert_eq!(
            films.get("film").await.unwrap().unwrap().current.version,
            "v3",
            "the current version is never retired"
        );

        // A commit that fails leaves the live version and no trace of the new one.
        let err = publisher
            .publish(
                "film",
                &meta,
                staged(tmp.path(), "v3", b"x"),
                &version("v3"),
                async {},
            )
            .await;
        assert!(err.is_err());
        assert_eq!(
            media.get("film/v3/v360/seg_00000.m4s", None).await.unwrap(),
            bytes::Bytes::from_static(b"three")
        );
    }

    #[tokio::test]
    async fn a_version_can_carry_the_media_of_the_one_it_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let (films, media) = (MemoryFilms::new(), MemoryStore::new());
        let publisher = Publisher {
            films: &films,
            media: &media,
        };
        let meta = FilmMeta::untitled("film");
        publisher
            .publish(
                "film",
                &meta,
                staged(tmp.path(), "v1", b"video"),
                &version("v1"),
                async {},
            )
            .await
            .unwrap();
        let v1 = ObjectIndex::from_json(&media.get("film/v1/objects.json", None).await.unwrap())
            .unwrap();
        // v2: a new audio track and a new playlist staged; v1's segment carried.
        let staging = Staging::create(tmp.path(), "film", "v2").unwrap();
        std::fs::create_dir_all(staging.path().join("a128-en")).unwrap();
        std::fs::write(staging.path().join("master.m3u8"), b"#EXTM3U\n#v2\n").unwrap();
        std::fs::write(staging.path().join("a128-en/seg_00000.m4s"), b"audio").unwrap();
        let mut carried = v1.clone();
        carried.objects.remove("master.m3u8");
        publisher
            .publish_carrying(
                "film",
                &meta,
                staging,
                &version("v2"),
                Some(("v1", &carried)),
                async {},
            )
            .await
            .unwrap();
        assert_eq!(
            media.list("film/v2").await.unwrap(),
            [
                "film/v2/a128-en/seg_00000.m4s",
                "film/v2/master.m3u8",
                "film/v2/objects.json",
                "film/v2/v360/seg_00000.m4s"
            ]
        );
        assert_eq!(
            media.get("film/v2/v360/seg_00000.m4s", None).await.unwrap(),
            bytes::Bytes::from_static(b"video")
        );
        let v2 = ObjectIndex::from_json(&media.get("film/v2/objects.json", None).await.unwrap())
            .unwrap();
        assert_eq!(v2.get("v360/seg_00000.m4s"), v1.get("v360/seg_00000.m4s"));
        assert_ne!(v2.get("master.m3u8"), v1.get("master.m3u8"));
        assert!(v2.get("a128-en/seg_00000.m4s").is_some());

        // Carrying an object that is missing fails and leaves no trace of the new version.
        let staging = Staging::create(tmp.path(), "film", "v3").unwrap();
        std::fs::write(staging.path().join("master.m3u8"), b"#EXTM3U\n").unwrap();
        let mut missing = ObjectIndex::default();
        missing.objects.insert(
            "v360/seg_00009.m4s".into(),
            v1.get("v360/seg_00000.m4s").unwrap().clone(),
        );
        let err = publisher
            .publish_carrying(
                "film",
                &meta,
                staging,
                &version("v3"),
                Some(("v2", &missing)),
                async {},
            )
            .await;
        assert!(matches!(err, Err(Error::NotFound(_))), "{err:?}");
        assert!(media.list("film/v3").await.unwrap().is_empty());
        assert_eq!(
            films.get("film").await.unwrap().unwrap().current.version,
            "v2"
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
