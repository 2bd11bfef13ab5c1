//! Node items and where they live.
//!
//! A node's sort key is `m:<year>:<title>` (a movie) or `p:<name>` (a person); its
//! partition is the shard `s<n>`, `n` the FNV-1a hash of the sort key modulo the
//! shard count. Hashing spreads a bulk import over every shard evenly, so an import
//! costs one atomic write per shard per pass however many movies it holds.

use kit::table::{Item, StoreError, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The table the graph's nodes are kept in.
pub const TABLE: &str = "graph";

/// Shards when `graph_shards` is not configured: sized for the sample (12,035 nodes,
/// about 40 KB a shard) so that importing the whole file rewrites 2×32 shards, well
/// inside Spin's 256 compare-and-swaps per request next to the movies' own writes.
pub const DEFAULT_SHARDS: u32 = 32;

/// The most shards a deployment may configure.
pub const MAX_SHARDS: u32 = 1 << 20;

/// A movie's key in the movies table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MovieRef {
    pub year: u16,
    pub title: String,
}

impl MovieRef {
    /// The edge id a person node keeps: `<year>:<title>`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.year, self.title)
    }

    pub fn from_id(id: &str) -> Option<Self> {
        let (year, title) = id.split_once(':')?;
        Some(Self {
            year: year.parse().ok()?,
            title: title.to_owned(),
        })
    }

    fn sk(&self) -> String {
        format!("m:{}", self.id())
    }
}

/// The people of one movie, as its item in the movies table names them. Stored only
/// inside a [`MovieNode`], whose serde code names its fields (`a`, `d`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cast {
    pub actors: Vec<String>,
    pub directors: Vec<String>,
}

impl Cast {
    /// Everyone in the movie, actors and directors alike, once each, in byte order.
    /// A sorted `Vec` rather than a set: casts are small, and a set type of its own
    /// would compile a tree for it.
    pub fn people(&self) -> Vec<&str> {
        let mut people: Vec<&str> = self
            .actors
            .iter()
            .chain(&self.directors)
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .collect();
        kit::sorted::sort(&mut people);
        people.dedup();
        people
    }

    /// The cast of a movie as the `Movies` table stores it (DynamoDB's typed JSON):
    /// `info.actors` and `info.directors`, lists (or string sets) of strings; anything
    /// else there names nobody.
    pub fn from_stored(item: &Value) -> Self {
        let names = |field: &str| -> Vec<String> {
            let Some(attr) = item.pointer(&format!("/info/M/{field}")) else {
                return Vec::new();
            };
            let mut names: Vec<String> = match (attr.get("L"), attr.get("SS")) {
                (Some(Value::Array(list)), _) => list
                    .iter()
                    .filter_map(|v| v.get("S").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect(),
                (_, Some(Value::Array(set))) => set
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            names.retain(|n| !n.is_empty() && n.len() <= MAX_NAME_BYTES);
            kit::sorted::dedup_stable(&mut names);
            names
        };
        Self {
            actors: names("actors"),
            directors: names("directors"),
        }
    }
}

/// Longer names are left out of the graph (no URL could name them usefully).
pub const MAX_NAME_BYTES: usize = 512;

/// A movie node as stored: its cast, or `gone` once the movie was deleted. The node
/// itself is never deleted, so its version — the revision its edges carry — only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "MovieNodeJson")]
pub struct MovieNode {
    pub cast: Cast,
    pub gone: bool,
}

/// A [`MovieNode`] as stored: the cast's fields beside `gone`. Spelled out rather than
/// `#[serde(flatten)]`, which reads every node through serde's generic buffering: a
/// second copy per node read, and a large share of the wasm.
#[derive(Deserialize)]
struct MovieNodeJson {
    a: Vec<String>,
    d: Vec<String>,
    #[serde(default)]
    gone: bool,
}

#[derive(Serialize)]
struct MovieNodeRef<'a> {
    a: &'a [String],
    d: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    gone: bool,
}

impl From<MovieNodeJson> for MovieNode {
    fn from(j: MovieNodeJson) -> Self {
        Self {
            cast: Cast {
                actors: j.a,
                directors: j.d,
            },
            gone: j.gone,
        }
    }
}

impl Serialize for MovieNode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MovieNodeRef {
            a: &self.cast.actors,
            d: &self.cast.directors,
            gone: self.gone,
        }
        .serialize(serializer)
    }
}

/// A person node as stored: each movie the person is in, with the revision of the
/// movie node that linked them (`m`), and the revisions of unlinks (`x`), so that an
/// older change arriving late cannot undo a newer one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonNode {
    #[serde(default)]
    pub m: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub x: BTreeMap<String, u64>,
}

impl PersonNode {
    /// The person's movies, in key order (year, then title).
    pub fn movies(&self) -> Vec<MovieRef> {
        let mut movies: Vec<MovieRef> = self
            .m
            .keys()
            .filter_map(|id| MovieRef::from_id(id))
            .collect();
        kit::sorted::sort(&mut movies);
        movies
    }

    /// Links (`present`) or unlinks the movie `id` at revision `rev`, unless a change
    /// at a later revision is already here; says whether anything changed.
    pub fn apply(&mut self, id: &str, rev: u64, present: bool) -> bool {
        let seen = self.m.get(id).max(self.x.get(id)).copied().unwrap_or(0);
        if rev <= seen {
            return false;
        }
        if present {
            self.x.remove(id);
            self.m.insert(id.to_owned(), rev);
        } else {
            self.m.remove(id);
            self.x.insert(id.to_owned(), rev);
        }
        true
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    kit::json::from_value(&item.value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn encode<T: Serialize>(node: &T) -> Result<Value, StoreError> {
    serde_json::to_value(node).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The graph of one request: its table and shard count.
#[derive(Clone)]
pub struct Graph {
    pub(crate) table: Rc<dyn Table>,
    pub(crate) shards: u32,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Graph({} shards)", self.shards)
    }
}

impl Graph {
    /// The graph on `env`'s `graph` table, with `graph_shards` shards (1 to
    /// [`MAX_SHARDS`]; unset or unreadable: [`DEFAULT_SHARDS`]). Every writer and
    /// reader of one deployment must agree on it: changing it needs a rebuild.
    pub fn open(env: &kit::Env) -> Result<Self, StoreError> {
        let shards = env
            .config("graph_shards")
            .and_then(|s| s.parse().ok())
            .filter(|n| (1..=MAX_SHARDS).contains(n))
            .unwrap_or(DEFAULT_SHARDS);
        Ok(Self {
            table: env.table(TABLE)?,
            shards,
        })
    }

    pub fn with_table(table: Rc<dyn Table>, shards: u32) -> Self {
        Self {
            table,
            shards: shards.clamp(1, MAX_SHARDS),
        }
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    pub(crate) fn shard_of(&self, sk: &str) -> String {
        format!("s{}", fnv1a(sk.as_bytes()) % u64::from(self.shards))
    }

    pub(crate) fn movie_key(&self, movie: &MovieRef) -> (String, String) {
        let sk = movie.sk();
        (self.shard_of(&sk), sk)
    }

    pub(crate) fn person_key(&self, name: &str) -> (String, String) {
        let sk = format!("p:{name}");
        (self.shard_of(&sk), sk)
    }

    /// The person nodes of `names`, in order, in one batched read; `None` for someone
    /// in no movie.
    pub async fn people(&self, names: &[String]) -> Result<Vec<Option<PersonNode>>, StoreError> {
        let keys: Vec<(String, String)> = names.iter().map(|n| self.person_key(n)).collect();
        self.nodes(&keys, |node: PersonNode| {
            (!node.m.is_empty()).then_some(node)
        })
        .await
    }

    /// The casts of `movies`, in order, in one batched read; `None` for a movie the
    /// graph does not have (never written, or deleted).
    pub async fn movies(&self, movies: &[MovieRef]) -> Result<Vec<Option<Cast>>, StoreError> {
        let keys: Vec<(String, String)> = movies.iter().map(|m| self.movie_key(m)).collect();
        self.nodes(&keys, |node: MovieNode| (!node.gone).then_some(node.cast))
            .await
    }

    /// The nodes at `keys`, in order, in one batched read, each decoded as `N` and kept
    /// as `keep` says (`None`: a node that stands for nothing, as a missing one).
    async fn nodes<N: serde::de::DeserializeOwned, T>(
        &self,
        keys: &[(String, String)],
        keep: impl Fn(N) -> Option<T>,
    ) -> Result<Vec<Option<T>>, StoreError> {
        self.table
            .get_many(keys)
            .await?
            .iter()
            .map(|item| match item {
                Some(item) => Ok(keep(decode(item)?)),
                None => Ok(None),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(actors: &[&str], gone: bool) -> MovieNode {
        MovieNode {
            cast: Cast {
                actors: actors.iter().map(|a| a.to_string()).collect(),
                directors: vec!["D".into()],
            },
            gone,
        }
    }

    /// Nodes already stored must keep reading back: the format is data, not code.
    #[test]
    fn movie_node_keeps_its_stored_format() {
        let live = node(&["A", "B"], false);
        assert_eq!(
            encode(&live).expect("encodes"),
            json!({"a": ["A", "B"], "d": ["D"]})
        );
        let gone = node(&[], true);
        assert_eq!(
            encode(&gone).expect("encodes"),
            json!({"a": [], "d": ["D"], "gone": true})
        );
        for n in [live, gone] {
            let item = Item {
                sk: "m:x".into(),
                value: encode(&n).expect("encodes"),
                version: 1,
            };
            assert_eq!(decode::<MovieNode>(&item).expect("decodes"), n);
        }
    }
}
