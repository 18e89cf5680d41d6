//! Korean Wikipedia, or a user's own text -> a sentence artifact (`wiki_sentences.parquet`,
//! `sentences.parquet`): the unsupervised corpus, built in one streaming pass.
//!
//! A reader thread turns the input (XML dump, plain or bz2; WikiExtractor output; plain text; or a
//! user's text, JSONL, CSV, TSV or Parquet files, see [`crate::table`]) into documents and sends
//! them in batches through a bounded channel; batches are cleaned and split in parallel on a rayon
//! pool; the main thread filters duplicates and writes row groups as they fill.
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
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::error::{DataError, Result};
use crate::rows::{BadRow, Location};
use crate::split::{self, Splitter};
use crate::table::{self, TableFormat};
use simcse_artifact::{self as artifact, Manifest, Sentence, SentenceWriter};
pub use source::Format;
use source::{Body, Doc, Progress, Record};

/// Documents per batch handed from the reader to the workers.
const BATCH: usize = 256;

/// Bad rows of each reason logged and kept (with their places) in the summary and manifest.
const BAD_ROW_EXAMPLES: usize = 5;

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
    /// Drop sentences with wiki markup left in them (`{{`, `[[`, `<ref`, table rows).
    pub markup: bool,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            min_chars: 10,
            max_chars: 500,
            min_hangul: 0.25,
            dedup: true,
            markup: true,
        }
    }
}

/// What the stage reads.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Input {
    /// A Wikipedia dump, WikiExtractor output or plain text.
    Wiki { path: PathBuf, format: Format },
    /// A user's own files; each row's `field` (each line, for plain text) is one document.
    Corpus {
        paths: Vec<PathBuf>,
        format: TableFormat,
        field: String,
    },
}

impl Input {
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Input::Wiki { path, .. } => vec![path],
            Input::Corpus { paths, .. } => paths.iter().map(PathBuf::as_path).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub input: Input,
    /// The artifact to write: `<out-dir>/wiki_sentences.parquet` or `<out-dir>/sentences.parquet`.
    pub out: PathBuf,
    /// Worker threads for cleaning, splitting and parallel bz2 (the reader is one more thread).
    pub threads: usize,
    pub filters: Filters,
    pub splitter: Splitter,
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
    /// Input lines or rows that are not records (invalid UTF-8, binary, bad JSON, ...), by reason.
    pub bad_rows: BTreeMap<&'static str, usize>,
    /// The first few bad rows of each reason, as `file: line N: problem (reason)`.
    pub bad_row_examples: BTreeMap<&'static str, Vec<String>>,
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
            "corpus ({}): {} documents seen, {} kept; {} sentences split, {} written in {:.1} s ({:.1} MB/s)\n",
            self.format,
            self.pages_seen,
            self.pages_kept,
            self.sentences_split,
            self.sentences_written,
            self.seconds,
            self.input_bytes as f64 / 1e6 / self.seconds.max(1e-9)
        );
        for (k, v) in &self.pages_skipped {
            s += &format!("  documents skipped, {k}: {v}\n");
        }
        for (k, v) in &self.bad_rows {
            let first = self.bad_row_examples.get(k).and_then(|e| e.first());
            s += &format!(
                "  bad rows, {k}: {v} (first: {})\n",
                first.map_or("", |f| f)
            );
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
enum DropReason {
    Markup,
    TooShort,
    TooLong,
    LowHangul,
}

impl DropReason {
    const ALL: [DropReason; 4] = [
        DropReason::Markup,
        DropReason::TooShort,
        DropReason::TooLong,
        DropReason::LowHangul,
    ];

    fn as_str(self) -> &'static str {
        match self {
            DropReason::Markup => "markup_remnant",
            DropReason::TooShort => "too_short",
            DropReason::TooLong => "too_long",
            DropReason::LowHangul => "low_hangul",
        }
    }
}

/// A batch after cleaning and splitting: the pages skipped by the page rules, and the rest.
struct Cleaned {
    skipped: Vec<source::Skip>,
    bad: Vec<BadRow>,
    docs: Vec<DocOut>,
}

/// One document's kept sentences and drop counts (indexed like [`DropReason::ALL`]).
struct DocOut {
    id: String,
    title: String,
    kept: Vec<String>,
    split: usize,
    dropped: [usize; 4],
}

fn process(doc: &Doc, filters: &Filters, splitter: Splitter) -> DocOut {
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
        for s in split::sentences_with(para, splitter) {
            out.split += 1;
            match check(s, filters) {
                Some(d) => out.dropped[d as usize] += 1,
                None => out.kept.push(s.to_string()),
            }
        }
    }
    out
}

fn check(s: &str, f: &Filters) -> Option<DropReason> {
    const REMNANTS: [&str; 7] = ["{{", "}}", "[[", "]]", "{|", "|}", "<ref"];
    if f.markup && (REMNANTS.iter().any(|r| s.contains(r)) || s.starts_with(['|', '!'])) {
        return Some(DropReason::Markup);
    }
    let chars = s.chars().count();
    if chars < f.min_chars {
        return Some(DropReason::TooShort);
    }
    if chars > f.max_chars {
        return Some(DropReason::TooLong);
    }
    let (mut hangul, mut visible) = (0usize, 0usize);
    for c in s.chars().filter(|c| !c.is_whitespace()) {
        visible += 1;
        hangul += usize::from(split::is_hangul(c));
    }
    if (hangul as f32) < f.min_hangul * visible as f32 {
        return Some(DropReason::LowHangul);
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
            Sink::Write(w) => Ok(w.push(row)?),
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
    let threads = opts.threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| DataError::Threads {
            threads,
            message: e.to_string(),
        })?;
    let pool = Arc::new(pool);
    let progress = Arc::new(Progress::default());
    let mut total = 0;
    for path in opts.input.paths() {
        total += std::fs::metadata(path).map_err(DataError::io(path))?.len();
    }
    let (format, records) = open_input(&opts.input, progress.clone(), pool.clone())?;
    tracing::info!("reading {format} with {threads} worker threads");
    let (batches, reader) = spawn_reader(records, 2 * threads);
    let (cleaned, cleaner) = spawn_cleaner(batches, opts.filters.clone(), opts.splitter, pool);
    let mut summary = Summary {
        format,
        ..Summary::default()
    };
    let mut collector = Collector::new(opts)?;
    let bar = bytes_bar(total);
    for batch in cleaned {
        match batch {
            Ok(batch) => collector.add(batch, opts.strict, &mut summary)?,
            Err(e) => {
                summary.damage = Some(e);
                break;
            }
        }
        bar.set_position(progress.bytes.load(Ordering::Relaxed));
        let rate = summary.pages_seen as f64 / start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{} pages ({rate:.0}/s)", summary.pages_seen));
    }
    // The threads end once their channels close; a panic in one is a bug: it goes on here.
    for handle in [reader, cleaner] {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
    bar.finish_and_clear();
    if let Some(d) = &summary.damage {
        if opts.strict {
            return Err(DataError::Corrupt {
                path: opts.input.paths()[0].to_path_buf(),
                message: format!("{d} (strict mode: nothing written)"),
            });
        }
        tracing::error!(
            "{d}; keeping the {} documents read before it",
            summary.pages_seen
        );
    }
    collector.finish(opts, &mut summary)?;
    summary.input_bytes = progress.bytes.load(Ordering::Relaxed);
    summary.seconds = start.elapsed().as_secs_f64();
    write_manifest(opts, &summary, &progress)?;
    Ok(summary)
}

/// The records of the input and a name for its format.
fn open_input(
    input: &Input,
    progress: Arc<Progress>,
    pool: Arc<rayon::ThreadPool>,
) -> Result<(String, source::Records)> {
    match input {
        Input::Wiki { path, format } => {
            let (format, records) =
                source::open(path, *format, progress, pool).map_err(DataError::io(path))?;
            Ok((format!("{format:?}").to_lowercase(), records))
        }
        Input::Corpus {
            paths,
            format,
            field,
        } => {
            // Every file is opened (and its columns checked) before anything is read.
            let columns = [field.clone()];
            let mut files = Vec::new();
            for path in paths {
                let items = table::open(path, *format, &columns, progress.clone())?;
                files.push((path.clone(), items));
            }
            let formats: Vec<String> = paths
                .iter()
                .map(|p| format!("{:?}", format.resolve(p)).to_lowercase())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let name = formats.join(", ");
            let records = files.into_iter().flat_map(|(path, items)| {
                let file = path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                items.map(move |item| item.map(|item| corpus_record(&file, item)))
            });
            Ok((name, Box::new(records)))
        }
    }
}

/// A row of a user's file as a document with id `<file name>:<line or row>`.
fn corpus_record(file: &str, item: table::Item) -> Record {
    match item {
        table::Item::Row {
            location,
            mut fields,
        } => {
            let at = match location {
                Location::Line(n) | Location::JsonIndex(n) | Location::Row(n) => n,
            };
            Record::Doc(Doc {
                id: format!("{file}:{at}"),
                title: String::new(),
                body: Body::Plain(fields.swap_remove(0)),
            })
        }
        table::Item::Blank => Record::Skipped(source::Skip::Empty),
        table::Item::Bad(b) => Record::Bad(b),
    }
}

type Batch = std::result::Result<Vec<Record>, String>;

/// The reader thread: records in batches of [`BATCH`]; a read error ends the stream after the
/// records before it.
fn spawn_reader(records: source::Records, capacity: usize) -> (Receiver<Batch>, JoinHandle<()>) {
    let (tx, rx) = sync_channel::<Batch>(capacity);
    let handle = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        for r in records {
            match r {
                Ok(rec) => {
                    batch.push(rec);
                    if batch.len() == BATCH && tx.send(Ok(std::mem::take(&mut batch))).is_err() {
                        return; // the consumer stopped
                    }
                }
                Err(e) => {
                    if tx.send(Ok(batch)).is_ok() {
                        let _ = tx.send(Err(e)); // a stopped consumer needs no error
                    }
                    return;
                }
            }
        }
        let _ = tx.send(Ok(batch)); // a stopped consumer needs no last batch
    });
    (rx, handle)
}

/// The cleaning thread: cleans and splits batch k on the pool while the caller dedups and writes
/// batch k-1.
fn spawn_cleaner(
    batches: Receiver<Batch>,
    filters: Filters,
    splitter: Splitter,
    pool: Arc<rayon::ThreadPool>,
) -> (
    Receiver<std::result::Result<Cleaned, String>>,
    JoinHandle<()>,
) {
    let (tx, rx) = sync_channel(2);
    let handle = std::thread::spawn(move || {
        for msg in batches {
            let cleaned = msg.map(|batch| {
                let (mut docs, mut skipped, mut bad) =
                    (Vec::with_capacity(batch.len()), Vec::new(), Vec::new());
                for rec in batch {
                    match rec {
                        Record::Doc(d) => docs.push(d),
                        Record::Skipped(s) => skipped.push(s),
                        Record::Bad(b) => bad.push(b),
                    }
                }
                let docs = pool.install(|| {
                    docs.par_iter()
                        .map(|d| process(d, &filters, splitter))
                        .collect()
                });
                Cleaned { skipped, bad, docs }
            });
            let stop = cleaned.is_err();
            if tx.send(cleaned).is_err() || stop {
                return;
            }
        }
    });
    (rx, handle)
}

fn bytes_bar(total: u64) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

/// The main thread's part: page counts, the duplicate filter and the sink.
struct Collector {
    sink: Sink,
    dedup: bool,
    seen: HashSet<u64, BuildHasherDefault<Identity>>,
    dropped: [usize; 4],
    duplicates: usize,
}

impl Collector {
    fn new(opts: &Options) -> Result<Self> {
        let sink = match opts.sample {
            Some(size) => Sink::Sample {
                size,
                seed: opts.seed,
                seen: 0,
                kept: Vec::with_capacity(size.min(1 << 20)),
            },
            None => Sink::Write(Box::new(SentenceWriter::create(&opts.out)?)),
        };
        Ok(Collector {
            sink,
            dedup: opts.filters.dedup,
            seen: HashSet::default(),
            dropped: [0; 4],
            duplicates: 0,
        })
    }

    fn add(&mut self, batch: Cleaned, strict: bool, summary: &mut Summary) -> Result<()> {
        for bad in batch.bad {
            if strict {
                return Err(DataError::BadRow(bad));
            }
            let reason = bad.reason.as_str();
            let n = summary.bad_rows.entry(reason).or_default();
            *n += 1;
            if *n <= BAD_ROW_EXAMPLES {
                tracing::warn!("skipped {bad}");
                let examples = summary.bad_row_examples.entry(reason).or_default();
                examples.push(bad.to_string());
            }
        }
        summary.pages_seen += batch.skipped.len() + batch.docs.len();
        for s in batch.skipped {
            *summary.pages_skipped.entry(s.as_str()).or_default() += 1;
        }
        for doc in batch.docs {
            summary.sentences_split += doc.split;
            for (d, n) in self.dropped.iter_mut().zip(doc.dropped) {
                *d += n;
            }
            if doc.kept.is_empty() {
                *summary.pages_skipped.entry("no_sentence_kept").or_default() += 1;
                continue;
            }
            summary.pages_kept += 1;
            for text in doc.kept {
                if self.dedup && !self.seen.insert(xxh3_64(text.as_bytes())) {
                    self.duplicates += 1;
                    continue;
                }
                self.sink.push(Sentence {
                    text,
                    doc_id: doc.id.clone(),
                    title: doc.title.clone(),
                })?;
            }
        }
        Ok(())
    }

    /// Writes what the sink holds and the drop counts into `summary`.
    fn finish(self, opts: &Options, summary: &mut Summary) -> Result<()> {
        for (d, n) in DropReason::ALL.iter().zip(self.dropped) {
            summary.sentences_dropped.insert(d.as_str(), n);
        }
        summary
            .sentences_dropped
            .insert("duplicate", self.duplicates);
        let (written, not_sampled) = self.sink.finish(&opts.out)?;
        if opts.sample.is_some() {
            summary.sentences_dropped.insert("not_sampled", not_sampled);
        }
        summary.sentences_written = written;
        Ok(())
    }
}

fn write_manifest(opts: &Options, summary: &Summary, progress: &Progress) -> Result<()> {
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
    for (k, v) in &summary.bad_rows {
        counts.insert(format!("bad_rows_{k}"), *v);
    }
    let mut options =
        serde_json::to_value(opts).map_err(|source| artifact::ArtifactError::Json {
            path: artifact::manifest_path(&opts.out),
            source,
        })?;
    options["damage"] = summary.damage.clone().into();
    options["detected_format"] = summary.format.clone().into();
    options["bad_row_examples"] = serde_json::json!(summary.bad_row_examples);
    let manifest = Manifest {
        artifact: simcse_artifact::artifact_name(&opts.out),
        rows: summary.sentences_written,
        sources: opts
            .input
            .paths()
            .into_iter()
            .map(|path| progress.source_file(path))
            .collect(),
        counts,
        options,
        tool: format!("simcse-data {}", env!("CARGO_PKG_VERSION")),
    };
    Ok(artifact::write_manifest(&opts.out, &manifest)?)
}
