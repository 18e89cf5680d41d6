//! `eval.json` (every number, the model, the data manifests, versions) and `eval.md` (tables a person
//! reads, next to the seed implementation's reference numbers).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{EvalError, Result};
use crate::sts::SetResult;

/// KR-BERT-SimCSE's published numbers: (label, KorSTS dev Spearman, KorSTS test Spearman, KLUE STS dev Pearson).
pub const REFERENCE: [(&str, f64, f64, f64); 2] = [
    ("KR-BERT SimCSE unsup (seed)", 79.99, 73.25, 74.45),
    ("KR-BERT SimCSE sup (seed)", 84.88, 80.72, 79.42),
];

/// The sets evaluated by default, in report order, with their display names.
pub const SETS: [(&str, &str); 3] = [
    ("korsts_dev", "KorSTS dev"),
    ("korsts_test", "KorSTS test"),
    ("klue_sts_dev", "KLUE STS dev"),
];

#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub sentences: Vec<String>,
    pub values: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    pub label: String,
    pub dir: PathBuf,
    pub pooler: String,
    pub max_len: usize,
    pub sets: Vec<SetResult>,
    pub matrix: Option<Matrix>,
    pub seconds: f64,
    /// Plot files written, relative to the report folder.
    pub plots: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    pub models: Vec<ModelResult>,
    /// The `.manifest.json` of every STS artifact read (sources and their SHA-256).
    pub data: serde_json::Value,
}

impl ModelResult {
    fn set(&self, name: &str) -> Option<&SetResult> {
        self.sets.iter().find(|s| s.name == name)
    }
}

/// The similarity matrix as an aligned text table with two decimals.
pub fn matrix_table(m: &Matrix) -> String {
    let mut s = String::from("    ");
    for j in 0..m.values.len() {
        let _ = write!(s, "{j:>6}");
    }
    s.push('\n');
    for (i, row) in m.values.iter().enumerate() {
        let _ = write!(s, "{i:>4}");
        for v in row {
            let _ = write!(s, "{v:>6.2}");
        }
        s.push('\n');
    }
    s
}

fn cell(v: Option<f64>, best: Option<f64>) -> String {
    match v {
        Some(v) if best.is_some_and(|b| (b - v).abs() < 1e-9) => format!("**{v:.2}**"),
        Some(v) => format!("{v:.2}"),
        None => "–".into(),
    }
}

/// The markdown report.
pub fn markdown(report: &Report) -> String {
    let mut md = String::from("# STS evaluation\n\n");
    md += "Spearman and Pearson correlation x100 between the cosine similarity of the two sentences' embeddings and the gold score. ";
    md += "KorSTS is conventionally reported with Spearman, KLUE STS with Pearson (its official metric); both are given for every set.";
    if report.models.len() > 1 {
        md += " The best of the evaluated models per column is in bold.";
    }
    md += "\n\n| model | pooler | max_len |";
    let mut columns: Vec<(&str, bool)> = Vec::new();
    // The built-in sets in their order, then a user's own sets (`--sts NAME=FILE`) by their names.
    let mut names: Vec<(&str, &str)> = SETS.to_vec();
    for s in report.models.iter().flat_map(|m| &m.sets) {
        if !names.iter().any(|(k, _)| *k == s.name) {
            names.push((&s.name, &s.name));
        }
    }
    for (key, name) in names {
        if report.models.iter().any(|m| m.set(key).is_some()) {
            let _ = write!(md, " {name} Spearman | {name} Pearson |");
            columns.push((key, true));
            columns.push((key, false));
        }
    }
    md += "\n|---|---|---:|";
    md += &"---:|".repeat(columns.len());
    md.push('\n');
    let value = |m: &ModelResult, (key, spearman): (&str, bool)| {
        m.set(key).map(|s| {
            if spearman {
                s.score.spearman
            } else {
                s.score.pearson
            }
        })
    };
    let best: Vec<Option<f64>> = columns
        .iter()
        .map(|c| {
            (report.models.len() > 1).then(|| {
                report
                    .models
                    .iter()
                    .filter_map(|m| value(m, *c))
                    .fold(f64::NEG_INFINITY, f64::max)
            })
        })
        .collect();
    for m in &report.models {
        let _ = write!(md, "| {} | {} | {} |", m.label, m.pooler, m.max_len);
        for (c, b) in columns.iter().zip(&best) {
            let _ = write!(md, " {} |", cell(value(m, *c), *b));
        }
        md.push('\n');
    }
    for (label, dev, test, klue) in REFERENCE {
        let _ = write!(md, "| {label} | cls_before_pooler | 64/48 |");
        for (key, spearman) in &columns {
            let v = match (*key, *spearman) {
                ("korsts_dev", true) => Some(dev),
                ("korsts_test", true) => Some(test),
                ("klue_sts_dev", false) => Some(klue),
                _ => None,
            };
            let _ = write!(md, " {} |", cell(v, None));
        }
        md.push('\n');
    }
    md += "\nThe seed rows are KR-BERT-SimCSE's published numbers (KR-BERT char16424, trained on Korean Wikipedia or KorNLI), not measured here.\n";

    for m in &report.models {
        let _ = write!(
            md,
            "\n## {}\n\n`{}` · pooler `{}` · max_len {} · {:.1} s\n\n",
            m.label,
            m.dir.display(),
            m.pooler,
            m.max_len,
            m.seconds
        );
        md += "| set | pairs | sentences | Spearman | Pearson | alignment (gold >= 4) | uniformity | encoded/s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for s in &m.sets {
            let f = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or("–".into());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2} | {:.2} | {} | {} | {:.0} |",
                s.name,
                s.score.pairs,
                s.sentences,
                s.score.spearman,
                s.score.pearson,
                f(s.alignment),
                f(s.uniformity),
                s.sentences as f64 / s.encode_seconds.max(1e-9)
            );
        }
        md += "\nAlignment and uniformity (Wang & Isola 2020) are computed on unit embeddings; lower is better for both.\n";
        if let Some(mx) = &m.matrix {
            md += "\n### Similarity of example sentences\n\n```text\n";
            for (i, s) in mx.sentences.iter().enumerate() {
                let _ = writeln!(md, "{i}: {s}");
            }
            md += "\n";
            md += &matrix_table(mx);
            md += "```\n";
        }
        for p in &m.plots {
            let _ = write!(md, "\n![{p}]({p})\n");
        }
    }
    md
}

/// Writes `eval.json` and `eval.md` into `dir`.
pub fn write(dir: &Path, report: &Report) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| EvalError::Io {
        path: dir.into(),
        source,
    })?;
    let json = serde_json::to_string_pretty(report).map_err(|source| EvalError::Json {
        path: dir.join("eval.json"),
        source,
    })? + "\n";
    for (name, text) in [("eval.json", json), ("eval.md", markdown(report))] {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).map_err(|source| EvalError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| EvalError::Io { path, source })?;
    }
    Ok(())
}
