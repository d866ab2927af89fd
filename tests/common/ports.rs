//! Port blocks for `crux-node` clusters in tests: `PortBlock::reserve(count)`
//! hands out `base..base + count` on 127.0.0.1 (what `crux-node init
//! --base-port base` assigns: the processor on `base`, authorities and relays
//! after it; each node's QUIC on UDP and its metrics on TCP, both at its port
//! number) and keeps it reserved until the block is dropped. Used by
//! `cluster::Cluster` and by tests that run `crux-node init` themselves; no
//! node logic here.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{TcpListener, UdpSocket};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

/// Ports per block; a reservation asks for fewer (the last one is the lock).
pub const BLOCK: u16 = 16;
/// Blocks start at `FIRST`; all of them end below 32768, where Linux's
/// ephemeral range starts (`net.ipv4.ip_local_port_range`, 32768..=60999 by
/// default), so no client socket bound to port 0 lands inside a block.
const FIRST: u16 = 20_000;
const BLOCKS: u32 = (32_768 - FIRST as u32) / BLOCK as u32;

/// A reserved block of ports; the reservation ends when it is dropped, so
/// keep it alive as long as nodes listen on its ports.
///
/// Why two reservations cannot overlap:
/// - Blocks are aligned (`FIRST + k * BLOCK`) and a reservation uses ports of
///   one block only, so two reservations overlap only if they hold the same
///   block.
/// - A block is held by a TCP listener on its LAST port (`base + BLOCK - 1`),
///   bound for as long as the `PortBlock` lives. The kernel lets only one
///   socket listen on an address, whichever thread or process asks, so no
///   other test thread and no other test binary running at the same time
///   (they all reserve through this function) can hold the same block. The
///   kernel closes the listener when the process ends, even on a crash or
///   SIGKILL, so a reservation never goes stale. A reservation holds at most
///   `BLOCK - 1` ports, `base..base + count`, so the lock's port is never one
///   a node listens on: nodes use UDP (QUIC) and TCP (metrics, which
///   `crux-node init` puts at the same port numbers) on those ports only.
/// - Within one process, an atomic counter starting at an offset derived from
///   the process id gives each reservation a different block to try first, so
///   parallel tests rarely even contend for the same listener.
/// - Before a block is handed out, every one of its ports is bound once on
///   127.0.0.1, over UDP and over TCP, and released, so ports that a process
///   outside this scheme holds (an older test binary, a running node) are
///   skipped.
///
/// What remains: a process outside this scheme may bind one of the ports
/// between that probe and the node's own bind; then that node fails to start
/// with "cannot listen on" (QUIC) or "cannot serve metrics on" (HTTP), which
/// names the port.
pub struct PortBlock {
    base: u16,
    count: u16,
    _lock: TcpListener,
}

impl PortBlock {
    /// Reserves `count` (1..=15) consecutive ports, UDP and TCP, on 127.0.0.1.
    pub fn reserve(count: u16) -> PortBlock {
        assert!((1..BLOCK).contains(&count), "a port block holds 1 to {} ports, not {count}", BLOCK - 1);
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let start = std::process::id().wrapping_mul(7919) % BLOCKS;
        for _ in 0..BLOCKS {
            let k = NEXT.fetch_add(1, Ordering::Relaxed);
            let block = (start + k) % BLOCKS;
            let base = FIRST + u16::try_from(block).unwrap() * BLOCK;
            let Ok(lock) = TcpListener::bind(("127.0.0.1", base + BLOCK - 1)) else {
                continue; // another test holds this block
            };
            let free = |port: u16| {
                UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
            };
            if (base..base + count).all(free) {
                return PortBlock { base, count, _lock: lock };
            }
        }
        panic!("no free block of {count} ports in {FIRST}..32768");
    }

    /// The first port: `crux-node init --base-port`.
    pub fn base(&self) -> u16 {
        self.base
    }

    pub fn ports(&self) -> Range<u16> {
        self.base..self.base + self.count
    }

    /// The port whose TCP listener holds the block: never one of `ports()`.
    pub fn lock_port(&self) -> u16 {
        self.base + BLOCK - 1
    }
}
