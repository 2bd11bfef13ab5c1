//! Keeping the graph in step with the movies table.
//!
//! Every path that writes movies goes through `ddb_writes::Door`, which calls
//! [`movies_changed`] after the write, with what each movie is now. It runs two passes,
//! each one write per shard touched — the shard's node mutations ([`crate::mutation`])
//! in one [`kit::table::Table::mutate_many`]: one call to the object holding the graph
//! on Workers, a compare-and-swap per page on Spin:
//!
//! 1. the movie nodes take their new casts; each changed node's new version is the
//!    *revision* of that change (a node is never deleted, so revisions only grow);
//! 2. the people gained or lost by each movie are linked or unlinked at that revision.
//!    A person node keeps the latest revision it saw per movie, so when two writes of
//!    one movie race, the older unlink or link arriving last changes nothing.
//!
//! Then it reads the movies back from the movies table and, if any differs from what
//! it just applied (another write of the same movie landed in between, and its graph
//! update may have run first), applies the table's state again. The last graph update
//! to run therefore always leaves the graph as the table is.
//!
//! A process killed between the movie write and the graph update leaves the graph
//! behind the table: [`rebuild`] (admin `POST /api/graph/rebuild`) recomputes it.

use crate::mutation::{LinkPerson, SetMovie};
use crate::node::{encode, Cast, Graph, MovieNode, MovieRef, PersonNode};
use ddb_model::schema;
use ddb_model::value::Number;
use kit::table::{Mutation, StoreError};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// Read-backs before giving up on catching up with concurrent writers of the same
/// movies (each round means another writer changed one of them meanwhile).
const ROUNDS: usize = 4;

/// What one graph update wrote, for the benchmark's cost per movie.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteStats {
    /// Movie nodes changed.
    pub movie_nodes: usize,
    /// Person nodes changed.
    pub person_nodes: usize,
    /// Atomic shard writes (a compare-and-swap of one shard each).
    pub shard_writes: usize,
}

impl std::ops::AddAssign for WriteStats {
    fn add_assign(&mut self, other: Self) {
        self.movie_nodes += other.movie_nodes;
        self.person_nodes += other.person_nodes;
        self.shard_writes += other.shard_writes;
    }
}

/// A link (`true`) or unlink of a person and a movie id at a revision.
type Edge = (String, u64, bool);

/// One movie's change as pass 1 recorded it.
struct Moved {
    id: String,
    rev: u64,
    /// The people before and after, each sorted and distinct (as [`Cast::people`]).
    before: Vec<String>,
    after: Vec<String>,
}

fn people_of(cast: Option<&Cast>) -> Vec<String> {
    cast.map(|c| c.people().into_iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The people of `a` not in `b` (both sorted).
fn missing<'p>(a: &'p [String], b: &'p [String]) -> impl Iterator<Item = &'p String> {
    a.iter().filter(|p| b.binary_search(p).is_err())
}

/// Groups `((shard, sk), value)` pairs by shard, in shard order.
fn by_shard<T>(
    items: impl IntoIterator<Item = ((String, String), T)>,
) -> Vec<(String, Vec<(String, T)>)> {
    kit::sorted::group(
        items
            .into_iter()
            .map(|((pk, sk), value)| (pk, (sk, value)))
            .collect(),
    )
}

/// Applies `changes` (each movie's cast now, `None` when deleted) to the graph: the
/// two passes, without the read-back.
pub async fn apply(
    graph: &Graph,
    changes: &[(MovieRef, Option<Cast>)],
) -> Result<WriteStats, StoreError> {
    let mut stats = WriteStats::default();
    // The last change of a movie wins, as in the table.
    let latest = kit::sorted::last_of_each(
        changes
            .iter()
            .map(|(movie, cast)| (movie, cast.as_ref()))
            .collect(),
    );
    let keyed = latest
        .into_iter()
        .map(|(m, c)| (graph.movie_key(m), (m, c)));
    let mut moved: Vec<Moved> = Vec::new();
    for (shard, movies) in by_shard(keyed) {
        let mut sets: Vec<(String, Box<dyn Mutation>)> = Vec::with_capacity(movies.len());
        for (sk, (_, cast)) in &movies {
            let node = match cast {
                Some(cast) => MovieNode {
                    cast: (*cast).clone(),
                    gone: false,
                },
                None => MovieNode {
                    cast: Cast::default(),
                    gone: true,
                },
            };
            sets.push((
                sk.clone(),
                Box::new(SetMovie {
                    node: encode(&node)?,
                }),
            ));
        }
        let notes = graph.table.mutate_many(&shard, &sets).await?;
        let changed_before = stats.movie_nodes;
        for ((_, (movie, cast)), note) in movies.iter().zip(notes) {
            if note.is_null() {
                continue;
            }
            let rev = note["rev"].as_u64().ok_or_else(|| {
                StoreError::Corrupt(format!("a movie node's change noted {note}"))
            })?;
            let mut before: Vec<String> = kit::json::from_value(&note["before"])
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            kit::sorted::sort(&mut before);
            moved.push(Moved {
                id: movie.id(),
                rev,
                before,
                after: people_of(*cast),
            });
            stats.movie_nodes += 1;
        }
        if stats.movie_nodes > changed_before {
            stats.shard_writes += 1;
        }
    }
    // Pass 2: each person's links and unlinks, (movie id, revision, linked).
    let mut edges: Vec<(String, Edge)> = Vec::new();
    for m in &moved {
        for p in missing(&m.after, &m.before) {
            edges.push((p.clone(), (m.id.clone(), m.rev, true)));
        }
        for p in missing(&m.before, &m.after) {
            edges.push((p.clone(), (m.id.clone(), m.rev, false)));
        }
    }
    let keyed = kit::sorted::group(edges)
        .into_iter()
        .map(|(p, e)| (graph.person_key(&p), e));
    for (shard, people) in by_shard(keyed) {
        let links: Vec<(String, Box<dyn Mutation>)> = people
            .into_iter()
            .map(|(sk, edges)| (sk, Box::new(LinkPerson { edges }) as Box<dyn Mutation>))
            .collect();
        let notes = graph.table.mutate_many(&shard, &links).await?;
        let changed = notes.iter().filter(|n| n.as_bool() == Some(true)).count();
        if changed > 0 {
            stats.shard_writes += 1;
            stats.person_nodes += changed;
        }
    }
    Ok(stats)
}

/// The casts of `movies` as the `Movies` table holds them now (`None`: not there).
async fn casts_in_table(
    env: &kit::Env,
    movies: &[&MovieRef],
) -> Result<Vec<Option<Cast>>, StoreError> {
    let table = env.table(&schema::movies().storage_name())?;
    let keys: Vec<(String, String)> = movies
        .iter()
        .map(|m| {
            (
                schema::number_partition(&Number::from(m.year)),
                m.title.clone(),
            )
        })
        .collect();
    Ok(table
        .get_many(&keys)
        .await?
        .iter()
        .map(|item| item.as_ref().map(|i| Cast::from_stored(&i.value)))
        .collect())
}

/// The graph update of a movie write (see the module docs): `changes` are the movies
/// written, each with its cast now (`None`: deleted).
pub async fn movies_changed(
    env: &kit::Env,
    changes: Vec<(MovieRef, Option<Cast>)>,
) -> Result<WriteStats, StoreError> {
    let graph = Graph::open(env)?;
    let mut stats = WriteStats::default();
    let mut pending = changes;
    for _ in 0..ROUNDS {
        if pending.is_empty() {
            return Ok(stats);
        }
        stats += apply(&graph, &pending).await?;
        let movies: Vec<&MovieRef> = pending.iter().map(|(m, _)| m).collect();
        let now = casts_in_table(env, &movies).await?;
        pending = pending
            .iter()
            .zip(now)
            .filter(|((_, applied), now)| applied != now)
            .map(|((m, _), now)| (m.clone(), now))
            .collect();
    }
    if pending.is_empty() {
        Ok(stats)
    } else {
        Err(StoreError::Contention)
    }
}

/// One shard's name and its items (sort key, value).
pub type Shard = (String, Vec<(String, Value)>);

/// The whole graph of `movies`, shard by shard, as items to store: each movie node at
/// the version after `versions[sk]` (its current one, 0 when new), which is also the
/// revision its people's edges carry. Movie nodes in `versions` but not in `movies`
/// are kept as deleted, so their revisions keep growing.
pub fn build_shards(
    graph: &Graph,
    movies: &[(MovieRef, Cast)],
    versions: &HashMap<String, u64>,
) -> Result<Vec<Shard>, StoreError> {
    let mut nodes: Vec<((String, String), Value)> = Vec::new();
    let mut links: Vec<(String, (String, u64))> = Vec::new();
    let mut present: Vec<String> = Vec::new();
    for (movie, cast) in movies {
        let (pk, sk) = graph.movie_key(movie);
        let rev = versions.get(&sk).copied().unwrap_or(0) + 1;
        for p in cast.people() {
            links.push((p.to_owned(), (movie.id(), rev)));
        }
        let node = MovieNode {
            cast: cast.clone(),
            gone: false,
        };
        nodes.push(((pk, sk.clone()), encode(&node)?));
        present.push(sk);
    }
    kit::sorted::sort(&mut present);
    for sk in versions
        .keys()
        .filter(|sk| sk.starts_with("m:") && present.binary_search(sk).is_err())
    {
        let gone = MovieNode {
            cast: Cast::default(),
            gone: true,
        };
        nodes.push(((graph.shard_of(sk), sk.clone()), encode(&gone)?));
    }
    for (name, movies) in kit::sorted::group(links) {
        let mut node = PersonNode::default();
        for (id, rev) in movies {
            node.m.insert(id, rev);
        }
        nodes.push((graph.person_key(&name), encode(&node)?));
    }
    Ok(by_shard(nodes))
}

/// What [`rebuild`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rebuilt {
    pub movies: usize,
    pub people: usize,
    pub shards: usize,
}

/// Recomputes the whole graph from the `Movies` table: reads every year the table's
/// partition directory lists and every shard, then rewrites each shard once. For
/// recovery (a graph update cut short, a changed shard count); run it while nothing
/// writes movies, since a movie written during the rebuild may be overwritten.
pub async fn rebuild(env: &kit::Env) -> Result<Rebuilt, StoreError> {
    let graph = Graph::open(env)?;
    let def = schema::movies();
    let directory = env.table(&def.directory_name())?;
    let items = env.table(&def.storage_name())?;
    let mut movies: Vec<(MovieRef, Cast)> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = directory
            .query(schema::DIRECTORY_PK, after.as_deref(), 1000)
            .await?;
        for year_pk in &page.items {
            let mut after_title: Option<String> = None;
            loop {
                let titles = items
                    .query(&year_pk.sk, after_title.as_deref(), 1000)
                    .await?;
                for item in &titles.items {
                    let year = item
                        .value
                        .pointer("/year/N")
                        .and_then(Value::as_str)
                        .and_then(|y| y.parse().ok());
                    if let Some(year) = year {
                        movies.push((
                            MovieRef {
                                year,
                                title: item.sk.clone(),
                            },
                            Cast::from_stored(&item.value),
                        ));
                    }
                }
                match titles.next {
                    Some(next) => after_title = Some(next),
                    None => break,
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut versions = HashMap::new();
    for n in 0..graph.shards {
        let shard = format!("s{n}");
        let mut after: Option<String> = None;
        loop {
            let page = graph.table.query(&shard, after.as_deref(), 10_000).await?;
            for item in page.items {
                if item.sk.starts_with("m:") {
                    versions.insert(item.sk, item.version);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    let mut shards = build_shards(&graph, &movies, &versions)?;
    let mut rebuilt = Rebuilt {
        movies: movies.len(),
        ..Rebuilt::default()
    };
    for n in 0..graph.shards {
        let shard = format!("s{n}");
        let nodes = shards
            .iter_mut()
            .find(|(name, _)| *name == shard)
            .map(|(_, nodes)| std::mem::take(nodes))
            .unwrap_or_default();
        rebuilt.people += nodes.iter().filter(|(sk, _)| sk.starts_with("p:")).count();
        graph.table.put_partition(&shard, nodes).await?;
        rebuilt.shards += 1;
    }
    Ok(rebuilt)
}
