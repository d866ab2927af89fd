//! `crux-node columns --config DIR/user.yaml`: the column labels relays
//! publish (`publish_columns: true` on a source in a relay's config), as
//! the processor gathers them. Header labels only: no value, no count, no
//! scale. Input: a user config; output: one line per column (or JSON).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Args;

use crate::actors::client::ask_processor;
use crate::config::{NodeConfig, RoleConfig};
use crate::protocol::{ProcessorRequest, ProcessorResponse};

#[derive(Debug, Args)]
pub struct ColumnsArgs {
    /// A user configuration (DIR/user.yaml from `crux-node init`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ColumnsArgs) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&args.config)?;
    if !matches!(cfg.role, RoleConfig::User) {
        bail!("{} is a {} config; columns uses a user config (DIR/user.yaml)", args.config.display(), cfg.role);
    }
    let relays = match ask_processor(&cfg, &ProcessorRequest::Columns)? {
        ProcessorResponse::Columns(relays) => relays,
        ProcessorResponse::Error { message } => return Err(anyhow!(message)),
        _ => return Err(anyhow!("the processor sent an unexpected answer")),
    };
    // labels -> relays publishing them
    let mut columns: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    let mut silent = Vec::new();
    for (relay, answer) in &relays {
        match answer {
            Ok(list) if list.is_empty() => silent.push((relay.clone(), "publishes no columns".to_string())),
            Ok(list) => {
                for labels in list {
                    columns.entry(labels.clone()).or_default().push(relay.clone());
                }
            }
            Err(why) => silent.push((relay.clone(), why.clone())),
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let list: Vec<_> =
            columns.iter().map(|(labels, relays)| serde_json::json!({"labels": labels, "relays": relays})).collect();
        let others: Vec<_> =
            silent.iter().map(|(relay, why)| serde_json::json!({"relay": relay, "reason": why})).collect();
        writeln!(out, "{}", serde_json::json!({"columns": list, "relays_without_columns": others}))?;
    } else {
        for (labels, relays) in &columns {
            writeln!(out, "{}    ({})", labels.join(" / "), relays.join(", "))?;
        }
        for (relay, why) in &silent {
            writeln!(out, "{relay}: {why} (a relay publishes a source's labels with `publish_columns: true`)")?;
        }
    }
    out.flush()?;
    Ok(())
}
