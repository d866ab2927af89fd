//! Wire encoding: MessagePack (rmp-serde) inside a versioned envelope. The
//! size limit is checked before decoding, trailing bytes are rejected, and
//! decoding never panics (serde caps pre-allocation for claimed lengths).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ProtocolError;
use super::messages::AuthorityRequest;

/// 7: noisy searches release a partition of the column a round (below
/// the grid, its buckets, above it) and take the committed-share path
/// (`Sums { noise }`), so a processor of version 6 would ask for prefix
/// counts that authorities of version 7 refuse;
/// 6: the committed-share path (`AdmitQuery`/`Admitted` sealing grants,
/// `Contribute { sealing }`, `Shares`, `Register { shared }`, `Sums`);
/// 5: contribution statements write ciphertexts as their wire form
/// (`crux/contribution/v4`), so relays of version 4 sign other bytes;
/// 4: search rounds are admitted as refinements (`AdmitRefinement`,
/// `AdmissionOf`); 3: admissions carry (R, s) signatures (`AdmissionSignature`), 64-byte
/// byte strings; 2: ciphertexts travel as 64-byte byte strings (1: arrays
/// of integers).
pub const PROTOCOL_VERSION: u16 = 7;
/// Default frame limit (a 4096-bucket histogram is about 600 KiB).
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    version: u16,
    body: T,
}

pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, ProtocolError> {
    rmp_serde::to_vec(&Envelope { version: PROTOCOL_VERSION, body })
        .map_err(|e| ProtocolError::Internal(format!("cannot encode a message: {e}")))
}

/// An authority's request: `decode` with every ciphertext decoded to its
/// first point a (`crypto::decode_first_points_only`). Authorities check
/// the relays' signatures and proofs over the bytes as sent and decrypt with
/// the a's alone, so they never decompress a second point b.
pub fn decode_at_authority(bytes: &[u8], limit: usize) -> Result<AuthorityRequest, ProtocolError> {
    crate::crypto::decode_first_points_only(|| decode(bytes, limit))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, ProtocolError> {
    if bytes.len() > limit {
        return Err(ProtocolError::TooLarge { size: bytes.len(), limit });
    }
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u16,
    }
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    let envelope: Envelope<T> = match Deserialize::deserialize(&mut de) {
        Ok(e) => e,
        Err(err) => {
            // tell a version mismatch apart from garbage
            if let Ok(v) = rmp_serde::from_slice::<VersionOnly>(bytes) {
                if v.version != PROTOCOL_VERSION {
                    return Err(ProtocolError::Version { found: v.version, expected: PROTOCOL_VERSION });
                }
            }
            return Err(ProtocolError::Decode(err.to_string()));
        }
    };
    let consumed = usize::try_from(de.position()).unwrap_or(usize::MAX);
    if consumed != bytes.len() {
        return Err(ProtocolError::Decode(format!("{} trailing bytes", bytes.len().saturating_sub(consumed))));
    }
    if envelope.version != PROTOCOL_VERSION {
        return Err(ProtocolError::Version { found: envelope.version, expected: PROTOCOL_VERSION });
    }
    Ok(envelope.body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::protocol::messages::{AuthorityRequest, ProcessorRequest, RelayRequest};
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_limits() {
        let msg = ProcessorRequest::Status;
        let bytes = encode(&msg).unwrap();
        assert_eq!(decode::<ProcessorRequest>(&bytes, 1024).unwrap(), msg);
        assert!(matches!(decode::<ProcessorRequest>(&bytes, 2), Err(ProtocolError::TooLarge { .. })));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(decode::<ProcessorRequest>(&trailing, 1024), Err(ProtocolError::Decode(_))));
        let v1 = rmp_serde::to_vec(&Envelope { version: 1, body: &msg }).unwrap();
        assert!(matches!(decode::<ProcessorRequest>(&v1, 1024), Err(ProtocolError::Version { found: 1, .. })));
        // valid msgpack of the wrong type
        let query = ProcessorRequest::Query {
            labels: vec!["Land".into()],
            params: crate::stats::QueryParams::new(crate::stats::Statistic::Sum),
        };
        assert!(matches!(decode::<AuthorityRequest>(&encode(&query).unwrap(), 1024), Err(ProtocolError::Decode(_))));
    }

    proptest! {
        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<ProcessorRequest>(&bytes, 1 << 20);
            let _ = decode::<RelayRequest>(&bytes, 1 << 20);
            let _ = decode::<AuthorityRequest>(&bytes, 1 << 20);
        }

        #[test]
        fn decoding_mutated_messages_never_panics(pos in 0usize..64, byte in any::<u8>()) {
            let msg = AuthorityRequest::Status;
            let mut bytes = encode(&msg).unwrap();
            if let Some(b) = bytes.get_mut(pos) { *b = byte; }
            let _ = decode::<AuthorityRequest>(&bytes, 1 << 20);
        }
    }
}
