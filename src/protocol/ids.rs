//! Identifiers carried by every message: `QueryId` (random 128 bits, shown
//! as hex in logs and errors).

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueryId(pub [u8; 16]);

impl QueryId {
    pub fn random(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        QueryId(id)
    }
}

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueryId({self})")
    }
}
