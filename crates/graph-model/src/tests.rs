//! The graph's maintenance and search on the in-memory backend.

use super::node::PersonNode;
use super::*;
use futures::executor::block_on;
use kit::table::memory::MemoryKv;
use std::rc::Rc;

fn graph(shards: u32) -> (MemoryKv, Graph) {
    let kv = MemoryKv::new();
    let graph = Graph::with_table(Rc::new(kv.table(TABLE)), shards);
    (kv, graph)
}

fn movie(year: u16, title: &str) -> MovieRef {
    MovieRef {
        year,
        title: title.into(),
    }
}

fn cast(actors: &[&str], directors: &[&str]) -> Option<Cast> {
    Some(Cast {
        actors: actors.iter().map(|s| s.to_string()).collect(),
        directors: directors.iter().map(|s| s.to_string()).collect(),
    })
}

fn path(graph: &Graph, from: &str, to: &str) -> PathOutcome {
    block_on(find_path(graph, from, to, Bound::default()))
        .unwrap()
        .0
}

fn degrees(outcome: &PathOutcome) -> Option<usize> {
    match outcome {
        PathOutcome::Found(steps) => {
            Some(steps.iter().filter(|s| matches!(s, Step::Movie(_))).count())
        }
        _ => None,
    }
}

/// A chain A -m1- B -m2- C -m3- D, plus a shortcut A -m4(director)- D... not yet.
fn chain(graph: &Graph) {
    block_on(apply(
        graph,
        &[
            (movie(2001, "One"), cast(&["A", "B"], &[])),
            (movie(2002, "Two"), cast(&["B", "C"], &[])),
            (movie(2003, "Three"), cast(&["C", "D"], &[])),
            (movie(2004, "Alone"), cast(&["E"], &[])),
        ],
    ))
    .unwrap();
}

#[test]
fn find_path_returns_the_alternating_chain_when_people_are_connected() {
    for shards in [1, 3, 32] {
        let (_, g) = graph(shards);
        chain(&g);
        let got = path(&g, "A", "D");
        assert_eq!(
            got,
            PathOutcome::Found(vec![
                Step::Actor("A".into()),
                Step::Movie(movie(2001, "One")),
                Step::Actor("B".into()),
                Step::Movie(movie(2002, "Two")),
                Step::Actor("C".into()),
                Step::Movie(movie(2003, "Three")),
                Step::Actor("D".into()),
            ]),
            "{shards} shards"
        );
        assert_eq!(degrees(&path(&g, "D", "B")), Some(2));
        assert_eq!(degrees(&path(&g, "A", "B")), Some(1));
    }
}

#[test]
fn find_path_answers_degree_zero_no_path_and_unknown() {
    let (_, g) = graph(4);
    chain(&g);
    assert_eq!(
        path(&g, "A", "A"),
        PathOutcome::Found(vec![Step::Actor("A".into())])
    );
    assert_eq!(path(&g, "A", "E"), PathOutcome::NoPath);
    assert_eq!(
        path(&g, "A", "Nobody"),
        PathOutcome::UnknownActor("Nobody".into())
    );
    assert_eq!(
        path(&g, "Nobody", "A"),
        PathOutcome::UnknownActor("Nobody".into())
    );
}

#[test]
fn directors_connect_like_actors() {
    let (_, g) = graph(4);
    chain(&g);
    block_on(apply(
        &g,
        &[(movie(2005, "Directed"), cast(&["E"], &["A"]))],
    ))
    .unwrap();
    assert_eq!(degrees(&path(&g, "E", "D")), Some(4));
}

#[test]
fn deleting_a_movie_removes_its_links_and_a_new_one_adds_them() {
    let (_, g) = graph(4);
    chain(&g);
    let shortcut = movie(2010, "Shortcut");
    block_on(apply(&g, &[(shortcut.clone(), cast(&["A", "D"], &[]))])).unwrap();
    assert_eq!(degrees(&path(&g, "A", "D")), Some(1));
    block_on(apply(&g, &[(shortcut.clone(), None)])).unwrap();
    assert_eq!(degrees(&path(&g, "A", "D")), Some(3));
    // Re-created: the node's revision keeps growing, so the links come back.
    block_on(apply(&g, &[(shortcut, cast(&["A", "D"], &[]))])).unwrap();
    assert_eq!(degrees(&path(&g, "A", "D")), Some(1));
    block_on(apply(&g, &[(movie(2002, "Two"), None)])).unwrap();
    assert_eq!(
        path(&g, "A", "B"),
        PathOutcome::Found(vec![
            Step::Actor("A".into()),
            Step::Movie(movie(2001, "One")),
            Step::Actor("B".into()),
        ])
    );
    assert_eq!(
        path(&g, "B", "C"),
        PathOutcome::Found(vec![
            Step::Actor("B".into()),
            Step::Movie(movie(2001, "One")),
            Step::Actor("A".into()),
            Step::Movie(movie(2010, "Shortcut")),
            Step::Actor("D".into()),
            Step::Movie(movie(2003, "Three")),
            Step::Actor("C".into()),
        ])
    );
}

#[test]
fn apply_writes_nothing_when_the_cast_is_unchanged() {
    let (_, g) = graph(4);
    chain(&g);
    let stats = block_on(apply(&g, &[(movie(2001, "One"), cast(&["A", "B"], &[]))])).unwrap();
    assert_eq!(stats, WriteStats::default());
    let stats = block_on(apply(&g, &[(movie(2001, "One"), cast(&["A", "X"], &[]))])).unwrap();
    assert_eq!((stats.movie_nodes, stats.person_nodes), (1, 2));
}

#[test]
fn a_late_older_change_does_not_undo_a_newer_one() {
    let mut node = PersonNode::default();
    assert!(node.apply("2001:One", 3, true));
    assert!(!node.apply("2001:One", 2, false), "older unlink ignored");
    assert_eq!(node.m.get("2001:One"), Some(&3));
    assert!(node.apply("2001:One", 4, false));
    assert!(!node.apply("2001:One", 3, true), "older link ignored");
    assert!(node.m.is_empty());
}

#[test]
fn find_path_stops_at_the_bound_and_says_so() {
    let (_, g) = graph(4);
    chain(&g);
    let tight = Bound {
        max_nodes: 3,
        max_reads: 40,
    };
    let (outcome, stats) = block_on(find_path(&g, "A", "D", tight)).unwrap();
    assert_eq!(outcome, PathOutcome::BoundHit);
    assert!(stats.nodes <= 3, "{stats:?}");
    let (outcome, stats) = block_on(find_path(&g, "A", "D", Bound::default())).unwrap();
    assert_eq!(degrees(&outcome), Some(3));
    // Two endpoints, then two reads per step: 2·3 − 1.
    assert_eq!(stats.reads, 5, "{stats:?}");
}

#[test]
fn build_shards_matches_what_incremental_writes_store() {
    let (kv, g) = graph(4);
    chain(&g);
    let movies: Vec<(MovieRef, Cast)> = [
        (movie(2001, "One"), cast(&["A", "B"], &[])),
        (movie(2002, "Two"), cast(&["B", "C"], &[])),
        (movie(2003, "Three"), cast(&["C", "D"], &[])),
        (movie(2004, "Alone"), cast(&["E"], &[])),
    ]
    .into_iter()
    .map(|(m, c)| (m, c.unwrap()))
    .collect();
    let built = build_shards(&g, &movies, &Default::default()).unwrap();
    let other = Graph::with_table(Rc::new(kv.table("rebuilt")), 4);
    for (shard, items) in built {
        block_on(other.table.put_partition(&shard, items)).unwrap();
    }
    for (from, to) in [("A", "D"), ("B", "D"), ("A", "E"), ("E", "E")] {
        assert_eq!(path(&g, from, to), path(&other, from, to), "{from} -> {to}");
    }
}
