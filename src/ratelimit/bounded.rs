//! The eviction rule shared by every bounded in-memory table (limiter
//! shards, login back-off): when a table is full, drop the tenth of its
//! entries that matter least, so that the next evictions are a tenth of the
//! table away and their cost is spread over many inserts.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Drops the tenth of the entries with the smallest `age` (all of them for
/// a table of fewer than ten).
pub(crate) fn evict_tenth<K, V, S, T>(map: &mut HashMap<K, V, S>, age: impl Fn(&V) -> T)
where
    K: Eq + Hash,
    S: BuildHasher,
    T: Ord + Copy,
{
    let mut ages: Vec<T> = map.values().map(&age).collect();
    let cut = ages.len() / 10;
    if cut == 0 {
        map.clear();
        return;
    }
    let (_, threshold, _) = ages.select_nth_unstable(cut);
    let threshold = *threshold;
    map.retain(|_, v| age(v) > threshold);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenth_with_the_smallest_age_goes() {
        let mut map: HashMap<u32, u32> = (0..100).map(|n| (n, n)).collect();
        evict_tenth(&mut map, |v| *v);
        assert_eq!(map.len(), 89);
        assert!(map.keys().all(|k| *k > 10));
    }

    #[test]
    fn a_tiny_table_is_emptied() {
        let mut map: HashMap<u32, u32> = (0..9).map(|n| (n, n)).collect();
        evict_tenth(&mut map, |v| *v);
        assert!(map.is_empty());
    }
}
