//! The bounded memory cache of hot objects (playlists, small segments, gzip copies).

use std::sync::Arc;

use bytes::Bytes;

/// The bounded memory cache of hot objects, weighted by bytes.
#[derive(Debug, Clone)]
pub struct HotCache {
    cache: Option<Arc<quick_cache::sync::Cache<String, Bytes, ByteWeight>>>,
    max_object: u64,
}

#[derive(Debug, Clone, Copy)]
struct ByteWeight;

impl quick_cache::Weighter<String, Bytes> for ByteWeight {
    fn weight(&self, key: &String, value: &Bytes) -> u64 {
        (key.len() + value.len()) as u64
    }
}

impl HotCache {
    /// A cache holding at most `capacity_bytes`; objects over `max_object` bytes are not
    /// cached. A capacity of 0 disables it.
    pub fn new(capacity_bytes: u64, max_object: u64) -> Self {
        let cache = (capacity_bytes > 0).then(|| {
            // quick_cache wants an estimate of the item count: assume ~500 kB segments.
            let items = (capacity_bytes / 500_000).max(16) as usize;
            Arc::new(quick_cache::sync::Cache::with_weighter(
                items,
                capacity_bytes,
                ByteWeight,
            ))
        });
        Self { cache, max_object }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.cache.as_ref()?.get(key)
    }

    pub fn insert(&self, key: &str, bytes: Bytes) {
        if let Some(cache) = &self.cache
            && (bytes.len() as u64) <= self.max_object
        {
            cache.insert(key.to_owned(), bytes);
        }
    }

    /// Bytes held now.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hot_cache_is_bounded_by_bytes() {
        let cache = HotCache::new(10_000, 4_000);
        cache.insert("big", Bytes::from(vec![0; 5_000]));
        assert!(cache.get("big").is_none());
        for i in 0..10 {
            cache.insert(&format!("k{i}"), Bytes::from(vec![0; 3_000]));
        }
        assert!(cache.weight() <= 10_000);
        assert!(HotCache::new(0, 1).get("x").is_none());
    }
}
