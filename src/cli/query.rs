//! `crux-node query STAT ... LABEL...`: asks the processor named in a user
//! config for one statistic and prints the answer (human text, or one JSON
//! object with `--json`). Exit status 0 on success; otherwise one line on
//! stderr and a non-zero status.

use std::path::PathBuf;

use std::io::Write;

use anyhow::{anyhow, bail};
use clap::Args;
use serde_json::json;

use crate::actors::client::ask_processor;
use crate::config::{NodeConfig, RoleConfig};
use crate::protocol::{ProcessorRequest, ProcessorResponse, QueryAnswer};
use crate::stats::{Epsilon, ExactValue, QueryParams, Statistic};

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// count, sum, mean, variance, stddev, min, max, median, quantile or histogram
    pub statistic: String,
    /// 1 to 3 header labels naming the column (as many as its header rows: e.g. `price`, or group, sub-label, year)
    #[arg(required = true, num_args = 1..=3, value_name = "LABEL")]
    pub labels: Vec<String>,
    /// A user configuration (DIR/user.yaml from `crux-node init`).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// No noise (only where every authority allows it: `init --exact`).
    #[arg(long, conflicts_with = "epsilon")]
    pub exact: bool,
    /// Privacy cost of this query; noise is calibrated to it (default 1 unless --exact).
    #[arg(long, value_name = "E")]
    pub epsilon: Option<String>,
    /// Quantile level P in [0, 1] for `quantile`.
    #[arg(long, value_name = "P")]
    pub quantile: Option<String>,
    /// Clamp values to LO:HI (needed with noise, except for count and histogram).
    #[arg(long, value_name = "LO:HI", allow_hyphen_values = true)]
    pub bounds: Option<String>,
    /// Histogram bucket edges, increasing: E1,E2,...
    #[arg(long, value_name = "E1,E2,...", allow_hyphen_values = true)]
    pub edges: Option<String>,
    /// Sample (n-1) instead of population variance and standard deviation.
    #[arg(long)]
    pub sample: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A query's parameters as text, the way `crux-node query` takes its flags
/// (and the console its form): the one place where they are parsed and
/// checked, so that both give identical queries and identical refusals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryFlags {
    /// count, sum, mean, ... (`Statistic`'s names)
    pub statistic: String,
    pub exact: bool,
    /// `--epsilon E`; None: 1 unless exact
    pub epsilon: Option<String>,
    /// `--quantile P`
    pub quantile: Option<String>,
    /// `--bounds LO:HI`
    pub bounds: Option<String>,
    /// `--edges E1,E2,...`
    pub edges: Option<String>,
    /// `--sample`
    pub sample: bool,
}

impl QueryArgs {
    /// The flags that make the query's parameters.
    pub fn flags(&self) -> QueryFlags {
        QueryFlags {
            statistic: self.statistic.clone(),
            exact: self.exact,
            epsilon: self.epsilon.clone(),
            quantile: self.quantile.clone(),
            bounds: self.bounds.clone(),
            edges: self.edges.clone(),
            sample: self.sample,
        }
    }
}

/// Flags that only some statistics use: given to another, they are refused
/// (they would be silently ignored).
fn check_flags_apply(statistic: Statistic, flags: &QueryFlags) -> anyhow::Result<()> {
    let refuse = |flag: &str, used_by: &str| {
        Err(anyhow!("{flag} does not apply to {statistic}; it is used by {used_by} only; drop it"))
    };
    if flags.quantile.is_some() && statistic != Statistic::Quantile {
        return refuse("--quantile", "quantile");
    }
    if flags.edges.is_some() && statistic != Statistic::Histogram {
        return refuse("--edges", "histogram");
    }
    if flags.sample && !matches!(statistic, Statistic::Variance | Statistic::Stddev) {
        return refuse("--sample", "variance and stddev");
    }
    if flags.bounds.is_some() && matches!(statistic, Statistic::Count | Statistic::Histogram) {
        return refuse("--bounds", "statistics of values (not count or histogram)");
    }
    Ok(())
}

/// Parses and checks a query's flags into the parameters sent to the
/// processor (what `crux-node query` and the console both use).
pub fn build_params(flags: &QueryFlags) -> anyhow::Result<QueryParams> {
    let statistic: Statistic = flags.statistic.parse()?;
    if flags.exact && flags.epsilon.is_some() {
        bail!("--exact and --epsilon exclude each other: an exact query has no noise to calibrate");
    }
    check_flags_apply(statistic, flags)?;
    let mut p = QueryParams::new(statistic);
    p.sample = flags.sample;
    p.quantile = flags.quantile.clone();
    if statistic == Statistic::Quantile && p.quantile.is_none() {
        bail!("quantile needs --quantile P with P in [0, 1]");
    }
    if let Some(b) = &flags.bounds {
        let (lo, hi) = b.split_once(':').ok_or_else(|| anyhow!("--bounds takes LO:HI, e.g. 0:3000000"))?;
        p.bounds = Some((lo.trim().to_string(), hi.trim().to_string()));
    }
    if let Some(e) = &flags.edges {
        p.edges = e.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    p.exact = flags.exact;
    if !flags.exact {
        p.epsilon = Some(Epsilon::parse(flags.epsilon.as_deref().unwrap_or("1"))?);
    }
    p.validate()?;
    Ok(p)
}

pub fn params(args: &QueryArgs) -> anyhow::Result<QueryParams> {
    build_params(&args.flags())
}

pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let params = params(&args)?;
    let cfg = NodeConfig::load(&args.config)?;
    if !matches!(cfg.role, RoleConfig::User) {
        bail!("{} is a {} config; queries use a user config (DIR/user.yaml)", args.config.display(), cfg.role);
    }
    let request = ProcessorRequest::Query { labels: args.labels.clone(), params };
    match ask_processor(&cfg, &request)? {
        ProcessorResponse::Answer(answer) => {
            // written, not printed: a closed pipe is an error, not a panic
            let mut out = std::io::stdout().lock();
            if args.json {
                writeln!(out, "{}", answer_json(&answer))?;
            } else {
                write!(out, "{}", answer_text(&answer))?;
            }
            out.flush()?;
            Ok(())
        }
        ProcessorResponse::Error { message } => Err(anyhow!(message)),
        _ => Err(anyhow!("the processor sent an unexpected answer")),
    }
}

pub fn answer_json(a: &QueryAnswer) -> serde_json::Value {
    let r = &a.result;
    let mut v = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| v.insert(key.to_string(), value);
    put("statistic", json!(r.statistic.name()));
    put("column", json!(a.column));
    put("value", json!(r.value.to_f64()));
    put("relays", json!(a.relays.len()));
    put("rows", json!(r.count));
    put("exact", json!(a.exact));
    put("epsilon", json!(a.epsilon.map(|e| e.as_f64())));
    put("query_id", json!(a.query_id.to_string()));
    put("contributing_relays", json!(a.relays));
    put("decryptors", json!(a.decryptors));
    put(
        "missing_authorities",
        json!(a.missing_authorities.iter().map(|(n, why)| json!({"authority": n, "reason": why})).collect::<Vec<_>>()),
    );
    put(
        "missing_relays",
        json!(a.missing_relays.iter().map(|(n, why)| json!({"relay": n, "reason": why})).collect::<Vec<_>>()),
    );
    let noise = if a.exact { None } else { r.uncertainty.as_ref() };
    if a.exact {
        put("exact_value", json!(r.value.exact_string()));
    } else {
        // a noisy answer is not exact: its fraction is the noisy value's
        put("noisy_value", json!(r.value.exact_string()));
        if let Some(u) = noise {
            put("stddev", json!(u.stddev));
            put("ci95", json!([u.ci95.0, u.ci95.1]));
        }
    }
    if let ExactValue::Histogram(buckets) = &r.value {
        put("value", serde_json::Value::Null);
        let buckets = buckets.iter().map(|b| {
            let mut bucket = json!({"lo": b.lo, "hi": b.hi, "count": b.count});
            if let (Some(u), Some(map)) = (noise, bucket.as_object_mut()) {
                // display-only float: the count's interval
                let c = b.count as f64;
                map.insert("ci95".into(), json!([c + u.ci95.0, c + u.ci95.1]));
            }
            bucket
        });
        put("buckets", json!(buckets.collect::<Vec<_>>()));
        if noise.is_some() {
            put("ci95", serde_json::Value::Null);
        }
    }
    serde_json::Value::Object(v)
}

/// Three significant digits, for display.
fn significant(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 3 - 1 - x.abs().log10().floor() as i32;
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

pub fn answer_text(a: &QueryAnswer) -> String {
    let r = &a.result;
    let mut out = String::new();
    let column = a.column.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join(" / ");
    match &r.value {
        ExactValue::Histogram(buckets) => {
            out.push_str(&format!("histogram of {column}:\n"));
            for b in buckets {
                out.push_str(&format!(
                    "  [{}, {}): {}\n",
                    b.lo.as_deref().unwrap_or("-inf"),
                    b.hi.as_deref().unwrap_or("+inf"),
                    b.count
                ));
            }
        }
        value => match (&r.uncertainty, a.exact) {
            (Some(u), false) => {
                out.push_str(&format!(
                    "{} of {column}: {} ± {} (95%: {:.6} to {:.6})\n",
                    r.statistic,
                    short(value),
                    significant(u.ci95.1 - u.ci95.0) / 2.0,
                    u.ci95.0,
                    u.ci95.1
                ));
                out.push_str(&format!("  noise standard deviation: {}\n", significant(u.stddev)));
            }
            _ => {
                out.push_str(&format!("{} of {column}: {}\n", r.statistic, short(value)));
                out.push_str(&format!("  exact value: {}\n", value.exact_string()));
            }
        },
    }
    if let (ExactValue::Histogram(_), Some(u), false) = (&r.value, &r.uncertainty, a.exact) {
        out.push_str(&format!(
            "  each count ± {} (95%); noise standard deviation {}\n",
            significant(u.ci95.1),
            significant(u.stddev)
        ));
    }
    let counted = if a.exact { "values counted" } else { "values counted (noisy)" };
    out.push_str(&format!("  relays: {} ({}); {counted}: {}\n", a.relays.len(), a.relays.join(", "), r.count));
    for (n, why) in &a.missing_relays {
        out.push_str(&format!("  missing relay {n}: {why}\n"));
    }
    if !a.missing_authorities.is_empty() {
        out.push_str(&format!("  decrypted by: {}\n", a.decryptors.join(", ")));
    }
    for (n, why) in &a.missing_authorities {
        out.push_str(&format!("  missing authority {n}: {why}\n"));
    }
    match (&a.epsilon, a.exact) {
        (_, true) => out.push_str("  mode: exact (no noise)\n"),
        (Some(e), false) => out
            .push_str(&format!("  mode: differentially private, epsilon {e}; {}\n", a.noise.as_deref().unwrap_or(""))),
        (None, false) => out.push_str("  mode: noisy\n"),
    }
    out
}

fn short(v: &ExactValue) -> String {
    match v {
        ExactValue::Fixed { .. } => v.exact_string(),
        _ => {
            let f = v.to_f64();
            if f.abs() >= 1e15 || (f != 0.0 && f.abs() < 1e-6) {
                format!("{f:e}")
            } else {
                format!("{f:.6}").trim_end_matches('0').trim_end_matches('.').to_string()
            }
        }
    }
}
