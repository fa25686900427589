//! Bounded memo of fingerprints keyed by database system and raw statement text.
//!
//! Takes `(statement, db_system)` pairs and hands out shared [`Fingerprint`]s, computing one
//! only on a miss. Two generations of hash maps keep it bounded without an LRU list: lookups
//! check the young map, then the old one (moving a hit there back into the young map); when the
//! young map fills half the capacity, the old map is dropped and the young one takes its place.
//! Entries used within the last two generations survive, every operation is O(1), and at most
//! `capacity` entries (each holding its statement text) are alive at once.
//!
//! The cache has a single owner and takes `&mut self`: it lives inside the one task that
//! aggregates spans, so it needs no lock.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::{Fingerprint, fingerprint};

/// Bounded cache of fingerprints keyed by `(db_system, statement text)`.
#[derive(Debug)]
pub struct FingerprintCache {
    /// Entries inserted or used in the current generation; never more than `generation_size`.
    young: FxHashMap<u64, Entry>,
    /// Entries of the previous generation; disjoint from `young`.
    old: FxHashMap<u64, Entry>,
    /// Half the capacity: the young map rotates into the old one when it holds this many.
    generation_size: usize,
    hits: u64,
    misses: u64,
}

/// One cached fingerprint with the key it was computed from, to tell hash collisions apart.
#[derive(Debug)]
struct Entry {
    db_system: Box<str>,
    statement: Box<str>,
    fingerprint: Arc<Fingerprint>,
}

impl Entry {
    fn matches(&self, statement: &str, db_system: &str) -> bool {
        &*self.statement == statement && &*self.db_system == db_system
    }
}

impl FingerprintCache {
    /// A cache holding at most `capacity` entries (at least 2).
    pub fn new(capacity: usize) -> Self {
        let generation_size = (capacity / 2).max(1);
        Self {
            young: FxHashMap::with_capacity_and_hasher(generation_size, Default::default()),
            old: FxHashMap::with_capacity_and_hasher(generation_size, Default::default()),
            generation_size,
            hits: 0,
            misses: 0,
        }
    }

    /// The fingerprint of `statement` under `db_system`, from the cache or computed and stored
    /// on a miss. Equal to [`fingerprint`] of the same arguments.
    pub fn get(&mut self, statement: &str, db_system: &str) -> Arc<Fingerprint> {
        let key = cache_key(statement, db_system);
        if let Some(entry) = self.young.get(&key)
            && entry.matches(statement, db_system)
        {
            self.hits += 1;
            return Arc::clone(&entry.fingerprint);
        }
        if let Some(entry) = self.old.remove(&key)
            && entry.matches(statement, db_system)
        {
            self.hits += 1;
            let found = Arc::clone(&entry.fingerprint);
            self.insert_young(key, entry);
            return found;
        }
        self.misses += 1;
        let computed = Arc::new(fingerprint(statement, db_system));
        let entry =
            Entry { db_system: db_system.into(), statement: statement.into(), fingerprint: Arc::clone(&computed) };
        self.insert_young(key, entry);
        computed
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lookups answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Lookups that had to compute a fingerprint so far.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Stores `entry` in the young generation, rotating first when it is full. A colliding
    /// young entry with another key text is replaced.
    fn insert_young(&mut self, key: u64, entry: Entry) {
        if self.young.len() >= self.generation_size && !self.young.contains_key(&key) {
            std::mem::swap(&mut self.young, &mut self.old);
            self.young.clear();
        }
        self.young.insert(key, entry);
    }
}

/// 64-bit key of a `(statement, db_system)` pair.
fn cache_key(statement: &str, db_system: &str) -> u64 {
    xxh3_64_with_seed(statement.as_bytes(), xxh3_64(db_system.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hits_and_misses_are_counted() {
        let mut cache = FingerprintCache::new(8);
        let first = cache.get("SELECT * FROM t WHERE id = 1", "mysql");
        let again = cache.get("SELECT * FROM t WHERE id = 1", "mysql");
        let other_system = cache.get("SELECT * FROM t WHERE id = 1", "postgresql");
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(*first, *other_system);
        assert_eq!((cache.hits(), cache.misses(), cache.len()), (1, 2, 2));
    }

    #[test]
    fn recently_used_entries_survive_rotation() {
        let mut cache = FingerprintCache::new(4);
        cache.get("SELECT 1", "");
        for i in 0..10 {
            cache.get(&format!("SELECT * FROM t{i}"), "");
            cache.get("SELECT 1", "");
        }
        assert_eq!(cache.misses(), 11);
        assert_eq!(cache.hits(), 10);
    }

    #[test]
    fn tiny_capacity_still_works() {
        let mut cache = FingerprintCache::new(0);
        assert!(cache.is_empty());
        cache.get("SELECT 1", "");
        cache.get("SELECT 2", "");
        cache.get("SELECT 3", "");
        assert!(cache.len() <= 2);
    }

    proptest! {
        #[test]
        fn bounded_and_equal_to_direct_fingerprints(
            capacity in 2_usize..16,
            picks in proptest::collection::vec(0_usize..40, 1..200),
        ) {
            let statements: Vec<String> = (0..40)
                .map(|i| format!("SELECT * FROM t{} WHERE id = {}", i % 20, i))
                .collect();
            let mut cache = FingerprintCache::new(capacity);
            for &pick in &picks {
                let statement = &statements[pick];
                let got = cache.get(statement, "postgresql");
                prop_assert_eq!(&*got, &fingerprint(statement, "postgresql"));
                prop_assert!(cache.len() <= capacity);
            }
            prop_assert_eq!(cache.hits() + cache.misses(), picks.len() as u64);
        }
    }
}
