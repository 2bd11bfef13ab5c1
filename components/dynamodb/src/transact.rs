//! `TransactWriteItems` and `TransactGetItems`: up to 100 actions over any items of any
//! tables but the built-in ones, all or nothing, through the commit protocol of
//! [`crate::txn`]; `ClientRequestToken` makes a write transaction idempotent for ten
//! minutes.

use crate::api::{expressions, size_of, stored_item, table_name_in, Ops};
use crate::error::{DynamoError, Kind};
use crate::indexes::{Indexed, Outboxes};
use crate::mutation::{self, Outcome, What, Write};
use crate::params::null_at;
use crate::schema::{self, TableDef};
use crate::txn::{self, Record, State, Step, TxnStep};
use crate::value::{item_from_json, item_size, item_to_json, MAX_ITEM_BYTES};
use crate::{capacity, expr};
use kit::table::{Cond, Mutation, StoreError, Table};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::rc::Rc;

/// The most actions one transaction may take.
const MAX_ACTIONS: usize = 100;

/// The most a transaction's items may take together.
const MAX_BYTES: usize = 4 * 1024 * 1024;

/// How long a `ClientRequestToken` stands for its request.
const TOKEN_MS: i64 = 10 * 60 * 1000;

/// Rounds of reads a `TransactGetItems` makes before it gives up on a consistent
/// snapshot among concurrent writers.
const READ_ROUNDS: usize = 4;

/// What one action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    ConditionCheck,
    Put,
    Delete,
    Update,
}

impl Verb {
    const ALL: [(Verb, &'static str); 4] = [
        (Verb::ConditionCheck, "ConditionCheck"),
        (Verb::Put, "Put"),
        (Verb::Delete, "Delete"),
        (Verb::Update, "Update"),
    ];
}

/// One action of a `TransactWriteItems`, checked.
struct Action {
    def: TableDef,
    items: Rc<dyn Table>,
    pk: String,
    sk: String,
    write: Write,
    /// `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    returns_old: bool,
    /// The item written, for the capacity report and the 4 MB bound.
    size: usize,
    /// A put or an update, which may create its item (and so its partition).
    creates: bool,
}

/// A token's record: which request it stands for and how that went.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    hash: String,
    at: i64,
    txn: String,
    done: bool,
}

/// How a token's request stands.
enum Token {
    /// Not seen within ten minutes (or its transaction never happened): run it; the
    /// token's record, as written, names the transaction about to run.
    Run(TokenRecord),
    /// Done already: answer as then.
    Done,
}

fn transact_items(body: &Value, get: bool) -> Result<&Vec<Value>, DynamoError> {
    let list = body
        .get("TransactItems")
        .filter(|v| !v.is_null())
        .ok_or_else(|| null_at("transactItems"))?
        .as_array()
        .ok_or_else(|| DynamoError::serialization("Unexpected field type"))?;
    if list.is_empty() || list.len() > MAX_ACTIONS {
        let bound = if list.is_empty() {
            "greater than or equal to 1"
        } else {
            "less than or equal to 100"
        };
        return Err(DynamoError::validation(format!(
            "1 validation error detected: Value '[{}]' at 'transactItems' failed to satisfy constraint: Member must have length {bound}",
            if get { "TransactGetItem" } else { "TransactWriteItem" }
        )));
    }
    Ok(list)
}

fn member<'b>(action: &'b Value, name: &str, at: &str) -> Result<&'b Value, DynamoError> {
    action
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| null_at(&format!("{at}.{}", lower_first(name))))
}

fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn duplicate() -> DynamoError {
    DynamoError::validation("Transaction request cannot include multiple operations on one item")
}

/// `TransactionCanceledException` with one reason per action, in request order.
fn canceled(reasons: Vec<Value>) -> DynamoError {
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r["Code"].as_str().unwrap_or("None"))
        .collect();
    let mut e = DynamoError::new(
        Kind::TransactionCanceled,
        format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
    );
    e.reasons = Some(Value::Array(reasons));
    e
}

fn conflict_reason() -> Value {
    json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
}

/// The actions grouped by the partition they live in (table-layer table and partition
/// key): one call each where the items live.
fn partitions(actions: &[Action]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, a) in actions.iter().enumerate() {
        let same = |g: &&mut Vec<usize>| {
            let first = &actions[g[0]];
            first.pk == a.pk && first.def.storage_name() == a.def.storage_name()
        };
        match groups.iter_mut().find(same) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// Runs `step(action)` on every action where its item lives, one call per partition;
/// returns each action's note, in action order.
async fn run_steps(
    actions: &[Action],
    txn: &str,
    now_ms: i64,
    step: impl Fn(&Action) -> Step,
) -> Result<Vec<Value>, DynamoError> {
    let mut notes = vec![Value::Null; actions.len()];
    for group in partitions(actions) {
        let first = &actions[group[0]];
        let steps: Vec<(String, Box<dyn Mutation>)> = group
            .iter()
            .map(|&i| {
                let a = &actions[i];
                let step = step(a);
                // A prepared write's index keys are checked as the write's own would be.
                let check = matches!(step, Step::Prepare(_));
                let step = TxnStep {
                    txn: txn.to_owned(),
                    step,
                };
                (
                    a.sk.clone(),
                    Indexed::wrap(Box::new(step), &a.def, now_ms, check),
                )
            })
            .collect();
        let noted = first.items.mutate_many(&first.pk, &steps).await?;
        for (&i, note) in group.iter().zip(noted) {
            notes[i] = note;
        }
    }
    Ok(notes)
}

/// The tables a transaction named so far, each read from the catalog once.
type Tables = Vec<(String, (TableDef, Rc<dyn Table>))>;

impl Ops<'_> {
    /// Table `name`, from `tables` if the request named it before.
    async fn table_once(
        &self,
        tables: &mut Tables,
        name: &str,
    ) -> Result<(TableDef, Rc<dyn Table>), DynamoError> {
        if let Some((_, table)) = tables.iter().find(|(n, _)| n == name) {
            return Ok(table.clone());
        }
        let table = self.table_named(name).await?;
        tables.push((name.to_owned(), table.clone()));
        Ok(table)
    }

    /// Action `index` of a `TransactWriteItems`: `verb` with `body` on table `def`.
    fn action(
        &self,
        index: usize,
        (def, items): (TableDef, Rc<dyn Table>),
        verb: Verb,
        body: &Value,
    ) -> Result<Action, DynamoError> {
        let name = Verb::ALL
            .iter()
            .find(|(v, _)| *v == verb)
            .map_or("", |(_, n)| n);
        let at = format!("transactItems.{}.member.{}", index + 1, lower_first(name));
        if schema::builtin(&def.name).is_some() {
            return Err(DynamoError::validation(format!(
                "Table {} is built in: it holds a service's own data, and takes part in no transaction",
                def.name
            )));
        }
        let exprs = expressions(body)?;
        exprs.refuse_nested_key_paths(&def)?;
        if verb == Verb::ConditionCheck && exprs.condition.is_none() {
            member(body, "ConditionExpression", &at)?;
        }
        let (key, what, size) = match verb {
            Verb::Put => {
                let item = item_from_json(member(body, "Item", &at)?)?;
                let size = item_size(&item);
                if size > MAX_ITEM_BYTES {
                    return Err(DynamoError::validation(
                        "Item size has exceeded the maximum allowed size",
                    ));
                }
                def.check_index_keys(&item)?;
                (
                    def.key_of(&item, false)?,
                    What::Put(item_to_json(&item)),
                    size,
                )
            }
            Verb::Update => {
                let key = item_from_json(member(body, "Key", &at)?)?;
                member(body, "UpdateExpression", &at)?;
                expr::refuse_key_updates(&exprs.update, &def.key_names())?;
                let typed = def.key_of(&key, true)?;
                let what = What::Update {
                    key,
                    actions: exprs.update.clone(),
                };
                (typed, what, 0)
            }
            Verb::Delete | Verb::ConditionCheck => {
                let key = item_from_json(member(body, "Key", &at)?)?;
                let what = if verb == Verb::Delete {
                    What::Delete
                } else {
                    What::Check
                };
                (def.key_of(&key, true)?, what, 0)
            }
        };
        let returns_old = match body
            .get("ReturnValuesOnConditionCheckFailure")
            .and_then(Value::as_str)
        {
            None | Some("NONE") => false,
            Some("ALL_OLD") => true,
            Some(other) => {
                return Err(DynamoError::validation(format!(
                    "1 validation error detected: Value '{other}' at '{at}.returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
                )))
            }
        };
        let (pk, sk) = key;
        Ok(Action {
            creates: matches!(verb, Verb::Put | Verb::Update),
            write: Write::new(body, exprs.condition, what),
            def,
            items,
            pk,
            sk,
            returns_old,
            size,
        })
    }

    /// The actions of a `TransactWriteItems`, checked before anything is written.
    async fn write_actions(&self) -> Result<Vec<Action>, DynamoError> {
        let list = transact_items(self.body, false)?;
        let mut actions: Vec<Action> = Vec::with_capacity(list.len());
        let mut tables = Vec::new();
        for (index, entry) in list.iter().enumerate() {
            let named: Vec<(Verb, &Value)> = Verb::ALL
                .iter()
                .filter_map(|(verb, name)| {
                    entry
                        .get(*name)
                        .filter(|v| !v.is_null())
                        .map(|b| (*verb, b))
                })
                .collect();
            let [(verb, body)] = named.as_slice() else {
                return Err(DynamoError::validation(
                    "TransactItems can only contain one of Check, Put, Update or Delete",
                ));
            };
            let table = self.table_once(&mut tables, table_name_in(body)?).await?;
            let action = self.action(index, table, *verb, body)?;
            if actions
                .iter()
                .any(|a| a.def.name == action.def.name && a.pk == action.pk && a.sk == action.sk)
            {
                return Err(duplicate());
            }
            actions.push(action);
        }
        if actions.iter().map(|a| a.size).sum::<usize>() > MAX_BYTES {
            return Err(DynamoError::validation(
                "Transaction request size has exceeded the maximum allowed size of 4 MB",
            ));
        }
        Ok(actions)
    }

    /// Where the request's `ClientRequestToken` stands (none: run it), the token taken
    /// for transaction `id` when it is to run.
    async fn token(
        &self,
        records: &dyn Table,
        id: &str,
    ) -> Result<Option<(String, Token)>, DynamoError> {
        let Some(token) = self.body.get("ClientRequestToken") else {
            return Ok(None);
        };
        let token = token
            .as_str()
            .ok_or_else(|| DynamoError::serialization("STRING_VALUE expected"))?;
        if token.is_empty() || token.chars().count() > 36 {
            return Err(DynamoError::validation(format!(
                "1 validation error detected: Value '{token}' at 'clientRequestToken' failed to satisfy constraint: Member must have length less than or equal to 36 and greater than or equal to 1"
            )));
        }
        let key = format!("token/{token}");
        let hash = crate::sigv4::sha256_hex(self.body["TransactItems"].to_string().as_bytes());
        let now = self.ctx.now.timestamp_millis();
        for _ in 0..4 {
            let held = records.get(&key, "").await?;
            let cond = match &held {
                None => Cond::Absent,
                Some(item) => {
                    let record: TokenRecord =
                        kit::json::from_value(&item.value).map_err(DynamoError::internal)?;
                    let live = now - record.at < TOKEN_MS;
                    if live && record.hash != hash {
                        return Err(DynamoError::new(
                            Kind::IdempotentParameterMismatch,
                            "The request uses the same client token as a previous, but non-identical request.",
                        ));
                    }
                    if live && record.done {
                        return Ok(Some((key, Token::Done)));
                    }
                    if live {
                        match txn::decide(self.ctx.env, &record.txn).await? {
                            Some(State::Pending) => {
                                return Err(DynamoError::new(
                                    Kind::TransactionInProgress,
                                    "Transaction is in progress",
                                ))
                            }
                            Some(State::Committed) => return Ok(Some((key, Token::Done))),
                            Some(State::Aborted) | None => {}
                        }
                    }
                    Cond::Version(item.version)
                }
            };
            let record = TokenRecord {
                hash: hash.clone(),
                at: now,
                txn: id.to_owned(),
                done: false,
            };
            let value = serde_json::to_value(&record).map_err(DynamoError::internal)?;
            match records.put(&key, "", value, cond).await {
                Ok(_) => return Ok(Some((key, Token::Run(record)))),
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Contention.into())
    }

    pub(crate) async fn transact_write(&self) -> Result<Value, DynamoError> {
        let actions = self.write_actions().await?;
        let records = self.ctx.env.table(txn::RECORDS)?;
        let env = self.ctx.env;
        let id = format!("{:016x}{:016x}", (env.random)(), (env.random)());
        // The token names its transaction before the transaction starts.
        let token = match self.token(&*records, &id).await? {
            Some((_, Token::Done)) => return Ok(self.write_answer(&actions)),
            Some((key, Token::Run(record))) => Some((key, record)),
            None => None,
        };
        // Items of indexed tables are recorded in the outbox before they are locked,
        // and propagated once the transaction is over (applied or released).
        let writes = actions
            .iter()
            .map(|a| (&a.def, &a.items, (a.pk.clone(), a.sk.clone())));
        let outboxes = Outboxes::record(env, writes).await?;
        let outcome = self.commit(&actions, &*records, &id, token.as_ref()).await;
        outboxes.finish(env).await?;
        // No changed items to follow: `Movies`, the one table whose changes the door
        // passes on, is refused in transactions.
        let door = self.door();
        let mut closed: Vec<&str> = Vec::new();
        for a in &actions {
            if !closed.contains(&a.def.name.as_str()) {
                door.close(&a.def, &[]).await?;
                closed.push(&a.def.name);
            }
        }
        // A cancelled transaction did nothing: its token may run it again. After any
        // other failure the token keeps naming the transaction, whose record says
        // whether it happened when the request is sent again.
        if let (Some((key, _)), Err(e)) = (&token, &outcome) {
            if e.kind == Kind::TransactionCanceled {
                records.delete(key, "", Cond::Any).await?;
            }
        }
        outcome?;
        Ok(self.write_answer(&actions))
    }

    fn write_answer(&self, actions: &[Action]) -> Value {
        let mut answer = json!({});
        // DynamoDB charges a transaction twice a plain write of each item.
        let mut charged: Vec<(String, f64)> = Vec::new();
        for a in actions {
            capacity::tally(
                &mut charged,
                &a.def.name,
                2.0 * capacity::write_units(a.size),
            );
        }
        self.charge.attach_all(&mut answer, &charged);
        answer
    }

    /// The protocol of [`crate::txn`] for `actions` as transaction `id`.
    async fn commit(
        &self,
        actions: &[Action],
        records: &dyn Table,
        id: &str,
        token: Option<&(String, TokenRecord)>,
    ) -> Result<(), DynamoError> {
        let env = self.ctx.env;
        let now_ms = self.now_ms();
        // Partitions the writes may create are listed before anything must be undone.
        let mut listed: Vec<(&str, &str)> = Vec::new();
        for a in actions.iter().filter(|a| a.creates) {
            if !listed.contains(&(a.def.name.as_str(), a.pk.as_str())) {
                self.door().open(&a.def, &a.pk).await?;
                listed.push((&a.def.name, &a.pk));
            }
        }
        let mut record = Record {
            state: State::Pending,
            started: env.clock.now().timestamp_millis(),
            items: actions
                .iter()
                .map(|a| (a.def.storage_name(), a.pk.clone(), a.sk.clone()))
                .collect(),
        };
        let value = serde_json::to_value(&record).map_err(DynamoError::internal)?;
        let version = records.put(id, "", value, Cond::Absent).await?;
        let prepared = self.prepare(actions, id).await;
        let reasons = match prepared {
            Ok(reasons) => reasons,
            Err(e) => {
                let _ = abort(actions, records, (id, now_ms), &mut record, version).await;
                return Err(e);
            }
        };
        if reasons.iter().any(|r| r["Code"] != "None") {
            abort(actions, records, (id, now_ms), &mut record, version).await?;
            return Err(canceled(reasons));
        }
        record.state = State::Committed;
        let value = serde_json::to_value(&record).map_err(DynamoError::internal)?;
        match records.put(id, "", value, Cond::Version(version)).await {
            Ok(_) => {}
            // Taken for dead and aborted by someone who met a lock: nothing happened.
            Err(StoreError::ConditionFailed) => {
                run_steps(actions, id, now_ms, |_| Step::Release).await?;
                records.delete(id, "", Cond::Any).await?;
                return Err(canceled(
                    actions.iter().map(|_| conflict_reason()).collect(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        // The token is marked done before the record can go: a request sent again
        // finds either the committed record or the mark, never neither.
        if let Some((key, taken)) = token {
            let done = TokenRecord {
                done: true,
                ..taken.clone()
            };
            let value = serde_json::to_value(&done).map_err(DynamoError::internal)?;
            records.put(key, "", value, Cond::Any).await?;
        }
        // Past the commit point: every reader sees the writes; applying them only
        // drops the locks (a coordinator dying here leaves that to the next writer).
        run_steps(actions, id, now_ms, |_| Step::Apply).await?;
        records.delete(id, "", Cond::Any).await?;
        Ok(())
    }

    /// Locks every item; returns the cancellation reasons (all `None`: every item
    /// locked). A lock of another transaction that has ended is settled, and the item
    /// tried again.
    async fn prepare(&self, actions: &[Action], id: &str) -> Result<Vec<Value>, DynamoError> {
        let now_ms = self.now_ms();
        let notes = run_steps(actions, id, now_ms, |a| Step::Prepare(a.write.clone())).await?;
        let mut reasons = Vec::with_capacity(actions.len());
        for (a, note) in actions.iter().zip(notes) {
            let step = TxnStep {
                txn: id.to_owned(),
                step: Step::Prepare(a.write.clone()),
            };
            let step = Indexed::wrap(Box::new(step), &a.def, now_ms, true);
            let first = mutation::outcome(note)?;
            let key = (a.pk.as_str(), a.sk.as_str());
            let outcome =
                txn::past_locks(self.ctx.env, &a.def, &*a.items, key, &*step, first, 1).await?;
            reasons.push(match outcome {
                Outcome::Done { .. } => json!({"Code": "None"}),
                Outcome::ConditionFailed { old } => {
                    let mut reason = json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"});
                    if let (true, Some(old)) = (a.returns_old, old) {
                        reason["Item"] = old;
                    }
                    reason
                }
                Outcome::Refused(e) => json!({"Code": "ValidationError", "Message": e.message}),
                Outcome::Locked { .. } => conflict_reason(),
            });
        }
        Ok(reasons)
    }

    pub(crate) async fn transact_get(&self) -> Result<Value, DynamoError> {
        let list = transact_items(self.body, true)?;
        let mut tables = Vec::new();
        let mut gets = Vec::with_capacity(list.len());
        for (index, entry) in list.iter().enumerate() {
            let at = format!("transactItems.{}.member.get", index + 1);
            let body = member(entry, "Get", &format!("transactItems.{}.member", index + 1))?;
            let name = member(body, "TableName", &at)?
                .as_str()
                .ok_or_else(|| DynamoError::serialization("STRING_VALUE expected"))?;
            let (def, items) = self.table_once(&mut tables, name).await?;
            let exprs = expressions(body)?;
            exprs.refuse_nested_key_paths(&def)?;
            let key = item_from_json(member(body, "Key", &at)?)?;
            let (pk, sk) = def.key_of(&key, true)?;
            // The same item twice is read twice: DynamoDB's documentation refuses
            // no such request, as it does a write transaction's.
            gets.push((def, items, pk, sk, exprs.projection));
        }
        for _ in 0..READ_ROUNDS {
            let mut first = Vec::with_capacity(gets.len());
            for (_, items, pk, sk, _) in &gets {
                first.push(items.get(pk, sk).await?);
            }
            // A live transaction holding an item: this round sees no snapshot.
            let mut held = false;
            for lock in first
                .iter()
                .flatten()
                .filter_map(|i| txn::lock_of(&i.value))
            {
                if txn::decide(self.ctx.env, &lock.txn).await? == Some(State::Pending) {
                    held = true;
                    break;
                }
            }
            let mut same = !held;
            for ((_, items, pk, sk, _), was) in gets.iter().zip(&first) {
                if !same {
                    break;
                }
                let now = items.get(pk, sk).await?;
                same = now.as_ref().map(|i| i.version) == was.as_ref().map(|i| i.version);
            }
            if !same {
                continue;
            }
            let mut responses = Vec::with_capacity(gets.len());
            let mut charged: Vec<(String, f64)> = Vec::new();
            for ((def, items, pk, _, projection), item) in gets.iter().zip(first) {
                let seen = match item {
                    Some(item) => txn::visible(self.ctx.env, &**items, pk, item).await?,
                    None => None,
                };
                let units = self.charge.units(|| {
                    let size = size_of(seen.as_ref().map(|i| &i.value))?;
                    Ok(2.0 * capacity::read_units(size, true))
                })?;
                capacity::tally(&mut charged, &def.name, units);
                responses.push(match (seen, projection) {
                    (None, _) => json!({}),
                    (Some(item), Some(paths)) => {
                        json!({"Item": item_to_json(&expr::project(&stored_item(&item.value)?, paths))})
                    }
                    (Some(item), None) => json!({"Item": item.value}),
                });
            }
            let mut answer = json!({ "Responses": responses });
            self.charge.attach_all(&mut answer, &charged);
            return Ok(answer);
        }
        Err(canceled(gets.iter().map(|_| conflict_reason()).collect()))
    }
}

/// Cancels transaction `id`: its record goes `aborted` (unless someone took it for
/// dead and did so first), its locks are released, its record deleted.
async fn abort(
    actions: &[Action],
    records: &dyn Table,
    (id, now_ms): (&str, i64),
    record: &mut Record,
    version: u64,
) -> Result<(), DynamoError> {
    record.state = State::Aborted;
    let value = serde_json::to_value(&*record).map_err(DynamoError::internal)?;
    match records.put(id, "", value, Cond::Version(version)).await {
        Ok(_) | Err(StoreError::ConditionFailed) => {}
        Err(e) => return Err(e.into()),
    }
    run_steps(actions, id, now_ms, |_| Step::Release).await?;
    records.delete(id, "", Cond::Any).await?;
    Ok(())
}
