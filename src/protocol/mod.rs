//! The Crux protocol without I/O: message types, their wire encoding with
//! size limits, one state machine per role, and the fixed labels their
//! outcomes get in metrics (`outcome`). A state machine takes one
//! decoded message (plus time and randomness as arguments) and returns what
//! to send; `actors` moves the bytes.

pub mod access;
pub mod authority;
#[cfg(test)]
mod authority_tests;
pub mod codec;
pub mod committee;
pub mod contribution_check;
pub mod drive;
pub mod error;
pub mod ids;
pub mod keygen;
pub mod ledger;
pub mod messages;
pub mod outcome;
pub mod processor;
pub mod relay;
pub mod shares;
pub mod wire;

pub use error::{InvalidRequest, PeerFailure, PeerReply, ProtocolError};
pub use ids::QueryId;
pub use messages::*;
