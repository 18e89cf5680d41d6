//! The prepare job: find the raw files, read and validate them, write the artifacts and a summary.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{DataError, Result};
use crate::kornli::{self, TripleRule};
use crate::rows::RowLog;
use crate::sts::{self, StsPair};
use simcse_artifact::{self as artifact, Manifest, SourceFile};

#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub raw_dir: PathBuf,
    pub out_dir: PathBuf,
    pub triples: TripleRule,
    pub require_all: bool,
    pub strict: bool,
}

/// One line of the end-of-run summary.
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub file: PathBuf,
    pub rows_read: usize,
    pub rows_kept: usize,
    pub skipped: BTreeMap<String, usize>,
    /// What this file contributed to its artifact: triples (after dedup) or pairs.
    pub written: usize,
    pub duplicates_dropped: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub files: Vec<FileSummary>,
    pub missing: Vec<PathBuf>,
    pub artifacts: Vec<(PathBuf, usize)>,
}

pub(crate) fn tool() -> String {
    format!("simcse-data {}", env!("CARGO_PKG_VERSION"))
}

pub(crate) fn skipped(log: &RowLog) -> BTreeMap<String, usize> {
    log.skipped
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), *n))
        .collect()
}

impl FileSummary {
    fn new(file: &Path, log: &RowLog, written: usize, duplicates_dropped: usize) -> Self {
        FileSummary {
            file: file.to_path_buf(),
            rows_read: log.rows_read,
            rows_kept: log.rows_kept(),
            skipped: skipped(log),
            written,
            duplicates_dropped,
        }
    }
}

/// Splits a group's expected files into present and missing; errors when none (or, with
/// `require_all`, any) is present.
fn present(
    raw_dir: &Path,
    files: &[&str],
    what: &str,
    require_all: bool,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (found, missing): (Vec<PathBuf>, Vec<PathBuf>) = files
        .iter()
        .map(|f| raw_dir.join(f))
        .partition(|p| p.is_file());
    for m in &missing {
        tracing::warn!("{what}: {} not found; preparing without it", m.display());
    }
    if found.is_empty() || (require_all && !missing.is_empty()) {
        let first = missing
            .first()
            .cloned()
            .unwrap_or_else(|| raw_dir.to_path_buf());
        let names = missing
            .iter()
            .map(|m| m.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DataError::Missing {
            what: format!("{what} ({names} missing; `cargo xtask download` fetches them)"),
            path: first,
        });
    }
    Ok((found, missing))
}

/// Runs the whole prepare job: `kornli_triples.parquet` and `sts/<name>.parquet`, each with a manifest.
pub fn run(opts: &Options) -> Result<Summary> {
    let mut summary = Summary {
        files: vec![],
        missing: vec![],
        artifacts: vec![],
    };
    prepare_kornli(opts, &mut summary)?;
    prepare_sts(opts, &mut summary)?;
    Ok(summary)
}

fn prepare_kornli(opts: &Options, summary: &mut Summary) -> Result<()> {
    let names: Vec<&str> = kornli::FILES.iter().map(|(f, _)| *f).collect();
    let (found, missing) = present(&opts.raw_dir, &names, "KorNLI", opts.require_all)?;
    summary.missing.extend(missing);
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    let mut sources = Vec::new();
    let mut counts = BTreeMap::new();
    for path in found {
        let source = kornli::FILES
            .iter()
            .find(|(f, _)| opts.raw_dir.join(f) == path)
            .map(|(_, s)| *s)
            .unwrap_or("kornli");
        let (rows, log, bytes) = kornli::read(&path, opts.strict)?;
        let (kept, dups) = kornli::dedup(kornli::triples(&rows, opts.triples), &mut seen);
        tracing::info!(
            "{}: {} rows, {} triples ({} duplicates dropped)",
            path.display(),
            log.rows_read,
            kept.len(),
            dups
        );
        for (reason, n) in skipped(&log) {
            *counts.entry(format!("skipped_{reason}")).or_default() += n;
        }
        *counts
            .entry("duplicate_triples_dropped".to_string())
            .or_default() += dups;
        summary
            .files
            .push(FileSummary::new(&path, &log, kept.len(), dups));
        sources.push(SourceFile::new(&path, &bytes));
        all.extend(kept.into_iter().map(|t| (t, source)));
    }
    let out = opts.out_dir.join("kornli_triples.parquet");
    artifact::write_triples(&out, &all)?;
    let manifest = Manifest {
        artifact: "kornli_triples.parquet".into(),
        rows: all.len(),
        sources,
        counts,
        options: serde_json::json!({ "triples": opts.triples, "strict": opts.strict }),
        tool: tool(),
    };
    artifact::write_manifest(&out, &manifest)?;
    summary.artifacts.push((out, all.len()));
    Ok(())
}

fn prepare_sts(opts: &Options, summary: &mut Summary) -> Result<()> {
    let names: Vec<&str> = sts::FILES.iter().map(|(f, _)| *f).collect();
    let (found, missing) = present(&opts.raw_dir, &names, "STS", opts.require_all)?;
    summary.missing.extend(missing);
    for path in found {
        let Some((_, name)) = sts::FILES
            .iter()
            .find(|(f, _)| opts.raw_dir.join(f) == path)
        else {
            continue;
        };
        let (pairs, log, bytes): (Vec<StsPair>, RowLog, Vec<u8>) =
            if path.extension().is_some_and(|e| e == "json") {
                sts::read_klue(&path, opts.strict)?
            } else {
                sts::read_korsts(&path, opts.strict)?
            };
        tracing::info!(
            "{}: {} rows, {} pairs",
            path.display(),
            log.rows_read,
            pairs.len()
        );
        let out = opts.out_dir.join("sts").join(format!("{name}.parquet"));
        artifact::write_sts(&out, &pairs)?;
        let manifest = Manifest {
            artifact: format!("sts/{name}.parquet"),
            rows: pairs.len(),
            sources: vec![SourceFile::new(&path, &bytes)],
            counts: skipped(&log)
                .into_iter()
                .map(|(r, n)| (format!("skipped_{r}"), n))
                .collect(),
            options: serde_json::json!({ "strict": opts.strict }),
            tool: tool(),
        };
        artifact::write_manifest(&out, &manifest)?;
        summary
            .files
            .push(FileSummary::new(&path, &log, pairs.len(), 0));
        summary.artifacts.push((out, pairs.len()));
    }
    Ok(())
}

impl Summary {
    /// The end-of-run table: rows read / kept / skipped by reason / written, per input file.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<44} {:>8} {:>8} {:>8} {:>8}  skipped by reason\n",
            "input", "read", "kept", "written", "dups"
        );
        for f in &self.files {
            let name = f
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let reasons = if f.skipped.is_empty() {
                "-".to_string()
            } else {
                f.skipped
                    .iter()
                    .map(|(r, n)| format!("{r}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            s += &format!(
                "{:<44} {:>8} {:>8} {:>8} {:>8}  {reasons}\n",
                name, f.rows_read, f.rows_kept, f.written, f.duplicates_dropped
            );
        }
        for m in &self.missing {
            s += &format!("{:<44} missing (not prepared)\n", m.display());
        }
        for (a, n) in &self.artifacts {
            s += &format!("wrote {} ({n} rows)\n", a.display());
        }
        s
    }
}
