//! Single-item operations: PutItem, GetItem, UpdateItem, DeleteItem, each one atomic
//! read-modify-write where the item lives.

use super::*;

/// Locks of transactions a write settles before it gives up with
/// `TransactionConflictException` (each settled lock is a transaction that ended):
/// four tries in all.
pub(super) const LOCKS_SETTLED: usize = 3;

/// PutItem's and DeleteItem's answer: the item as it was, when `ReturnValues` asks
/// for it.
pub(super) fn with_old(returns_old: bool, old: Option<Value>) -> Value {
    match (returns_old, old) {
        (true, Some(old)) => json!({ "Attributes": old }),
        _ => json!({}),
    }
}

impl Ops<'_> {
    /// Writes one item in one atomic read-modify-write, where the item lives, if
    /// `condition` holds for the item as it is (absent: the empty item); returns the
    /// item as it was and, for an update, as it is now.
    pub(super) async fn write_if(
        &self,
        (def, items): (&TableDef, &Rc<dyn Table>),
        pk: &str,
        sk: &str,
        condition: Option<&Cond>,
        what: What,
    ) -> Result<(Option<Value>, Option<Value>), DynamoError> {
        let write = Write::new(self.body, condition.cloned(), what);
        let write = crate::indexes::Indexed::wrap(Box::new(write), def, self.now_ms(), true);
        let env = self.ctx.env;
        let keys = [(pk.to_owned(), sk.to_owned())];
        let outcome = crate::indexes::around(env, def, &**items, &keys, async {
            let first = mutation::outcome(items.mutate(pk, sk, &*write).await?.note)?;
            // Each lock met is settled before the write runs again; only a live
            // transaction's lock stops it.
            crate::txn::past_locks(env, def, &**items, (pk, sk), &*write, first, LOCKS_SETTLED)
                .await
        })
        .await?;
        match outcome {
            Outcome::Done { old, new } => Ok((old, new)),
            Outcome::ConditionFailed { old } => Err(condition_failed(self.body, old.as_ref())),
            Outcome::Refused(e) => Err(e),
            Outcome::Locked { .. } => Err(crate::txn::conflict()),
        }
    }

    pub(super) fn item_param(&self, name: &str) -> Result<Item, DynamoError> {
        let json = self
            .body
            .get(name)
            .ok_or_else(|| DynamoError::missing(name))?;
        item_from_json(json)
    }

    /// `ReturnValues` of PutItem and DeleteItem: `NONE` (default) or `ALL_OLD`.
    pub(super) fn returns_old(&self) -> Result<bool, DynamoError> {
        match self.body.get("ReturnValues").and_then(Value::as_str) {
            None | Some("NONE") => Ok(false),
            Some("ALL_OLD") => Ok(true),
            Some(other) => Err(DynamoError::validation(format!(
                "ReturnValues can only be ALL_OLD or NONE here, not {other}"
            ))),
        }
    }

    pub(super) async fn put_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let item = self.item_param("Item")?;
        let size = item_size(&item);
        if size > MAX_ITEM_BYTES {
            return Err(DynamoError::validation(
                "Item size has exceeded the maximum allowed size",
            ));
        }
        let (pk, sk) = def.key_of(&item, false)?;
        def.check_index_keys(&item)?;
        let returns_old = self.returns_old()?;
        let value = item_to_json(&item);
        let door = self.door();
        door.open(&def, &pk).await?;
        let written = self
            .write_if(
                (&def, &items),
                &pk,
                &sk,
                exprs.condition.as_ref(),
                What::Put(value.clone()),
            )
            .await;
        let changed = if written.is_ok() {
            vec![(&value, Some(&value))]
        } else {
            Vec::new()
        };
        door.close(&def, &changed).await?;
        let (old, _) = written?;
        let units = self
            .charge
            .units(|| Ok(capacity::write_units(size_of(old.as_ref())?.max(size))))?;
        let indexes = self.index_units(&def, old.as_ref(), Some(&value))?;
        let mut answer = with_old(returns_old, old);
        self.charge
            .attach_indexed(&mut answer, &def.name, units, &indexes);
        self.collection_metrics(&mut answer, &def, &value);
        Ok(answer)
    }

    /// The units `def`'s indexes consumed for an item going from `old` to `new` (stored
    /// JSON), when the request asked.
    fn index_units(
        &self,
        def: &TableDef,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> Result<Vec<capacity::IndexUnits>, DynamoError> {
        if !self.charge.wanted() || !crate::indexes::indexed(def) {
            return Ok(Vec::new());
        }
        let old = old.map(stored_item).transpose()?;
        let new = new.map(stored_item).transpose()?;
        Ok(capacity::index_write_units(def, old.as_ref(), new.as_ref()))
    }

    /// Adds `ItemCollectionMetrics` to a single-item write's `answer` when asked and due.
    fn collection_metrics(&self, answer: &mut Value, def: &TableDef, item: &Value) {
        if let Some(metrics) = capacity::collection_metrics(self.body, def, item) {
            answer["ItemCollectionMetrics"] = metrics;
        }
    }

    pub(super) async fn get_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let key = self.item_param("Key")?;
        let (pk, sk) = def.key_of(&key, true)?;
        let read = items.get(&pk, &sk).await?.into_iter().collect();
        let found = self.visible(&*items, &pk, read).await?.pop();
        let units = self.charge.units(|| {
            let size = size_of(found.as_ref().map(|item| &item.value))?;
            Ok(capacity::read_units(size, Self::consistent(self.body)))
        })?;
        let mut answer = match found {
            Some(item) => match &exprs.projection {
                Some(paths) => {
                    json!({ "Item": item_to_json(&expr::project(&stored_item(&item.value)?, paths)) })
                }
                None => json!({ "Item": item.value }),
            },
            None => json!({}),
        };
        self.charge.attach(&mut answer, &def.name, units);
        Ok(answer)
    }

    pub(super) async fn update_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let key = self.item_param("Key")?;
        let (pk, sk) = def.key_of(&key, true)?;
        let returns = self
            .body
            .get("ReturnValues")
            .and_then(Value::as_str)
            .unwrap_or("NONE");
        if !["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"].contains(&returns) {
            return Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{returns}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
            )));
        }
        expr::refuse_key_updates(&exprs.update, &def.key_names())?;
        let door = self.door();
        door.open(&def, &pk).await?;
        let key_item = key.clone();
        let what = What::Update {
            key,
            actions: exprs.update.clone(),
        };
        let written = self
            .write_if((&def, &items), &pk, &sk, exprs.condition.as_ref(), what)
            .await;
        let changed = match &written {
            Ok((_, Some(new))) => vec![(new, Some(new))],
            _ => Vec::new(),
        };
        door.close(&def, &changed).await?;
        let (old, new) = written?;
        let before = old.as_ref().map(stored_item).transpose()?;
        let after = new.as_ref().map(stored_item).transpose()?;
        let paths = expr::updated_paths(&exprs.update);
        let attributes = match (returns, &before, &after) {
            ("ALL_OLD", Some(old), _) => Some(item_to_json(old)),
            ("UPDATED_OLD", Some(old), _) => Some(item_to_json(&expr::project(old, &paths))),
            ("ALL_NEW", _, Some(new)) => Some(item_to_json(new)),
            ("UPDATED_NEW", _, Some(new)) => Some(item_to_json(&expr::project(new, &paths))),
            _ => None,
        };
        // As DynamoDB: the new image is always returned when asked for, the old one
        // when there was an old item, either possibly empty (`UPDATED_NEW` after a
        // `REMOVE`).
        let mut answer = match attributes {
            Some(a) => json!({ "Attributes": a }),
            None => json!({}),
        };
        let units = self.charge.units(|| {
            let size = |i: &Option<Item>| i.as_ref().map_or(0, item_size);
            Ok(capacity::write_units(size(&before).max(size(&after))))
        })?;
        let indexes = self.index_units(&def, old.as_ref(), new.as_ref())?;
        self.charge
            .attach_indexed(&mut answer, &def.name, units, &indexes);
        self.collection_metrics(&mut answer, &def, &item_to_json(&key_item));
        Ok(answer)
    }

    pub(super) async fn delete_item(&self) -> Result<Value, DynamoError> {
        let exprs = expressions(self.body)?;
        let (def, items) = self.table().await?;
        exprs.refuse_nested_key_paths(&def)?;
        let key = self.item_param("Key")?;
        let (pk, sk) = def.key_of(&key, true)?;
        let returns_old = self.returns_old()?;
        // One atomic read-and-delete, so the old item returned is the one deleted.
        let written = self
            .write_if(
                (&def, &items),
                &pk,
                &sk,
                exprs.condition.as_ref(),
                What::Delete,
            )
            .await;
        let key_json = item_to_json(&key);
        let changed = match &written {
            Ok((Some(_), _)) => vec![(&key_json, None)],
            _ => Vec::new(),
        };
        self.door().close(&def, &changed).await?;
        let (old, _) = written?;
        let units = self
            .charge
            .units(|| Ok(capacity::write_units(size_of(old.as_ref())?)))?;
        let indexes = self.index_units(&def, old.as_ref(), None)?;
        let mut answer = with_old(returns_old, old);
        self.charge
            .attach_indexed(&mut answer, &def.name, units, &indexes);
        self.collection_metrics(&mut answer, &def, &item_to_json(&key));
        Ok(answer)
    }
}
