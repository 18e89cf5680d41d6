//! The artifact contract: the Parquet schemas the stages exchange, their row types, readers and
//! writers, manifests and atomic writes (`data/README.md` documents each schema).
//!
//! Every stage reads and writes artifacts only through this crate, so a schema lives in one place,
//! and a stage that only reads (train, eval) does not link the prepare stage's parsers and clients.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use sha2::{Digest, Sha256};

mod embeddings;
pub use embeddings::{
    EmbeddingReader, EmbeddingWriter, Embeddings, embeddings_schema, read_embedding_texts,
    read_embeddings,
};

pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;

/// What reading or writing an artifact can fail on; each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("missing input: expected {what} at {}", path.display())]
    Missing { what: String, path: PathBuf },
    #[error("{}: parquet: {message}", path.display())]
    Parquet { path: PathBuf, message: String },
    #[error("{}: artifact does not follow its schema: {message}", path.display())]
    Schema { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl ArtifactError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ArtifactError::Io { path, source }
    }
}

/// An (anchor, entailment, contradiction) triple of `kornli_triples.parquet`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Triple {
    pub anchor: String,
    pub positive: String,
    pub negative: String,
}

/// KLUE's two extra labels; KorSTS has only the score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlueLabels {
    pub real_label: f32,
    pub binary_label: bool,
}

/// One scored pair of an STS artifact. `source` is where the pair came from inside its set: the
/// KorSTS genre (`main-captions`, `main-news`, `main-forum`) or the KLUE source (`airbnb-rtt`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct StsPair {
    pub sentence1: String,
    pub sentence2: String,
    pub score: f32,
    pub source: String,
    pub klue: Option<KlueLabels>,
}

/// Rows per Parquet row group (and per record batch while writing).
const ROW_GROUP: usize = 65_536;

pub fn triples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("anchor", DataType::Utf8, false),
        Field::new("positive", DataType::Utf8, false),
        Field::new("negative", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
    ]))
}

/// `wiki_sentences.parquet`: one sentence per row with the document it came from.
pub fn sentences_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("doc_id", DataType::Utf8, false),
        Field::new("title", DataType::Utf8, false),
    ]))
}

/// One row of the unsupervised corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    pub doc_id: String,
    pub title: String,
}

/// Writes sentences (`wiki_sentences.parquet` schema) to `path`.
pub fn write_sentences(path: &Path, rows: &[Sentence]) -> Result<()> {
    write_parquet(
        path,
        sentences_schema(),
        rows.chunks(ROW_GROUP).map(sentence_columns),
    )
}

fn sentence_columns(rows: &[Sentence]) -> Vec<ArrayRef> {
    vec![
        strings(rows.iter().map(|r| r.text.as_str())),
        strings(rows.iter().map(|r| r.doc_id.as_str())),
        strings(rows.iter().map(|r| r.title.as_str())),
    ]
}

/// Reads a whole `wiki_sentences.parquet`, checking its schema.
pub fn read_sentences(path: &Path) -> Result<Vec<Sentence>> {
    let mut out = Vec::new();
    let cols = [
        ("text", DataType::Utf8),
        ("doc_id", DataType::Utf8),
        ("title", DataType::Utf8),
    ];
    for b in read_parquet(path, &cols)? {
        let text = string_column(path, &b, "text")?;
        let doc_id = string_column(path, &b, "doc_id")?;
        let title = string_column(path, &b, "title")?;
        out.extend(
            text.into_iter()
                .zip(doc_id)
                .zip(title)
                .map(|((text, doc_id), title)| Sentence {
                    text,
                    doc_id,
                    title,
                }),
        );
    }
    Ok(out)
}

/// Reads the `text` column of a sentence corpus (`wiki_sentences.parquet` or any file with that column).
pub fn read_sentence_texts(path: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for b in read_parquet(path, &[("text", DataType::Utf8)])? {
        out.extend(string_column(path, &b, "text")?);
    }
    Ok(out)
}

/// STS schema; KLUE sets add `real_label` and `binary_label`.
pub fn sts_schema(klue: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("sentence1", DataType::Utf8, false),
        Field::new("sentence2", DataType::Utf8, false),
        Field::new("score", DataType::Float32, false),
        Field::new("source", DataType::Utf8, false),
    ];
    if klue {
        fields.push(Field::new("real_label", DataType::Float32, false));
        fields.push(Field::new("binary_label", DataType::Boolean, false));
    }
    Arc::new(Schema::new(fields))
}

fn strings<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

/// Writes triples (with the `source` of each) to `path`.
pub fn write_triples(path: &Path, triples: &[(Triple, &str)]) -> Result<()> {
    let schema = triples_schema();
    let batches = triples.chunks(ROW_GROUP).map(|c| {
        vec![
            strings(c.iter().map(|(t, _)| t.anchor.as_str())),
            strings(c.iter().map(|(t, _)| t.positive.as_str())),
            strings(c.iter().map(|(t, _)| t.negative.as_str())),
            strings(c.iter().map(|(_, s)| *s)),
        ]
    });
    write_parquet(path, schema, batches)
}

/// Writes STS pairs to `path`; the KLUE columns are written when the pairs carry KLUE labels.
pub fn write_sts(path: &Path, pairs: &[StsPair]) -> Result<()> {
    let klue = !pairs.is_empty() && pairs.iter().all(|p| p.klue.is_some());
    let batches = pairs.chunks(ROW_GROUP).map(|c| {
        let mut cols = vec![
            strings(c.iter().map(|p| p.sentence1.as_str())),
            strings(c.iter().map(|p| p.sentence2.as_str())),
            Arc::new(Float32Array::from_iter_values(c.iter().map(|p| p.score))) as ArrayRef,
            strings(c.iter().map(|p| p.source.as_str())),
        ];
        if klue {
            let labels: Vec<KlueLabels> = c.iter().filter_map(|p| p.klue).collect();
            cols.push(Arc::new(Float32Array::from_iter_values(
                labels.iter().map(|l| l.real_label),
            )));
            cols.push(Arc::new(BooleanArray::from_iter(
                labels.iter().map(|l| Some(l.binary_label)),
            )));
        }
        cols
    });
    write_parquet(path, sts_schema(klue), batches)
}

fn pq_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> ArtifactError + '_ {
    move |e| ArtifactError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn writer_props(path: &Path, row_group: usize) -> Result<WriterProperties> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(pq_error(path))?,
        ))
        .set_max_row_group_row_count(Some(row_group))
        .build())
}

/// Writes record batches as zstd Parquet, atomically: a temp file in the same folder, then a rename.
fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Vec<ArrayRef>>,
) -> Result<()> {
    let props = writer_props(path, ROW_GROUP)?;
    write_atomic(path, |file| {
        let mut writer =
            ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(pq_error(path))?;
        for cols in batches {
            let batch =
                RecordBatch::try_new(schema.clone(), cols).map_err(|e| ArtifactError::Parquet {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
            writer.write(&batch).map_err(pq_error(path))?;
        }
        writer.close().map_err(pq_error(path))?;
        Ok(())
    })
}

/// Runs `write` on a temp file beside `path` and renames it into place only when `write` succeeds,
/// so a reader never sees a half-written artifact.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    write(file.file_mut())?;
    file.commit()
}

/// A temp file beside its destination, renamed into place by [`AtomicFile::commit`]; dropped
/// without a commit, it is removed.
pub struct AtomicFile {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(ArtifactError::io(dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(ArtifactError::io(dir))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// A second handle on the temp file, for a writer that owns its file (an `ArrowWriter`).
    fn handle(&self) -> Result<File> {
        self.tmp
            .as_file()
            .try_clone()
            .map_err(ArtifactError::io(&self.path))
    }

    pub fn file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    pub fn commit(mut self) -> Result<()> {
        let path = self.path;
        self.tmp
            .as_file_mut()
            .flush()
            .map_err(ArtifactError::io(&path))?;
        // Temp files are created private (0600); an artifact is an ordinary readable file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            self.tmp
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(ArtifactError::io(&path))?;
        }
        self.tmp.persist(&path).map_err(|e| ArtifactError::Io {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// Writes `wiki_sentences.parquet` as the sentences arrive, one row group at a time, atomically.
pub struct SentenceWriter {
    path: PathBuf,
    file: AtomicFile,
    writer: ArrowWriter<File>,
    rows: Vec<Sentence>,
    written: usize,
}

impl SentenceWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let file = AtomicFile::create(path)?;
        let writer = ArrowWriter::try_new(
            file.handle()?,
            sentences_schema(),
            Some(writer_props(path, ROW_GROUP)?),
        )
        .map_err(pq_error(path))?;
        Ok(SentenceWriter {
            path: path.to_path_buf(),
            file,
            writer,
            rows: Vec::new(),
            written: 0,
        })
    }

    pub fn push(&mut self, row: Sentence) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() == ROW_GROUP {
            self.flush_rows()?;
        }
        Ok(())
    }

    fn flush_rows(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = RecordBatch::try_new(sentences_schema(), sentence_columns(&self.rows))
            .map_err(|e| ArtifactError::Parquet {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        self.writer.write(&batch).map_err(pq_error(&self.path))?;
        self.written += self.rows.len();
        self.rows.clear();
        Ok(())
    }

    /// Writes what is left, closes the Parquet file and renames it into place; returns the row count.
    pub fn finish(mut self) -> Result<usize> {
        self.flush_rows()?;
        self.writer.close().map_err(pq_error(&self.path))?;
        self.file.commit()?;
        Ok(self.written)
    }
}

/// A source file an artifact was made from.
#[derive(Debug, Clone, Serialize)]
pub struct SourceFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

impl SourceFile {
    pub fn new(path: &Path, contents: &[u8]) -> Self {
        SourceFile {
            path: path.to_path_buf(),
            bytes: contents.len() as u64,
            sha256: sha256_hex(contents),
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `<artifact stem>.manifest.json` beside each artifact: what it holds and how it was made.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub artifact: String,
    pub rows: usize,
    pub sources: Vec<SourceFile>,
    /// Rows skipped per reason, and other per-artifact counts (e.g. duplicate triples dropped).
    pub counts: BTreeMap<String, usize>,
    pub options: serde_json::Value,
    pub tool: String,
}

/// An artifact's file name, as its manifest names it.
pub fn artifact_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The manifest path of an artifact: `x/kornli_triples.parquet` -> `x/kornli_triples.manifest.json`.
pub fn manifest_path(artifact: &Path) -> PathBuf {
    artifact.with_extension("manifest.json")
}

pub fn write_manifest(artifact: &Path, manifest: &Manifest) -> Result<()> {
    let path = manifest_path(artifact);
    let mut json = serde_json::to_vec_pretty(manifest).map_err(|source| ArtifactError::Json {
        path: path.clone(),
        source,
    })?;
    json.push(b'\n');
    write_atomic(&path, |f| {
        f.write_all(&json).map_err(ArtifactError::io(&path))
    })
}

/// Reads every record batch of a Parquet file, checking that the named columns have the named types.
fn read_parquet(path: &Path, required: &[(&str, DataType)]) -> Result<Vec<RecordBatch>> {
    Batches::open(path, required, None)?.collect()
}

/// The record batches of a Parquet file, one row group's worth at a time (bounded memory).
pub(crate) struct Batches {
    path: PathBuf,
    reader: Option<ParquetRecordBatchReader>,
    schema: SchemaRef,
    rows: usize,
}

impl Batches {
    /// Opens `path`, checking that the `required` columns have their types; with `only`, decodes
    /// just the top-level columns of those names.
    pub(crate) fn open(
        path: &Path,
        required: &[(&str, DataType)],
        only: Option<&[&str]>,
    ) -> Result<Batches> {
        let file = File::open(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ArtifactError::Missing {
                what: "a Parquet artifact (run the prepare stage)".into(),
                path: path.to_path_buf(),
            },
            _ => ArtifactError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq_error(path))?;
        let schema = builder.schema().clone();
        for (name, ty) in required {
            match schema.field_with_name(name) {
                Ok(f) if f.data_type() == ty => {}
                Ok(f) => {
                    return Err(ArtifactError::Schema {
                        path: path.to_path_buf(),
                        message: format!("column {name} is {}, expected {ty}", f.data_type()),
                    });
                }
                Err(_) => {
                    return Err(ArtifactError::Schema {
                        path: path.to_path_buf(),
                        message: format!("missing column {name} ({ty})"),
                    });
                }
            }
        }
        let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let builder = match only {
            Some(names) => {
                let roots = schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| names.contains(&f.name().as_str()))
                    .map(|(i, _)| i);
                let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
                builder.with_projection(mask)
            }
            None => builder,
        };
        // parquet 60 panics on some corrupt column-chunk metadata (negative offsets) instead of
        // returning its error; a damaged file must be an error (found by fuzzing).
        let reader = catch_unwind(AssertUnwindSafe(|| builder.build()))
            .map_err(|_| malformed(path))?
            .map_err(pq_error(path))?;
        Ok(Batches {
            path: path.to_path_buf(),
            reader: Some(reader),
            schema,
            rows,
        })
    }

    /// The file's schema (every column, decoded or not).
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The row count in the file's footer.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Result<RecordBatch>> {
        let reader = self.reader.as_mut()?;
        match catch_unwind(AssertUnwindSafe(|| reader.next())) {
            Ok(batch) => batch.map(|b| {
                b.map_err(|e| ArtifactError::Parquet {
                    path: self.path.clone(),
                    message: e.to_string(),
                })
            }),
            Err(_) => {
                // A reader that panicked is in no state to go on.
                self.reader = None;
                Some(Err(malformed(&self.path)))
            }
        }
    }
}

fn malformed(path: &Path) -> ArtifactError {
    ArtifactError::Parquet {
        path: path.to_path_buf(),
        message: "malformed Parquet file (the parquet reader panicked)".into(),
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    // read_parquet checked presence and type of every column read here.
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .expect("column checked by read_parquet")
}

fn null_error(path: &Path, name: &str) -> ArtifactError {
    ArtifactError::Schema {
        path: path.to_path_buf(),
        message: format!("column {name} has nulls"),
    }
}

fn string_column(path: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let a = column::<StringArray>(batch, name);
    if a.null_count() > 0 {
        return Err(null_error(path, name));
    }
    Ok(a.iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

/// Reads `kornli_triples.parquet` (or any file with its schema) as (triple, source) rows.
pub fn read_triples(path: &Path) -> Result<Vec<(Triple, String)>> {
    let cols = ["anchor", "positive", "negative", "source"];
    let required: Vec<_> = cols.iter().map(|c| (*c, DataType::Utf8)).collect();
    let mut out = Vec::new();
    for b in read_parquet(path, &required)? {
        let [a, p, n, s] = cols.map(|c| string_column(path, &b, c));
        for (((anchor, positive), negative), source) in a?.into_iter().zip(p?).zip(n?).zip(s?) {
            out.push((
                Triple {
                    anchor,
                    positive,
                    negative,
                },
                source,
            ));
        }
    }
    Ok(out)
}

/// Reads an STS artifact (`sts/<name>.parquet`); the KLUE columns are read when present.
pub fn read_sts(path: &Path) -> Result<Vec<StsPair>> {
    let required = [
        ("sentence1", DataType::Utf8),
        ("sentence2", DataType::Utf8),
        ("score", DataType::Float32),
        ("source", DataType::Utf8),
    ];
    let mut out = Vec::new();
    for b in read_parquet(path, &required)? {
        let s1 = string_column(path, &b, "sentence1")?;
        let s2 = string_column(path, &b, "sentence2")?;
        let src = string_column(path, &b, "source")?;
        let score = column::<Float32Array>(&b, "score");
        if score.null_count() > 0 {
            return Err(null_error(path, "score"));
        }
        let real = b
            .column_by_name("real_label")
            .and_then(|c| c.as_any().downcast_ref::<Float32Array>());
        let binary = b
            .column_by_name("binary_label")
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>());
        for (i, ((sentence1, sentence2), source)) in s1.into_iter().zip(s2).zip(src).enumerate() {
            let klue = match (real, binary) {
                (Some(r), Some(bl)) => Some(KlueLabels {
                    real_label: r.value(i),
                    binary_label: bl.value(i),
                }),
                _ => None,
            };
            out.push(StsPair {
                sentence1,
                sentence2,
                score: score.value(i),
                source,
                klue,
            });
        }
    }
    Ok(out)
}
