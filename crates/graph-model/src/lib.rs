//! The actor–movie graph (OpenAPI tag `graph`), stored for the edge: nothing is kept in memory
//! between requests (Spin instantiates a component per request, a Worker isolate may
//! be cold), so every query reads just the nodes it needs, a whole BFS level in one
//! batched round trip ([`kit::table::Table::get_many`]).
//!
//! - [`node`]: the node items. A movie node holds its actors and directors; a person
//!   node (actor or director) the movies they are in, each edge with the revision of
//!   the movie node that set it. Nodes live in the `graph` table, hashed into
//!   `graph_shards` partitions (default [`DEFAULT_SHARDS`]), so that a bulk import
//!   rewrites each shard once.
//! - [`write`]: the incremental maintenance every movie write calls (the movies API
//!   and the DynamoDB endpoint on `Movies`), and the rebuild for recovery; its node
//!   writes are the table mutations of [`mutation`], run where the shard lives.
//! - [`search`]: the shortest actor–movie–actor chain by bidirectional BFS, bounded.
//!
//! Shared by the `graph` endpoint (queries) and the two writers of movies, `movies`
//! and `dynamodb`. `cargo test -p graph-model` runs its tests on the memory backend.

pub mod mutation;
pub mod node;
pub mod search;
pub mod write;

pub use node::{Cast, Graph, MovieRef, PersonNode, DEFAULT_SHARDS, TABLE};
pub use search::{find_path, Bound, PathOutcome, SearchStats, Step};
pub use write::{apply, build_shards, movies_changed, rebuild, Rebuilt, WriteStats};

#[cfg(test)]
mod tests;
