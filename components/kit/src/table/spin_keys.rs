//! The keys of the Spin backend's creation protocol (see `table::spin`), apart from
//! the Spin bindings so that they are unit-tested natively.

use super::StoreError;

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

#[cfg(test)]
mod tests {
    use super::Register;

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
