//! BatchWriteItem and BatchGetItem.

use super::*;

/// One write of a BatchWriteItem: its item's sort key, the item to put (`None`:
/// delete), and the key as sent.
pub(super) struct Planned {
    sk: String,
    write: Option<Value>,
    key: Value,
}

/// The writes of a BatchWriteItem into one partition of one table.
pub(super) type Partition = (TableDef, Rc<dyn Table>, String, Vec<Planned>);

/// A table a BatchWriteItem wrote, and the items it changed there (key, item now).
type Touched = (TableDef, Vec<(Value, Option<Value>)>);

impl Ops<'_> {
    pub(super) fn request_items(&self) -> Result<&serde_json::Map<String, Value>, DynamoError> {
        self.body
            .get("RequestItems")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                DynamoError::validation(
                    "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
                )
            })
    }

    /// BatchWriteItem: up to 25 puts and deletes, each atomic on its own (as in
    /// DynamoDB, the batch is not a transaction); everything is processed, so
    /// `UnprocessedItems` is always empty.
    pub(super) async fn batch_write(&self) -> Result<Value, DynamoError> {
        let requests = self.request_items()?;
        // Validate everything before writing anything.
        let mut plan = Vec::new();
        let mut charged: Vec<(String, f64)> = Vec::new();
        let mut total = 0;
        for (name, list) in requests {
            let (def, items) = self.table_named(name).await?;
            let list = list.as_array().ok_or_else(|| {
                DynamoError::serialization("RequestItems values must be lists of write requests")
            })?;
            let mut keys = Vec::new();
            let mut units = 0.0;
            for request in list {
                total += 1;
                let (key, write, typed_key) = match (request.get("PutRequest"), request.get("DeleteRequest")) {
                    (Some(put), None) => {
                        let item = item_from_json(put.get("Item").ok_or_else(|| {
                            DynamoError::validation("A PutRequest needs an Item")
                        })?)?;
                        let size = item_size(&item);
                        if size > MAX_ITEM_BYTES {
                            return Err(DynamoError::validation(
                                "Item size has exceeded the maximum allowed size",
                            ));
                        }
                        def.check_index_keys(&item)?;
                        let json = item_to_json(&item);
                        units += capacity::write_units(size);
                        (def.key_of(&item, false)?, Some(json.clone()), json)
                    }
                    (None, Some(delete)) => {
                        let key = item_from_json(delete.get("Key").ok_or_else(|| {
                            DynamoError::validation("A DeleteRequest needs a Key")
                        })?)?;
                        units += capacity::write_units(0);
                        (def.key_of(&key, true)?, None, item_to_json(&key))
                    }
                    _ => {
                        return Err(DynamoError::validation(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        ))
                    }
                };
                if keys.contains(&key) {
                    return Err(DynamoError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                keys.push(key.clone());
                plan.push((def.clone(), items.clone(), key, write, typed_key));
            }
            charged.push((name.clone(), units));
        }
        if total > 25 {
            return Err(DynamoError::validation(
                "Too many items requested for the BatchWriteItem call",
            ));
        }
        // The writes into one partition go in as one call where the partition lives
        // (on pages, one compare-and-swap a page), each write atomic. An item a live
        // transaction holds is left unprocessed, for the client to send again.
        let mut groups: Vec<Partition> = Vec::new();
        for (def, items, (pk, sk), write, key) in plan {
            let planned = Planned { sk, write, key };
            match groups
                .iter_mut()
                .find(|(d, _, p, _)| d.name == def.name && *p == pk)
            {
                Some((_, _, _, writes)) => writes.push(planned),
                None => groups.push((def, items, pk, vec![planned])),
            }
        }
        // Each indexed table's writes are recorded in the outbox first, and propagated
        // once all are done.
        let outboxes = crate::indexes::Outboxes::record(
            self.ctx.env,
            groups.iter().flat_map(|(def, items, pk, writes)| {
                writes
                    .iter()
                    .map(move |w| (def, items, (pk.clone(), w.sk.clone())))
            }),
        )
        .await?;
        let mut metrics = serde_json::Map::new();
        for (def, _, _, writes) in &groups {
            for w in writes {
                let Some(m) = capacity::collection_metrics(self.body, def, &w.key) else {
                    continue;
                };
                let list = metrics.entry(def.name.clone()).or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut().filter(|l| !l.contains(&m)) {
                    list.push(m);
                }
            }
        }
        let written = self.batch_groups(groups).await;
        outboxes.finish(self.ctx.env).await?;
        let unprocessed = written?;
        let mut answer = json!({ "UnprocessedItems": unprocessed });
        if !metrics.is_empty() {
            answer["ItemCollectionMetrics"] = Value::Object(metrics);
        }
        self.charge.attach_all(&mut answer, &charged);
        Ok(answer)
    }

    /// Writes each partition's group of a BatchWriteItem in one call; returns the
    /// `UnprocessedItems`.
    async fn batch_groups(
        &self,
        groups: Vec<Partition>,
    ) -> Result<serde_json::Map<String, Value>, DynamoError> {
        let now_ms = self.now_ms();
        let mut unprocessed = serde_json::Map::new();
        let door = self.door();
        // Each table's door is closed once, after its last group, with what its
        // groups changed; on a failure, every table it opened is closed at once.
        let mut touched: Vec<Touched> = Vec::new();
        let result = self
            .batch_writes(groups, &mut touched, &mut unprocessed, now_ms)
            .await;
        for (def, changed) in &touched {
            let changed: Vec<_> = match &result {
                Ok(()) => changed.iter().map(|(k, now)| (k, now.as_ref())).collect(),
                Err(_) => Vec::new(),
            };
            door.close(def, &changed).await?;
        }
        result.map(|()| unprocessed)
    }

    /// Writes the groups of [`Self::batch_groups`], noting in `touched` each table written
    /// and the items changed.
    async fn batch_writes(
        &self,
        groups: Vec<Partition>,
        touched: &mut Vec<Touched>,
        unprocessed: &mut serde_json::Map<String, Value>,
        now_ms: i64,
    ) -> Result<(), DynamoError> {
        let door = self.door();
        for (def, items, pk, writes) in groups {
            let at = match touched.iter().position(|(d, _)| d.name == def.name) {
                Some(at) => at,
                None => {
                    touched.push((def.clone(), Vec::new()));
                    touched.len() - 1
                }
            };
            if writes.iter().any(|w| w.write.is_some()) {
                door.open(&def, &pk).await?;
            }
            let blind = |w: &Planned| -> Box<dyn kit::table::Mutation> {
                let what = match &w.write {
                    Some(value) => What::Put(value.clone()),
                    None => What::Delete,
                };
                crate::indexes::Indexed::wrap(
                    Box::new(Write::new(&json!({}), None, what)),
                    &def,
                    now_ms,
                    true,
                )
            };
            let mutations: Vec<_> = writes.iter().map(|w| (w.sk.clone(), blind(w))).collect();
            let notes = items.mutate_many(&pk, &mutations).await?;
            for ((w, note), (_, write)) in writes.into_iter().zip(notes).zip(&mutations) {
                let first = mutation::outcome(note)?;
                let key = (pk.as_str(), w.sk.as_str());
                match crate::txn::past_locks(self.ctx.env, &def, &*items, key, &**write, first, 1)
                    .await?
                {
                    Outcome::Locked { .. } => {
                        let request = match &w.write {
                            Some(item) => json!({"PutRequest": {"Item": item}}),
                            None => json!({"DeleteRequest": {"Key": w.key}}),
                        };
                        if let Some(list) = unprocessed
                            .entry(def.name.clone())
                            .or_insert_with(|| json!([]))
                            .as_array_mut()
                        {
                            list.push(request);
                        }
                    }
                    Outcome::Refused(e) => return Err(e),
                    Outcome::Done { .. } | Outcome::ConditionFailed { .. } => {
                        touched[at].1.push((w.key, w.write));
                    }
                }
            }
        }
        Ok(())
    }

    /// BatchGetItem: up to 100 keys over any tables, each table with its own
    /// projection; every key is read, so `UnprocessedKeys` is always empty.
    pub(super) async fn batch_get(&self) -> Result<Value, DynamoError> {
        let requests = self.request_items()?;
        let mut responses = serde_json::Map::new();
        let mut charged: Vec<(String, f64)> = Vec::new();
        let mut total = 0;
        for (name, request) in requests {
            let exprs = expressions(request)?;
            let (def, items) = self.table_named(name).await?;
            exprs.refuse_nested_key_paths(&def)?;
            let keys = request
                .get("Keys")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    DynamoError::validation("Each table of a BatchGetItem needs Keys")
                })?;
            total += keys.len();
            if total > 100 {
                return Err(DynamoError::validation(
                    "Too many items requested for the BatchGetItem call",
                ));
            }
            let mut found = Vec::new();
            let mut seen = Vec::new();
            let consistent = Self::consistent(request);
            let mut units = 0.0;
            for key in keys {
                let (pk, sk) = def.key_of(&item_from_json(key)?, true)?;
                if seen.contains(&(pk.clone(), sk.clone())) {
                    return Err(DynamoError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                seen.push((pk.clone(), sk.clone()));
                let read = items.get(&pk, &sk).await?.into_iter().collect();
                let Some(item) = self.visible(&*items, &pk, read).await?.pop() else {
                    units += capacity::read_units(0, consistent);
                    continue;
                };
                // Parsed only where a projection or the capacity report needs it.
                let stored = (exprs.projection.is_some() || self.charge.wanted())
                    .then(|| stored_item(&item.value))
                    .transpose()?;
                if let Some(stored) = &stored {
                    units += capacity::read_units(item_size(stored), consistent);
                }
                found.push(match (&exprs.projection, stored) {
                    (Some(paths), Some(stored)) => item_to_json(&expr::project(&stored, paths)),
                    _ => item.value,
                });
            }
            responses.insert(name.clone(), Value::Array(found));
            charged.push((name.clone(), units));
        }
        let mut answer = json!({ "Responses": responses, "UnprocessedKeys": {} });
        self.charge.attach_all(&mut answer, &charged);
        Ok(answer)
    }
}
