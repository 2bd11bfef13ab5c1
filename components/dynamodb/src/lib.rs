//! The DynamoDB-compatible API (API.md §6): DynamoDB's JSON 1.0 protocol over the
//! table layer, so that boto3 and the aws CLI work against the edge deployment's own
//! tables.
//!
//! Built so far, each unit-tested (`cargo test -p dynamodb`): [`sigv4`], the server
//! side of AWS Signature Version 4 that every request must pass, checked against the
//! published AWS test vectors; [`value`], DynamoDB's attribute values with its number
//! semantics (38 digits, normal form, numeric order and an order-preserving key
//! encoding for sort keys); [`error`], DynamoDB's error types. The protocol itself
//! (operations, expressions, storage) is issue 10's remaining work.

pub mod error;
pub mod sigv4;
pub mod value;
