//! How the Durable Object envelopes ([`TableOp`], [`KvOp`] and their results) are read.
//!
//! They are written as internally tagged JSON (`{"op":"get","pk":…,"sk":…}`), and that
//! format stays: during a gradual deployment a Worker of one version calls objects of
//! the other, so both must read what both write. But serde's derived reader for an
//! internally tagged enum first buffers the whole object in its private `Content` tree
//! and then reads the variant from that copy: every item value of every operation
//! crossed the envelope twice, and without the generic buffering code (also gone from
//! the two `flatten` readers it served) the Worker's wasm is 4.4% smaller. Here each envelope is read in one pass into a flat struct of every variant's
//! fields, then checked into its variant.

use super::{Cond, Item, Page, StoreError, TableOp, TableOpResult};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A field that must be present when its variant names it. Unlike a plain `Option`, a
/// JSON `null` is a value here (a put may store `null`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn missing(what: &str, field: &str) -> String {
    format!("{what} without `{field}`")
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TableOpKind {
    Get,
    GetMany,
    Put,
    Delete,
    Query,
    QueryBack,
    PutPartition,
    PutItems,
    Mutate,
    MutateMany,
    GetKeys,
}

/// Every field any [`TableOp`] has.
#[derive(Deserialize)]
pub(super) struct TableOpWire {
    op: TableOpKind,
    #[serde(default)]
    pk: String,
    sk: Option<String>,
    sks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    cond: Option<Cond>,
    after: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
    items: Option<Vec<(String, Value)>>,
    kind: Option<String>,
    #[serde(default, deserialize_with = "present")]
    args: Option<Value>,
    mutations: Option<Vec<(String, String, Value)>>,
    keys: Option<Vec<(String, String)>>,
}

impl TryFrom<TableOpWire> for TableOp {
    type Error = String;

    fn try_from(w: TableOpWire) -> Result<Self, String> {
        let pk = w.pk;
        let sk = |what| w.sk.ok_or_else(|| missing(what, "sk"));
        let cond = |what| w.cond.ok_or_else(|| missing(what, "cond"));
        let items = |what| w.items.ok_or_else(|| missing(what, "items"));
        Ok(match w.op {
            TableOpKind::Get => TableOp::Get { pk, sk: sk("get")? },
            TableOpKind::GetMany => TableOp::GetMany {
                pk,
                sks: w.sks.ok_or_else(|| missing("get_many", "sks"))?,
            },
            TableOpKind::Put => TableOp::Put {
                pk,
                sk: sk("put")?,
                value: w.value.ok_or_else(|| missing("put", "value"))?,
                cond: cond("put")?,
            },
            TableOpKind::Delete => TableOp::Delete {
                pk,
                sk: sk("delete")?,
                cond: cond("delete")?,
            },
            TableOpKind::Query => TableOp::Query {
                pk,
                after: w.after,
                limit: w.limit.ok_or_else(|| missing("query", "limit"))?,
            },
            TableOpKind::QueryBack => TableOp::QueryBack {
                pk,
                before: w.before,
                limit: w.limit.ok_or_else(|| missing("query_back", "limit"))?,
            },
            TableOpKind::PutPartition => TableOp::PutPartition {
                pk,
                items: items("put_partition")?,
            },
            TableOpKind::PutItems => TableOp::PutItems {
                pk,
                items: items("put_items")?,
            },
            TableOpKind::Mutate => TableOp::Mutate {
                pk,
                sk: sk("mutate")?,
                kind: w.kind.ok_or_else(|| missing("mutate", "kind"))?,
                args: w.args.ok_or_else(|| missing("mutate", "args"))?,
            },
            TableOpKind::MutateMany => TableOp::MutateMany {
                pk,
                mutations: w
                    .mutations
                    .ok_or_else(|| missing("mutate_many", "mutations"))?,
            },
            TableOpKind::GetKeys => TableOp::GetKeys {
                keys: w.keys.ok_or_else(|| missing("get_keys", "keys"))?,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TableOpResultKind {
    Item,
    Items,
    Version,
    Existed,
    Page,
    Done,
    Mutated,
    Notes,
}

/// Every field any [`TableOpResult`] has.
#[derive(Deserialize)]
pub(super) struct TableOpResultWire {
    ok: TableOpResultKind,
    item: Option<Item>,
    items: Option<Vec<Option<Item>>>,
    version: Option<u64>,
    existed: Option<bool>,
    page: Option<Page>,
    mutated: Option<super::Mutated>,
    notes: Option<Vec<Value>>,
}

impl TryFrom<TableOpResultWire> for TableOpResult {
    type Error = String;

    fn try_from(w: TableOpResultWire) -> Result<Self, String> {
        Ok(match w.ok {
            // `"item": null` is the answer "no such item".
            TableOpResultKind::Item => TableOpResult::Item { item: w.item },
            TableOpResultKind::Items => TableOpResult::Items {
                items: w.items.ok_or_else(|| missing("items", "items"))?,
            },
            TableOpResultKind::Version => TableOpResult::Version {
                version: w.version.ok_or_else(|| missing("version", "version"))?,
            },
            TableOpResultKind::Existed => TableOpResult::Existed {
                existed: w.existed.ok_or_else(|| missing("existed", "existed"))?,
            },
            TableOpResultKind::Page => TableOpResult::Page {
                page: w.page.ok_or_else(|| missing("page", "page"))?,
            },
            TableOpResultKind::Done => TableOpResult::Done,
            TableOpResultKind::Mutated => TableOpResult::Mutated {
                mutated: w.mutated.ok_or_else(|| missing("mutated", "mutated"))?,
            },
            TableOpResultKind::Notes => TableOpResult::Notes {
                notes: w.notes.ok_or_else(|| missing("notes", "notes"))?,
            },
        })
    }
}

/// A raw key-value operation on one Durable Object's storage: what the Workers
/// backend's whole-table object (`DoKv`) ships.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[serde(try_from = "KvOpWire")]
pub enum KvOp {
    ReadMany {
        keys: Vec<String>,
    },
    Load {
        key: String,
    },
    /// Stores `value` if the key's write count is still `token`.
    Swap {
        key: String,
        token: u64,
        value: String,
    },
    Write {
        key: String,
        value: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum KvOpKind {
    ReadMany,
    Load,
    Swap,
    Write,
}

#[derive(Deserialize)]
struct KvOpWire {
    op: KvOpKind,
    keys: Option<Vec<String>>,
    key: Option<String>,
    token: Option<u64>,
    value: Option<String>,
}

impl TryFrom<KvOpWire> for KvOp {
    type Error = String;

    fn try_from(w: KvOpWire) -> Result<Self, String> {
        let key = |what| w.key.ok_or_else(|| missing(what, "key"));
        let value = |what| w.value.ok_or_else(|| missing(what, "value"));
        Ok(match w.op {
            KvOpKind::ReadMany => KvOp::ReadMany {
                keys: w.keys.ok_or_else(|| missing("read_many", "keys"))?,
            },
            KvOpKind::Load => KvOp::Load { key: key("load")? },
            KvOpKind::Swap => KvOp::Swap {
                key: key("swap")?,
                token: w.token.ok_or_else(|| missing("swap", "token"))?,
                value: value("swap")?,
            },
            KvOpKind::Write => KvOp::Write {
                key: key("write")?,
                value: value("write")?,
            },
        })
    }
}

/// The result of a [`KvOp`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ok", rename_all = "snake_case")]
#[serde(try_from = "KvOpResultWire")]
pub enum KvOpResult {
    Values { values: Vec<Option<String>> },
    Loaded { value: Option<String>, token: u64 },
    Swapped { swapped: bool },
    Done,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum KvOpResultKind {
    Values,
    Loaded,
    Swapped,
    Done,
}

#[derive(Deserialize)]
struct KvOpResultWire {
    ok: KvOpResultKind,
    values: Option<Vec<Option<String>>>,
    value: Option<String>,
    token: Option<u64>,
    swapped: Option<bool>,
}

impl TryFrom<KvOpResultWire> for KvOpResult {
    type Error = String;

    fn try_from(w: KvOpResultWire) -> Result<Self, String> {
        Ok(match w.ok {
            KvOpResultKind::Values => KvOpResult::Values {
                values: w.values.ok_or_else(|| missing("values", "values"))?,
            },
            // `"value": null` is the answer "no such key".
            KvOpResultKind::Loaded => KvOpResult::Loaded {
                value: w.value,
                token: w.token.ok_or_else(|| missing("loaded", "token"))?,
            },
            KvOpResultKind::Swapped => KvOpResult::Swapped {
                swapped: w.swapped.ok_or_else(|| missing("swapped", "swapped"))?,
            },
            KvOpResultKind::Done => KvOpResult::Done,
        })
    }
}

/// Decodes a Durable Object's answer, `Result<T, StoreError>` as JSON.
pub fn decode_answer<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    crate::json::from_bytes::<Result<T, StoreError>>(bytes)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + std::fmt::Debug>(v: &T) -> T {
        let text = serde_json::to_string(v).expect("serialises");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn item(sk: &str, value: Value) -> Item {
        Item {
            sk: sk.into(),
            value,
            version: 3,
        }
    }

    /// Every variant's format is pinned by the stored-format fixture
    /// (`tests/conformance/tests/stored_format.rs`); these are the values a flat reader
    /// could get wrong.
    #[test]
    fn table_ops_read_back_with_null_values_and_values_that_look_like_tags() {
        let ops = [
            TableOp::Put {
                pk: "p".into(),
                sk: "s".into(),
                value: Value::Null,
                cond: Cond::Version(7),
            },
            TableOp::Put {
                pk: "p".into(),
                sk: "".into(),
                value: json!({"op": "delete", "nested": [1, {"ok": "done"}]}),
                cond: Cond::Any,
            },
            TableOp::Query {
                pk: "p".into(),
                after: None,
                limit: 10,
            },
            TableOp::QueryBack {
                pk: "p".into(),
                before: Some("m".into()),
                limit: 3,
            },
            TableOp::PutPartition {
                pk: "p".into(),
                items: vec![("a".into(), Value::Null)],
            },
            TableOp::Mutate {
                pk: "p".into(),
                sk: "s".into(),
                kind: "svc.add".into(),
                args: Value::Null,
            },
            TableOp::MutateMany {
                pk: "p".into(),
                mutations: vec![("s".into(), "svc.add".into(), json!({"op": "get"}))],
            },
            TableOp::GetKeys {
                keys: vec![("p".into(), "s".into()), ("".into(), "".into())],
            },
        ];
        for op in ops {
            assert_eq!(round_trip(&op), op);
        }
    }

    #[test]
    fn every_table_op_result_reads_back_as_written() {
        let results = [
            TableOpResult::Item { item: None },
            TableOpResult::Item {
                item: Some(item("s", json!({"ok": 1}))),
            },
            TableOpResult::Items {
                items: vec![None, Some(item("t", Value::Null))],
            },
            TableOpResult::Version { version: 4 },
            TableOpResult::Existed { existed: false },
            TableOpResult::Page {
                page: Page {
                    items: vec![item("a", json!("x"))],
                    next: Some("a".into()),
                },
            },
            TableOpResult::Done,
            TableOpResult::Mutated {
                mutated: super::super::Mutated {
                    version: None,
                    note: json!({"old": null}),
                    retries: 2,
                },
            },
            TableOpResult::Notes {
                notes: vec![Value::Null, json!({"ok": "done"})],
            },
        ];
        for result in results {
            assert_eq!(round_trip(&result), result);
        }
    }

    #[test]
    fn every_kv_op_and_result_reads_back_as_written() {
        for op in [
            KvOp::ReadMany {
                keys: vec!["a".into()],
            },
            KvOp::Load { key: "k".into() },
            KvOp::Swap {
                key: "k".into(),
                token: 2,
                value: "v".into(),
            },
            KvOp::Write {
                key: "k".into(),
                value: "".into(),
            },
        ] {
            assert_eq!(round_trip(&op), op);
        }
        for result in [
            KvOpResult::Values {
                values: vec![None, Some("v".into())],
            },
            KvOpResult::Loaded {
                value: None,
                token: 0,
            },
            KvOpResult::Swapped { swapped: true },
            KvOpResult::Done,
        ] {
            assert_eq!(round_trip(&result), result);
        }
    }

    /// The format a deployed version writes: a Worker and its objects of different
    /// versions (a gradual rollout) must keep reading each other.
    #[test]
    fn decode_reads_the_deployed_internally_tagged_format() {
        let op: TableOp = serde_json::from_str(
            r#"{"op":"put","pk":"u","sk":"","value":{"a":1},"cond":{"Version":2}}"#,
        )
        .expect("reads");
        assert_eq!(
            op,
            TableOp::Put {
                pk: "u".into(),
                sk: "".into(),
                value: json!({"a": 1}),
                cond: Cond::Version(2),
            }
        );
        let answer: TableOpResult =
            decode_answer(br#"{"Ok":{"ok":"item","item":{"sk":"","value":1,"version":3}}}"#)
                .expect("reads");
        assert_eq!(
            answer,
            TableOpResult::Item {
                item: Some(item("", json!(1)))
            }
        );
        assert_eq!(
            decode_answer::<KvOpResult>(br#"{"Err":"ConditionFailed"}"#),
            Err(StoreError::ConditionFailed)
        );
    }

    #[test]
    fn decode_refuses_an_op_without_its_variants_fields() {
        for (text, wanted) in [
            (r#"{"op":"get","pk":"u"}"#, "get without `sk`"),
            (
                r#"{"op":"put","pk":"u","sk":"","cond":"Any"}"#,
                "put without `value`",
            ),
            (r#"{"op":"query","pk":"u"}"#, "query without `limit`"),
            (
                r#"{"op":"mutate","pk":"u","sk":""}"#,
                "mutate without `kind`",
            ),
            (r#"{"op":"drop","pk":"u"}"#, "unknown variant `drop`"),
        ] {
            let err = serde_json::from_str::<TableOp>(text).expect_err(text);
            assert!(err.to_string().contains(wanted), "{text}: {err}");
        }
        // What an object of a version without an operation answers, and how
        // `RemoteTable::mutate` recognises it.
        let err = serde_json::from_str::<TableOp>(r#"{"op":"mutate_more","pk":"u"}"#)
            .expect_err("unknown op");
        assert!(
            err.to_string().starts_with("unknown variant `mutate_more`"),
            "{err}"
        );
        let refused = StoreError::Corrupt(err.to_string());
        assert!(super::super::refused_as_unknown(&refused, "mutate_more"));
        assert!(!super::super::refused_as_unknown(&refused, "mutate"));
        let err = serde_json::from_str::<KvOp>(r#"{"op":"swap","key":"k","value":"v"}"#)
            .expect_err("no token");
        assert!(err.to_string().contains("swap without `token`"), "{err}");
    }
}
