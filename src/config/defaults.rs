//! The default value of every optional node.yaml key, each written once.
//! Read by `raw.rs` (a key missing from the file or environment), by
//! `cli::init` (what it writes into new configs) and by clap's
//! `default_value_t` (what `--help` shows). No logic; README.md and the
//! examples in configs/ state the same values.

/// `timeouts.connect_ms`: a node that is down is reported after
/// (1 + retries) attempts, about 1.3 s with these defaults (issue 10:
/// "within 2 s").
pub const CONNECT_MS: u64 = 600;
/// `timeouts.request_ms`
pub const REQUEST_MS: u64 = 30_000;
/// `timeouts.query_ms`
pub const QUERY_MS: u64 = 300_000;
/// `timeouts.retries`
pub const RETRIES: u32 = 1;
/// `timeouts.retry_backoff_ms`
pub const RETRY_BACKOFF_MS: u64 = 100;

/// `limits.max_frame_bytes` (16 MiB): the wire layer's default frame limit.
pub use crate::protocol::wire::DEFAULT_MAX_FRAME as MAX_FRAME_BYTES;

/// `cluster.min_relays` (and `crux-node init --min-relays` with more than one relay).
pub const MIN_RELAYS: u32 = 2;

/// `authority.budget_epsilon` (and `crux-node init --budget`).
pub const BUDGET_EPSILON: f64 = 10.0;
/// `authority.replay_window_secs`: one day.
pub const REPLAY_WINDOW_SECS: u64 = 86_400;

/// `processor.dlog_table_bits` (and `crux-node init --dlog-bits`,
/// `crux-node tables --bits`): 2^22 baby steps.
pub use crate::crypto::dlog::DEFAULT_TABLE_BITS as DLOG_TABLE_BITS;
/// `processor.dlog_range_bits` (and `crux-node init --dlog-range-bits`):
/// the processor solves |m| < 2^36.
pub const DLOG_RANGE_BITS: u32 = 36;
/// `processor.rate_limit_per_minute`: queries per user per minute.
pub const RATE_LIMIT_PER_MINUTE: u32 = 120;
/// `processor.share_path`: exact queries and noisy searches take the
/// committed-share path (docs/share_path.md) unless it is turned off.
pub const SHARE_PATH: bool = true;

/// `crux-node init --base-port`: the processor listens on it, authorities
/// and relays on the ports after it.
pub const BASE_PORT: u16 = 7100;
