//! What the delivery path needs to know, held in memory: each film's current version and the
//! object index of that version.
//!
//! The hot path (a segment request) never touches the database: it reads an `Arc` snapshot
//! refreshed from the [`FilmRepository`] every second (and at start), and at once when the
//! repository pushes a change (PostgreSQL's `NOTIFY`, so every node of a cluster follows a
//! publish by any of them). A new version published by `monsoon ingest` in another process is
//! therefore served within about a second, or a few milliseconds with a push; until then the
//! previous one is, which is what the publish order guarantees to be complete.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use monsoon_catalog::{Film, FilmRepository, MediaStore, OBJECT_INDEX, ObjectIndex};

/// A published film as the delivery path sees it.
#[derive(Debug)]
pub struct LiveFilm {
    pub film: Film,
    pub objects: ObjectIndex,
    /// `Last-Modified` of every object of the version: its publication time, identical on
    /// every node (RFC 9110 §8.8.2).
    pub last_modified: SystemTime,
    /// The same, formatted once as an HTTP date.
    pub last_modified_http: String,
}

type Snapshot = Arc<HashMap<String, Arc<LiveFilm>>>;

/// The in-memory catalog of current versions.
#[derive(Debug, Default)]
pub struct LiveCatalog {
    snapshot: RwLock<Snapshot>,
    /// Counts the refreshes that took a version out of service (replaced or unpublished).
    retired: AtomicU64,
}

impl LiveCatalog {
    fn snapshot(&self) -> Snapshot {
        match self.snapshot.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The current version of `slug`, if it is published.
    pub fn get(&self, slug: &str) -> Option<Arc<LiveFilm>> {
        self.snapshot().get(slug).cloned()
    }

    /// Slugs of every published film.
    pub fn slugs(&self) -> Vec<String> {
        self.snapshot().keys().cloned().collect()
    }

    /// Changes whenever a version stops being served. Its files are deleted by then (the
    /// ingest that replaced it removes them), so whoever keeps them open should let go.
    pub fn retired(&self) -> u64 {
        self.retired.load(Ordering::Acquire)
    }

    /// Reloads from the repository, reading the object index only of versions that changed.
    pub async fn refresh(
        &self,
        films: &dyn FilmRepository,
        media: &dyn MediaStore,
    ) -> Result<(), String> {
        let list = films.list().await.map_err(|e| e.to_string())?;
        let before = self.snapshot();
        let mut next = HashMap::with_capacity(list.len());
        for film in list {
            let slug = film.slug.clone();
            if let Some(old) = before.get(&slug)
                && old.film.current.version == film.current.version
            {
                // The same version: its index is the same; only the metadata may be new (an
                // edit in the studio), and is taken without reading the store.
                let same = if old.film.meta == film.meta {
                    Arc::clone(old)
                } else {
                    Arc::new(LiveFilm {
                        film,
                        objects: old.objects.clone(),
                        last_modified: old.last_modified,
                        last_modified_http: old.last_modified_http.clone(),
                    })
                };
                next.insert(slug, same);
                continue;
            }
            let key = format!("{slug}/{}/{OBJECT_INDEX}", film.current.version);
            let objects = match media.get(&key, None).await {
                Ok(bytes) => ObjectIndex::from_json(&bytes).map_err(|e| e.to_string())?,
                Err(e) => {
                    tracing::warn!(%slug, error = %e, "no object index; nothing of this film is served");
                    ObjectIndex::default()
                }
            };
            let last_modified = SystemTime::from(film.current.published_at);
            let last_modified_http = httpdate::fmt_http_date(last_modified);
            next.insert(
                slug,
                Arc::new(LiveFilm {
                    film,
                    objects,
                    last_modified,
                    last_modified_http,
                }),
            );
        }
        let retired = before.iter().any(|(slug, old)| {
            next.get(slug)
                .is_none_or(|new| new.film.current.version != old.film.current.version)
        });
        let next = Arc::new(next);
        match self.snapshot.write() {
            Ok(mut s) => *s = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        if retired {
            self.retired.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    /// Refreshes every `every` until the process ends, and at once whenever the repository
    /// signals a change ([`FilmRepository::changes`]).
    pub fn spawn_refresh(
        self: &Arc<Self>,
        films: Arc<dyn FilmRepository>,
        media: Arc<dyn MediaStore>,
        every: Duration,
    ) {
        let live = Arc::clone(self);
        let mut changes = films.changes();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                match changes.as_mut() {
                    Some(changed) => tokio::select! {
                        _ = tick.tick() => {}
                        pushed = changed.changed() => {
                            if pushed.is_err() {
                                tracing::warn!("the catalog's change signal ended; polling only");
                                changes = None;
                            }
                        }
                    },
                    None => {
                        tick.tick().await;
                    }
                }
                if let Err(e) = live.refresh(films.as_ref(), media.as_ref()).await {
                    tracing::warn!(error = %e, "catalog refresh failed; serving the last snapshot");
                }
            }
        });
    }
}
