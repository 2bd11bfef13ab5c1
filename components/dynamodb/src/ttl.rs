//! Time to live: `UpdateTimeToLive`, `DescribeTimeToLive`, and the background sweep that
//! deletes expired items.
//!
//! A table's expiry attribute is part of its catalog entry. An item expires when that
//! attribute is a number of seconds since the epoch that has passed, unless it lies more
//! than five years back (DynamoDB ignores such values); until the sweep reaches it, an
//! expired item is still read, queried and written like any other, as on DynamoDB.
//!
//! [`sweep`] runs on the hosts' schedulers (the Spin cron component `dynamodb-ttl`, the
//! Worker's cron handler) and reads at most a [`Budget`] a run: it walks the tables with
//! time to live enabled, partition by partition through each table's directory, from
//! where the last run stopped (a cursor in the catalog), and deletes the expired items
//! of a partition in one call where they live ([`Expire`], which checks the expiry
//! again against the item as it is then, so an item renewed meanwhile stays). Every
//! item is therefore reached within `items / Budget::items + partitions /
//! Budget::partitions` runs of its expiry (docs/SERVICES.md gives the bound per host).

use crate::api::Ops;
use crate::error::DynamoError;
use crate::params::{self, null_at, Type};
use crate::schema::{TableDef, CATALOG, CATALOG_PK, DIRECTORY_PK};
use chrono::{DateTime, Utc};
use kit::table::{self, Change, Cond, Mutation, StoreError, Table};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The kind the expiry check ships as.
pub const KIND: &str = "dynamodb.expire";

/// DynamoDB leaves alone expiry times more than five years back.
const IGNORED_AFTER_SECONDS: f64 = 5.0 * 365.0 * 24.0 * 3600.0;

/// The catalog item holding where the last sweep stopped.
const CURSOR_PK: &str = "ttl";
const CURSOR_SK: &str = "cursor";

/// Items read a query call.
const QUERY_PAGE: usize = 256;

/// The most one sweep reads: items examined, and partitions visited (on Workers each
/// is a Durable Object call, and a cron run may make only so many).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub items: usize,
    pub partitions: usize,
}

/// What a sweep did, for its log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub tables: usize,
    pub partitions: usize,
    pub examined: usize,
    pub deleted: usize,
    /// Items of requests that died before propagating them to their indexes, brought
    /// up to date ([`crate::indexes::redrive`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub redriven: usize,
    /// Tables whose new index got a step of its backfill ([`crate::backfill`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub backfilled: usize,
    /// The sweep stopped at its budget before the end of the tables: the next one goes
    /// on from there (else the next starts a new pass).
    pub more: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Whether `item` (DynamoDB JSON) has expired by `now` (seconds since the epoch) under
/// expiry attribute `attribute`.
pub fn expired(item: &Value, attribute: &str, now: f64) -> bool {
    let Some(at) = item
        .get(attribute)
        .and_then(|v| v.get("N"))
        .and_then(Value::as_str)
        .and_then(|n| n.parse::<f64>().ok())
    else {
        return false;
    };
    at <= now && at >= now - IGNORED_AFTER_SECONDS
}

/// The expiry check of one item, run where the item lives: deletes it when it has
/// expired, else keeps it. Notes whether it deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    pub attribute: String,
    pub now: f64,
}

impl Mutation for Expire {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn args(&self) -> Value {
        json!({"attribute": self.attribute, "now": self.now})
    }

    fn decide(&self, current: Option<&table::Item>) -> Result<(Change, Value), StoreError> {
        match current {
            // An item a transaction holds waits for the next sweep.
            Some(item) if crate::txn::lock_of(&item.value).is_some() => {
                Ok((Change::Keep, Value::Bool(false)))
            }
            Some(item) if expired(&item.value, &self.attribute, self.now) => {
                Ok((Change::Delete, Value::Bool(true)))
            }
            _ => Ok((Change::Keep, Value::Bool(false))),
        }
    }
}

/// Rebuilds a shipped [`Expire`]; `None` when `args` are not one.
pub fn expire_from_args(args: &Value) -> Option<Expire> {
    Some(Expire {
        attribute: args.get("attribute")?.as_str()?.to_owned(),
        now: args.get("now")?.as_f64()?,
    })
}

/// `TimeToLiveSpecification`, checked as DynamoDB checks it.
struct Specification<'b> {
    enabled: bool,
    attribute: &'b str,
}

fn specification(body: &Value) -> Result<Specification<'_>, DynamoError> {
    let spec = body
        .get("TimeToLiveSpecification")
        .filter(|v| !v.is_null())
        .ok_or_else(|| null_at("timeToLiveSpecification"))?;
    params::check_fields(
        spec,
        &[("Enabled", Type::Boolean), ("AttributeName", Type::String)],
    )?;
    let attribute = spec
        .get("AttributeName")
        .and_then(Value::as_str)
        .ok_or_else(|| null_at("timeToLiveSpecification.attributeName"))?;
    let enabled = params::boolean(spec.get("Enabled").filter(|v| !v.is_null()))
        .ok_or_else(|| null_at("timeToLiveSpecification.enabled"))?;
    let length = attribute.chars().count();
    let bound = match length {
        0 => Some("greater than or equal to 1"),
        256.. => Some("less than or equal to 255"),
        _ => None,
    };
    if let Some(bound) = bound {
        return Err(DynamoError::validation(format!(
            "1 validation error detected: Value '{attribute}' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length {bound}"
        )));
    }
    Ok(Specification { enabled, attribute })
}

fn different(current: &str) -> DynamoError {
    DynamoError::validation(format!(
        "TimeToLive is active on a different AttributeName: current AttributeName is {current}"
    ))
}

impl Ops<'_> {
    /// UpdateTimeToLive: enables time to live on an attribute, or disables it. Applied
    /// at once (DynamoDB's `ENABLING` and `DISABLING` pass unseen), and not limited to
    /// one change an hour as DynamoDB's is.
    pub(crate) async fn update_time_to_live(&self) -> Result<Value, DynamoError> {
        let name = self.table_name()?;
        let spec = specification(self.body)?;
        self.change_table(name, |def| {
            match (&def.ttl, spec.enabled) {
                (Some(current), true) if current == spec.attribute => {
                    return Err(DynamoError::validation("TimeToLive is already enabled"))
                }
                (Some(current), _) if current != spec.attribute => return Err(different(current)),
                (None, false) => {
                    return Err(DynamoError::validation("TimeToLive is already disabled"))
                }
                _ => {}
            }
            def.ttl = spec.enabled.then(|| spec.attribute.to_owned());
            Ok(())
        })
        .await?;
        Ok(json!({"TimeToLiveSpecification": {
            "Enabled": spec.enabled,
            "AttributeName": spec.attribute,
        }}))
    }

    /// DescribeTimeToLive: `ENABLED` with the attribute, or `DISABLED` alone.
    pub(crate) async fn describe_time_to_live(&self) -> Result<Value, DynamoError> {
        let (def, _) = self.table_named(self.table_name()?).await?;
        Ok(match def.ttl {
            Some(attribute) => json!({"TimeToLiveDescription": {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": attribute,
            }}),
            None => json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
        })
    }
}

/// Where a sweep stopped: in table `table` (of `generation`), after partition `after`
/// (none: at the table's start), and inside partition `within` after its sort key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cursor {
    table: String,
    generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    within: Option<(String, String)>,
}

impl Budget {
    /// Whether nothing is left of it (a sweep counts its reads down from it).
    fn spent(&self) -> bool {
        self.items == 0 || self.partitions == 0
    }
}

/// Deletes expired items of every table with time to live enabled, reading at most
/// `budget`, from where the last sweep stopped; writes its log line.
pub async fn sweep(env: &kit::Env, budget: Budget) -> Result<Swept, DynamoError> {
    let started = env.clock.now();
    let result = sweep_from_cursor(env, started, budget).await;
    let finished = env.clock.now();
    let line = match &result {
        Ok(swept) => json!({
            "time": kit::log::timestamp(started),
            "level": "info",
            "kind": "ttl_sweep",
            "swept": swept,
            "latency_ms": kit::log::millis_between(started, finished),
        }),
        Err(e) => {
            let mut line = error_line(started, "ttl_sweep", e);
            line["latency_ms"] = json!(kit::log::millis_between(started, finished));
            line
        }
    };
    kit::log::write(env, &line);
    result
}

/// `result` of an index maintenance step of the sweep, its failure logged (`kind:
/// index_maintenance`, the step and the error's name) and dropped.
fn maintenance_failed<T>(env: &kit::Env, step: &str, result: Result<T, DynamoError>) -> Option<T> {
    match result {
        Ok(done) => Some(done),
        Err(e) => {
            let mut line = error_line(env.clock.now(), "index_maintenance", &e);
            line["step"] = json!(step);
            kit::log::write(env, &line);
            None
        }
    }
}

/// The log line of a background step of kind `kind` that failed with `e` at `at`.
fn error_line(at: DateTime<Utc>, kind: &str, e: &DynamoError) -> Value {
    json!({
        "time": kit::log::timestamp(at),
        "level": "error",
        "kind": kind,
        "error": e.kind.type_name(),
        "detail": e.detail.clone().unwrap_or_else(|| e.message.clone()),
    })
}

async fn sweep_from_cursor(
    env: &kit::Env,
    now: DateTime<Utc>,
    budget: Budget,
) -> Result<Swept, DynamoError> {
    let now = now.timestamp_millis() as f64 / 1000.0;
    // Requests that died mid-write first: each outbox entry is a few calls per item.
    // What fails here is logged and retried next run, without holding up the rest.
    let redriven = crate::indexes::redrive(env, (budget.partitions / 20).max(1)).await;
    let redriven = maintenance_failed(env, "redrive", redriven).unwrap_or_default();
    let catalog = env.table(CATALOG)?;
    let mut tables = Vec::new();
    let mut filling = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = catalog
            .query(CATALOG_PK, after.as_deref(), QUERY_PAGE)
            .await?;
        for item in &page.items {
            let def: TableDef =
                kit::json::from_value(&item.value).map_err(DynamoError::internal)?;
            if def
                .indexes
                .iter()
                .any(|i| matches!(i.state, crate::index::IndexState::Creating { .. }))
            {
                filling.push(def.name.clone());
            }
            if def.ttl.is_some() {
                tables.push(def);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    // Indexes being created get a step of their backfill each.
    for name in &filling {
        let step = crate::backfill::step(env, name, (budget.partitions / 2).max(1)).await;
        maintenance_failed(env, "backfill", step);
    }
    let mut swept = Swept {
        redriven: redriven.items,
        backfilled: filling.len(),
        ..Swept::default()
    };
    if tables.is_empty() {
        return Ok(swept);
    }
    let cursor: Cursor = match catalog.get(CURSOR_PK, CURSOR_SK).await? {
        Some(item) => kit::json::from_value(&item.value).unwrap_or_default(),
        None => Cursor::default(),
    };
    // Tables in name order from the cursor's, each at most once a sweep.
    let first = tables
        .iter()
        .position(|t| t.name >= cursor.table)
        .unwrap_or(0);
    let mut left = budget;
    let mut stopped = None;
    for def in tables.iter().cycle().skip(first).take(tables.len()) {
        let resume =
            (def.name == cursor.table && def.generation == cursor.generation).then_some(&cursor);
        swept.tables += 1;
        match sweep_table(env, def, resume, now, &mut left, &mut swept).await? {
            Some(at) => {
                stopped = Some(at);
                break;
            }
            None => continue,
        }
    }
    // Every table done: the next sweep starts again at the first one.
    swept.more = stopped.is_some();
    let cursor = stopped.unwrap_or_default();
    let value = serde_json::to_value(&cursor).map_err(DynamoError::internal)?;
    catalog.put(CURSOR_PK, CURSOR_SK, value, Cond::Any).await?;
    Ok(swept)
}

/// Sweeps table `def` from `resume` (or its start) while budget is left; returns where
/// it stopped, `None` when it reached the table's end.
async fn sweep_table(
    env: &kit::Env,
    def: &TableDef,
    resume: Option<&Cursor>,
    now: f64,
    left: &mut Budget,
    swept: &mut Swept,
) -> Result<Option<Cursor>, DynamoError> {
    if def.ttl.is_none() {
        return Ok(None);
    }
    let items = env.table(&def.storage_name())?;
    let directory = env.table(&def.directory_name())?;
    let mut at = Cursor {
        table: def.name.clone(),
        generation: def.generation,
        after: resume.and_then(|c| c.after.clone()),
        within: None,
    };
    if let Some((pk, sk)) = resume.and_then(|c| c.within.as_ref()) {
        if let Some(stop) =
            sweep_partition((env, def), &*items, pk, Some(sk), now, left, swept).await?
        {
            at.within = Some((pk.clone(), stop));
            return Ok(Some(at));
        }
        at.after = Some(pk.clone());
    }
    loop {
        if left.spent() {
            return Ok(Some(at));
        }
        let listed = directory
            .query(DIRECTORY_PK, at.after.as_deref(), left.partitions)
            .await?;
        for partition in &listed.items {
            if left.spent() {
                return Ok(Some(at));
            }
            if let Some(stop) =
                sweep_partition((env, def), &*items, &partition.sk, None, now, left, swept).await?
            {
                at.within = Some((partition.sk.clone(), stop));
                return Ok(Some(at));
            }
            at.after = Some(partition.sk.clone());
        }
        if listed.next.is_none() {
            return Ok(None);
        }
    }
}

/// Deletes the expired items of partition `pk` after sort key `after`, reading while
/// budget is left; returns the last sort key read when it stopped before the end.
async fn sweep_partition(
    (env, def): (&kit::Env, &TableDef),
    items: &dyn Table,
    pk: &str,
    after: Option<&str>,
    now: f64,
    left: &mut Budget,
    swept: &mut Swept,
) -> Result<Option<String>, DynamoError> {
    let attribute = def.ttl.as_deref().unwrap_or_default();
    let now_ms = (now * 1000.0) as i64;
    left.partitions = left.partitions.saturating_sub(1);
    swept.partitions += 1;
    let mut after = after.map(str::to_owned);
    let mut doomed: Vec<(String, Box<dyn Mutation>)> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let stop = loop {
        if left.items == 0 {
            break after;
        }
        let page = items
            .query(pk, after.as_deref(), left.items.min(QUERY_PAGE))
            .await?;
        left.items = left.items.saturating_sub(page.items.len());
        swept.examined += page.items.len();
        for item in &page.items {
            if expired(&item.value, attribute, now) {
                let expire = Box::new(Expire {
                    attribute: attribute.to_owned(),
                    now,
                });
                let expire = crate::indexes::Indexed::wrap(expire, def, now_ms, false);
                doomed.push((item.sk.clone(), expire));
                values.push(item.value.clone());
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break None,
        }
    };
    if !doomed.is_empty() {
        let keys: Vec<(String, String)> = doomed
            .iter()
            .map(|(sk, _)| (pk.to_owned(), sk.clone()))
            .collect();
        let notes = crate::indexes::around(env, def, items, &keys, async {
            Ok(items.mutate_many(pk, &doomed).await?)
        })
        .await;
        let deleted: Vec<_> = match &notes {
            Ok(notes) => notes
                .iter()
                .zip(&values)
                .filter(|(note, _)| note.as_bool() == Some(true))
                .map(|(_, value)| (value, None))
                .collect(),
            Err(_) => Vec::new(),
        };
        ddb_writes::Door::new(env).close(def, &deleted).await?;
        notes?;
        swept.deleted += deleted.len();
    }
    Ok(stop)
}
