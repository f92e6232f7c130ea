//! What the suite prints: each section's detail table as it finishes, and at the end one summary
//! table, bankguard beside the reference measured in the same run, the ratio, and the goal it is
//! held to. Tables are Markdown, so a run's output can go into `docs/performance.md` as printed.
//! Also the statistics every section shares: medians and percentiles of samples.

use std::fmt;
use std::time::Duration;

/// A figure with its unit.
#[derive(Clone, Copy, Debug)]
pub enum Figure {
    Time(Duration),
    MiB(f64),
    Count(f64),
}

impl Figure {
    fn value(self) -> f64 {
        match self {
            Figure::Time(time) => time.as_secs_f64(),
            Figure::MiB(mib) => mib,
            Figure::Count(count) => count,
        }
    }

    /// `self / other`, both in the same unit.
    pub fn ratio_to(self, other: Figure) -> f64 {
        self.value() / other.value()
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Figure::Time(time) if time >= Duration::from_secs(1) => write!(f, "{:.2} s", time.as_secs_f64()),
            Figure::Time(time) => write!(f, "{:.2} ms", time.as_secs_f64() * 1e3),
            Figure::MiB(mib) => write!(f, "{mib:.1} MiB"),
            Figure::Count(count) if count.fract() == 0.0 => write!(f, "{count}"),
            Figure::Count(count) => write!(f, "{count:.2}"),
        }
    }
}

/// `a / b`, printed as `1.23×`; a small ratio also as a fraction, `0.039× (1/25.6)`.
pub fn ratio(a: Figure, b: Figure) -> String {
    match a.ratio_to(b) {
        small if small < 0.5 => format!("{small:.3}× (1/{:.1})", 1.0 / small),
        ratio => format!("{ratio:.2}×"),
    }
}

/// A goal from the issue, and whether this run met it.
pub struct Goal {
    pub wanted: String,
    pub met: bool,
}

impl Goal {
    pub fn new(wanted: impl Into<String>, met: bool) -> Self {
        Self { wanted: wanted.into(), met }
    }
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.wanted, if self.met { "met" } else { "**missed**" })
    }
}

/// A Markdown table, printed as soon as it is complete.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self { header: header.iter().map(|cell| cell.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.header.len(), "a row has one cell per column");
        self.rows.push(cells);
    }

    pub fn print(&self) {
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        println!("{}", line(&self.header));
        println!("|{}", "---|".repeat(self.header.len()));
        for row in &self.rows {
            println!("{}", line(row));
        }
        println!();
    }
}

/// The summary the suite prints last: one row per compared path, across sections.
pub struct Report {
    summary: Table,
}

impl Default for Report {
    fn default() -> Self {
        Self { summary: Table::new(&["path", "bankguard", "reference in the same run", "ratio", "goal"]) }
    }
}

impl Report {
    /// A section's heading and what it measured, printed before its detail table.
    pub fn section(&self, title: &str, method: &str) {
        println!("## {title}\n\n{method}\n");
    }

    /// A summary row: bankguard's figure beside `reference`'s, and the goal if the issue sets one.
    pub fn compare(&mut self, path: &str, bankguard: Figure, reference: (&str, Figure), goal: Option<Goal>) {
        let (name, figure) = reference;
        self.summary.row(vec![
            path.to_owned(),
            bankguard.to_string(),
            format!("{name}: {figure}"),
            ratio(bankguard, figure),
            goal.map(|goal| goal.to_string()).unwrap_or_default(),
        ]);
    }

    pub fn print_summary(&self) {
        println!("## Summary\n");
        self.summary.print();
    }
}

/// Durations measured for one path.
#[derive(Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    /// The `p`th percentile (nearest rank); the median is `percentile(50)`.
    pub fn percentile(&self, p: usize) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        assert!(!sorted.is_empty(), "no samples");
        sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
    }

    pub fn median(&self) -> Duration {
        self.percentile(50)
    }
}

/// The median of plain numbers (MiB, counts).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    assert!(!sorted.is_empty(), "no values");
    sorted[sorted.len() / 2]
}

/// An environment knob: `name` parsed, or `default` when unset.
pub fn knob(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
        Err(_) => default,
    }
}
