//! `BoundedMap`: a map from text keys to values that expire, bounded in size, shared by the
//! in-process login throttle and rate limiter.

use std::collections::HashMap;

/// Below this many keys the map is never swept for expired values.
pub(crate) const MIN_SWEEP_LEN: usize = 1024;

/// A value that stops counting at an instant: it is expired at `now` when `expires_at() <= now`,
/// and an expired value may be dropped at any time.
pub(crate) trait Expiring {
    /// The instants compared (a clock reading, or nanoseconds).
    type Instant: Ord + Copy;

    /// The first instant the value no longer counts.
    fn expires_at(&self) -> Self::Instant;
}

/// A `HashMap<String, V>` that never holds more than its capacity of keys, and is swept for
/// expired values once it has doubled in size since the last sweep.
///
/// Room is made only when a new key is [`insert`](Self::insert)ed and finds the map at its
/// sweep threshold or at the capacity: the expired values are dropped, then, if the capacity
/// is still held, those that expire soonest, down to nine tenths of the capacity and always
/// at least one below it, so the new key fits and evictions are amortised. The threshold is
/// then set to twice the keys left, never below [`MIN_SWEEP_LEN`], so a sweep of `n` keys
/// follows at least `n / 2` new keys: amortised O(1) per new key.
#[derive(Debug)]
pub(crate) struct BoundedMap<V> {
    map: HashMap<String, V>,
    /// The most keys held (at least one).
    capacity: usize,
    /// Make room when a new key finds the map this large (or at the capacity).
    sweep_at: usize,
}

impl<V: Expiring> BoundedMap<V> {
    /// An empty map of at most `capacity` keys (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            capacity: capacity.max(1),
            sweep_at: MIN_SWEEP_LEN,
        }
    }

    /// Keys held, including expired values not yet swept.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The most keys it holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        self.map.remove(key)
    }

    /// Sets `key`'s value: in place if the key is held (the map does not grow), else as a new
    /// key, first making room at `now` if the map is at its sweep threshold or its capacity.
    pub(crate) fn insert(&mut self, key: &str, value: V, now: V::Instant) {
        if let Some(held) = self.map.get_mut(key) {
            *held = value;
            return;
        }
        if self.map.len() >= self.sweep_at || self.map.len() >= self.capacity {
            self.make_room(now);
        }
        self.map.insert(key.to_owned(), value);
    }

    /// Drops the values expired at `now`, then, if the capacity is still held, the ones that
    /// expire soonest, down to nine tenths of the capacity and always at least one below it;
    /// and sets the next sweep threshold.
    fn make_room(&mut self, now: V::Instant) {
        self.map.retain(|_, value| now < value.expires_at());
        let capacity = self.capacity;
        if self.map.len() >= capacity {
            let target = (capacity - capacity / 10).min(capacity - 1);
            let excess = self.map.len() - target;
            let mut by_expiry: Vec<(V::Instant, &String)> = self
                .map
                .iter()
                .map(|(key, value)| (value.expires_at(), key))
                .collect();
            // Only the `excess` soonest to expire need to be found, not sorted: O(n).
            if excess < by_expiry.len() {
                by_expiry.select_nth_unstable(excess);
                by_expiry.truncate(excess);
            }
            let victims: Vec<String> = by_expiry.into_iter().map(|(_, key)| key.clone()).collect();
            for key in victims {
                self.map.remove(&key);
            }
        }
        self.sweep_at = (self.map.len() * 2).max(MIN_SWEEP_LEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value expiring at its number.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct At(u64);

    impl Expiring for At {
        type Instant = u64;
        fn expires_at(&self) -> u64 {
            self.0
        }
    }

    fn key(i: usize) -> String {
        format!("k{i}")
    }

    fn held(map: &BoundedMap<At>, range: std::ops::Range<usize>) -> usize {
        range.filter(|i| map.get(&key(*i)).is_some()).count()
    }

    #[test]
    fn capacity_is_at_least_one() {
        let mut map = BoundedMap::<At>::new(0);
        assert_eq!(map.capacity(), 1);
        map.insert("a", At(10), 0);
        map.insert("b", At(20), 0);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("b"), Some(&At(20)));
        assert_eq!(map.get("a"), None);
    }

    #[test]
    fn below_the_minimum_nothing_is_swept() {
        let mut map = BoundedMap::new(1_000_000);
        for i in 0..MIN_SWEEP_LEN {
            map.insert(&key(i), At(1), 0);
        }
        // All expired at 5, but the map is only now at the minimum: nothing was swept yet.
        assert_eq!(map.len(), MIN_SWEEP_LEN);
        // Updating a held key never makes room, even at the threshold.
        map.insert(&key(0), At(1), 5);
        assert_eq!(map.len(), MIN_SWEEP_LEN);
        // The next new key sweeps every expired value.
        map.insert("new", At(100), 5);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get("new"), Some(&At(100)));
        // A sweep leaving few keys never sets the threshold below the minimum.
        assert_eq!(map.sweep_at, MIN_SWEEP_LEN);
    }

    #[test]
    fn sweeps_follow_each_doubling() {
        let mut map = BoundedMap::new(1_000_000);
        let live = 1000;
        for i in 0..live {
            map.insert(&key(i), At(1_000), 0);
        }
        for i in live..MIN_SWEEP_LEN {
            map.insert(&key(i), At(1), 0);
        }
        map.insert("first", At(1_000), 5);
        // The 24 expired are swept; `live + 1` stay, so the next sweep is at twice that.
        assert_eq!(map.len(), live + 1);
        assert_eq!(map.sweep_at, 2 * live);
        let mut i = MIN_SWEEP_LEN;
        while map.len() < 2 * live {
            map.insert(&key(i), At(6), 5);
            i += 1;
        }
        assert_eq!(map.len(), 2 * live, "no sweep before the map has doubled");
        map.insert("second", At(1_000), 10);
        // Those expired at 10 are swept, the others stay.
        assert_eq!(map.len(), live + 2);
        assert_eq!(map.sweep_at, 2 * (live + 1));
        assert_eq!(held(&map, 0..live), live);
    }

    #[test]
    fn at_capacity_expired_values_go_first() {
        let mut map = BoundedMap::new(100);
        for i in 0..100 {
            let expiry = if i % 2 == 0 { 1 } else { 1_000 };
            map.insert(&key(i), At(expiry), 0);
        }
        map.insert("new", At(1_000), 5);
        // The 50 expired made room enough: no live value was evicted.
        assert_eq!(map.len(), 51);
        assert_eq!(held(&map, 0..100), 50);
        assert!((0..100).step_by(2).all(|i| map.get(&key(i)).is_none()));
    }

    #[test]
    fn at_capacity_the_soonest_to_expire_go_down_to_nine_tenths() {
        let mut map = BoundedMap::new(100);
        for i in 0..100 {
            // Inserted out of expiry order.
            let expiry = 1_000 + ((i * 37) % 100) as u64;
            map.insert(&key(i), At(expiry), 0);
        }
        map.insert("new", At(1), 0);
        // Down to 90, then the new key: the ten soonest to expire are gone.
        assert_eq!(map.len(), 91);
        assert_eq!(map.get("new"), Some(&At(1)));
        for i in 0..100 {
            let expiry = 1_000 + ((i * 37) % 100) as u64;
            assert_eq!(
                map.get(&key(i)).is_some(),
                expiry >= 1_010,
                "key {i} expiring at {expiry}"
            );
        }
    }

    #[test]
    fn never_more_than_the_capacity() {
        for capacity in [1, 2, 9, 10, 11, 57] {
            let mut map = BoundedMap::new(capacity);
            for i in 0..10 * capacity + 3 {
                map.insert(&key(i), At(1_000 + i as u64), i as u64);
                assert!(map.len() <= capacity, "capacity {capacity}");
                assert!(map.get(&key(i)).is_some(), "the new key is always held");
            }
        }
    }

    #[test]
    fn a_held_key_at_capacity_is_updated_in_place() {
        let mut map = BoundedMap::new(3);
        map.insert("a", At(10), 0);
        map.insert("b", At(20), 0);
        map.insert("c", At(30), 0);
        map.insert("a", At(40), 100);
        assert_eq!(map.len(), 3, "nothing swept nor evicted");
        assert_eq!(map.get("a"), Some(&At(40)));
        if let Some(value) = map.get_mut("b") {
            *value = At(50);
        }
        assert_eq!(map.remove("b"), Some(At(50)));
        assert_eq!(map.len(), 2);
    }
}
