//! JSON reading through one of serde_json's readers. serde_json compiles a type's
//! reader once per input kind: a type read both from bytes (`from_slice`) and from text
//! (`from_str`) carries two readers, 0.4–7 KB of wasm each, and the byte reader is the
//! larger since it checks UTF-8 string by string. So every read in the services — request
//! bodies, stored partitions, Durable Object answers, TvMaze pages — goes through
//! [`from_bytes`] or [`from_text`], which both use the text reader.

use serde::de::{DeserializeOwned, Error as _};
use serde::Deserialize;
use serde_json::Value;

/// Parses `bytes` as JSON of `T`; bytes that are not UTF-8 are a JSON error too.
pub fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    from_text(std::str::from_utf8(bytes).map_err(serde_json::Error::custom)?)
}

/// Parses `text` as JSON of `T`.
pub fn from_text<'a, T: Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    serde_json::from_str(text)
}

/// Reads a JSON value as `T` through its text, rather than with
/// `serde_json::from_value`, which would compile a second reader per type on top of
/// serde_json's whole `Value` deserializer (about 30 KB of each wasm that used it). The
/// price is one serialisation of the value, about what `from_value(value.clone())`
/// paid to clone it.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> serde_json::Result<T> {
    from_text(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_bytes_reads_json_and_refuses_bytes_that_are_not_utf8() {
        let value: Value = from_bytes(br#"{"a":[1,"x"]}"#).unwrap();
        assert_eq!(value, json!({"a": [1, "x"]}));
        assert!(from_bytes::<Value>(b"\"\xff\"").is_err());
    }

    #[test]
    fn from_value_reads_what_from_value_of_serde_json_reads() {
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct T {
            n: u64,
            s: Option<String>,
        }
        let value = json!({"n": 3, "s": "é \"q\""});
        let ours: T = from_value(&value).unwrap();
        assert_eq!(ours, serde_json::from_value::<T>(value).unwrap());
        assert!(from_value::<T>(&json!({"n": -1})).is_err());
    }
}
