//! How scraped shows are stored, shared by the scraper (writer) and the shows API
//! (reader): table `shows`, one item per TvMaze index page ("chunk": ids
//! `n·P … n·P+P−1`, P = 250) holding its shows already in API shape, plus one
//! `directory` item listing every stored chunk with its show count. A page of the API is
//! one directory read plus the one to three chunks it overlaps; a chunk is written once
//! per full pass and once per batch of updates that touches it.

use kit::table::{Change, Cond, StoreError, Table};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

pub const SHOWS_TABLE: &str = "shows";
const DIRECTORY: &str = "directory";

/// One cast member as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CastMember {
    pub id: u64,
    pub name: String,
    pub birthday: Option<String>,
}

/// A show as stored: the API object plus TvMaze's `updated` stamp, kept to decide
/// whether `/updates/shows` reports a newer version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredShow {
    pub id: u64,
    pub name: String,
    pub cast: Vec<CastMember>,
    #[serde(default)]
    pub updated: i64,
}

/// The API's show object: `{id, name, cast}`.
#[derive(Debug, Serialize)]
pub struct ApiShow<'a> {
    pub id: u64,
    pub name: &'a str,
    pub cast: &'a [CastMember],
}

impl StoredShow {
    pub fn api(&self) -> ApiShow<'_> {
        ApiShow {
            id: self.id,
            name: &self.name,
            cast: &self.cast,
        }
    }
}

/// The OpenAPI document's cast order: each person once (first listing wins), birthday descending,
/// people without a birthday last, ties by person id ascending.
pub fn order_cast(mut cast: Vec<CastMember>) -> Vec<CastMember> {
    let mut seen = std::collections::HashSet::new();
    cast.retain(|member| seen.insert(member.id));
    kit::sorted::sort_by(&mut cast, |a, b| match (&a.birthday, &b.birthday) {
        (Some(x), Some(y)) => y.cmp(x).then(a.id.cmp(&b.id)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(&b.id),
    });
    cast
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Chunk {
    shows: Vec<StoredShow>,
}

/// Chunk number → number of shows stored in it (chunks with none are absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Directory {
    pub chunks: BTreeMap<u64, usize>,
}

impl Directory {
    pub fn total(&self) -> usize {
        self.chunks.values().sum()
    }
}

fn chunk_key(n: u64) -> String {
    format!("chunk:{n}")
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A chunk's text split into its shows' texts, without converting any of them.
fn split(chunk: &RawValue) -> Result<Vec<&RawValue>, StoreError> {
    #[derive(Deserialize)]
    struct ChunkText<'a> {
        #[serde(borrow)]
        shows: Vec<&'a RawValue>,
    }
    kit::json::from_text::<ChunkText<'_>>(chunk.get())
        .map(|c| c.shows)
        .map_err(corrupt)
}

fn decode(show: &RawValue) -> Result<StoredShow, StoreError> {
    kit::json::from_text(show.get()).map_err(corrupt)
}

#[derive(Deserialize)]
struct IdOf {
    id: u64,
}

/// Typed access to the `shows` table.
pub struct ShowStore<'a> {
    table: &'a dyn Table,
    /// Ids per chunk: TvMaze's index page size.
    chunk_size: u64,
}

impl<'a> ShowStore<'a> {
    pub fn new(table: &'a dyn Table, chunk_size: u64) -> Self {
        Self {
            table,
            chunk_size: chunk_size.max(1),
        }
    }

    pub fn chunk_of(&self, id: u64) -> u64 {
        id / self.chunk_size
    }

    pub async fn directory(&self) -> Result<Directory, StoreError> {
        match self.table.get(DIRECTORY, "").await? {
            Some(item) => kit::json::from_value(&item.value).map_err(corrupt),
            None => Ok(Directory::default()),
        }
    }

    /// The shows of chunk `n`, ordered by id.
    pub async fn chunk(&self, n: u64) -> Result<Vec<StoredShow>, StoreError> {
        match self.table.get(&chunk_key(n), "").await? {
            Some(item) => Ok(kit::json::from_value::<Chunk>(&item.value)
                .map_err(corrupt)?
                .shows),
            None => Ok(Vec::new()),
        }
    }

    /// Chunk `n` as stored JSON text, which a read splits into its shows' texts and
    /// converts only the few it serves: a page costs a scan of the chunk, not a tree
    /// of all its 250 shows.
    async fn chunk_text(&self, n: u64) -> Result<Option<Box<RawValue>>, StoreError> {
        self.table.get_json(&chunk_key(n), "").await
    }

    /// Replaces chunk `n` with `shows` (sorted here) and records its count in the
    /// directory. Writing the same chunk twice is harmless, which is what lets a tick
    /// that died mid-write simply redo it.
    pub async fn write_chunk(&self, n: u64, mut shows: Vec<StoredShow>) -> Result<(), StoreError> {
        kit::sorted::sort_by_key(&mut shows, |s| s.id);
        shows.dedup_by_key(|s| s.id);
        let count = shows.len();
        let value = serde_json::to_value(Chunk { shows }).map_err(corrupt)?;
        self.table.put(&chunk_key(n), "", value, Cond::Any).await?;
        self.set_counts(&[(n, count)]).await
    }

    /// Sets the directory's count of each `(chunk, count)`, as one read-modify-write
    /// of the directory (retried on a lost race; nothing written when nothing changes).
    pub async fn set_counts(&self, counts: &[(u64, usize)]) -> Result<(), StoreError> {
        self.table
            .update(DIRECTORY, "", 16, &mut |item| {
                let mut dir = match item {
                    Some(item) => {
                        kit::json::from_value::<Directory>(&item.value).map_err(corrupt)?
                    }
                    None => Directory::default(),
                };
                let before = dir.clone();
                for &(n, count) in counts {
                    if count == 0 {
                        dir.chunks.remove(&n);
                    } else {
                        dir.chunks.insert(n, count);
                    }
                }
                if dir == before && item.is_some() {
                    return Ok(Change::Keep);
                }
                serde_json::to_value(&dir).map(Change::Put).map_err(corrupt)
            })
            .await
            .map(|_| ())
    }

    /// One show by id: one chunk read.
    pub async fn show(&self, id: u64) -> Result<Option<StoredShow>, StoreError> {
        let Some(text) = self.chunk_text(self.chunk_of(id)).await? else {
            return Ok(None);
        };
        let shows = split(&text)?;
        // Binary search over the id order; each probe reads only the `id` of its show.
        let (mut lo, mut hi) = (0, shows.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let probe: IdOf = kit::json::from_text(shows[mid].get()).map_err(corrupt)?;
            match probe.id.cmp(&id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return decode(shows[mid]).map(Some),
            }
        }
        Ok(None)
    }

    /// The shows at positions `offset … offset+limit−1` of the id order, and the total
    /// count: a directory read, then only the chunks that overlap the window.
    pub async fn page(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<StoredShow>, u64), StoreError> {
        let dir = self.directory().await?;
        let total = dir.total() as u64;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut start = 0u64;
        for (&n, &count) in &dir.chunks {
            let end = start + count as u64;
            if out.len() >= limit {
                break;
            }
            if end > offset {
                let text = self.chunk_text(n).await?;
                let shows = match &text {
                    Some(text) => split(text)?,
                    None => Vec::new(),
                };
                // Within one chunk, so small whatever the offset.
                let skip = usize::try_from(offset.saturating_sub(start)).unwrap_or(usize::MAX);
                let want = limit - out.len();
                for show in shows.into_iter().skip(skip).take(want) {
                    out.push(decode(show)?);
                }
            }
            start = end;
        }
        Ok((out, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, birthday: Option<&str>) -> CastMember {
        CastMember {
            id,
            name: format!("p{id}"),
            birthday: birthday.map(str::to_owned),
        }
    }

    #[test]
    fn order_cast_dedupes_and_sorts_birthday_descending_nulls_last_ties_by_id() {
        let cast = vec![
            member(5, None),
            member(3, Some("1980-01-01")),
            member(9, Some("1990-05-05")),
            member(3, Some("1980-01-01")),
            member(2, Some("1980-01-01")),
            member(1, None),
        ];
        let ids: Vec<u64> = order_cast(cast).iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![9, 2, 3, 1, 5]);
    }
}
