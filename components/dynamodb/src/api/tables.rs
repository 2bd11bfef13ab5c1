//! Table operations: CreateTable, UpdateTable, DescribeTable, ListTables, DeleteTable.

use super::*;

/// How many partitions DeleteTable clears: within the 50 subrequests a Workers request
/// may make on the free plan, with room for the catalog and the directory.
pub(super) const SWEEP_PARTITIONS: usize = 40;

/// `ResourceInUseException` for creating a table that exists.
pub(super) fn in_use(name: &str) -> DynamoError {
    DynamoError::new(Kind::ResourceInUse, format!("Table already exists: {name}"))
}

impl Ops<'_> {
    pub(super) async fn create_table(&self) -> Result<Value, DynamoError> {
        let created = self.now();
        // A table created again after a delete starts from a fresh generation: the
        // random part keeps the old generation's leftovers out of reach.
        let generation = (self.ctx.env.random)();
        let mut def = TableDef::from_create(self.body, created, generation)?;
        def.tags = crate::tags::parse(self.body.get("Tags"))?;
        if schema::builtin(&def.name).is_some() {
            return Err(in_use(&def.name));
        }
        let value = serde_json::to_value(&def).map_err(DynamoError::internal)?;
        match self
            .catalog
            .put(CATALOG_PK, &def.name, value, Written::Absent)
            .await
        {
            Ok(_) => Ok(json!({ "TableDescription": def.description("ACTIVE", self.now()) })),
            Err(StoreError::ConditionFailed) => Err(in_use(&def.name)),
            Err(e) => Err(e.into()),
        }
    }

    /// UpdateTable: the table's capacity mode and units (applied at once, as every
    /// table here is `ACTIVE` at once) and its GSIs ([`crate::backfill`]); stream,
    /// encryption and replica updates are refused, none of them being served.
    pub(super) async fn update_table(&self) -> Result<Value, DynamoError> {
        let name = self.table_name()?;
        for unserved in ["StreamSpecification", "SSESpecification", "ReplicaUpdates"] {
            if self.body.get(unserved).is_some() && schema::builtin(name).is_none() {
                return Err(DynamoError::validation(format!(
                    "{unserved} is not supported by this endpoint (no streams, encryption settings or replicas)"
                )));
            }
        }
        let indexes = self.body.get("GlobalSecondaryIndexUpdates").is_some();
        let id = (self.ctx.env.random)();
        let def = self
            .change_table(name, |def| {
                let billed = def.update_billing(self.body, self.now())?;
                if indexes {
                    crate::backfill::apply_updates(def, self.body, self.now(), id)?;
                }
                if billed || indexes {
                    return Ok(());
                }
                Err(DynamoError::validation(
                    "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
                ))
            })
            .await?;
        Ok(json!({ "TableDescription": def.description("ACTIVE", self.now()) }))
    }

    /// DescribeTable; a table whose new index is being filled gets a step of that
    /// first, as clients poll it while they wait for the index.
    pub(super) async fn describe_table(&self) -> Result<Value, DynamoError> {
        let (mut def, _) = self.table().await?;
        let filling = def
            .indexes
            .iter()
            .any(|i| matches!(i.state, crate::index::IndexState::Creating { .. }));
        if filling
            && crate::backfill::step(
                self.ctx.env,
                &def.name,
                crate::backfill::DESCRIBE_PARTITIONS,
            )
            .await?
        {
            def = self.table().await?.0;
        }
        Ok(json!({ "Table": def.description("ACTIVE", self.now()) }))
    }

    pub(super) async fn list_tables(&self) -> Result<Value, DynamoError> {
        let limit = match self.body.get("Limit") {
            None => 100,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=100) => n as usize,
                _ => {
                    return Err(DynamoError::validation(
                        "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 100",
                    ))
                }
            },
        };
        let start = self
            .body
            .get("ExclusiveStartTableName")
            .and_then(Value::as_str);
        // The catalog's next `limit` names and the built-in ones after `start`, merged
        // in name order (bytes, as DynamoDB sorts them).
        let page = self.catalog.query(CATALOG_PK, start, limit).await?;
        let mut names: Vec<&str> = page.items.iter().map(|i| i.sk.as_str()).collect();
        names.extend(
            schema::BUILTIN
                .iter()
                .copied()
                .filter(|b| start.is_none_or(|s| *b > s)),
        );
        kit::sorted::sort(&mut names);
        names.dedup();
        let more = page.next.is_some() || names.len() > limit;
        names.truncate(limit);
        let mut out = json!({ "TableNames": names });
        if more {
            out["LastEvaluatedTableName"] = json!(names.last());
        }
        Ok(out)
    }

    pub(super) async fn delete_table(&self) -> Result<Value, DynamoError> {
        let (def, items) = self.table().await?;
        if def.protected {
            return Err(DynamoError::validation(format!(
                "Resource cannot be deleted as it is currently protected against deletion. Table {} is built in: it holds a service's own data",
                def.name
            )));
        }
        let gone = self
            .catalog
            .delete(CATALOG_PK, &def.name, Written::Any)
            .await?;
        if !gone {
            return Err(schema::not_found(&def.name));
        }
        let swept = self.sweep(&def, items).await;
        self.door().close(&def, &[]).await?;
        swept?;
        Ok(json!({ "TableDescription": def.description("DELETING", self.now()) }))
    }

    /// Clears the items of a deleted table, partition by partition through its
    /// directory, up to [`SWEEP_PARTITIONS`] of them (each is a storage write: on Workers
    /// a Durable Object call, and a request may make only so many). What is past the
    /// bound, or written by a request that read the table just before it was deleted,
    /// stays in storage, unreachable: the table's generation is gone from the catalog.
    pub(super) async fn sweep(
        &self,
        def: &TableDef,
        items: Rc<dyn Table>,
    ) -> Result<(), DynamoError> {
        let directory = self.ctx.env.table(&def.directory_name())?;
        let listed = directory
            .query(DIRECTORY_PK, None, SWEEP_PARTITIONS + 1)
            .await?
            .items;
        for partition in listed.iter().take(SWEEP_PARTITIONS) {
            items.put_partition(&partition.sk, Vec::new()).await?;
        }
        if listed.len() <= SWEEP_PARTITIONS {
            directory.put_partition(DIRECTORY_PK, Vec::new()).await?;
        }
        Ok(())
    }
}
