//! The graph's node writes as table mutations: shipped by data, so that on Workers a
//! shard's nodes change inside the object that holds them, in one call per shard
//! ([`kit::table::Table::mutate_many`]); elsewhere one compare-and-swap per page.

use crate::node::{decode, encode, MovieNode, PersonNode};
use kit::table::{Change, Item, Mutation, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The kind a [`SetMovie`] ships as.
pub const SET_MOVIE: &str = "graph.set_movie";

/// The kind a [`LinkPerson`] ships as.
pub const LINK_PERSON: &str = "graph.link_person";

/// A movie node takes `node` (its cast now, or `gone`), unless it holds that already.
/// Notes `{"rev": <the node's new version>, "before": <its people as they were>}` when
/// it changes, `null` when not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetMovie {
    pub node: Value,
}

/// A person node takes each `(movie id, revision, linked)` edge change (see
/// [`PersonNode::apply`]). Notes whether any changed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkPerson {
    pub edges: Vec<(String, u64, bool)>,
}

fn args_of<T: Serialize>(m: &T) -> Value {
    serde_json::to_value(m).unwrap_or(Value::Null)
}

impl Mutation for SetMovie {
    fn kind(&self) -> &'static str {
        SET_MOVIE
    }

    fn args(&self) -> Value {
        args_of(self)
    }

    fn decide(&self, current: Option<&Item>) -> Result<(Change, Value), StoreError> {
        let new: MovieNode = kit::json::from_value(&self.node)
            .map_err(|e| StoreError::Corrupt(format!("a movie node to set: {e}")))?;
        let old: Option<MovieNode> = current.map(decode).transpose()?;
        let cast = |n: Option<&MovieNode>| n.filter(|n| !n.gone).map(|n| n.cast.clone());
        let old_cast = cast(old.as_ref());
        if old_cast == cast(Some(&new)) {
            return Ok((Change::Keep, Value::Null));
        }
        let rev = current.map_or(1, |i| i.version + 1);
        let before: Vec<&str> = old_cast.as_ref().map(|c| c.people()).unwrap_or_default();
        Ok((
            Change::Put(encode(&new)?),
            json!({"rev": rev, "before": before}),
        ))
    }
}

impl Mutation for LinkPerson {
    fn kind(&self) -> &'static str {
        LINK_PERSON
    }

    fn args(&self) -> Value {
        args_of(self)
    }

    fn decide(&self, current: Option<&Item>) -> Result<(Change, Value), StoreError> {
        let mut node: PersonNode = current.map(decode).transpose()?.unwrap_or_default();
        let mut changed = false;
        for (id, rev, linked) in &self.edges {
            changed |= node.apply(id, *rev, *linked);
        }
        if !changed {
            return Ok((Change::Keep, json!(false)));
        }
        Ok((Change::Put(encode(&node)?), json!(true)))
    }
}

/// Rebuilds this crate's shipped mutations (see [`kit::table::Mutations`]).
pub fn mutations(kind: &str, args: Value) -> Option<Box<dyn Mutation>> {
    match kind {
        SET_MOVIE => Some(Box::new(kit::json::from_value::<SetMovie>(&args).ok()?)),
        LINK_PERSON => Some(Box::new(kit::json::from_value::<LinkPerson>(&args).ok()?)),
        _ => None,
    }
}
