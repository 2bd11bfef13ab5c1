//! Ordered maps and sets built from a `Vec`, so that each key and value type compiles
//! the build code once.
//!
//! `BTreeMap`'s and `BTreeSet`'s `FromIterator` sorts its input and bulk-builds the
//! tree, and that code is compiled once per *iterator type*: every `.collect()` into a
//! map from a different chain of adapters (`map`, `filter`, a `Result` shunt) is its
//! own copy of a stable sort and a tree builder. The Worker had 15 of them. Collecting
//! the adapters into a `Vec` first and building from its `IntoIter` leaves one copy per
//! element type (`serde_json::Map` is a `BTreeMap` of `String` and `Value`).

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The map of `pairs`; of equal keys the last wins, as with `collect`.
pub fn map<K: Ord, V>(pairs: Vec<(K, V)>) -> BTreeMap<K, V> {
    pairs.into_iter().collect()
}

/// The set of `items`.
pub fn set<T: Ord>(items: Vec<T>) -> BTreeSet<T> {
    items.into_iter().collect()
}

/// The JSON object of `fields`; of equal names the last wins, as with `collect`.
pub fn object(fields: Vec<(String, Value)>) -> Map<String, Value> {
    fields.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_order_by_key_and_keep_the_last_of_equal_keys() {
        let m = map(vec![("b", 1), ("a", 2), ("b", 3)]);
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![("a", 2), ("b", 3)]);
        let s = set(vec![3, 1, 3, 2]);
        assert_eq!(s.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        let o = object(vec![
            ("z".into(), Value::Null),
            ("a".into(), Value::Bool(true)),
            ("z".into(), Value::Bool(false)),
        ]);
        assert_eq!(Value::Object(o), serde_json::json!({"a": true, "z": false}));
    }
}
