//! The shortest actor–movie–actor chain: bidirectional breadth-first search over the
//! stored nodes, one batched read per half-level.
//!
//! Each side keeps the people and movies it reached, with their distance (in steps:
//! person → movie → person) and where it came from. A step of one side reads the
//! casts of its frontier movies (one batched read), then the nodes of the people
//! newly reached (one more), whose movies become the next frontier; whatever it
//! reaches is checked against what the other side reached, and the first level that
//! meets gives the shortest chain (the best meeting of that level). The side with the
//! smaller frontier steps, which keeps both searches small. A chain of D movies costs
//! 2·D − 1 batched reads: the two endpoints together, then two per step.
//!
//! The work is bounded: a search that has read [`Bound::max_nodes`] nodes, or made
//! [`Bound::max_reads`] batched reads, stops and says so, instead of reading a whole
//! IMDb-sized graph within one request.

use crate::node::{Graph, MovieRef};
use kit::table::StoreError;
use serde::Serialize;
use std::collections::HashMap;

/// How much one search may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bound {
    /// Nodes (people and movies) read from storage.
    pub max_nodes: usize,
    /// Batched reads (storage round trips).
    pub max_reads: usize,
}

impl Default for Bound {
    /// 60,000 nodes — five times the sample graph, half a percent of the 100× graph —
    /// is a few MB of reads, inside a Worker's 128 MB and its CPU limits; 40 reads is a
    /// chain of up to 20 movies, past the diameter of every graph measured here.
    fn default() -> Self {
        Self {
            max_nodes: 60_000,
            max_reads: 40,
        }
    }
}

/// One element of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Actor(String),
    Movie(MovieRef),
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathOutcome {
    /// A shortest chain, from `from` to `to`, actors and movies alternating.
    Found(Vec<Step>),
    /// The two are not connected.
    NoPath,
    /// This name is in no movie of the graph.
    UnknownActor(String),
    /// The search read as much as [`Bound`] allows without meeting.
    BoundHit,
}

/// What a search cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SearchStats {
    /// Batched reads made.
    pub reads: usize,
    /// Nodes asked for.
    pub nodes: usize,
}

#[derive(Default)]
struct Side {
    /// Person → (distance, the movie that reached them).
    people: HashMap<String, (u32, Option<MovieRef>)>,
    /// Movie → (distance, the person that reached it).
    movies: HashMap<MovieRef, (u32, String)>,
    /// Movies reached whose casts are not read yet, sorted.
    frontier: Vec<MovieRef>,
}

impl Side {
    fn start(name: &str, movies: Vec<MovieRef>) -> Self {
        let mut side = Side::default();
        side.people.insert(name.to_owned(), (0, None));
        side.reach_movies(name, 0, movies);
        side
    }

    fn reach_movies(&mut self, person: &str, dist: u32, movies: Vec<MovieRef>) -> Vec<MovieRef> {
        let mut new = Vec::new();
        for m in movies {
            if !self.movies.contains_key(&m) {
                self.movies.insert(m.clone(), (dist + 1, person.to_owned()));
                new.push(m);
            }
        }
        self.frontier.extend(new.iter().cloned());
        new
    }

    /// The chain from this side's root to `person` (root first).
    fn chain_to_person(&self, person: &str) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut at = person.to_owned();
        while let Some((_, Some(movie))) = self.people.get(&at) {
            steps.push(Step::Actor(at.clone()));
            steps.push(Step::Movie(movie.clone()));
            match self.movies.get(movie) {
                Some((_, parent)) => at = parent.clone(),
                None => break,
            }
        }
        steps.push(Step::Actor(at));
        steps.reverse();
        steps
    }

    fn chain_to_movie(&self, movie: &MovieRef) -> Vec<Step> {
        let mut steps = match self.movies.get(movie) {
            Some((_, parent)) => self.chain_to_person(parent),
            None => Vec::new(),
        };
        steps.push(Step::Movie(movie.clone()));
        steps
    }
}

/// Where the two searches met.
enum Meeting {
    Person(String),
    Movie(MovieRef),
}

/// The chain through `meeting`: `a`'s half, then `b`'s reversed.
fn join(a: &Side, b: &Side, meeting: &Meeting) -> Vec<Step> {
    let (mut first, mut second) = match meeting {
        Meeting::Person(p) => (a.chain_to_person(p), b.chain_to_person(p)),
        Meeting::Movie(m) => (a.chain_to_movie(m), b.chain_to_movie(m)),
    };
    second.pop();
    second.reverse();
    first.append(&mut second);
    first
}

/// Finds a shortest chain from `from` to `to`.
pub async fn find_path(
    graph: &Graph,
    from: &str,
    to: &str,
    bound: Bound,
) -> Result<(PathOutcome, SearchStats), StoreError> {
    let mut stats = SearchStats::default();
    let names: Vec<String> = if from == to {
        vec![from.to_owned()]
    } else {
        vec![from.to_owned(), to.to_owned()]
    };
    stats.reads += 1;
    stats.nodes += names.len();
    let nodes = graph.people(&names).await?;
    let mut ends = Vec::new();
    for (name, node) in names.iter().zip(nodes) {
        match node {
            Some(node) => ends.push(node.movies()),
            None => return Ok((PathOutcome::UnknownActor(name.clone()), stats)),
        }
    }
    if from == to {
        return Ok((
            PathOutcome::Found(vec![Step::Actor(from.to_owned())]),
            stats,
        ));
    }
    let to_movies = ends.pop().unwrap_or_default();
    let from_movies = ends.pop().unwrap_or_default();
    // Side 0 searches from `from`, side 1 from `to`.
    let mut sides = [Side::start(from, from_movies), Side::start(to, to_movies)];
    let first: Vec<MovieRef> = sides[0].frontier.clone();
    if let Some(m) = first.iter().find(|m| sides[1].movies.contains_key(*m)) {
        let path = join(&sides[0], &sides[1], &Meeting::Movie(m.clone()));
        return Ok((PathOutcome::Found(path), stats));
    }
    loop {
        let x = usize::from(sides[1].frontier.len() < sides[0].frontier.len());
        if sides[x].frontier.is_empty() {
            return Ok((PathOutcome::NoPath, stats));
        }
        let mut frontier = std::mem::take(&mut sides[x].frontier);
        kit::sorted::sort(&mut frontier);
        if stats.reads + 2 > bound.max_reads || stats.nodes + frontier.len() > bound.max_nodes {
            return Ok((PathOutcome::BoundHit, stats));
        }
        stats.reads += 1;
        stats.nodes += frontier.len();
        let casts = graph.movies(&frontier).await?;
        // People newly reached, each with the movie that reached them.
        let mut reached: Vec<(String, u32)> = Vec::new();
        for (movie, cast) in frontier.iter().zip(casts) {
            let Some(cast) = cast else { continue };
            let dist = sides[x].movies.get(movie).map_or(0, |(d, _)| *d);
            for p in cast.people() {
                if !sides[x].people.contains_key(p) {
                    sides[x]
                        .people
                        .insert(p.to_owned(), (dist + 1, Some(movie.clone())));
                    reached.push((p.to_owned(), dist + 1));
                }
            }
        }
        let (side, other) = split(&mut sides, x);
        let best = reached
            .iter()
            .filter_map(|(p, d)| other.people.get(p).map(|(od, _)| (d + od, p)))
            .min();
        if let Some((_, p)) = best {
            let meeting = Meeting::Person(p.clone());
            return Ok((PathOutcome::Found(ordered(side, other, x, &meeting)), stats));
        }
        if reached.is_empty() {
            continue;
        }
        if stats.nodes + reached.len() > bound.max_nodes {
            return Ok((PathOutcome::BoundHit, stats));
        }
        let names: Vec<String> = reached.iter().map(|(p, _)| p.clone()).collect();
        stats.reads += 1;
        stats.nodes += names.len();
        let nodes = graph.people(&names).await?;
        // Only the closest meeting is taken from it, so neither order nor repeats matter.
        let mut new_movies: Vec<MovieRef> = Vec::new();
        for ((name, dist), node) in reached.iter().zip(nodes) {
            if let Some(node) = node {
                new_movies.extend(side.reach_movies(name, *dist, node.movies()));
            }
        }
        let best = new_movies
            .iter()
            .filter_map(|m| {
                let d = side.movies.get(m).map_or(0, |(d, _)| *d);
                other.movies.get(m).map(|(od, _)| (d + od, m))
            })
            .min();
        if let Some((_, m)) = best {
            let meeting = Meeting::Movie(m.clone());
            return Ok((PathOutcome::Found(ordered(side, other, x, &meeting)), stats));
        }
    }
}

/// Mutable access to side `x` and shared access to the other.
fn split(sides: &mut [Side; 2], x: usize) -> (&mut Side, &Side) {
    let [a, b] = sides;
    if x == 0 {
        (a, b)
    } else {
        (b, a)
    }
}

/// The chain from `from` to `to` whichever side met.
fn ordered(side: &Side, other: &Side, x: usize, meeting: &Meeting) -> Vec<Step> {
    if x == 0 {
        join(side, other, meeting)
    } else {
        join(other, side, meeting)
    }
}
