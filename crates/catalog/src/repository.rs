//! Films in memory, and the contract every [`FilmRepository`] keeps: the in-memory one makes
//! the router testable without a database; [`conformance::run`] holds SQLite (and any backend
//! to come) to the same promises.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::Utc;

use crate::{Error, Film, FilmDraft, FilmMeta, FilmRepository, PublishedVersion, Result};

/// Films in memory.
#[derive(Debug, Default)]
pub struct MemoryFilms {
    films: Mutex<BTreeMap<String, Film>>,
    /// Replaced versions still recorded, by film.
    replaced: Mutex<BTreeMap<String, Vec<PublishedVersion>>>,
    drafts: Mutex<BTreeMap<String, FilmDraft>>,
}

impl MemoryFilms {
    pub fn new() -> Self {
        Self::default()
    }

    fn films(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Film>> {
        self.films.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Taken after [`MemoryFilms::films`] when both are needed, never before.
    fn draft_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FilmDraft>> {
        self.drafts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl FilmRepository for MemoryFilms {
    async fn list(&self) -> Result<Vec<Film>> {
        let mut films: Vec<Film> = self.films().values().cloned().collect();
        films.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.slug.cmp(&b.slug)));
        Ok(films)
    }

    async fn get(&self, slug: &str) -> Result<Option<Film>> {
        Ok(self.films().get(slug).cloned())
    }

    async fn drafts(&self) -> Result<Vec<FilmDraft>> {
        let mut drafts: Vec<FilmDraft> = self.draft_map().values().cloned().collect();
        drafts.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.slug.cmp(&b.slug)));
        Ok(drafts)
    }

    async fn draft(&self, slug: &str) -> Result<Option<FilmDraft>> {
        Ok(self.draft_map().get(slug).cloned())
    }

    async fn create_draft(&self, slug: &str, meta: &FilmMeta) -> Result<FilmDraft> {
        let films = self.films();
        let mut drafts = self.draft_map();
        if films.contains_key(slug) || drafts.contains_key(slug) {
            return Err(Error::Taken(slug.to_owned()));
        }
        let now = Utc::now();
        let draft = FilmDraft {
            slug: slug.to_owned(),
            meta: meta.clone(),
            created_at: now,
            updated_at: now,
        };
        drafts.insert(slug.to_owned(), draft.clone());
        Ok(draft)
    }

    async fn delete_draft(&self, slug: &str) -> Result<bool> {
        Ok(self.draft_map().remove(slug).is_some())
    }

    async fn update_meta(&self, slug: &str, meta: &FilmMeta) -> Result<bool> {
        let mut films = self.films();
        let now = Utc::now();
        if let Some(film) = films.get_mut(slug) {
            film.meta = meta.clone();
            film.updated_at = now;
            return Ok(true);
        }
        let mut drafts = self.draft_map();
        Ok(drafts.get_mut(slug).is_some_and(|draft| {
            draft.meta = meta.clone();
            draft.updated_at = now;
            true
        }))
    }

    async fn publish(
        &self,
        slug: &str,
        meta: &FilmMeta,
        version: &PublishedVersion,
    ) -> Result<Option<String>> {
        let mut films = self.films();
        let now = Utc::now();
        let draft = self.draft_map().remove(slug);
        match films.get_mut(slug) {
            Some(film) if film.current.version == version.version => Err(Error::Backend(format!(
                "version {} of `{slug}` is already published",
                version.version
            ))),
            Some(film) => {
                let mut replaced = self.replaced.lock().unwrap_or_else(|p| p.into_inner());
                let old = replaced.entry(slug.to_owned()).or_default();
                if old.iter().any(|v| v.version == version.version) {
                    return Err(Error::Backend(format!(
                        "version {} of `{slug}` was already published",
                        version.version
                    )));
                }
                let previous = std::mem::replace(&mut film.current, version.clone());
                film.meta = meta.clone();
                film.updated_at = now;
                let name = previous.version.clone();
                old.push(previous);
                Ok(Some(name))
            }
            None => {
                films.insert(
                    slug.to_owned(),
                    Film {
                        slug: slug.to_owned(),
                        meta: meta.clone(),
                        current: version.clone(),
                        // A draft's film was created when the draft was.
                        created_at: draft.map_or(now, |d| d.created_at),
                        updated_at: now,
                    },
                );
                Ok(None)
            }
        }
    }

    async fn retired(&self) -> Result<Vec<crate::RetiredVersion>> {
        let films = self.films();
        let replaced = self.replaced.lock().unwrap_or_else(|p| p.into_inner());
        Ok(replaced
            .iter()
            .flat_map(|(slug, old)| {
                let mut versions: Vec<(PublishedVersion, bool)> =
                    old.iter().map(|v| (v.clone(), false)).collect();
                versions.extend(films.get(slug).map(|f| (f.current.clone(), true)));
                crate::RetiredVersion::of_film(slug, versions)
            })
            .collect())
    }

    async fn forget(&self, slug: &str, version: &str) -> Result<bool> {
        let mut replaced = self.replaced.lock().unwrap_or_else(|p| p.into_inner());
        let Some(old) = replaced.get_mut(slug) else {
            return Ok(false);
        };
        let before = old.len();
        old.retain(|v| v.version != version);
        Ok(old.len() < before)
    }
}

/// The contract of [`FilmRepository`]: `conformance::run(&|| open the same catalog)`, on a
/// fresh, empty one; each call of `open` is a restart. A broken promise panics.
#[allow(clippy::unwrap_used)]
pub mod conformance {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use chrono::Utc;

    use crate::{
        Error, FilmMeta, FilmRepository, Localized, PublishedVersion, Rendition, RenditionKind,
    };

    /// Opens the catalog under test (again, for a restart).
    pub type Open<'a> = &'a dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn FilmRepository>>>>;

    pub fn version(name: &str) -> PublishedVersion {
        PublishedVersion {
            version: name.into(),
            published_at: Utc::now(),
            duration_s: 60.0,
            poster: Some("poster.jpg".into()),
            backdrop: None,
            thumbnails: Some("thumbs/thumbs.vtt".into()),
            subtitles: vec!["vi".into()],
            renditions: vec![Rendition {
                name: "v360".into(),
                kind: RenditionKind::Video,
                width: 640,
                height: 360,
                codecs: "avc1.64001e".into(),
                average_bitrate: 365_000,
                peak_bitrate: 500_000,
            }],
        }
    }

    pub async fn run(open: Open<'_>) {
        publish_replaces_the_current_version_and_survives_a_restart(open).await;
        a_version_is_never_published_twice(open).await;
        films_are_listed_newest_first(open).await;
        replaced_versions_are_retired_until_forgotten(open).await;
        a_draft_is_metadata_without_media_until_its_first_publish(open).await;
        metadata_is_updated_without_touching_the_version(open).await;
    }

    /// A replaced version stays recorded, retired when its successor was published, until it
    /// is forgotten; the current one never is; none is published again.
    async fn replaced_versions_are_retired_until_forgotten(open: Open<'_>) {
        let retired = |list: Vec<crate::RetiredVersion>| -> Vec<(String, chrono::DateTime<Utc>)> {
            list.into_iter()
                .filter(|r| r.slug == "retire")
                .map(|r| (r.version.version, r.retired_at))
                .collect()
        };
        let db = open().await;
        let meta = FilmMeta::untitled("retire");
        let mut versions = Vec::new();
        for name in ["r1", "r2", "r3"] {
            std::thread::sleep(std::time::Duration::from_millis(5));
            versions.push(version(name));
        }
        db.publish("retire", &meta, &versions[0]).await.unwrap();
        assert_eq!(retired(db.retired().await.unwrap()), []);
        db.publish("retire", &meta, &versions[1]).await.unwrap();
        db.publish("retire", &meta, &versions[2]).await.unwrap();
        let expected = vec![
            ("r1".to_owned(), versions[1].published_at),
            ("r2".to_owned(), versions[2].published_at),
        ];
        assert_eq!(retired(db.retired().await.unwrap()), expected);
        let full = db.retired().await.unwrap();
        let r1 = full.iter().find(|r| r.version.version == "r1").unwrap();
        assert_eq!(r1.version, versions[0], "the version's record, whole");
        drop(db);
        let db = open().await;
        assert_eq!(
            retired(db.retired().await.unwrap()),
            expected,
            "lost across a restart"
        );
        assert!(
            db.publish("retire", &meta, &versions[0]).await.is_err(),
            "a retired version is published again"
        );
        assert!(
            !db.forget("retire", "r3").await.unwrap(),
            "forgot the current version"
        );
        assert!(db.forget("retire", "r1").await.unwrap());
        assert!(!db.forget("retire", "r1").await.unwrap());
        assert_eq!(retired(db.retired().await.unwrap()), expected[1..]);
        assert_eq!(
            db.get("retire").await.unwrap().unwrap().current.version,
            "r3"
        );
    }

    fn titled(vi: &str) -> FilmMeta {
        FilmMeta {
            title: Localized {
                vi: vi.into(),
                en: String::new(),
            },
            ..FilmMeta::default()
        }
    }

    /// A draft is not a film: not listed, not got, served nothing; its slug is taken; its
    /// first publish makes it a film with the draft's creation time, and the draft is gone.
    async fn a_draft_is_metadata_without_media_until_its_first_publish(open: Open<'_>) {
        let db = open().await;
        let meta = titled("Bản nháp");
        let draft = db.create_draft("draft", &meta).await.unwrap();
        assert_eq!((draft.slug.as_str(), &draft.meta), ("draft", &meta));
        assert!(
            db.get("draft").await.unwrap().is_none(),
            "a draft is no film"
        );
        assert!(db.list().await.unwrap().iter().all(|f| f.slug != "draft"));
        // Taken, by a draft or by a film.
        for slug in ["draft", "film"] {
            let taken = db.create_draft(slug, &meta).await.unwrap_err();
            assert!(matches!(taken, Error::Taken(ref s) if s == slug), "{taken}");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        db.create_draft("second", &titled("Hai")).await.unwrap();
        let drafts = db.drafts().await.unwrap();
        let slugs: Vec<&str> = drafts.iter().map(|d| d.slug.as_str()).collect();
        assert_eq!(slugs, ["second", "draft"], "newest first");
        drop(db);
        let db = open().await;
        assert_eq!(
            db.draft("draft").await.unwrap().as_ref(),
            Some(&draft),
            "lost across a restart"
        );
        assert!(
            db.draft("film").await.unwrap().is_none(),
            "a film is no draft"
        );
        // The metadata an ingest into it publishes is the draft's.
        let stored = crate::stored_meta(db.as_ref(), "draft").await.unwrap();
        assert_eq!(stored.as_ref(), Some(&meta));
        assert_eq!(
            db.publish("draft", &meta, &version("v1")).await.unwrap(),
            None
        );
        let film = db.get("draft").await.unwrap().unwrap();
        assert_eq!(film.meta, meta);
        assert_eq!(film.created_at, draft.created_at);
        assert!(
            db.draft("draft").await.unwrap().is_none(),
            "the draft is gone"
        );
        assert_eq!(db.drafts().await.unwrap().len(), 1);
        // A draft that was never published can be deleted, once; a published film cannot be
        // deleted as a draft; the slug is free again.
        assert!(
            !db.delete_draft("draft").await.unwrap(),
            "a published film was deleted as a draft"
        );
        assert!(db.get("draft").await.unwrap().is_some());
        assert!(db.delete_draft("second").await.unwrap());
        assert!(!db.delete_draft("second").await.unwrap(), "deleted twice");
        assert!(!db.delete_draft("nothing").await.unwrap());
        drop(db);
        let db = open().await;
        assert!(
            db.drafts().await.unwrap().is_empty(),
            "back after a restart"
        );
        db.create_draft("second", &titled("Lại")).await.unwrap();
        assert!(db.delete_draft("second").await.unwrap());
    }

    /// Metadata changes at once, the version stays; drafts are updated too; an unknown slug
    /// is said.
    async fn metadata_is_updated_without_touching_the_version(open: Open<'_>) {
        let db = open().await;
        db.publish("edited", &titled("Cũ"), &version("v1"))
            .await
            .unwrap();
        let before = db.get("edited").await.unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(db.update_meta("edited", &titled("Mới")).await.unwrap());
        let after = db.get("edited").await.unwrap().unwrap();
        assert_eq!(after.meta.title.vi, "Mới");
        assert_eq!(after.current, before.current, "the version is untouched");
        assert_eq!(after.created_at, before.created_at);
        assert!(after.updated_at > before.updated_at);
        let listed = db.list().await.unwrap();
        let edited = listed.iter().find(|f| f.slug == "edited").unwrap();
        assert_eq!(edited.meta.title.vi, "Mới");
        // A draft's metadata too.
        db.create_draft("edited-draft", &titled("Nháp"))
            .await
            .unwrap();
        assert!(
            db.update_meta("edited-draft", &titled("Nháp 2"))
                .await
                .unwrap()
        );
        let draft = db.draft("edited-draft").await.unwrap().unwrap();
        assert_eq!(draft.meta.title.vi, "Nháp 2");
        assert!(!db.update_meta("nobody", &titled("X")).await.unwrap());
        assert!(db.get("nobody").await.unwrap().is_none());
        drop(db);
        let db = open().await;
        assert_eq!(
            db.get("edited").await.unwrap().unwrap().meta.title.vi,
            "Mới"
        );
    }

    async fn publish_replaces_the_current_version_and_survives_a_restart(open: Open<'_>) {
        let db = open().await;
        assert!(db.get("film").await.unwrap().is_none());
        let mut meta = FilmMeta::untitled("film");
        assert_eq!(
            db.publish("film", &meta, &version("v1")).await.unwrap(),
            None
        );
        meta.title = Localized {
            vi: "Phim".into(),
            en: "Film".into(),
        };
        let old = db.publish("film", &meta, &version("v2")).await.unwrap();
        assert_eq!(
            old.as_deref(),
            Some("v1"),
            "publish returns the version it replaced"
        );
        let film = db.get("film").await.unwrap().unwrap();
        assert_eq!(film.current.version, "v2");
        assert_eq!(film.meta.title.en, "Film");
        assert_eq!(film.current.renditions, version("v2").renditions);
        let listed: Vec<String> = db
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.slug)
            .collect();
        assert_eq!(listed, vec!["film".to_owned()]);
        drop(db);
        let db = open().await;
        assert_eq!(
            db.get("film").await.unwrap().unwrap(),
            film,
            "lost across a restart"
        );
    }

    async fn a_version_is_never_published_twice(open: Open<'_>) {
        let db = open().await;
        let meta = FilmMeta::untitled("twice");
        db.publish("twice", &meta, &version("v1")).await.unwrap();
        db.publish("other", &meta, &version("v1")).await.unwrap();
        assert!(db.publish("twice", &meta, &version("v1")).await.is_err());
        assert_eq!(
            db.get("twice").await.unwrap().unwrap().current.version,
            "v1"
        );
    }

    /// The catalog page lists films newest first; a new version does not move a film.
    async fn films_are_listed_newest_first(open: Open<'_>) {
        let db = open().await;
        let meta = FilmMeta::untitled("newest");
        std::thread::sleep(std::time::Duration::from_millis(5));
        db.publish("newest", &meta, &version("v1")).await.unwrap();
        db.publish("film", &meta, &version("v3")).await.unwrap();
        let listed = db.list().await.unwrap();
        assert_eq!(listed[0].slug, "newest", "the newest film comes first");
        assert!(
            listed
                .windows(2)
                .all(|pair| pair[0].created_at >= pair[1].created_at),
            "not newest first: {:?}",
            listed.iter().map(|f| &f.slug).collect::<Vec<_>>()
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn films_in_memory_keep_the_contract() {
        let films: Arc<dyn FilmRepository> = Arc::new(MemoryFilms::new());
        conformance::run(&|| {
            let films = Arc::clone(&films);
            Box::pin(async move { films })
        })
        .await;
    }
}
