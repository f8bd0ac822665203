//! The figures of one run: printed as an aligned table, optionally as one JSON line too.

use serde_json::{Map, Value};

use crate::server::LogSummary;

pub struct Report {
    pub scenario: &'static str,
    rows: Vec<(String, String)>,
    json: Map<String, Value>,
    failures: Vec<String>,
    /// Targets: (what, met).
    targets: Vec<(String, bool)>,
    pub server_log_warnings: LogSummary,
}

impl Report {
    pub fn new(scenario: &'static str) -> Self {
        let mut json = Map::new();
        json.insert("scenario".into(), Value::from(scenario));
        Report {
            scenario,
            rows: Vec::new(),
            json,
            failures: Vec::new(),
            targets: Vec::new(),
            server_log_warnings: LogSummary::default(),
        }
    }

    /// A row of the table, and a field of the JSON object.
    pub fn row(
        &mut self,
        label: &str,
        shown: impl Into<String>,
        key: &str,
        value: impl Into<Value>,
    ) {
        self.rows.push((label.to_owned(), shown.into()));
        self.json.insert(key.to_owned(), value.into());
    }

    /// A JSON field without a table row.
    pub fn field(&mut self, key: &str, value: impl Into<Value>) {
        self.json.insert(key.to_owned(), value.into());
    }

    /// A row that is a correctness check: any non-zero count fails the run.
    pub fn check(&mut self, label: &str, count: u64, key: &str) {
        self.row(label, count.to_string(), key, count);
        if count > 0 {
            self.failures.push(format!("{label}: {count}"));
        }
    }

    pub fn fail(&mut self, why: impl Into<String>) {
        self.failures.push(why.into());
    }

    pub fn target(&mut self, what: impl Into<String>, met: bool) {
        self.targets.push((what.into(), met));
    }

    /// A field of the JSON object.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.json.get(key)
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    pub fn print(&mut self, json: bool) {
        let width = self
            .rows
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        println!();
        println!("== letschat-bench {} ==", self.scenario);
        for (label, value) in &self.rows {
            println!("  {label:<width$}  {value}");
        }
        let log = &self.server_log_warnings;
        println!(
            "  {:<width$}  {} warnings, {} errors",
            "server log", log.warnings, log.errors
        );
        for s in &log.samples {
            println!("  {:<width$}    e.g. {}", "", truncate(s, 160));
        }
        for (what, met) in &self.targets {
            println!("  target: {what}: {}", if *met { "MET" } else { "NOT MET" });
        }
        println!(
            "  result: {}",
            if self.failures.is_empty() {
                match self.scenario {
                    "idle" => "PASS (every connection opened, held and answered a ping; the final message reached each of its users' connections once)".to_owned(),
                    _ => {
                        "PASS (no lost, duplicated or out-of-order messages; no errors)".to_owned()
                    }
                }
            } else {
                format!("FAIL: {}", self.failures.join("; "))
            }
        );
        if json {
            self.json
                .insert("server_log_warnings".into(), Value::from(log.warnings));
            self.json
                .insert("server_log_errors".into(), Value::from(log.errors));
            self.json.insert(
                "targets".into(),
                Value::Array(
                    self.targets
                        .iter()
                        .map(|(w, m)| serde_json::json!({"target": w, "met": m}))
                        .collect(),
                ),
            );
            self.json
                .insert("passed".into(), Value::from(self.failures.is_empty()));
            println!("{}", Value::Object(self.json.clone()));
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    }
}

/// Kibibytes as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
