//! `embed`: a file of sentences in, `embeddings.parquet` out, streamed in chunks so that a corpus
//! larger than memory needs only one chunk's worth of it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use burn::tensor::backend::Backend;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use simcse_artifact::{EmbeddingWriter, Manifest, artifact_name, write_manifest};
use simcse_data::rows::RowLog;
use simcse_data::table::{self, Item, TableFormat};
use simcse_data::wiki::source::Progress;
use simcse_data::{Location, Reason};
use simcse_model::Encoder;

use crate::error::{EmbedError, Result};
use crate::normalise;

/// What to embed and where to write it.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedOptions {
    pub input: PathBuf,
    pub format: TableFormat,
    /// The text column (JSONL key, CSV/TSV header, Parquet column); plain text is one a line.
    pub field: String,
    /// A column to take each row's id from; default `<file name>:<line or row>`.
    pub id_field: Option<String>,
    pub out: PathBuf,
    /// Scale every embedding to length 1, so that a dot product is the cosine.
    pub normalize: bool,
    /// Sentences encoded and written at a time.
    pub chunk: usize,
    /// Fail on the first bad row instead of counting and skipping it.
    pub strict: bool,
    /// How the model was named on the command line (for the manifest).
    pub model: String,
}

#[derive(Debug, Clone)]
pub struct EmbedSummary {
    pub rows: usize,
    pub dim: usize,
    pub log: RowLog,
    pub seconds: f64,
}

/// Embeds every row of `opts.input` with `encoder` into `opts.out` (plus its manifest).
pub fn embed_file<B: Backend>(encoder: &Encoder<B>, opts: &EmbedOptions) -> Result<EmbedSummary> {
    let start = Instant::now();
    let progress = Arc::new(Progress::default());
    let mut columns = vec![opts.field.clone()];
    columns.extend(opts.id_field.clone());
    let items = table::open(&opts.input, opts.format, &columns, progress.clone())?;
    let name = artifact_name(&opts.input);
    let dim = encoder.config.hidden_size;
    let mut writer = EmbeddingWriter::create(&opts.out, dim)?;
    let mut log = RowLog::new(&opts.input, opts.strict);
    let total = std::fs::metadata(&opts.input).map_or(0, |m| m.len());
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{bar:30} {binary_bytes}/{binary_total_bytes} {msg} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut chunk = Chunk::default();
    let mut damage = None;
    for item in items {
        let (location, fields) = match item {
            Ok(Item::Row { location, fields }) => (location, fields),
            Ok(Item::Blank) => continue,
            Ok(Item::Bad(bad)) => {
                log.rows_read += 1;
                log.skip(bad.location, bad.reason, bad.detail)?;
                continue;
            }
            Err(message) if opts.strict => return Err(EmbedError::Invalid(message)),
            Err(message) => {
                tracing::warn!("{message}: keeping the rows before it");
                damage = Some(message);
                break;
            }
        };
        log.rows_read += 1;
        let text = fields[0].trim();
        if text.is_empty() {
            log.skip(location, Reason::EmptySentence, "no text")?;
            continue;
        }
        let id = match fields.get(1) {
            Some(id) => id.clone(),
            None => format!("{name}:{}", place(location)),
        };
        chunk.ids.push(id);
        chunk.texts.push(text.to_string());
        if chunk.ids.len() >= opts.chunk.max(1) {
            chunk.write(encoder, &mut writer, opts.normalize)?;
            bar.set_position(progress.bytes.load(Ordering::Relaxed));
            bar.set_message(format!("{} sentences", log.rows_kept()));
        }
    }
    chunk.write(encoder, &mut writer, opts.normalize)?;
    bar.finish_and_clear();
    let rows = writer.finish()?;
    let mut counts: std::collections::BTreeMap<String, usize> = log
        .skipped
        .iter()
        .map(|(r, n)| (format!("skipped_{}", r.as_str()), *n))
        .collect();
    counts.insert("rows_read".into(), log.rows_read);
    let mut options = serde_json::to_value(opts).unwrap_or_default();
    options["pooler"] = encoder.pooler.name().into();
    options["max_len"] = encoder.max_len.into();
    options["dim"] = dim.into();
    options["damage"] = damage.into();
    write_manifest(
        &opts.out,
        &Manifest {
            artifact: artifact_name(&opts.out),
            rows,
            sources: vec![progress.source_file(&opts.input)],
            counts,
            options,
            tool: format!("simcse-embed {}", env!("CARGO_PKG_VERSION")),
        },
    )?;
    Ok(EmbedSummary {
        rows,
        dim,
        log,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `line N` -> `N`, `row N` -> `N`: the id's place part.
fn place(location: Location) -> usize {
    match location {
        Location::Line(n) | Location::JsonIndex(n) | Location::Row(n) => n,
    }
}

#[derive(Default)]
struct Chunk {
    ids: Vec<String>,
    texts: Vec<String>,
}

impl Chunk {
    fn write<B: Backend>(
        &mut self,
        encoder: &Encoder<B>,
        writer: &mut EmbeddingWriter,
        normalize: bool,
    ) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        let mut flat = Vec::with_capacity(texts.len() * encoder.config.hidden_size);
        for mut v in encoder.encode(&texts)? {
            if normalize {
                normalise(&mut v);
            }
            flat.extend(v);
        }
        writer.push(&self.ids, &self.texts, &flat)?;
        self.ids.clear();
        self.texts.clear();
        Ok(())
    }
}
