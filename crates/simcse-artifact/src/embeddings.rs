//! `embeddings.parquet`: sentences and their embeddings (the `embed` stage's output, read by
//! `search`, `serve` and `mine`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;

use crate::{ArtifactError, AtomicFile, Batches, Result, pq_error, string_column, strings};

/// Rows per row group: 8192 rows of 384 floats is 12 MiB, so writing and reading stay small.
const EMBEDDING_ROW_GROUP: usize = 8192;

/// `id`, `text` and `embedding` (a fixed-size list of `dim` f32).
pub fn embeddings_schema(dim: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("embedding", embedding_type(dim), false),
    ]))
}

fn embedding_type(dim: usize) -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new("item", DataType::Float32, false)),
        dim as i32,
    )
}

/// A whole embeddings artifact in memory: row `i` is `ids[i]`, `texts[i]` and
/// `vectors[i * dim..(i + 1) * dim]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    pub ids: Vec<String>,
    pub texts: Vec<String>,
    pub dim: usize,
    pub vectors: Vec<f32>,
}

impl Embeddings {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn vector(&self, row: usize) -> &[f32] {
        &self.vectors[row * self.dim..(row + 1) * self.dim]
    }
}

/// Writes `embeddings.parquet` a batch at a time (bounded memory), atomically.
pub struct EmbeddingWriter {
    path: PathBuf,
    dim: usize,
    file: AtomicFile,
    writer: ArrowWriter<File>,
    written: usize,
}

impl EmbeddingWriter {
    pub fn create(path: &Path, dim: usize) -> Result<Self> {
        let file = AtomicFile::create(path)?;
        let props = crate::writer_props(path, EMBEDDING_ROW_GROUP)?;
        let writer = ArrowWriter::try_new(file.handle()?, embeddings_schema(dim), Some(props))
            .map_err(pq_error(path))?;
        Ok(EmbeddingWriter {
            path: path.to_path_buf(),
            dim,
            file,
            writer,
            written: 0,
        })
    }

    /// Appends rows: `vectors` holds `ids.len()` embeddings of `dim` floats, one after another.
    pub fn push(&mut self, ids: &[String], texts: &[String], vectors: &[f32]) -> Result<()> {
        let schema_error = |message: String| ArtifactError::Schema {
            path: self.path.clone(),
            message,
        };
        if ids.len() != texts.len() || vectors.len() != ids.len() * self.dim {
            return Err(schema_error(format!(
                "{} ids, {} texts and {} floats do not make rows of {} dimensions",
                ids.len(),
                texts.len(),
                vectors.len(),
                self.dim
            )));
        }
        let values = Arc::new(Float32Array::from(vectors.to_vec()));
        let field = Arc::new(Field::new("item", DataType::Float32, false));
        let list = FixedSizeListArray::try_new(field, self.dim as i32, values, None)
            .map_err(|e| schema_error(e.to_string()))?;
        let cols: Vec<ArrayRef> = vec![
            strings(ids.iter().map(String::as_str)),
            strings(texts.iter().map(String::as_str)),
            Arc::new(list),
        ];
        let batch = RecordBatch::try_new(embeddings_schema(self.dim), cols)
            .map_err(|e| schema_error(e.to_string()))?;
        self.writer.write(&batch).map_err(pq_error(&self.path))?;
        self.written += ids.len();
        Ok(())
    }

    /// Closes the file and renames it into place; returns the row count.
    pub fn finish(self) -> Result<usize> {
        self.writer.close().map_err(pq_error(&self.path))?;
        self.file.commit()?;
        Ok(self.written)
    }
}

/// Reads a whole embeddings artifact, checking its schema (any `dim`).
pub fn read_embeddings(path: &Path) -> Result<Embeddings> {
    read_all(EmbeddingReader::open(path, true)?)
}

/// Reads the ids and texts of an embeddings artifact, not its vectors (`vectors` stays empty,
/// `dim` is set): what a search through an index that holds the vectors needs.
pub fn read_embedding_texts(path: &Path) -> Result<Embeddings> {
    read_all(EmbeddingReader::open(path, false)?)
}

fn read_all(reader: EmbeddingReader) -> Result<Embeddings> {
    // Sized from the footer: growing by doubling would hold up to 2x the vectors (1 M x 384: 3 GB).
    let rows = reader.rows();
    let mut out = Embeddings {
        ids: Vec::with_capacity(rows),
        texts: Vec::with_capacity(rows),
        dim: reader.dim,
        vectors: Vec::with_capacity(if reader.vectors { rows * reader.dim } else { 0 }),
    };
    for part in reader {
        let part = part?;
        out.ids.extend(part.ids);
        out.texts.extend(part.texts);
        out.vectors.extend(part.vectors);
    }
    Ok(out)
}

/// An embeddings artifact read a row group at a time (bounded memory: `index` streams millions of
/// rows through it): each item holds the next rows.
pub struct EmbeddingReader {
    path: PathBuf,
    batches: Batches,
    dim: usize,
    vectors: bool,
}

impl EmbeddingReader {
    /// Opens `path`, checking its schema; with `vectors` false only ids and texts are decoded.
    pub fn open(path: &Path, vectors: bool) -> Result<EmbeddingReader> {
        let required = [("id", DataType::Utf8), ("text", DataType::Utf8)];
        let only: &[&str] = match vectors {
            true => &["id", "text", "embedding"],
            false => &["id", "text"],
        };
        let batches = Batches::open(path, &required, Some(only))?;
        let dim = match batches
            .schema()
            .field_with_name("embedding")
            .map(|f| f.data_type())
        {
            Ok(DataType::FixedSizeList(item, n))
                if *item.data_type() == DataType::Float32 && *n > 0 =>
            {
                *n as usize
            }
            _ => {
                return Err(ArtifactError::Schema {
                    path: path.to_path_buf(),
                    message: "missing column embedding (a fixed-size list of float32)".into(),
                });
            }
        };
        Ok(EmbeddingReader {
            path: path.to_path_buf(),
            batches,
            dim,
            vectors,
        })
    }

    /// The row count in the file's footer.
    pub fn rows(&self) -> usize {
        self.batches.rows()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    fn part(&self, b: RecordBatch) -> Result<Embeddings> {
        let path = &self.path;
        let vectors = match self.vectors {
            true => float_rows(&b, self.dim)
                .ok_or_else(|| ArtifactError::Schema {
                    path: path.to_path_buf(),
                    message: "column embedding must be float32 values without nulls".into(),
                })?
                .to_vec(),
            false => Vec::new(),
        };
        Ok(Embeddings {
            ids: string_column(path, &b, "id")?,
            texts: string_column(path, &b, "text")?,
            dim: self.dim,
            vectors,
        })
    }
}

/// The `embedding` column of a batch as `rows x dim` floats; `None` if it has nulls or another type.
fn float_rows(b: &RecordBatch, dim: usize) -> Option<&[f32]> {
    let list = b
        .column_by_name("embedding")?
        .as_any()
        .downcast_ref::<FixedSizeListArray>()?;
    let values = list.values().as_any().downcast_ref::<Float32Array>()?;
    if list.null_count() > 0 || values.null_count() > 0 {
        return None;
    }
    let offset = list.offset() * dim;
    values.values().get(offset..offset + list.len() * dim)
}

impl Iterator for EmbeddingReader {
    type Item = Result<Embeddings>;

    fn next(&mut self) -> Option<Result<Embeddings>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|b| self.part(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_and_a_wrong_row_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("emb.parquet");
        let mut w = EmbeddingWriter::create(&path, 3).unwrap();
        let ids = ["a:1".to_string(), "a:2".to_string()];
        let texts = ["하나".to_string(), "둘".to_string()];
        w.push(&ids, &texts, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
            .unwrap();
        w.push(&ids[..1], &texts[..1], &[7.0, 8.0, 9.0]).unwrap();
        let err = w.push(&ids[..1], &texts[..1], &[1.0]).unwrap_err();
        assert!(err.to_string().contains("rows of 3 dimensions"), "{err}");
        assert_eq!(w.finish().unwrap(), 3);
        let e = read_embeddings(&path).unwrap();
        assert_eq!((e.len(), e.dim), (3, 3));
        assert_eq!(e.texts, ["하나", "둘", "하나"]);
        assert_eq!(e.vector(2), [7.0, 8.0, 9.0]);
        let texts = read_embedding_texts(&path).unwrap();
        assert_eq!((texts.ids, texts.texts, texts.dim), (e.ids, e.texts, 3));
        assert!(texts.vectors.is_empty());
    }
}
