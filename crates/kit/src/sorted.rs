//! Sorts, groupings, ordered maps and deduplication that compile their sorting code once.
//!
//! Rust's sorts and `BTreeMap`'s `FromIterator` (which sorts its input, then bulk-builds
//! the tree) are compiled once per element type — and `FromIterator` once per iterator
//! type. In a wasm binary each copy of the stable sort is about 4 KB, and the Worker had
//! 17 of them. Here every sort orders *indexes* through one comparator behind `dyn`, so
//! the sort itself is compiled once, and each element type adds only a small permute
//! step; maps are built by insertion, whose code each key type compiles anyway, and
//! [`group`], [`last_of_each`] and [`dedup_stable`] stand in for maps and sets that only
//! group or deduplicate.

use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Sorts `items` by `cmp`, stably: of equal items, the first stays first.
pub fn sort_by<T>(items: &mut Vec<T>, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let order = {
        let items = &*items;
        stable_order(
            items.len(),
            &mut |a, b| match (items.get(a), items.get(b)) {
                (Some(a), Some(b)) => cmp(a, b),
                // Unreachable: `stable_order` only passes indexes below `len`.
                _ => Ordering::Equal,
            },
        )
    };
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(
        order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take)),
    );
}

/// Sorts `items` by the key `key` gives each, stably.
pub fn sort_by_key<T, K: Ord>(items: &mut Vec<T>, mut key: impl FnMut(&T) -> K) {
    sort_by(items, |a, b| key(a).cmp(&key(b)));
}

/// Sorts `items` in their own order, stably.
pub fn sort<T: Ord>(items: &mut Vec<T>) {
    sort_by(items, T::cmp);
}

/// The indexes `0..len` in the stable order `cmp` gives them: the one sort compiled.
fn stable_order(len: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| cmp(a, b));
    order
}

/// `pairs` grouped by key, in key order; each group's values in the order given. What
/// `BTreeMap<K, Vec<V>>` with `entry(k).or_default().push(v)` gives, without compiling
/// a tree for `K` and `Vec<V>`.
pub fn group<K: Ord, V>(mut pairs: Vec<(K, V)>) -> Vec<(K, Vec<V>)> {
    sort_by(&mut pairs, |a, b| a.0.cmp(&b.0));
    let mut groups: Vec<(K, Vec<V>)> = Vec::new();
    for (k, v) in pairs {
        match groups.last_mut() {
            Some((last, values)) if *last == k => values.push(v),
            _ => groups.push((k, vec![v])),
        }
    }
    groups
}

/// `pairs` in key order with one pair per key, the last given of equal keys: what
/// collecting into a `BTreeMap` and iterating it gives.
pub fn last_of_each<K: Ord, V>(mut pairs: Vec<(K, V)>) -> Vec<(K, V)> {
    sort_by(&mut pairs, |a, b| a.0.cmp(&b.0));
    let mut out: Vec<(K, V)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match out.last_mut() {
            Some(last) if last.0 == k => *last = (k, v),
            _ => out.push((k, v)),
        }
    }
    out
}

/// The indexes whose item equals an earlier one, in O(n log n).
fn repeats<T: Ord>(items: &[T]) -> impl Iterator<Item = usize> + '_ {
    let order = stable_order(
        items.len(),
        &mut |a, b| match (items.get(a), items.get(b)) {
            (Some(a), Some(b)) => a.cmp(b),
            _ => Ordering::Equal,
        },
    );
    // Equal items are adjacent in `order`, each run in index order: all but a run's
    // first are the repeats.
    (1..order.len()).filter_map(move |i| {
        let (a, b) = (order.get(i - 1)?, order.get(i)?);
        (items.get(*a) == items.get(*b)).then_some(*b)
    })
}

/// The first index whose item equals an earlier one, in O(n log n): what a scan that
/// checks each item against those before it finds in O(n²).
pub fn first_repeat<T: Ord>(items: &[T]) -> Option<usize> {
    repeats(items).min()
}

/// Drops every item equal to an earlier one and keeps the rest in their order: what
/// filtering through a `BTreeSet`'s `insert` gives, in O(n log n) without the tree.
pub fn dedup_stable<T: Ord>(items: &mut Vec<T>) {
    let mut keep = vec![true; items.len()];
    for repeat in repeats(items) {
        if let Some(k) = keep.get_mut(repeat) {
            *k = false;
        }
    }
    let mut index = 0;
    items.retain(|_| {
        let kept = keep.get(index).copied().unwrap_or(true);
        index += 1;
        kept
    });
}

/// The map of `pairs`; of equal keys the last wins, as with `collect`.
pub fn map<K: Ord, V>(pairs: Vec<(K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        map.insert(k, v);
    }
    map
}

/// The JSON object of `fields`; of equal names the last wins, as with `collect`.
pub fn object(fields: Vec<(String, Value)>) -> Map<String, Value> {
    let mut object = Map::new();
    for (name, value) in fields {
        object.insert(name, value);
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The next of a pseudo-random sequence (a 64-bit LCG) from `seed`.
    fn noise(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed
    }

    #[test]
    fn builders_order_by_key_and_keep_the_last_of_equal_keys() {
        let m = map(vec![("b", 1), ("a", 2), ("b", 3)]);
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![("a", 2), ("b", 3)]);
        let o = object(vec![
            ("z".into(), Value::Null),
            ("a".into(), Value::Bool(true)),
            ("z".into(), Value::Bool(false)),
        ]);
        assert_eq!(Value::Object(o), serde_json::json!({"a": true, "z": false}));
    }

    #[test]
    fn group_and_last_of_each_match_what_a_btreemap_gives() {
        let pairs = vec![("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)];
        let mut tree: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (k, v) in pairs.clone() {
            tree.entry(k).or_default().push(v);
        }
        assert_eq!(group(pairs.clone()), tree.into_iter().collect::<Vec<_>>());
        let last: BTreeMap<&str, i32> = pairs.clone().into_iter().collect();
        assert_eq!(last_of_each(pairs), last.into_iter().collect::<Vec<_>>());
        assert!(group(Vec::<(u8, u8)>::new()).is_empty());
    }

    #[test]
    fn dedup_stable_keeps_the_first_of_equal_items_in_their_order() {
        let mut seed = 11u64;
        for len in 0..60 {
            let items: Vec<u8> = (0..len)
                .map(|_| (noise(&mut seed) >> 33) as u8 % 9)
                .collect();
            let mut seen = BTreeSet::new();
            let expected: Vec<u8> = items.iter().copied().filter(|i| seen.insert(*i)).collect();
            let mut got = items.clone();
            dedup_stable(&mut got);
            assert_eq!(got, expected, "{items:?}");
        }
    }

    #[test]
    fn first_repeat_finds_what_a_quadratic_scan_finds() {
        let mut seed = 13u64;
        for len in 0..80 {
            let items: Vec<u8> = (0..len)
                .map(|_| (noise(&mut seed) >> 33) as u8 % 40)
                .collect();
            let expected = (0..items.len()).find(|&i| items[..i].contains(&items[i]));
            assert_eq!(first_repeat(&items), expected, "{items:?}");
        }
    }

    #[test]
    fn sort_by_orders_like_the_standard_stable_sort() {
        // Pseudo-random pairs with many equal keys, so stability is exercised.
        let mut seed = 7u64;
        for len in [0, 1, 2, 3, 17, 100, 1000] {
            let items: Vec<(u8, usize)> = (0..len)
                .map(|i| ((noise(&mut seed) >> 59) as u8, i))
                .collect();
            let mut expected = items.clone();
            expected.sort_by_key(|p| p.0);
            let mut got = items.clone();
            sort_by_key(&mut got, |p| p.0);
            assert_eq!(got, expected, "len {len}");
            let mut whole = items;
            sort(&mut whole);
            let mut whole_expected = whole.clone();
            whole_expected.sort();
            assert_eq!(whole, whole_expected);
        }
    }
}
