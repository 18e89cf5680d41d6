//! KorSTS (TSV), KLUE STS (JSON) and a user's own STS files -> scored sentence pairs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserializer as _;
use serde::de::{SeqAccess, Visitor};
use simcse_artifact::Manifest;

use crate::error::{DataError, Result};
use crate::kornli::empty_column;
use crate::prepare;
use crate::rows::{Location, Reason, RowLog, check_header, lines, read_input, tsv_fields};
use crate::table::{self, Item, TableFormat};
use crate::wiki::source::Progress;

pub const KORSTS_HEADER: &str = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2";

/// The STS inputs the prepare stage looks for, and the artifact each one becomes under `sts/`.
pub const FILES: [(&str, &str); 5] = [
    ("kor-nlu/sts-train.tsv", "korsts_train"),
    ("kor-nlu/sts-dev.tsv", "korsts_dev"),
    ("kor-nlu/sts-test.tsv", "korsts_test"),
    ("klue-sts/klue-sts-v1.1_train.json", "klue_sts_train"),
    ("klue-sts/klue-sts-v1.1_dev.json", "klue_sts_dev"),
];

pub use simcse_artifact::{KlueLabels, StsPair};

/// Checks a gold score: a finite number in 0..=5.
fn in_range(log: &mut RowLog, loc: Location, name: &str, s: f64) -> Result<Option<f32>> {
    if s.is_finite() && (0.0..=5.0).contains(&s) {
        return Ok(Some(s as f32));
    }
    log.skip(
        loc,
        Reason::ScoreOutOfRange,
        format!("{name} {s} outside 0..5"),
    )
    .map(|_| None)
}

/// Parses a gold score written as text.
fn score(log: &mut RowLog, loc: Location, name: &str, text: &str) -> Result<Option<f32>> {
    match text.trim().parse::<f64>() {
        Ok(s) => in_range(log, loc, name, s),
        Err(_) => log
            .skip(
                loc,
                Reason::BadScore,
                format!("{name} {text:?} is not a number"),
            )
            .map(|_| None),
    }
}

/// Reads a KorSTS TSV (`genre filename year id score sentence1 sentence2`).
pub fn read_korsts(path: &Path, strict: bool) -> Result<(Vec<StsPair>, RowLog, Vec<u8>)> {
    let bytes = read_input(path, "a KorSTS TSV file")?;
    let mut log = RowLog::new(path, strict);
    let mut it = lines(&bytes);
    check_header(path, it.next(), KORSTS_HEADER)?;
    let mut pairs = Vec::new();
    for (line_no, raw) in it {
        log.rows_read += 1;
        let Some(f) = tsv_fields(&mut log, line_no, raw, 7)? else {
            continue;
        };
        let loc = Location::Line(line_no);
        let Some(s) = score(&mut log, loc, "score", f[4])? else {
            continue;
        };
        if let Some(col) = empty_column(&f[5..7], &["sentence1", "sentence2"]) {
            log.skip(loc, Reason::EmptySentence, format!("empty {col}"))?;
            continue;
        }
        pairs.push(StsPair {
            sentence1: f[5].to_string(),
            sentence2: f[6].to_string(),
            score: s,
            source: f[0].to_string(),
            klue: None,
        });
    }
    Ok((pairs, log, bytes))
}

/// Reads a KLUE STS JSON array. Elements are parsed one at a time so that a malformed or truncated
/// file still yields every element before the damage; the damage itself is reported with its index.
pub fn read_klue(path: &Path, strict: bool) -> Result<(Vec<StsPair>, RowLog, Vec<u8>)> {
    let bytes = read_input(path, "a KLUE STS JSON file")?;
    let mut log = RowLog::new(path, strict);
    let mut values = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let outcome = de.deserialize_seq(Elements(&mut values));
    // A syntax error inside the array ends parsing: everything before it is kept.
    if let Err(e) = outcome {
        log.rows_read += 1;
        let loc = Location::JsonIndex(values.len());
        log.skip(
            loc,
            Reason::MalformedJson,
            format!("{e}; elements after this point are lost"),
        )?;
    } else if let Err(e) = de.end() {
        log.skip(
            Location::JsonIndex(values.len()),
            Reason::MalformedJson,
            format!("after the array: {e}"),
        )?;
    }
    let mut pairs = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        log.rows_read += 1;
        let loc = Location::JsonIndex(i);
        match klue_pair(&mut log, loc, &v)? {
            Some(p) => pairs.push(p),
            None => continue,
        }
    }
    Ok((pairs, log, bytes))
}

/// Collects array elements as JSON values until the array ends or a syntax error stops it.
struct Elements<'v>(&'v mut Vec<serde_json::Value>);

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of KLUE STS objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element()? {
            self.0.push(v);
        }
        Ok(())
    }
}

fn klue_pair(log: &mut RowLog, loc: Location, v: &serde_json::Value) -> Result<Option<StsPair>> {
    let text = |key: &str| v.get(key).and_then(|x| x.as_str());
    let (Some(s1), Some(s2)) = (text("sentence1"), text("sentence2")) else {
        log.skip(
            loc,
            Reason::MalformedJson,
            "missing string field sentence1 or sentence2",
        )?;
        return Ok(None);
    };
    if let Some(col) = empty_column(&[s1, s2], &["sentence1", "sentence2"]) {
        log.skip(loc, Reason::EmptySentence, format!("empty {col}"))?;
        return Ok(None);
    }
    let labels = v.get("labels");
    let number = |key: &str| labels.and_then(|l| l.get(key)).and_then(|x| x.as_f64());
    let (Some(label), Some(real), Some(binary)) = (
        number("label"),
        number("real-label"),
        number("binary-label"),
    ) else {
        log.skip(
            loc,
            Reason::MalformedJson,
            "missing number labels.label, labels.real-label or labels.binary-label",
        )?;
        return Ok(None);
    };
    let Some(s) = in_range(log, loc, "labels.label", label)? else {
        return Ok(None);
    };
    let Some(real) = in_range(log, loc, "labels.real-label", real)? else {
        return Ok(None);
    };
    if binary != 0.0 && binary != 1.0 {
        log.skip(
            loc,
            Reason::BadScore,
            format!("labels.binary-label {binary} is not 0 or 1"),
        )?;
        return Ok(None);
    }
    Ok(Some(StsPair {
        sentence1: s1.to_string(),
        sentence2: s2.to_string(),
        score: s,
        source: text("source").unwrap_or_default().to_string(),
        klue: Some(KlueLabels {
            real_label: real,
            binary_label: binary == 1.0,
        }),
    }))
}

/// A user's STS file to import as an STS artifact (`eval --sts NAME=FILE`).
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub path: PathBuf,
    pub format: TableFormat,
    /// The columns (JSON keys) of the first sentence, the second sentence and the score.
    pub columns: [String; 3],
    /// The score scale; `None`: the lowest and highest score in the file.
    pub range: Option<(f64, f64)>,
    /// The set's name in reports; also each pair's `source`.
    pub name: String,
    /// The STS artifact to write.
    pub out: PathBuf,
    pub strict: bool,
}

/// What [`import`] read and wrote.
#[derive(Debug)]
pub struct Imported {
    pub pairs: usize,
    pub log: RowLog,
    /// The scale the scores were mapped from onto 0..5.
    pub range: (f64, f64),
}

/// Reads a user's scored pairs (TSV, CSV, JSONL or Parquet; columns named in `opts`; any score
/// scale) and writes them as an STS artifact with scores mapped linearly onto 0..5, which leaves
/// Spearman and Pearson unchanged and makes alignment's `gold >= 4` mean the top fifth of the
/// scale. Bad rows are counted by reason (or fatal under `strict`); a file with fewer than two
/// usable rows, or one score for all, is an error naming it.
pub fn import(opts: &ImportOptions) -> Result<Imported> {
    let path = &opts.path;
    let corrupt = |message: String| DataError::Corrupt {
        path: path.clone(),
        message,
    };
    let progress = Arc::new(Progress::default());
    let items = table::open(path, opts.format, &opts.columns, progress.clone())?;
    let mut log = RowLog::new(path, opts.strict);
    let mut rows: Vec<(String, String, f64)> = Vec::new();
    for item in items {
        let (loc, fields) = match item.map_err(corrupt)? {
            Item::Blank => continue,
            Item::Bad(b) => {
                log.rows_read += 1;
                log.skip(b.location, b.reason, b.detail)?;
                continue;
            }
            Item::Row { location, fields } => (location, fields),
        };
        log.rows_read += 1;
        let [s1, s2, score] = <[String; 3]>::try_from(fields).unwrap_or_default();
        if let Some(c) = [&s1, &s2].iter().position(|s| s.trim().is_empty()) {
            let detail = format!("empty {}", opts.columns[c]);
            log.skip(loc, Reason::EmptySentence, detail)?;
            continue;
        }
        let value = match score.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                let detail = format!("{} {score:?} is not a number", opts.columns[2]);
                log.skip(loc, Reason::BadScore, detail)?;
                continue;
            }
        };
        if let Some((lo, hi)) = opts.range
            && !(lo..=hi).contains(&value)
        {
            let detail = format!("{} {value} outside {lo}..{hi}", opts.columns[2]);
            log.skip(loc, Reason::ScoreOutOfRange, detail)?;
            continue;
        }
        rows.push((s1, s2, value));
    }
    if rows.len() < 2 {
        return Err(corrupt(format!(
            "{} usable rows of {} read (skipped: {:?}): an STS set needs at least 2",
            rows.len(),
            log.rows_read,
            prepare::skipped(&log)
        )));
    }
    let (lo, hi) = opts.range.unwrap_or_else(|| {
        rows.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                (lo.min(r.2), hi.max(r.2))
            })
    });
    if hi <= lo {
        return Err(corrupt(format!(
            "the score range {lo}..{hi} is empty: nothing to correlate"
        )));
    }
    let pairs: Vec<StsPair> = rows
        .into_iter()
        .map(|(sentence1, sentence2, s)| StsPair {
            sentence1,
            sentence2,
            score: (5.0 * (s - lo) / (hi - lo)) as f32,
            source: opts.name.clone(),
            klue: None,
        })
        .collect();
    simcse_artifact::write_sts(&opts.out, &pairs)?;
    let manifest = Manifest {
        artifact: simcse_artifact::artifact_name(&opts.out),
        rows: pairs.len(),
        sources: vec![progress.source_file(path)],
        counts: prepare::skipped(&log)
            .into_iter()
            .map(|(r, n)| (format!("skipped_{r}"), n))
            .collect(),
        options: serde_json::json!({
            "name": opts.name,
            "format": opts.format.resolve(path),
            "columns": opts.columns,
            "score_range": [lo, hi],
            "rescaled_to": [0.0, 5.0],
            "strict": opts.strict,
            "bad_row_examples": log.examples.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        tool: prepare::tool(),
    };
    simcse_artifact::write_manifest(&opts.out, &manifest)?;
    Ok(Imported {
        pairs: pairs.len(),
        log,
        range: (lo, hi),
    })
}
