//! Crux: confidential network-wide statistics with exponential ElGamal on
//! ristretto255 under a key split across several authorities.
//!
//! Layers (see STYLE.md): `crypto`, `stats` and `protocol` are pure; `data`
//! reads files and LMDB; `config` validates node.yaml; `actors` runs the
//! roles over QUIC; `cli` is the `crux-node` command line; `console` is the
//! user's local web console; `harness` runs every role in memory for tests
//! and benchmarks.
#![warn(clippy::unwrap_used)]

pub mod actors;
pub mod cli;
pub mod config;
pub mod console;
pub mod crypto;
pub mod data;
pub mod harness;
pub mod protocol;
pub mod stats;
