//! Korean Wikipedia -> `wiki_sentences.parquet`: the unsupervised corpus, built in one streaming pass.
//!
//! A reader thread turns the input (XML dump, plain or bz2; WikiExtractor output; plain text) into
//! documents and sends them in batches through a bounded channel; batches are cleaned and split in
//! parallel on a rayon pool; the main thread filters duplicates and writes row groups as they fill.
//! Memory is bounded by the channel, one batch, the duplicate set (8 bytes a kept sentence plus
//! table overhead, about 16 bytes) and, with `sample`, the sample itself.

pub mod bz2;
pub mod markup;
pub mod source;
pub mod xml;

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::artifact::{self, Manifest, Sentence, SentenceWriter, SourceFile};
use crate::error::{DataError, Result};
use crate::split;
pub use source::Format;
use source::{Body, Doc, Progress, Record};

/// Documents per batch handed from the reader to the workers.
const BATCH: usize = 256;

/// Sentence filters; the defaults keep encyclopaedic Korean prose.
#[derive(Debug, Clone, Serialize)]
pub struct Filters {
    /// Fewer characters than this (spaces included) is a fragment, not a sentence.
    pub min_chars: usize,
    /// More characters than this is usually a list or table flattened into one line.
    pub max_chars: usize,
    /// Minimum share of Hangul among non-space characters.
    pub min_hangul: f32,
    /// Drop exact duplicates (a 64-bit hash per kept sentence).
    pub dedup: bool,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            min_chars: 10,
            max_chars: 500,
            min_hangul: 0.25,
            dedup: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub input: PathBuf,
    pub format: Format,
    /// The artifact to write, normally `<out-dir>/wiki_sentences.parquet`.
    pub out: PathBuf,
    /// Worker threads for cleaning, splitting and parallel bz2 (the reader is one more thread).
    pub threads: usize,
    pub filters: Filters,
    /// Keep a uniform random sample of this many sentences (after all filters), in corpus order.
    pub sample: Option<usize>,
    pub seed: u64,
    /// Fail on damaged input instead of keeping what was read before the damage.
    pub strict: bool,
}

/// What a run read, dropped and wrote; also written to the manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub format: String,
    pub input_bytes: u64,
    pub pages_seen: usize,
    pub pages_kept: usize,
    pub pages_skipped: BTreeMap<&'static str, usize>,
    /// Sentences out of the splitter.
    pub sentences_split: usize,
    /// Sentences dropped per filter, applied in the order markup, length, Hangul, duplicate, sample.
    pub sentences_dropped: BTreeMap<&'static str, usize>,
    pub sentences_written: usize,
    /// The input was damaged here; everything before it was used.
    pub damage: Option<String>,
    pub seconds: f64,
}

impl Summary {
    pub fn table(&self) -> String {
        let mut s = format!(
            "wiki ({}): {} pages seen, {} kept; {} sentences split, {} written in {:.1} s ({:.1} MB/s)\n",
            self.format,
            self.pages_seen,
            self.pages_kept,
            self.sentences_split,
            self.sentences_written,
            self.seconds,
            self.input_bytes as f64 / 1e6 / self.seconds.max(1e-9)
        );
        for (k, v) in &self.pages_skipped {
            s += &format!("  pages skipped, {k}: {v}\n");
        }
        for (k, v) in &self.sentences_dropped {
            s += &format!("  sentences dropped, {k}: {v}\n");
        }
        if let Some(d) = &self.damage {
            s += &format!("  INPUT DAMAGED, stopped there: {d}\n");
        }
        s
    }
}

/// Why a split sentence is not kept.
#[derive(Debug, Clone, Copy)]
enum Drop {
    Markup,
    TooShort,
    TooLong,
    LowHangul,
}

impl Drop {
    const ALL: [Drop; 4] = [Drop::Markup, Drop::TooShort, Drop::TooLong, Drop::LowHangul];

    fn as_str(self) -> &'static str {
        match self {
            Drop::Markup => "markup_remnant",
            Drop::TooShort => "too_short",
            Drop::TooLong => "too_long",
            Drop::LowHangul => "low_hangul",
        }
    }
}

/// A batch after cleaning and splitting: the pages skipped by the page rules, and the rest.
struct Cleaned {
    skipped: Vec<source::Skip>,
    docs: Vec<DocOut>,
}

/// One document's kept sentences and drop counts (indexed like [`Drop::ALL`]).
struct DocOut {
    id: String,
    title: String,
    kept: Vec<String>,
    split: usize,
    dropped: [usize; 4],
}

fn process(doc: &Doc, filters: &Filters) -> DocOut {
    let paragraphs = match &doc.body {
        Body::Wikitext(w) => markup::paragraphs(w),
        Body::Plain(p) => p.lines().map(str::to_string).collect(),
    };
    let mut out = DocOut {
        id: doc.id.clone(),
        title: doc.title.clone(),
        kept: Vec::new(),
        split: 0,
        dropped: [0; 4],
    };
    for para in &paragraphs {
        for s in split::sentences(para) {
            out.split += 1;
            match check(s, filters) {
                Some(d) => out.dropped[d as usize] += 1,
                None => out.kept.push(s.to_string()),
            }
        }
    }
    out
}

fn check(s: &str, f: &Filters) -> Option<Drop> {
    const REMNANTS: [&str; 7] = ["{{", "}}", "[[", "]]", "{|", "|}", "<ref"];
    if REMNANTS.iter().any(|r| s.contains(r)) || s.starts_with(['|', '!']) {
        return Some(Drop::Markup);
    }
    let chars = s.chars().count();
    if chars < f.min_chars {
        return Some(Drop::TooShort);
    }
    if chars > f.max_chars {
        return Some(Drop::TooLong);
    }
    let (mut hangul, mut visible) = (0usize, 0usize);
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        visible += 1;
        hangul += usize::from(split::is_hangul(c));
    }
    if (hangul as f32) < f.min_hangul * visible as f32 {
        return Some(Drop::LowHangul);
    }
    None
}

/// The duplicate set stores xxh3 hashes, so hashing them again is wasted work.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Where kept sentences go: straight to the file, or into a seeded reservoir sample.
enum Sink {
    Write(Box<SentenceWriter>),
    Sample {
        size: usize,
        seed: u64,
        seen: u64,
        kept: Vec<(u64, Sentence)>,
    },
}

impl Sink {
    fn push(&mut self, row: Sentence) -> Result<()> {
        match self {
            Sink::Write(w) => w.push(row),
            Sink::Sample {
                size,
                seed,
                seen,
                kept,
            } => {
                // Reservoir sampling (algorithm R) with a hash of (seed, index) as the random draw.
                if kept.len() < *size {
                    kept.push((*seen, row));
                } else {
                    let j = xxh3_64_with_seed(&seen.to_le_bytes(), *seed) % (*seen + 1);
                    if let Some(slot) = kept.get_mut(j as usize) {
                        *slot = (*seen, row);
                    }
                }
                *seen += 1;
                Ok(())
            }
        }
    }

    fn finish(self, out: &Path) -> Result<(usize, usize)> {
        match self {
            Sink::Write(w) => Ok((w.finish()?, 0)),
            Sink::Sample { seen, mut kept, .. } => {
                kept.sort_unstable_by_key(|(i, _)| *i);
                let mut w = SentenceWriter::create(out)?;
                let n = kept.len();
                for (_, row) in kept {
                    w.push(row)?;
                }
                w.finish()?;
                Ok((n, seen as usize - n))
            }
        }
    }
}

/// Runs the stage: reads `opts.input`, writes `opts.out` and its manifest.
pub fn run(opts: &Options) -> Result<Summary> {
    let start = Instant::now();
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads.max(1))
            .build()
            .map_err(|e| DataError::Corrupt {
                path: opts.input.clone(),
                message: format!("cannot start worker threads: {e}"),
            })?,
    );
    let progress = Arc::new(Progress::default());
    let total = std::fs::metadata(&opts.input)
        .map_err(DataError::io(&opts.input))?
        .len();
    let (format, records) = source::open(&opts.input, opts.format, progress.clone(), pool.clone())
        .map_err(DataError::io(&opts.input))?;
    tracing::info!(
        "reading {} as {format:?} with {} worker threads",
        opts.input.display(),
        pool.current_num_threads()
    );

    let (tx, rx) =
        sync_channel::<std::result::Result<Vec<Record>, String>>(2 * opts.threads.max(1));
    let reader = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        for r in records {
            match r {
                Ok(rec) => {
                    batch.push(rec);
                    if batch.len() == BATCH && tx.send(Ok(std::mem::take(&mut batch))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Ok(batch));
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        let _ = tx.send(Ok(batch));
    });

    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = Summary {
        format: format!("{format:?}").to_lowercase(),
        ..Summary::default()
    };
    let mut sink = match opts.sample {
        Some(size) => Sink::Sample {
            size,
            seed: opts.seed,
            seen: 0,
            kept: Vec::with_capacity(size.min(1 << 20)),
        },
        None => Sink::Write(Box::new(SentenceWriter::create(&opts.out)?)),
    };
    let mut seen: HashSet<u64, BuildHasherDefault<Identity>> = HashSet::default();
    let mut dropped = [0usize; 4];
    let mut duplicates = 0usize;
    // Cleaning and splitting of batch k on the pool overlaps with dedup and writing of batch k-1.
    let (ctx, crx) = sync_channel::<std::result::Result<Cleaned, String>>(2);
    let filters = opts.filters.clone();
    let workers = pool.clone();
    let cleaner = std::thread::spawn(move || {
        for msg in rx {
            let cleaned = msg.map(|batch| {
                let mut skipped = Vec::new();
                let mut docs = Vec::with_capacity(batch.len());
                for rec in batch {
                    match rec {
                        Record::Doc(d) => docs.push(d),
                        Record::Skipped(s) => skipped.push(s),
                    }
                }
                let docs =
                    workers.install(|| docs.par_iter().map(|d| process(d, &filters)).collect());
                Cleaned { skipped, docs }
            });
            let stop = cleaned.is_err();
            if ctx.send(cleaned).is_err() || stop {
                return;
            }
        }
    });
    for msg in crx {
        let Cleaned {
            skipped,
            docs: outs,
        } = match msg {
            Ok(c) => c,
            Err(e) => {
                summary.damage = Some(e);
                break;
            }
        };
        summary.pages_seen += skipped.len() + outs.len();
        for s in skipped {
            *summary.pages_skipped.entry(s.as_str()).or_default() += 1;
        }
        for out in outs {
            summary.sentences_split += out.split;
            for (d, n) in dropped.iter_mut().zip(out.dropped) {
                *d += n;
            }
            if out.kept.is_empty() {
                *summary.pages_skipped.entry("no_sentence_kept").or_default() += 1;
                continue;
            }
            summary.pages_kept += 1;
            for text in out.kept {
                if opts.filters.dedup && !seen.insert(xxh3_64(text.as_bytes())) {
                    duplicates += 1;
                    continue;
                }
                sink.push(Sentence {
                    text,
                    doc_id: out.id.clone(),
                    title: out.title.clone(),
                })?;
            }
        }
        bar.set_position(progress.bytes.load(Ordering::Relaxed));
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{} pages ({:.0}/s)",
            summary.pages_seen,
            summary.pages_seen as f64 / secs
        ));
    }
    let _ = reader.join();
    let _ = cleaner.join();
    bar.finish_and_clear();

    if let Some(d) = &summary.damage {
        if opts.strict {
            return Err(DataError::Corrupt {
                path: opts.input.clone(),
                message: format!("{d} (strict mode: nothing written)"),
            });
        }
        tracing::error!(
            "{}: {d}; keeping the {} pages read before it",
            opts.input.display(),
            summary.pages_seen
        );
    }
    for (d, n) in Drop::ALL.iter().zip(dropped) {
        summary.sentences_dropped.insert(d.as_str(), n);
    }
    summary.sentences_dropped.insert("duplicate", duplicates);
    let (written, not_sampled) = sink.finish(&opts.out)?;
    if opts.sample.is_some() {
        summary.sentences_dropped.insert("not_sampled", not_sampled);
    }
    summary.sentences_written = written;
    summary.input_bytes = progress.bytes.load(Ordering::Relaxed);
    summary.seconds = start.elapsed().as_secs_f64();
    write_manifest(opts, &summary, &progress)?;
    Ok(summary)
}

fn write_manifest(opts: &Options, summary: &Summary, progress: &Progress) -> Result<()> {
    let sha256 = progress
        .sha256
        .lock()
        .ok()
        .and_then(|s| s.clone())
        .unwrap_or_else(|| "not computed: the input was not read to its end".into());
    let mut counts = BTreeMap::new();
    counts.insert("pages_seen".to_string(), summary.pages_seen);
    counts.insert("pages_kept".to_string(), summary.pages_kept);
    for (k, v) in &summary.pages_skipped {
        counts.insert(format!("pages_skipped_{k}"), *v);
    }
    counts.insert("sentences_split".to_string(), summary.sentences_split);
    for (k, v) in &summary.sentences_dropped {
        counts.insert(format!("sentences_dropped_{k}"), *v);
    }
    let mut options = serde_json::to_value(opts).unwrap_or_default();
    options["damage"] = serde_json::to_value(&summary.damage).unwrap_or_default();
    options["detected_format"] = summary.format.clone().into();
    let manifest = Manifest {
        artifact: opts
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rows: summary.sentences_written,
        sources: vec![SourceFile {
            path: opts.input.clone(),
            bytes: std::fs::metadata(&opts.input).map_or(0, |m| m.len()),
            sha256,
        }],
        counts,
        options,
        tool: format!("simcse-data {}", env!("CARGO_PKG_VERSION")),
    };
    artifact::write_manifest(&opts.out, &manifest)
}
