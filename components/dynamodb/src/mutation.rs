//! DynamoDB's single-item writes as table-layer mutations: PutItem and DeleteItem with
//! their `ConditionExpression`, UpdateItem with its `UpdateExpression` too. Each is
//! shipped as its request's expression parameters and run where the item lives — inside
//! the item's Durable Object on Workers, in one call, so concurrent writers of one item
//! queue there instead of racing — and the outcome comes back as a note.

use crate::error::{DynamoError, Kind};
use crate::expr::{self, Action, Cond, Substitutions};
use crate::value::{item_from_json, item_size, item_to_json, Item, MAX_ITEM_BYTES};
use kit::table::{self, Change, Mutation, StoreError};
use serde_json::{json, Value};

/// The kind every write of this module ships as.
pub const KIND: &str = "dynamodb.write";

/// The request parameters a write's condition and update are read from.
const EXPRESSION_PARAMS: [&str; 4] = [
    "ConditionExpression",
    "UpdateExpression",
    "ExpressionAttributeNames",
    "ExpressionAttributeValues",
];

/// What a write does to the item when its condition holds.
#[derive(Debug, Clone)]
pub enum What {
    Put(Value),
    Delete,
    /// UpdateItem: `actions` applied to the item, or to `key` when there is none.
    Update {
        key: Item,
        actions: Vec<Action>,
    },
    /// A transaction's `ConditionCheck`: the condition alone, nothing written.
    Check,
}

/// One conditional write of one item.
#[derive(Debug, Clone)]
pub struct Write {
    /// The request's expression parameters, what the write ships as.
    params: Value,
    condition: Option<Cond>,
    what: What,
}

/// How a write ended, read back from its note.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Written (or deleted): the item before, and after for an update.
    Done {
        old: Option<Value>,
        new: Option<Value>,
    },
    /// The condition did not hold: nothing written; the item as it was.
    ConditionFailed { old: Option<Value> },
    /// The update could not apply (a type mismatch, an item past 400 KB): nothing
    /// written.
    Refused(DynamoError),
    /// The item is held by transaction `txn` (see [`crate::txn`]): nothing written.
    Locked { txn: String },
}

impl Write {
    /// A write of the request `body` (whose expressions parsed into `condition`).
    pub fn new(body: &Value, condition: Option<Cond>, what: What) -> Self {
        let params = EXPRESSION_PARAMS
            .iter()
            .filter_map(|name| body.get(*name).map(|v| ((*name).to_owned(), v.clone())))
            .collect();
        Self {
            params: Value::Object(params),
            condition,
            what,
        }
    }

    /// Rebuilds a shipped write; `None` when `args` are not one.
    pub(crate) fn from_args(args: Value) -> Option<Self> {
        let params = args.get("params")?.clone();
        let subs = Substitutions::from_request(&params).ok()?;
        let condition = match params.get("ConditionExpression") {
            Some(text) => {
                Some(expr::parse_condition(text.as_str()?, &subs, "ConditionExpression").ok()?)
            }
            None => None,
        };
        let what = if let Some(value) = args.get("put") {
            What::Put(value.clone())
        } else if let Some(key) = args.get("update") {
            let actions = match params.get("UpdateExpression") {
                Some(text) => expr::parse_update(text.as_str()?, &subs).ok()?,
                None => Vec::new(),
            };
            What::Update {
                key: item_from_json(key).ok()?,
                actions,
            }
        } else if args.get("delete").is_some() {
            What::Delete
        } else if args.get("check").is_some() {
            What::Check
        } else {
            return None;
        };
        Some(Self {
            params,
            condition,
            what,
        })
    }
}

/// Rebuilds this crate's shipped mutations (see [`kit::table::Mutations`]).
pub fn mutations(kind: &str, args: Value) -> Option<Box<dyn Mutation>> {
    match kind {
        KIND => Write::from_args(args).map(|w| Box::new(w) as Box<dyn Mutation>),
        crate::ttl::KIND => crate::ttl::expire_from_args(&args).map(|e| Box::new(e) as _),
        crate::txn::KIND => crate::txn::step_from_args(args).map(|s| Box::new(s) as _),
        other => crate::indexes::mutation_from(other, &args),
    }
}

fn refused(e: &DynamoError) -> Value {
    json!({"refused": "error", "type": e.kind.type_name(), "message": e.message})
}

impl Mutation for Write {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn args(&self) -> Value {
        match &self.what {
            What::Put(value) => json!({"params": self.params, "put": value}),
            What::Delete => json!({"params": self.params, "delete": true}),
            What::Check => json!({"params": self.params, "check": true}),
            What::Update { key, .. } => {
                json!({"params": self.params, "update": item_to_json(key)})
            }
        }
    }

    fn decide(&self, current: Option<&table::Item>) -> Result<(Change, Value), StoreError> {
        // An item a transaction holds is written by that transaction alone.
        if let Some(lock) = current.and_then(|i| crate::txn::lock_of(&i.value)) {
            return Ok((Change::Keep, json!({"refused": "locked", "txn": lock.txn})));
        }
        self.decide_unlocked(current)
    }
}

impl Write {
    /// [`Mutation::decide`] on an item no transaction holds.
    pub(crate) fn decide_unlocked(
        &self,
        current: Option<&table::Item>,
    ) -> Result<(Change, Value), StoreError> {
        let old_value = current.map(|i| &i.value);
        let old = old_value
            .map(|v| item_from_json(v).map_err(|e| StoreError::Corrupt(e.message)))
            .transpose()?;
        if let Some(cond) = &self.condition {
            if !cond.holds(old.as_ref().unwrap_or(&Item::new())) {
                return Ok((
                    Change::Keep,
                    json!({"refused": "condition", "old": old_value}),
                ));
            }
        }
        Ok(match &self.what {
            What::Put(value) => (Change::Put(value.clone()), json!({"old": old_value})),
            What::Delete => (Change::Delete, json!({"old": old_value})),
            What::Check => (Change::Keep, json!({"old": old_value})),
            What::Update { key, actions } => {
                let base = old.unwrap_or_else(|| key.clone());
                let new = match expr::apply(&base, actions) {
                    Ok(new) => new,
                    Err(e) => return Ok((Change::Keep, refused(&e))),
                };
                if item_size(&new) > MAX_ITEM_BYTES {
                    let e = DynamoError::validation(
                        "Item size to update has exceeded the maximum allowed size",
                    );
                    return Ok((Change::Keep, refused(&e)));
                }
                let new = item_to_json(&new);
                (
                    Change::Put(new.clone()),
                    json!({"old": old_value, "new": new}),
                )
            }
        })
    }
}

/// Reads a write's note back.
pub fn outcome(note: Value) -> Result<Outcome, DynamoError> {
    let mut note = match note {
        Value::Object(map) => map,
        other => return Err(DynamoError::internal(format!("a write noted {other}"))),
    };
    let mut take = |name: &str| match note.remove(name) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    match take("refused").as_ref().and_then(Value::as_str) {
        None => Ok(Outcome::Done {
            old: take("old"),
            new: take("new"),
        }),
        Some("condition") => Ok(Outcome::ConditionFailed { old: take("old") }),
        Some("locked") => Ok(Outcome::Locked {
            txn: take("txn")
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        }),
        Some(_) => {
            let kind = take("type")
                .as_ref()
                .and_then(Value::as_str)
                .and_then(Kind::from_type_name)
                .unwrap_or(Kind::Validation);
            let message = take("message")
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Ok(Outcome::Refused(DynamoError::new(kind, message)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(value: Value, version: u64) -> table::Item {
        table::Item {
            sk: String::new(),
            value,
            version,
        }
    }

    fn shipped(write: &Write) -> Box<dyn Mutation> {
        mutations(write.kind(), write.args()).expect("rebuilds")
    }

    #[test]
    fn a_shipped_write_decides_as_the_write_it_was_made_from() {
        let body = json!({
            "ConditionExpression": "attribute_not_exists(#n) OR #n < :max",
            "UpdateExpression": "ADD #n :one",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": "3"}},
            "TableName": "ignored",
        });
        let subs = Substitutions::from_request(&body).unwrap();
        let condition =
            expr::parse_condition("attribute_not_exists(#n) OR #n < :max", &subs, "c").unwrap();
        let actions = expr::parse_update("ADD #n :one", &subs).unwrap();
        let key = item_from_json(&json!({"id": {"S": "a"}})).unwrap();
        let writes = [
            Write::new(
                &body,
                Some(condition.clone()),
                What::Put(json!({"id": {"S": "a"}})),
            ),
            Write::new(&body, Some(condition.clone()), What::Delete),
            Write::new(&body, Some(condition), What::Update { key, actions }),
        ];
        let items = [
            None,
            Some(stored(json!({"id": {"S": "a"}, "n": {"N": "2"}}), 4)),
            Some(stored(json!({"id": {"S": "a"}, "n": {"N": "3"}}), 5)),
            Some(stored(json!({"id": {"S": "a"}, "n": {"S": "x"}}), 6)),
        ];
        for write in &writes {
            let rebuilt = shipped(write);
            for item in &items {
                let here = write.decide(item.as_ref()).unwrap();
                let there = rebuilt.decide(item.as_ref()).unwrap();
                assert_eq!(here, there, "{:?} on {item:?}", write.what);
            }
        }
    }

    #[test]
    fn outcomes_read_back_from_notes() {
        let add = Write::new(
            &json!({"UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}),
            None,
            What::Update {
                key: item_from_json(&json!({"id": {"S": "a"}})).unwrap(),
                actions: expr::parse_update(
                    "ADD n :one",
                    &Substitutions::from_request(
                        &json!({"ExpressionAttributeValues": {":one": {"N": "1"}}}),
                    )
                    .unwrap(),
                )
                .unwrap(),
            },
        );
        let (change, note) = add.decide(None).unwrap();
        let new = json!({"id": {"S": "a"}, "n": {"N": "1"}});
        assert_eq!(change, Change::Put(new.clone()));
        assert_eq!(
            outcome(note).unwrap(),
            Outcome::Done {
                old: None,
                new: Some(new)
            }
        );
        let text = stored(json!({"id": {"S": "a"}, "n": {"S": "x"}}), 1);
        let (change, note) = add.decide(Some(&text)).unwrap();
        assert_eq!(change, Change::Keep);
        match outcome(note).unwrap() {
            Outcome::Refused(e) => assert_eq!(e.kind, Kind::Validation),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_kinds_and_broken_args_are_not_rebuilt() {
        assert!(mutations("dynamodb.other", json!({"params": {}, "delete": true})).is_none());
        assert!(mutations(KIND, json!({"params": {}})).is_none());
        assert!(mutations(
            KIND,
            json!({"params": {"ConditionExpression": "("}, "delete": true})
        )
        .is_none());
    }
}
