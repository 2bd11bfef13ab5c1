//! The keys of the Spin backend's creation protocol (see `host::spin::kv`), apart from
//! the Spin bindings so that they are unit-tested natively.

use super::StoreError;

/// The keys and values a partition stands under once its first creator (ticket 1)
/// has won and committed it, the state every partition of a settled store is in:
/// what a native loader writes into a Spin store (`spin_key_value` rows of store
/// `default`) to hand the Spin backend a table too large to write through Spin's 256
/// compare-and-swaps per request. `key` is [`super::PartitionTable::storage_key`],
/// `partition` the partition's stored bytes.
pub fn committed_partition(key: &str, partition: &[u8]) -> [(String, Vec<u8>); 2] {
    [
        (
            register_key(key),
            Register::from_increment(1).with_winner(1).encode().to_vec(),
        ),
        (data_key(1, key), Data::committed(partition)),
    ]
}

/// The register of a partition: creation attempts (low half) and winner (high half).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Register(u64);

impl Register {
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let raw = <[u8; 8]>::try_from(bytes)
            .map_err(|_| StoreError::Corrupt("partition register is not 8 bytes".into()))?;
        Ok(Self(u64::from_le_bytes(raw)))
    }

    pub fn from_increment(n: i64) -> Self {
        Self(u64::from_le_bytes(n.to_le_bytes()))
    }

    pub fn attempts(self) -> u32 {
        (self.0 & 0xffff_ffff) as u32
    }

    /// `None` while no creation has won.
    pub fn winner(self) -> Option<u32> {
        match (self.0 >> 32) as u32 {
            0 => None,
            w => Some(w),
        }
    }

    pub fn with_winner(self, ticket: u32) -> Self {
        Self((self.0 & 0xffff_ffff) | (u64::from(ticket) << 32))
    }

    pub fn encode(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }
}

pub fn register_key(key: &str) -> String {
    format!("r:{key}")
}

pub fn data_key(ticket: u32, key: &str) -> String {
    format!("d{ticket}:{key}")
}

/// A data key's value: a marker byte, then the partition's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Written by a swap once the register named this key's ticket: the partition.
    Committed(Vec<u8>),
    /// Written by its creator before it knew whether it won.
    Pending(Vec<u8>),
}

const COMMITTED: u8 = b'C';
const PENDING: u8 = b'P';

impl Data {
    pub fn decode(mut bytes: Vec<u8>) -> Result<Self, StoreError> {
        let marker = bytes.first().copied();
        // Drops the marker in place: partitions can be large.
        let mut payload = || {
            bytes.remove(0);
            std::mem::take(&mut bytes)
        };
        match marker {
            Some(COMMITTED) => Ok(Self::Committed(payload())),
            Some(PENDING) => Ok(Self::Pending(payload())),
            _ => Err(StoreError::Corrupt(
                "partition data without its marker byte".into(),
            )),
        }
    }

    pub fn committed(payload: &[u8]) -> Vec<u8> {
        Self::with_marker(COMMITTED, payload)
    }

    pub fn pending(payload: &[u8]) -> Vec<u8> {
        Self::with_marker(PENDING, payload)
    }

    fn with_marker(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(payload.len() + 1);
        bytes.push(marker);
        bytes.extend_from_slice(payload);
        bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::Committed(bytes) | Self::Pending(bytes) => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{data_key, register_key, Data, Register};

    #[test]
    fn data_keeps_its_marker_apart_from_the_partition() {
        let committed = Data::committed(b"{}");
        assert_eq!(committed, b"C{}");
        assert_eq!(Data::decode(committed), Ok(Data::Committed(b"{}".to_vec())));
        assert_eq!(
            Data::decode(Data::pending(b"[1]")),
            Ok(Data::Pending(b"[1]".to_vec()))
        );
        assert!(Data::decode(b"{}".to_vec()).is_err());
        assert!(Data::decode(Vec::new()).is_err());
    }

    #[test]
    fn keys_of_different_kinds_tickets_and_partitions_never_meet() {
        let keys = [
            register_key("t/1"),
            data_key(1, "t/1"),
            data_key(11, "t/1"),
            data_key(1, "t/11"),
            register_key("t/d1:t/1"),
        ];
        let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
    }

    #[test]
    fn committed_partition_is_ticket_one_won_and_committed() {
        let [(reg, r), (data, d)] = super::committed_partition("graph/s7", b"{}");
        assert_eq!((reg.as_str(), data.as_str()), ("r:graph/s7", "d1:graph/s7"));
        let r = Register::decode(&r).unwrap();
        assert_eq!((r.attempts(), r.winner()), (1, Some(1)));
        assert_eq!(Data::decode(d), Ok(Data::Committed(b"{}".to_vec())));
    }

    #[test]
    fn register_keeps_attempts_and_winner_apart() {
        let r = Register::from_increment(3);
        assert_eq!((r.attempts(), r.winner()), (3, None));
        let won = r.with_winner(2);
        assert_eq!((won.attempts(), won.winner()), (3, Some(2)));
        // An increment after the win counts an attempt and keeps the winner.
        let later = Register::from_increment(i64::from_le_bytes(won.encode()) + 1);
        assert_eq!((later.attempts(), later.winner()), (4, Some(2)));
        assert_eq!(Register::decode(&won.encode()), Ok(won));
        assert!(Register::decode(b"{}").is_err());
    }
}
