//! Query and Scan: key conditions, the start key, the 1 MB page, filters and
//! projections.

use super::*;

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
    def: &'q TableDef,
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

/// The table-layer sort key every match of a Query's sort-key condition lies below,
/// when the condition has an upper bound (`=`, `<`, `<=`, `BETWEEN`): a reverse read
/// starts there.
pub(super) fn range_end(def: &TableDef, key: &Item, range: &Cond) -> Option<String> {
    let (value, inclusive) = match range {
        Cond::Compare(_, Cmp::Lt, Operand::Value(v)) => (v, false),
        Cond::Compare(_, Cmp::Eq | Cmp::Le, Operand::Value(v))
        | Cond::Between(_, _, Operand::Value(v)) => (v, true),
        _ => return None,
    };
    let mut bound = key.clone();
    bound.insert(def.range.as_ref()?.name.clone(), value.clone());
    let (_, mut sk) = def.key_of(&bound, false).ok()?;
    if inclusive {
        // The least key above `sk`.
        sk.push('\0');
    }
    Some(sk)
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

    pub(super) fn answer(self, def: &TableDef, count_only: bool) -> Value {
        let mut answer = json!({ "Count": self.out.len(), "ScannedCount": self.scanned });
        if !count_only {
            answer["Items"] = Value::Array(self.out.iter().map(item_to_json).collect());
        }
        // DynamoDB stops at `Limit` without looking further: a page that reaches it
        // carries LastEvaluatedKey even when nothing follows (the next page is empty).
        if self.more || self.scanned == self.limit {
            if let Some(last) = &self.last {
                answer["LastEvaluatedKey"] = item_to_json(&def.key_attributes(last));
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

    /// Whether `Select` asks for the count only.
    pub(super) fn count_only(&self) -> Result<bool, DynamoError> {
        match self.body.get("Select").and_then(Value::as_str) {
            None | Some("ALL_ATTRIBUTES") | Some("SPECIFIC_ATTRIBUTES") => Ok(false),
            Some("COUNT") => Ok(true),
            Some(other) => Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            ))),
        }
    }

    /// `ExclusiveStartKey`, as given and as a table-layer key.
    pub(super) fn exclusive_start(&self, def: &TableDef) -> Result<Option<StartKey>, DynamoError> {
        match self.body.get("ExclusiveStartKey") {
            Some(json) => {
                let key = item_from_json(json)?;
                let (pk, sk) = def.key_of(&key, true)?;
                Ok(Some(StartKey { key, pk, sk }))
            }
            None => Ok(None),
        }
    }

    /// Scan: every partition of the directory in order (or those of one `Segment` of
    /// `TotalSegments`), items in sort-key order, paged by `Limit`, the 1 MB page,
    /// `ExclusiveStartKey`, and at most [`SCAN_PARTITIONS`] partitions a request.
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
        let count_only = self.count_only()?;
        let start = self.exclusive_start(&def)?;
        let directory = self.ctx.env.table(&def.directory_name())?;
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
            let partition = items.query(&listed.sk, None, usize::MAX).await?;
            for stored_item_ in self.visible(&*items, &listed.sk, partition.items).await? {
                if let Some(start) = &start {
                    if listed.sk == start.pk && stored_item_.sk <= start.sk {
                        continue;
                    }
                }
                if !reading.read(stored_item(&stored_item_.value)?) {
                    break 'partitions;
                }
            }
        }
        let units = capacity::read_units(reading.bytes, Self::consistent(self.body));
        let mut answer = reading.answer(&def, count_only);
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }

    /// Query: one partition, items in sort-key order (reversed with
    /// `ScanIndexForward: false`), narrowed by the key condition, paged by `Limit`
    /// (items read), `ExclusiveStartKey` and the 1 MB page, then filtered.
    pub(super) async fn query(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        if let Some(filter) = &exprs.filter {
            let keys = def.key_names();
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
        let (hash_value, range_condition) = split_key_condition(key_condition, &def)?;
        let mut key = Item::new();
        key.insert(def.hash.name.clone(), hash_value);
        let pk = def.partition_of(&key)?;
        let mut reading = Reading::new(&exprs, self.limit()?);
        let forward = self
            .body
            .get("ScanIndexForward")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let count_only = self.count_only()?;
        let start = self.exclusive_start(&def)?;
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
            def: &def,
            key: &key,
            range: range_condition.as_ref(),
            forward,
        };
        self.read_chunks(&items, &query, start, &mut reading)
            .await?;
        let units = capacity::read_units(reading.bytes, Self::consistent(self.body));
        let mut answer = reading.answer(&def, count_only);
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }

    /// A Query's reading: from where the key condition's matches start (forward) or
    /// end (`ScanIndexForward: false`), or from `ExclusiveStartKey`, in chunks of the
    /// partition, until the page is full or the matches end — what it reads does not
    /// grow with the partition.
    pub(super) async fn read_chunks(
        &self,
        items: &Rc<dyn Table>,
        query: &KeyRange<'_>,
        start: Option<StartKey>,
        reading: &mut Reading<'_>,
    ) -> Result<(), DynamoError> {
        let range = query.range;
        let bound = if query.forward {
            range
                .and_then(|cond| range_start(query.def, query.key, cond))
                .and_then(|sk| just_before(&sk))
        } else {
            range.and_then(|cond| range_end(query.def, query.key, cond))
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
            for stored_item_ in self.visible(&**items, query.pk, page.items).await? {
                let item = stored_item(&stored_item_.value)?;
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
