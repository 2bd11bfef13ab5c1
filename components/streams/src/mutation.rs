//! A user's lease transitions (start, heartbeat, end) as a table-layer mutation: the
//! request's inputs travel as data and the transition runs where the user's item lives
//! — inside its Durable Object on Workers, in one call, so simultaneous starts of one
//! user queue there instead of racing — and its outcome comes back as a note.

use crate::domain::{
    IdempotencyKey, Lease, Leases, Metadata, Settings, Started, StreamId, StreamsError,
};
use chrono::{DateTime, Duration, Utc};
use kit::table::{Change, Item, Mutation, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The kind every transition ships as.
pub const KIND: &str = "streams.leases";

/// What a request does to the user's leases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Op {
    Start {
        key: Option<String>,
        metadata: Map<String, Value>,
    },
    Heartbeat,
    End,
}

/// One transition of one user's leases, with everything it depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    op: Op,
    id: String,
    now_ms: i64,
    limit: usize,
    lease_ms: i64,
}

/// How a transition ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The lease the transition started, heartbeat or ended.
    Done(Lease),
    /// A start whose idempotency key names an active lease: that lease, nothing written.
    Replayed(Lease),
}

impl Transition {
    fn new(op: Op, now: DateTime<Utc>, settings: &Settings, id: &StreamId) -> Self {
        Self {
            op,
            id: id.as_str().to_owned(),
            now_ms: now.timestamp_millis(),
            limit: settings.limit,
            lease_ms: settings.lease.num_milliseconds(),
        }
    }

    pub fn start(
        now: DateTime<Utc>,
        settings: &Settings,
        key: Option<&IdempotencyKey>,
        metadata: &Metadata,
        id: &StreamId,
    ) -> Self {
        let op = Op::Start {
            key: key.map(|k| k.as_str().to_owned()),
            metadata: metadata.as_map().clone(),
        };
        Self::new(op, now, settings, id)
    }

    pub fn heartbeat(now: DateTime<Utc>, settings: &Settings, id: &StreamId) -> Self {
        Self::new(Op::Heartbeat, now, settings, id)
    }

    pub fn end(now: DateTime<Utc>, settings: &Settings, id: &StreamId) -> Self {
        Self::new(Op::End, now, settings, id)
    }

    /// Runs the transition on `leases`: whether they changed, and the outcome.
    fn run(&self, leases: &mut Leases) -> Result<(bool, Outcome), StreamsError> {
        let now = DateTime::<Utc>::from_timestamp_millis(self.now_ms)
            .ok_or(StreamsError::ClockOutOfRange)?;
        let settings = Settings {
            limit: self.limit,
            lease: Duration::milliseconds(self.lease_ms),
            ..Settings::default()
        };
        let id = StreamId::parse(&self.id)?;
        Ok(match &self.op {
            Op::Start { key, metadata } => {
                let key = key.clone().map(IdempotencyKey::stored);
                let metadata = Metadata::stored(metadata.clone());
                match leases.start(now, &settings, key.as_ref(), &metadata, &id)? {
                    Started::New(lease) => (true, Outcome::Done(lease)),
                    Started::Replayed(lease) => (false, Outcome::Replayed(lease)),
                }
            }
            Op::Heartbeat => (true, Outcome::Done(leases.heartbeat(now, &settings, &id)?)),
            Op::End => (true, Outcome::Done(leases.end(now, &id)?)),
        })
    }
}

/// Rebuilds a shipped transition (see [`kit::table::Mutations`]).
pub fn mutations(kind: &str, args: Value) -> Option<Box<dyn Mutation>> {
    if kind != KIND {
        return None;
    }
    let transition: Transition = kit::json::from_value(&args).ok()?;
    Some(Box::new(transition))
}

fn error_note(e: &StreamsError) -> Value {
    match e {
        StreamsError::LimitReached(limit) => json!({"error": "limit_reached", "limit": limit}),
        StreamsError::IdempotencyKeyReused => json!({"error": "idempotency_key_reused"}),
        StreamsError::NotFound => json!({"error": "not_found"}),
        StreamsError::ClockOutOfRange => json!({"error": "clock_out_of_range"}),
        other => json!({"error": "corrupt", "detail": other.to_string()}),
    }
}

impl Mutation for Transition {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn args(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn decide(&self, current: Option<&Item>) -> Result<(Change, Value), StoreError> {
        let leases = match current {
            Some(item) => Leases::from_value(&item.value),
            None => Ok(Leases::default()),
        };
        let ran = leases.and_then(|mut leases| {
            let (changed, outcome) = self.run(&mut leases)?;
            let value = if changed {
                Some(leases.to_value()?)
            } else {
                None
            };
            Ok((value, outcome))
        });
        Ok(match ran {
            Ok((value, outcome)) => {
                let note = match &outcome {
                    Outcome::Done(lease) => json!({"lease": lease}),
                    Outcome::Replayed(lease) => json!({"lease": lease, "replayed": true}),
                };
                (value.map_or(Change::Keep, Change::Put), note)
            }
            Err(e) => (Change::Keep, error_note(&e)),
        })
    }
}

/// Reads a transition's note back.
pub fn outcome(note: &Value) -> Result<Outcome, StreamsError> {
    if let Some(error) = note["error"].as_str() {
        return Err(match error {
            "limit_reached" => StreamsError::LimitReached(
                note["limit"]
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or_default(),
            ),
            "idempotency_key_reused" => StreamsError::IdempotencyKeyReused,
            "not_found" => StreamsError::NotFound,
            "clock_out_of_range" => StreamsError::ClockOutOfRange,
            _ => StreamsError::Corrupt(note["detail"].as_str().unwrap_or(error).to_owned()),
        });
    }
    let lease: Lease = kit::json::from_value(&note["lease"])
        .map_err(|e| StreamsError::Corrupt(format!("a transition noted {note}: {e}")))?;
    Ok(if note["replayed"] == true {
        Outcome::Replayed(lease)
    } else {
        Outcome::Done(lease)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn a_shipped_transition_decides_as_the_transition_it_was_made_from() {
        let settings = Settings {
            limit: 1,
            ..Settings::default()
        };
        let id = StreamId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let other = StreamId::parse("fedcba9876543210fedcba9876543210").unwrap();
        let key = IdempotencyKey::stored("k".into());
        let metadata = Metadata::stored(serde_json::from_str(r#"{"title":"x"}"#).unwrap());
        let start = Transition::start(at(1_000), &settings, Some(&key), &metadata, &id);
        let (change, note) = start.decide(None).unwrap();
        let Change::Put(value) = change else {
            panic!("a start wrote nothing: {note}");
        };
        let held = Item {
            sk: String::new(),
            value,
            version: 1,
        };
        let transitions = [
            start.clone(),
            Transition::start(at(2_000), &settings, None, &metadata, &other),
            Transition::heartbeat(at(3_000), &settings, &id),
            Transition::end(at(4_000), &settings, &other),
        ];
        for transition in &transitions {
            let shipped = mutations(transition.kind(), transition.args()).expect("rebuilds");
            for item in [None, Some(&held)] {
                assert_eq!(
                    transition.decide(item).unwrap(),
                    shipped.decide(item).unwrap(),
                    "{transition:?}"
                );
            }
        }
        // Replayed, limit reached, not found: each read back as it happened.
        let replay = start.decide(Some(&held)).unwrap();
        assert_eq!(replay.0, Change::Keep);
        assert!(matches!(outcome(&replay.1), Ok(Outcome::Replayed(_))));
        let refused = transitions[1].decide(Some(&held)).unwrap();
        assert_eq!(refused.0, Change::Keep);
        assert!(matches!(
            outcome(&refused.1),
            Err(StreamsError::LimitReached(1))
        ));
        let missing = transitions[3].decide(Some(&held)).unwrap();
        assert!(matches!(outcome(&missing.1), Err(StreamsError::NotFound)));
    }
}
