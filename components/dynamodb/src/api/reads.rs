//! Query and Scan: key conditions, the start key, the 1 MB page, filters and
//! projections.

use super::*;
use crate::index::{check_index_name, escape, IndexDef, IndexState, Projection};

/// The most partitions one Scan request reads items from once it has read an item:
/// bounds its storage reads (the directory and one read per partition) whatever
/// `Limit` says.
pub(super) const SCAN_PARTITIONS: usize = 100;

/// DynamoDB's 1 MB page: a Query stops once the items it read reach it.
pub(super) const PAGE_BYTES: usize = 1024 * 1024;

/// A Query's key condition: `hash = :v`, optionally `AND` one condition on the sort
/// key (`= < <= > >=`, `BETWEEN`, `begins_with`).
pub(super) fn split_key_condition(
    cond: &Cond,
    def: &TableDef,
) -> Result<(AttrValue, Option<Cond>), DynamoError> {
    let unsupported = || DynamoError::validation("Query key condition not supported");
    let is_key = |p: &Path, name: &str| p.0 == [Step::Name(name.to_owned())];
    let parts: Vec<&Cond> = match cond {
        Cond::And(a, b) => vec![a, b],
        other => vec![other],
    };
    let (mut hash, mut range) = (None, None);
    for part in parts {
        match part {
            Cond::Compare(Operand::Path(p), Cmp::Eq, Operand::Value(v))
                if is_key(p, &def.hash.name) && hash.is_none() =>
            {
                hash = Some(v.clone())
            }
            Cond::Compare(Operand::Path(p), _, Operand::Value(_))
            | Cond::Between(Operand::Path(p), Operand::Value(_), Operand::Value(_))
            | Cond::BeginsWith(Operand::Path(p), Operand::Value(_))
                if def.range.as_ref().is_some_and(|r| is_key(p, &r.name)) && range.is_none() =>
            {
                if matches!(part, Cond::Compare(_, Cmp::Ne, _)) {
                    return Err(unsupported());
                }
                range = Some(part.clone())
            }
            _ => return Err(unsupported()),
        }
    }
    let hash = hash.ok_or_else(|| {
        DynamoError::validation(format!(
            "Query condition missed key schema element: {}",
            def.hash.name
        ))
    })?;
    Ok((hash, range))
}

/// The most items a Query asks the table layer for at once.
pub(super) const READ_CHUNK: usize = 256;

/// What a Query reads: partition `pk` of `def`, the items matching `range` (the sort-key
/// condition; `key` holds the partition key's attribute), in which direction.
pub(super) struct KeyRange<'q> {
    pk: &'q str,
    key: &'q Item,
    range: Option<&'q Cond>,
    forward: bool,
}

/// The table-layer sort key where the matches of a Query's sort-key condition start,
/// when the condition has a lower bound (`=`, `>`, `>=`, `BETWEEN`, `begins_with`).
pub(super) fn range_start(def: &TableDef, key: &Item, range: &Cond) -> Option<String> {
    let value = match range {
        Cond::Compare(_, Cmp::Eq | Cmp::Gt | Cmp::Ge, Operand::Value(v))
        | Cond::Between(_, Operand::Value(v), _)
        | Cond::BeginsWith(_, Operand::Value(v)) => v,
        _ => return None,
    };
    let mut bound = key.clone();
    bound.insert(def.range.as_ref()?.name.clone(), value.clone());
    def.key_of(&bound, false).ok().map(|(_, sk)| sk)
}

/// The encoded sort-key value every match of a Query's sort-key condition lies at or
/// below (`inclusive`) or below, when the condition has an upper bound (`=`, `<`, `<=`,
/// `BETWEEN`): a reverse read starts there.
pub(super) fn range_upper(def: &TableDef, key: &Item, range: &Cond) -> Option<(String, bool)> {
    let (value, inclusive) = match range {
        Cond::Compare(_, Cmp::Lt, Operand::Value(v)) => (v, false),
        Cond::Compare(_, Cmp::Eq | Cmp::Le, Operand::Value(v))
        | Cond::Between(_, _, Operand::Value(v)) => (v, true),
        _ => return None,
    };
    let mut bound = key.clone();
    bound.insert(def.range.as_ref()?.name.clone(), value.clone());
    let (_, sk) = def.key_of(&bound, false).ok()?;
    Some((sk, inclusive))
}

/// A sort key just below `sk`, so that reading after it starts at `sk`. Keys between
/// the two (`sk`'s last character one lower, then U+10FFFF, then more) are read too if
/// any exist; the key condition still filters them out.
pub(super) fn just_before(sk: &str) -> Option<String> {
    let mut out = sk.to_owned();
    let last = out.pop()?;
    if let Some(lower) = (0..u32::from(last)).rev().find_map(char::from_u32) {
        out.push(lower);
        out.push(char::MAX);
    }
    Some(out)
}

/// A Query or Scan page as it is read: DynamoDB's `Limit` counts the items read (before
/// the filter), and a page also ends once they reach 1 MB.
pub(super) struct Reading<'e> {
    exprs: &'e Expressions,
    limit: usize,
    out: Vec<Item>,
    scanned: usize,
    bytes: usize,
    last: Option<Item>,
    /// Items were left unread: the answer carries `LastEvaluatedKey`.
    more: bool,
}

impl<'e> Reading<'e> {
    pub(super) fn new(exprs: &'e Expressions, limit: usize) -> Self {
        Self {
            exprs,
            limit,
            out: Vec::new(),
            scanned: 0,
            bytes: 0,
            last: None,
            more: false,
        }
    }

    /// Reads `item` into the page; `false` (the item left for the next page) when the
    /// page is full.
    pub(super) fn read(&mut self, item: Item) -> bool {
        if self.scanned == self.limit || self.bytes >= PAGE_BYTES {
            self.more = true;
            return false;
        }
        self.scanned += 1;
        self.bytes += item_size(&item);
        if self.exprs.filter.as_ref().is_none_or(|f| f.holds(&item)) {
            self.out.push(match &self.exprs.projection {
                Some(paths) => expr::project(&item, paths),
                None => item.clone(),
            });
        }
        self.last = Some(item);
        true
    }

    pub(super) fn answer(self, source: &Source<'_>, count_only: bool) -> Value {
        let mut answer = json!({ "Count": self.out.len(), "ScannedCount": self.scanned });
        if !count_only {
            answer["Items"] = Value::Array(self.out.iter().map(item_to_json).collect());
        }
        // DynamoDB stops at `Limit` without looking further: a page that reaches it
        // carries LastEvaluatedKey even when nothing follows (the next page is empty).
        if self.more || self.scanned == self.limit {
            if let Some(last) = &self.last {
                answer["LastEvaluatedKey"] = item_to_json(&source.key_attributes(last));
            }
        }
        answer
    }
}

/// A Query's or Scan's `ExclusiveStartKey`: the key item and its table-layer key.
pub(super) struct StartKey {
    key: Item,
    pk: String,
    sk: String,
}

/// Where a Query or Scan reads: the table, or one of its indexes (`IndexName`).
pub(super) struct Source<'d> {
    def: &'d TableDef,
    index: Option<&'d IndexDef>,
    /// The keys the read goes by: the table's, or the index's.
    view: TableDef,
    /// The table-layer table read: the table's items or the index's entries.
    items: Rc<dyn Table>,
    /// The table's items, for a local index's attributes it does not hold.
    base: Rc<dyn Table>,
    /// Every item read is read again from the table (a local index asked for more than
    /// it projects).
    fetch: bool,
    /// An index read through the table's items (a Scan): each item the index holds,
    /// as it holds it.
    through_table: bool,
}

impl Source<'_> {
    fn key_attributes(&self, item: &Item) -> Item {
        match self.index {
            Some(index) => index.key_attributes(self.def, item),
            None => self.def.key_attributes(item),
        }
    }

    /// Reports `units` read: the table's, or the index's (the table then read nothing).
    fn charge(&self, charge: capacity::Charge, answer: &mut Value, units: f64) {
        match self.index {
            None => charge.attach(answer, &self.def.name, units),
            Some(index) => charge.attach_indexed(
                answer,
                &self.def.name,
                0.0,
                &[(index.name.clone(), index.global, units)],
            ),
        }
    }

    /// The names of the keys a Query's filter may not name.
    fn key_names(&self) -> Vec<&str> {
        self.view.key_names()
    }
}

impl Ops<'_> {
    /// `Limit` of a Query or Scan: at least 1; absent, no limit.
    pub(super) fn limit(&self) -> Result<usize, DynamoError> {
        match self.body.get("Limit") {
            None => Ok(usize::MAX),
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => Err(DynamoError::validation(
                    "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
                )),
            },
        }
    }

    /// The source a Query or a Scan (`scan`) reads (its `IndexName`, checked as
    /// DynamoDB checks it, with its `Select` and projection), and whether it asks for
    /// the count only. A Scan of an index reads the table's items, those the index
    /// holds.
    pub(super) async fn source<'d>(
        &self,
        def: &'d TableDef,
        items: Rc<dyn Table>,
        exprs: &Expressions,
        scan: bool,
    ) -> Result<(Source<'d>, bool), DynamoError> {
        let select = self.body.get("Select").and_then(Value::as_str);
        let index_name = text_param(self.body, "IndexName")?;
        if let Some(select) = select {
            let known = [
                "ALL_ATTRIBUTES",
                "ALL_PROJECTED_ATTRIBUTES",
                "SPECIFIC_ATTRIBUTES",
                "COUNT",
            ];
            if !known.contains(&select) {
                return Err(DynamoError::validation(format!(
                    "1 validation error detected: Value '{select}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
                )));
            }
            if select == "SPECIFIC_ATTRIBUTES" && exprs.projection.is_none() {
                return Err(DynamoError::validation(
                    "1 validation error detected: SPECIFIC_ATTRIBUTES requires a ProjectionExpression or AttributesToGet",
                ));
            }
            if select != "SPECIFIC_ATTRIBUTES" && exprs.projection.is_some() {
                return Err(DynamoError::validation(format!(
                    "Cannot specify the ProjectionExpression or AttributesToGet when choosing to get {select}"
                )));
            }
        }
        let count_only = select == Some("COUNT");
        let Some(name) = index_name else {
            if select == Some("ALL_PROJECTED_ATTRIBUTES") {
                return Err(DynamoError::validation(
                    "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is only allowed when querying an index",
                ));
            }
            let source = Source {
                def,
                index: None,
                view: def.clone(),
                items: items.clone(),
                base: items,
                fetch: false,
                through_table: false,
            };
            return Ok((source, count_only));
        };
        check_index_name(name)?;
        let index = def.index(name).ok_or_else(|| {
            DynamoError::validation(format!(
                "The table does not have the specified index: {name}"
            ))
        })?;
        if matches!(index.state, IndexState::Creating { .. }) {
            return Err(DynamoError::validation(format!(
                "Cannot read from backfilling global secondary index: {name}"
            )));
        }
        if index.global && Self::consistent(self.body) {
            return Err(DynamoError::validation(
                "Consistent reads are not supported on global secondary indexes",
            ));
        }
        let mut wanted: Vec<&str> = exprs
            .projection
            .iter()
            .flatten()
            .map(|p| p.head())
            .collect();
        if let Some(filter) = &exprs.filter {
            wanted.extend(filter.paths().into_iter().map(|p| p.head()));
        }
        let missing: Vec<&str> = wanted
            .into_iter()
            .filter(|name| !index.projects(def, name))
            .collect();
        let all_asked = select == Some("ALL_ATTRIBUTES") && index.projection != Projection::All;
        if index.global && all_asked {
            return Err(DynamoError::validation(format!(
                "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {name} because its projection type is not ALL"
            )));
        }
        if index.global && !missing.is_empty() {
            return Err(DynamoError::validation(format!(
                "One or more parameter values were invalid: Global secondary index {name} does not project the attribute(s) asked for: {}",
                missing.join(", ")
            )));
        }
        let source = Source {
            def,
            index: Some(index),
            view: index.as_table(def),
            items: if scan {
                items.clone()
            } else {
                self.ctx.env.table(&index.storage_name(def))?
            },
            base: items,
            fetch: all_asked || !missing.is_empty(),
            through_table: scan,
        };
        Ok((source, count_only))
    }

    /// `ExclusiveStartKey`, as given and as a table-layer key of `source`.
    pub(super) fn exclusive_start(
        &self,
        source: &Source<'_>,
    ) -> Result<Option<StartKey>, DynamoError> {
        let Some(json) = self.body.get("ExclusiveStartKey") else {
            return Ok(None);
        };
        let key = item_from_json(json)?;
        let (pk, sk) = match source.index {
            None => source.def.key_of(&key, true)?,
            Some(index) => {
                let invalid = || DynamoError::validation("The provided starting key is invalid");
                let mut names = source.def.key_names();
                names.extend(index.key_names());
                kit::sorted::sort(&mut names);
                names.dedup();
                if key.len() != names.len() || names.iter().any(|n| !key.contains_key(*n)) {
                    return Err(invalid());
                }
                let entry = index.entry_key(source.def, &key)?.ok_or_else(invalid)?;
                if source.through_table {
                    source.def.key_of(&key, false)?
                } else {
                    entry
                }
            }
        };
        Ok(Some(StartKey { key, pk, sk }))
    }

    /// The items a page of `source`'s partition `pk` holds for readers: the table's
    /// with transactions' locks resolved (through an index: those it holds, as it holds
    /// them), or the index's entries without tombstones (an old tombstone is deleted on
    /// the way), read again from the table where the index lacks what was asked.
    pub(super) async fn typed(
        &self,
        source: &Source<'_>,
        pk: &str,
        page: Vec<kit::table::Item>,
    ) -> Result<Vec<Item>, DynamoError> {
        let Some(index) = source.index else {
            return self
                .visible(&*source.items, pk, page)
                .await?
                .iter()
                .map(|i| stored_item(&i.value))
                .collect();
        };
        if source.through_table {
            let mut out = Vec::with_capacity(page.len());
            for stored in self.visible(&*source.items, pk, page).await? {
                let item = stored_item(&stored.value)?;
                if let Ok(Some(_)) = index.entry_key(source.def, &item) {
                    out.push(if source.fetch {
                        item
                    } else {
                        index.project(source.def, &item)
                    });
                }
            }
            return Ok(out);
        }
        let mut out = Vec::with_capacity(page.len());
        for entry in page {
            let Some(value) = crate::indexes::entry_item(&entry.value) else {
                if let Some(epoch) = crate::indexes::stale_tombstone(&entry.value, self.now_ms()) {
                    let forget = crate::indexes::Forget { epoch };
                    source.items.mutate(pk, &entry.sk, &forget).await?;
                }
                continue;
            };
            let item = stored_item(&value)?;
            if !source.fetch {
                out.push(item);
                continue;
            }
            let (bpk, bsk) = source.def.key_of(&item, false)?;
            let read = source.base.get(&bpk, &bsk).await?.into_iter().collect();
            if let Some(full) = self.visible(&*source.base, &bpk, read).await?.pop() {
                out.push(stored_item(&full.value)?);
            }
        }
        Ok(out)
    }

    /// Scan: every partition of the directory in order (or those of one `Segment` of
    /// `TotalSegments`), items in sort-key order, paged by `Limit`, the 1 MB page,
    /// `ExclusiveStartKey`, and at most [`SCAN_PARTITIONS`] partitions a request. A
    /// Scan of an index reads the table and keeps the items the index holds, as it
    /// holds them (DynamoDB's Scan order is no order a client may rely on).
    pub(super) async fn scan(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let number = |name: &str| -> Result<Option<u64>, DynamoError> {
            match self.body.get(name) {
                None => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                    DynamoError::validation(format!("{name} must be a non-negative integer"))
                }),
            }
        };
        let mut reading = Reading::new(&exprs, self.limit()?);
        let segment = match (number("Segment")?, number("TotalSegments")?) {
            (None, None) => None,
            (Some(s), Some(t)) if (1..=1_000_000).contains(&t) && s < t => Some((s, t)),
            _ => {
                return Err(DynamoError::validation(
                    "The Segment parameter must be less than TotalSegments, and both must be given together (TotalSegments 1 to 1000000)",
                ))
            }
        };
        let (source, count_only) = self.source(&def, items, &exprs, true).await?;
        let start = self.exclusive_start(&source)?;
        let in_segment = |pk: &str| {
            segment.is_none_or(|(s, t)| {
                // FNV-1a: stable across hosts and releases.
                let hash = pk.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                hash % t == s
            })
        };
        // The directory is one stored partition: one read lists every partition, where
        // paging it would read that same value once a page.
        let directory = self.ctx.env.table(&def.directory_name())?;
        let listed = directory.query(DIRECTORY_PK, None, usize::MAX).await?.items;
        let resume_at = start.as_ref().map(|s| s.pk.as_str());
        'partitions: for (visited, listed) in listed
            .iter()
            .filter(|l| resume_at.is_none_or(|pk| l.sk.as_str() >= pk) && in_segment(&l.sk))
            .enumerate()
        {
            // Past the bound once an item was read (the page needs an item's key to
            // resume from); empty partitions alone never end a page early.
            if visited >= SCAN_PARTITIONS && reading.last.is_some() {
                reading.more = true;
                break;
            }
            let mut after = start
                .as_ref()
                .filter(|s| s.pk == listed.sk)
                .map(|s| s.sk.clone());
            loop {
                let page = source
                    .items
                    .query(&listed.sk, after.as_deref(), READ_CHUNK)
                    .await?;
                for item in self.typed(&source, &listed.sk, page.items).await? {
                    if !reading.read(item) {
                        break 'partitions;
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        let units = capacity::read_units(reading.bytes, Self::consistent(self.body));
        let mut answer = reading.answer(&source, count_only);
        source.charge(self.charge, &mut answer, units);
        Ok(answer)
    }

    /// Query: one partition, items in sort-key order (reversed with
    /// `ScanIndexForward: false`), narrowed by the key condition, paged by `Limit`
    /// (items read), `ExclusiveStartKey` and the 1 MB page, then filtered.
    pub(super) async fn query(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let (source, count_only) = self.source(&def, items, &exprs, false).await?;
        if let Some(filter) = &exprs.filter {
            let keys = source.key_names();
            if let Some(path) = filter
                .paths()
                .into_iter()
                .find(|p| keys.contains(&p.head()))
            {
                return Err(DynamoError::validation(format!(
                    "Filter Expression can only contain non-primary key attributes: Primary key attribute: {}",
                    path.head()
                )));
            }
        }
        let key_condition = exprs.key_condition.as_ref().ok_or_else(|| {
            DynamoError::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            )
        })?;
        let (hash_value, range_condition) = split_key_condition(key_condition, &source.view)?;
        let mut key = Item::new();
        key.insert(source.view.hash.name.clone(), hash_value);
        let pk = source.view.partition_of(&key)?;
        let mut reading = Reading::new(&exprs, self.limit()?);
        let forward = self
            .body
            .get("ScanIndexForward")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let start = self.exclusive_start(&source)?;
        if let Some(start) = &start {
            if start.pk != pk {
                return Err(DynamoError::validation(
                    "The provided starting key is outside query boundaries based on provided conditions",
                ));
            }
            if range_condition
                .as_ref()
                .is_some_and(|cond| !cond.holds(&start.key))
            {
                return Err(DynamoError::validation(
                    "The provided starting key does not match the range key predicate",
                ));
            }
        }
        let query = KeyRange {
            pk: &pk,
            key: &key,
            range: range_condition.as_ref(),
            forward,
        };
        self.read_chunks(&source, &query, start, &mut reading)
            .await?;
        let units = capacity::read_units(reading.bytes, Self::consistent(self.body));
        let mut answer = reading.answer(&source, count_only);
        source.charge(self.charge, &mut answer, units);
        Ok(answer)
    }

    /// A Query's reading: from where the key condition's matches start (forward) or
    /// end (`ScanIndexForward: false`), or from `ExclusiveStartKey`, in chunks of the
    /// partition, until the page is full or the matches end — what it reads does not
    /// grow with the partition.
    pub(super) async fn read_chunks(
        &self,
        source: &Source<'_>,
        query: &KeyRange<'_>,
        start: Option<StartKey>,
        reading: &mut Reading<'_>,
    ) -> Result<(), DynamoError> {
        let items = &source.items;
        let range = query.range;
        let view = &source.view;
        let indexed = source.index.is_some();
        // An index's entry keys are escaped values followed by the table's key: the
        // bounds of a value are its escaped form and what follows its end.
        let bound = if query.forward {
            range
                .and_then(|cond| range_start(view, query.key, cond))
                .and_then(|sk| {
                    if indexed {
                        Some(escape(&sk))
                    } else {
                        just_before(&sk)
                    }
                })
        } else {
            range
                .and_then(|cond| range_upper(view, query.key, cond))
                .map(|(sk, inclusive)| match (indexed, inclusive) {
                    (false, false) => sk,
                    (false, true) => sk + "\0",
                    (true, false) => escape(&sk),
                    (true, true) => sk + "\0\u{2}",
                })
        };
        // The tighter of the start key and the condition's bound.
        let mut from = match (start.map(|s| s.sk), bound) {
            (Some(a), Some(b)) if query.forward => Some(a.max(b)),
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut matched = false;
        loop {
            let chunk = reading.limit.saturating_add(1).clamp(2, READ_CHUNK);
            let page = if query.forward {
                items.query(query.pk, from.as_deref(), chunk).await?
            } else {
                items.query_back(query.pk, from.as_deref(), chunk).await?
            };
            for item in self.typed(source, query.pk, page.items).await? {
                if range.is_some_and(|cond| !cond.holds(&item)) {
                    // The matches of a key condition are one run in sort-key order.
                    if matched {
                        return Ok(());
                    }
                    continue;
                }
                matched = true;
                if !reading.read(item) {
                    return Ok(());
                }
            }
            match page.next {
                Some(next) => from = Some(next),
                None => return Ok(()),
            }
        }
    }
}
