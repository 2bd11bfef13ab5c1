//! The DynamoDB-compatible API (API.md §6): DynamoDB's JSON 1.0 protocol over the
//! table layer, so that boto3 and the aws CLI work against the edge deployment's own
//! tables.
//!
//! Built so far: [`sigv4`], the server side of AWS Signature Version 4 that every
//! request must pass, checked against the published AWS test vectors
//! (`cargo test -p dynamodb`). The protocol itself is issue 10's remaining work.

pub mod sigv4;
