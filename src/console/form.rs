//! The query form as the browser posts it, and its conversion into a job:
//! the column (a published one, or typed labels), the statistic (or a CDF
//! built from quantiles), exact or noisy with epsilon and bounds. Parameters
//! are parsed and checked by `cli::query::build_params`, the same function
//! `crux-node query` uses, so both refuse the same input with the same
//! message. Input: form fields; output: a `JobRequest` or a readable error.

use serde::Deserialize;

use super::jobs::{JobRequest, CDF_LEVELS};
use crate::cli::query::{build_params, QueryFlags};

/// The statistic value that asks for a CDF (quantile queries).
pub const CDF: &str = "cdf";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct QueryForm {
    pub csrf: Option<String>,
    /// a published column's labels as a JSON array, or empty
    pub column: String,
    /// typed labels (take precedence over `column`)
    pub label1: String,
    pub label2: String,
    pub label3: String,
    /// a statistic's name, or `cdf`
    pub statistic: String,
    /// `exact` or `dp` (the default, as for `crux-node query`)
    pub mode: String,
    pub epsilon: String,
    pub lo: String,
    pub hi: String,
    pub quantile: String,
    pub edges: String,
    /// present when the box is ticked
    pub sample: Option<String>,
}

fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl QueryForm {
    pub fn is_exact(&self) -> bool {
        self.mode == "exact"
    }

    /// The column's labels: typed ones if any, else the chosen published column.
    pub fn labels(&self) -> Result<Vec<String>, String> {
        let typed: Vec<String> = [&self.label1, &self.label2, &self.label3].iter().filter_map(|l| given(l)).collect();
        if !typed.is_empty() {
            return Ok(typed);
        }
        if self.column.trim().is_empty() {
            return Err("choose a column, or type 1 to 3 of its header labels".to_string());
        }
        match serde_json::from_str::<Vec<String>>(&self.column) {
            Ok(labels) if (1..=3).contains(&labels.len()) => Ok(labels),
            _ => Err("the chosen column is not a list of 1 to 3 labels; choose it again".to_string()),
        }
    }

    /// The flags as `crux-node query` would get them (`statistic` given).
    fn flags(&self, statistic: &str, quantile: Option<String>) -> QueryFlags {
        let bounds = (given(&self.lo).is_some() || given(&self.hi).is_some())
            .then(|| format!("{}:{}", self.lo.trim(), self.hi.trim()));
        QueryFlags {
            statistic: statistic.to_string(),
            exact: self.is_exact(),
            epsilon: if self.is_exact() { None } else { given(&self.epsilon) },
            quantile,
            bounds,
            edges: given(&self.edges),
            sample: self.sample.is_some(),
        }
    }

    /// The job this form asks for, or why it cannot run.
    pub fn job_request(&self) -> Result<JobRequest, String> {
        let labels = self.labels()?;
        let statistic = self.statistic.trim();
        if statistic.is_empty() {
            return Err("choose a statistic".to_string());
        }
        if statistic != CDF {
            let params = build_params(&self.flags(statistic, given(&self.quantile))).map_err(|e| format!("{e:#}"))?;
            return Ok(JobRequest { labels, runs: vec![params], levels: Vec::new() });
        }
        if given(&self.quantile).is_some() {
            return Err(format!("a CDF runs the quantiles {}; leave the quantile field empty", CDF_LEVELS.join(", ")));
        }
        let runs = CDF_LEVELS
            .iter()
            .map(|level| build_params(&self.flags("quantile", Some(level.to_string()))).map_err(|e| format!("{e:#}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(JobRequest { labels, runs, levels: CDF_LEVELS.iter().map(|l| l.to_string()).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Statistic;

    fn form(statistic: &str, mode: &str) -> QueryForm {
        QueryForm {
            column: r#"["Population","All usual residents","2021"]"#.into(),
            statistic: statistic.into(),
            mode: mode.into(),
            ..QueryForm::default()
        }
    }

    #[test]
    fn builds_the_cli_parameters() {
        let job = form("median", "exact").job_request().unwrap();
        assert_eq!(job.labels, vec!["Population", "All usual residents", "2021"]);
        assert_eq!(job.runs.len(), 1);
        assert!(job.runs[0].exact && job.runs[0].statistic == Statistic::Median);
        // noisy by default with epsilon 1, as the CLI
        let mut noisy = form("mean", "");
        noisy.lo = "0".into();
        noisy.hi = "3000000".into();
        let job = noisy.job_request().unwrap();
        assert_eq!(job.runs[0].epsilon.map(|e| e.to_string()), Some("1".into()));
        assert_eq!(job.runs[0].bounds, Some(("0".into(), "3000000".into())));
        // typed labels win
        let mut typed = form("count", "exact");
        typed.label1 = " Land ".into();
        assert_eq!(typed.job_request().unwrap().labels, vec!["Land"]);
    }

    #[test]
    fn refuses_what_the_cli_refuses() {
        let mut bad = form("median", "exact");
        bad.quantile = "0.5".into();
        assert!(bad.job_request().unwrap_err().contains("--quantile does not apply to median"));
        let mut edges = form("histogram", "exact");
        edges.edges = "10,5".into();
        assert!(edges.job_request().is_err());
        assert!(form("nonsense", "exact").job_request().is_err());
        let no_column = QueryForm { statistic: "count".into(), ..QueryForm::default() };
        assert!(no_column.job_request().unwrap_err().contains("choose a column"));
    }

    #[test]
    fn a_cdf_is_nine_quantiles() {
        let job = form(CDF, "exact").job_request().unwrap();
        assert!(job.is_cdf());
        assert_eq!(job.runs.len(), 9);
        assert_eq!(job.runs[4].quantile.as_deref(), Some("0.5"));
    }
}
