//! What the delivery path needs to know, held in memory: each film's current version and the
//! versions it replaced less than a grace period ago, with their object indexes.
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

use monsoon_catalog::{
    Film, FilmRepository, MediaStore, OBJECT_INDEX, ObjectIndex, PublishedVersion,
};

/// One version of a film as the delivery path serves it: the current one, or one replaced
/// less than its grace period ago ([`monsoon_catalog::publish::Publisher::retire_expired`]).
#[derive(Debug)]
pub struct ServedVersion {
    /// Its directory name, e.g. `v20261122T072000123Z`.
    pub name: String,
    pub objects: ObjectIndex,
    /// `Last-Modified` of every object of the version: its publication time, identical on
    /// every node (RFC 9110 §8.8.2).
    pub last_modified: SystemTime,
    /// The same, formatted once as an HTTP date.
    pub last_modified_http: String,
}

/// A published film as the delivery path sees it.
#[derive(Debug)]
pub struct LiveFilm {
    pub film: Film,
    /// The version its stable URLs (`master.m3u8`, `manifest.mpd`, the artwork) name.
    pub current: Arc<ServedVersion>,
    /// Versions it replaced that are still served at their versioned URLs, to viewers whose
    /// playlists name them.
    pub previous: Vec<Arc<ServedVersion>>,
}

impl LiveFilm {
    /// The served version called `name`: the current one or a previous one.
    pub fn version(&self, name: &str) -> Option<&Arc<ServedVersion>> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|v| v.name == name)
    }

    fn versions(&self) -> impl Iterator<Item = &Arc<ServedVersion>> {
        std::iter::once(&self.current).chain(&self.previous)
    }
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

    /// Changes whenever a version stops being served (replaced past its grace period, or
    /// unpublished). Its files are deleted by then, or about to be, so whoever keeps them open
    /// should let go.
    pub fn retired(&self) -> u64 {
        self.retired.load(Ordering::Acquire)
    }

    /// Reloads from the repository, reading the object index only of versions it did not
    /// have.
    pub async fn refresh(
        &self,
        films: &dyn FilmRepository,
        media: &dyn MediaStore,
    ) -> Result<(), String> {
        let list = films.list().await.map_err(|e| e.to_string())?;
        let mut replaced: HashMap<String, Vec<PublishedVersion>> = HashMap::new();
        for r in films.retired().await.map_err(|e| e.to_string())? {
            replaced.entry(r.slug).or_default().push(r.version);
        }
        let before = self.snapshot();
        let mut next = HashMap::with_capacity(list.len());
        for film in list {
            let slug = film.slug.clone();
            let old = before.get(&slug);
            // An index that does not parse keeps the last snapshot (the error is returned);
            // a previous version's is left out, with a warning.
            let current = served(media, &slug, old, &film.current).await?;
            let mut previous = Vec::new();
            for version in replaced.get(&film.slug).into_iter().flatten() {
                match served(media, &slug, old, version).await {
                    Ok(v) => previous.push(v),
                    Err(e) => {
                        tracing::warn!(%slug, version = %version.version, error = %e, "a previous version is not served");
                    }
                }
            }
            next.insert(
                film.slug.clone(),
                Arc::new(LiveFilm {
                    film,
                    current,
                    previous,
                }),
            );
        }
        let retired = before.iter().any(|(slug, old)| {
            old.versions().any(|v| {
                next.get(slug)
                    .and_then(|new| new.version(&v.name))
                    .is_none()
            })
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

/// `version` of `slug` as served: kept from the last snapshot's `old` when it had it, loaded
/// otherwise.
async fn served(
    media: &dyn MediaStore,
    slug: &str,
    old: Option<&Arc<LiveFilm>>,
    version: &PublishedVersion,
) -> Result<Arc<ServedVersion>, String> {
    match old.and_then(|o| o.version(&version.version)) {
        Some(kept) => Ok(Arc::clone(kept)),
        None => load(media, slug, version).await.map(Arc::new),
    }
}

/// A version of `slug` as served, with its object index from the media store: an empty index,
/// with a warning, when there is none (nothing of that version is served then); an error when
/// it does not parse.
async fn load(
    media: &dyn MediaStore,
    slug: &str,
    version: &PublishedVersion,
) -> Result<ServedVersion, String> {
    let key = format!("{slug}/{}/{OBJECT_INDEX}", version.version);
    let objects = match media.get(&key, None).await {
        Ok(bytes) => ObjectIndex::from_json(&bytes).map_err(|e| e.to_string())?,
        Err(e) => {
            tracing::warn!(%slug, version = %version.version, error = %e, "no object index; nothing of this version is served");
            ObjectIndex::default()
        }
    };
    let last_modified = SystemTime::from(version.published_at);
    Ok(ServedVersion {
        name: version.version.clone(),
        objects,
        last_modified_http: httpdate::fmt_http_date(last_modified),
        last_modified,
    })
}
