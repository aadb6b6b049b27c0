//! A small in-memory map that never grows past a fixed number of entries,
//! for facts that are expensive to establish and cheap to re-establish
//! (a verified signature, an immutable account): when it is full, entries
//! that are no longer useful go, and if that is not enough, all of them do.
//! Losing an entry only ever costs the work it saved.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{PoisonError, RwLock};

pub struct BoundedMap<K, V> {
    entries: RwLock<HashMap<K, V>>,
    capacity: usize,
}

impl<K: Eq + Hash, V> BoundedMap<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// Applies `read` to the entry of `key`, if there is one.
    pub fn get<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> Option<R>) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).and_then(read)
    }

    /// Adds an entry; when the map is full, first drops every entry for
    /// which `still_useful` is false, then, if still full, everything.
    pub fn insert(&self, key: K, value: V, still_useful: impl Fn(&V) -> bool) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, v| still_useful(v));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, value);
    }

    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_the_entries_that_are_no_longer_useful_first() {
        let map = BoundedMap::new(3);
        map.insert(1, "stale", |_| true);
        map.insert(2, "fresh", |_| true);
        map.insert(3, "stale", |_| true);
        map.insert(4, "fresh", |v| *v != "stale");
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&2, |v| Some(*v)), Some("fresh"));
        assert_eq!(map.get(&4, |v| Some(*v)), Some("fresh"));
        assert_eq!(map.get(&1, |v| Some(*v)), None);
    }

    #[test]
    fn a_map_full_of_useful_entries_starts_over_rather_than_grow() {
        let map = BoundedMap::new(2);
        map.insert(1, 'a', |_| true);
        map.insert(2, 'b', |_| true);
        map.insert(3, 'c', |_| true);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&3, |v| Some(*v)), Some('c'));
    }

    #[test]
    fn replacing_an_entry_of_a_full_map_keeps_the_others() {
        let map = BoundedMap::new(2);
        map.insert(1, "a", |_| false);
        map.insert(2, "b", |_| false);
        map.insert(2, "c", |_| false);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(&2, |v| Some(*v)), Some("c"));
    }
}
