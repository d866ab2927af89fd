//! `crux-node tables build|check`: builds the LMDB baby-step table ahead of
//! time, or opens and verifies an existing one. Input: command-line
//! arguments; output: a summary on stdout. The table logic lives in
//! `data::lmdb_table`; this file only parses and prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::crypto::dlog::{DEFAULT_TABLE_BITS, MAX_TABLE_BITS};
use crate::data::lmdb_table::MIN_TABLE_BITS;
use crate::data::{LmdbTable, TableInfo};

#[derive(Debug, Args)]
pub struct TablesArgs {
    #[command(subcommand)]
    pub command: TablesCommand,
}

#[derive(Debug, Subcommand)]
pub enum TablesCommand {
    /// Build a table of 2^K baby steps into DIR, replacing any table there.
    ///
    /// The processor solves a discrete log of |m| < 2^R with 2^(R-K) giant
    /// steps, so a larger table makes answers faster at the cost of disk
    /// space (about 27.4 bytes per baby step: 115 MB for K = 22).
    Build(TableTarget),
    /// Open the table in DIR and verify it: format, parameters, entry count,
    /// SHA-256 checksum of every entry and a few recomputed baby steps.
    ///
    /// Exits non-zero if the table is missing, damaged or built with other
    /// parameters than --bits.
    Check(TableTarget),
}

#[derive(Debug, Args)]
pub struct TableTarget {
    /// Table directory (holds LMDB's data.mdb and lock.mdb).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Table size: 2^K baby steps.
    #[arg(long, value_name = "K", default_value_t = DEFAULT_TABLE_BITS,
          value_parser = clap::value_parser!(u32).range(i64::from(MIN_TABLE_BITS)..=i64::from(MAX_TABLE_BITS)))]
    pub bits: u32,
}

pub fn run(args: TablesArgs) -> anyhow::Result<()> {
    match args.command {
        TablesCommand::Build(target) => build(&target),
        TablesCommand::Check(target) => check(&target),
    }
}

fn build(target: &TableTarget) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let info = LmdbTable::build(&target.dir, target.bits, progress)
        .with_context(|| format!("building the table in {}", target.dir.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "built 2^{} = {} baby steps in {seconds:.1} s, {} on disk, checksum {}",
        info.bits,
        info.baby_steps,
        human_bytes(info.bytes_on_disk),
        info.checksum_hex
    );
    println!("table: {}", target.dir.display());
    Ok(())
}

fn check(target: &TableTarget) -> anyhow::Result<()> {
    let started = Instant::now();
    // The error names the directory and says how to rebuild.
    let table = LmdbTable::open(&target.dir, Some(target.bits))?;
    let seconds = started.elapsed().as_secs_f64();
    print_info(table.info());
    println!("verified in {seconds:.2} s: ok");
    Ok(())
}

fn print_info(info: &TableInfo) {
    println!("baby steps:     2^{} = {}", info.bits, info.baby_steps);
    println!("entries:        {}", info.entries);
    println!("format version: {}", info.format_version);
    println!("on disk:        {} ({} bytes)", human_bytes(info.bytes_on_disk), info.bytes_on_disk);
    println!("checksum:       sha256:{}", info.checksum_hex);
}

/// Bytes in decimal megabytes with one decimal (e.g. "109.2 MB").
pub fn human_bytes(bytes: u64) -> String {
    let mut tenths_kb = bytes / 100; // 0.1 kB units
    if bytes < 1_000_000 {
        let whole = tenths_kb / 10;
        let frac = tenths_kb % 10;
        return format!("{whole}.{frac} kB");
    }
    tenths_kb /= 1000; // now 0.1 MB units
    format!("{}.{} MB", tenths_kb / 10, tenths_kb % 10)
}
